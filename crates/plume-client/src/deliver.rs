//! Delivering to the chat through `openclaw message send` (OPENCLAW.md).
//!
//! Never send twice: only a failure that certainly sent nothing (the gateway unreachable,
//! credentials missing) is retried. Anything else, a timeout included, may have delivered
//! (a large file can arrive after the CLI gave up), so it is settled as it is.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

/// How long one `openclaw message send` may take before we stop waiting for it.
const SEND_TIMEOUT: Duration = Duration::from_secs(120);

/// `openclaw`: `$OPENCLAW_BIN`, then `PATH`, then the login shell's `command -v`, then the
/// usual install folders.
pub fn find_openclaw() -> Option<PathBuf> {
    let executable = |p: &Path| {
        p.is_file()
            && std::fs::metadata(p)
                .map(|m| {
                    use std::os::unix::fs::PermissionsExt;
                    m.permissions().mode() & 0o111 != 0
                })
                .unwrap_or(false)
    };
    if let Some(bin) = std::env::var_os("OPENCLAW_BIN").filter(|b| !b.is_empty()) {
        let bin = PathBuf::from(bin);
        return executable(&bin).then_some(bin);
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join("openclaw");
            if executable(&candidate) {
                return Some(candidate);
            }
        }
    }
    let shell = std::env::var("SHELL").unwrap_or_else(|_| "/bin/sh".into());
    if let Ok(out) = std::process::Command::new(&shell)
        .args(["-lc", "command -v openclaw"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
    {
        let found = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if out.status.success() && executable(&found) {
            return Some(found);
        }
    }
    let home = PathBuf::from(std::env::var_os("HOME").unwrap_or_default());
    let mut candidates = vec![
        home.join(".npm-global/bin/openclaw"),
        home.join(".local/bin/openclaw"),
        PathBuf::from("/usr/local/bin/openclaw"),
        PathBuf::from("/opt/homebrew/bin/openclaw"),
    ];
    if let Ok(versions) = std::fs::read_dir(home.join(".nvm/versions/node")) {
        candidates.extend(versions.flatten().map(|v| v.path().join("bin/openclaw")));
    }
    candidates.into_iter().find(|c| executable(c))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    Sent,
    /// Certainly nothing was sent: retry later.
    NothingSent(String),
    /// It failed in a way that may have delivered, or that no retry can fix: settle it.
    Settled(String),
}

/// Whether the CLI's failure text says nothing reached the chat platform.
pub fn certainly_unsent(output: &str) -> bool {
    [
        "Gateway not reachable",
        "ECONNREFUSED",
        "requires credentials before opening a websocket",
        // The CLI refused to start while a restarting gateway holds OpenClaw's state.
        "owns state-lifecycle",
    ]
    .iter()
    .any(|marker| output.contains(marker))
}

/// Runs one `openclaw message send`. `spawned` is told the child's pid as soon as it runs.
pub async fn send(
    openclaw: &Path,
    channel: &str,
    target: &str,
    message: &str,
    media: Option<&Path>,
    spawned: impl FnOnce(u32),
) -> SendOutcome {
    let mut cmd = tokio::process::Command::new(openclaw);
    cmd.args([
        "message",
        "send",
        "--channel",
        channel,
        "--target",
        target,
        "--message",
        message,
    ]);
    if let Some(file) = media {
        cmd.arg("--media").arg(file);
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return SendOutcome::NothingSent(format!("cannot run {}: {e}", openclaw.display()))
        }
    };
    if let Some(pid) = child.id() {
        spawned(pid);
    }
    match tokio::time::timeout(SEND_TIMEOUT, child.wait_with_output()).await {
        Ok(Ok(out)) if out.status.success() => SendOutcome::Sent,
        Ok(Ok(out)) => {
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stderr),
                String::from_utf8_lossy(&out.stdout)
            );
            let text = text.trim().chars().take(500).collect::<String>();
            if certainly_unsent(&text) {
                SendOutcome::NothingSent(text)
            } else {
                SendOutcome::Settled(text)
            }
        }
        Ok(Err(e)) => SendOutcome::Settled(format!("waiting for openclaw failed: {e}")),
        Err(_) => SendOutcome::Settled(format!(
            "openclaw did not finish within {SEND_TIMEOUT:?}; it may have delivered"
        )),
    }
}

/// The chat messages of CLIENT.md.
pub mod messages {
    pub fn success(is_video: bool) -> String {
        format!(
            "✅ {} generation complete!",
            if is_video { "video" } else { "image" }
        )
    }

    pub fn download_failed(task_id: i64, url: &str) -> String {
        format!("✅ Task #{task_id} completed, but download failed. Result URL: {url}")
    }

    pub fn ended(task_id: i64, status: i64, reason: &str) -> String {
        let word = match status {
            5 => "timeout",
            6 => "cancelled",
            _ => "failed",
        };
        format!("❌ Task #{task_id} {word}\n{reason}")
    }

    pub fn deadline(task_id: i64, waited: i64) -> String {
        format!(
            "⏰ Task #{task_id} has been waiting {waited}s without completion, polling cancelled."
        )
    }

    pub fn query_failed(task_id: i64, code: &str, message: &str) -> String {
        format!("❌ Task #{task_id} query failed ({code}): {message}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_certain_non_deliveries_are_retried() {
        assert!(certainly_unsent(
            "Error: Gateway not reachable at ws://127.0.0.1:18789 (ECONNREFUSED)"
        ));
        assert!(certainly_unsent(
            "gateway message.action requires credentials before opening a websocket"
        ));
        assert!(certainly_unsent(
            "[openclaw] Reason: another OpenClaw process owns state-lifecycle"
        ));
        assert!(!certainly_unsent(
            "OutboundDeliveryError: Telegram send failed: chat not found"
        ));
        assert!(!certainly_unsent("gateway timeout after 10000ms"));
        assert_eq!(
            messages::ended(7, 5, "too slow"),
            "❌ Task #7 timeout\ntoo slow"
        );
        assert_eq!(messages::success(true), "✅ video generation complete!");
    }
}
