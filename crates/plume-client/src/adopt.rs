//! Adopting the tasks of the OpenClaw provider plugin whose gateway died mid-call.
//!
//! The plugin (`integrations/openclaw-plugin`) keeps `<media>/plugin-tasks/<id>.json` while
//! an `image_generate` / `video_generate` call waits for a Plume task, and removes it when the
//! call returns. An entry whose process is gone is a call OpenClaw will never finish: it marks
//! that media task `lost` and does not resume it. Here such an entry becomes an ordinary poll
//! job: OpenClaw's task record (`openclaw tasks list --json`; same source, same prompt,
//! created within a minute) names the requester session, whose key names the chat
//! (`agent:<agent>:<channel>:<account>:<direct|group>:<peer>`), and the poller then delivers
//! the result there once, like any registered task.

use crate::settings::Settings;
use crate::store::{Job, Store};
use anyhow::{Context, Result};
use plume_core::Category;
use serde::Deserialize;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// How far apart the plugin's record and OpenClaw's task record may have been made.
const MATCH_WINDOW_MS: i64 = 60_000;
/// An orphan with no OpenClaw task record is dropped after this long: OpenClaw records a
/// media task before the call starts, so none by then means there is no chat to deliver to
/// (an `openclaw infer` that was interrupted), and each look costs an `openclaw` start.
const GIVE_UP_MS: i64 = 10 * 60 * 1000;

/// One waiting call, as the plugin records it (journal.ts).
#[derive(Debug, Clone, Deserialize)]
pub struct PluginTask {
    pub plume_task_id: i64,
    pub api_base: String,
    pub category: String,
    pub source_id: String,
    pub prompt: String,
    pub started_at_ms: i64,
    pub pid: u32,
}

pub fn journal_dir(settings: &Settings) -> PathBuf {
    settings.media_dir().join("plugin-tasks")
}

/// Whether the process that wrote an entry still runs (an OpenClaw/Node process by that pid).
fn alive(pid: u32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|cmdline| {
            let text = String::from_utf8_lossy(&cmdline).to_lowercase();
            text.contains("openclaw") || text.contains("node")
        })
        .unwrap_or(false)
}

/// The entries whose process is gone, with their files.
fn orphans(dir: &Path) -> Vec<(PathBuf, PluginTask)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .filter_map(|p| {
            let task: PluginTask = serde_json::from_slice(&std::fs::read(&p).ok()?).ok()?;
            (!alive(task.pid)).then_some((p, task))
        })
        .collect()
}

/// `--channel` and `--target` from a session key such as
/// `agent:main:telegram:default:direct:4242` (Telegram targets carry their prefix, as
/// SKILL.md's table has them; Feishu's are the bare `ou_` / `oc_` id).
pub fn route_of(session_key: &str) -> Option<(String, String)> {
    let parts: Vec<&str> = session_key.split(':').collect();
    let [_, _, channel, _, _, peer @ ..] = parts.as_slice() else {
        return None;
    };
    let peer = peer.join(":");
    if channel.is_empty() || peer.is_empty() {
        return None;
    }
    let target = match *channel {
        "telegram" => format!("telegram:{peer}"),
        _ => peer,
    };
    Some((channel.to_string(), target))
}

/// The requester session of OpenClaw's record of `task`, from `openclaw tasks list --json`.
pub fn find_session(records: &Value, task: &PluginTask) -> Option<String> {
    records["tasks"].as_array()?.iter().find_map(|r| {
        let created = r["createdAt"].as_i64()?;
        let matches = r["sourceId"] == task.source_id.as_str()
            && r["task"] == task.prompt.trim()
            && (created - task.started_at_ms).abs() <= MATCH_WINDOW_MS
            && r["status"] != "succeeded";
        matches
            .then(|| r["requesterSessionKey"].as_str().map(String::from))
            .flatten()
    })
}

fn openclaw_tasks() -> Result<Value> {
    let bin = crate::deliver::find_openclaw().context("the openclaw command cannot be found")?;
    let out = std::process::Command::new(bin)
        .args(["tasks", "list", "--json"])
        .stdin(std::process::Stdio::null())
        .output()
        .context("cannot run openclaw tasks list")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let start = text
        .find('{')
        .context("openclaw tasks list printed no JSON")?;
    let mut stream = serde_json::Deserializer::from_str(&text[start..]).into_iter::<Value>();
    Ok(stream
        .next()
        .context("openclaw tasks list printed no JSON")??)
}

/// Turns the orphaned plugin calls of this server into poll jobs; returns how many.
pub fn adopt_orphans(settings: &Settings, store: &Store) -> Result<usize> {
    let orphans: Vec<_> = orphans(&journal_dir(settings))
        .into_iter()
        .filter(|(_, t)| t.api_base.trim_end_matches('/') == settings.api_base)
        .collect();
    if orphans.is_empty() {
        return Ok(0);
    }
    let records = openclaw_tasks()?;
    let now_ms = crate::store::now() * 1000;
    let mut adopted = 0;
    for (path, task) in orphans {
        let route = find_session(&records, &task).and_then(|key| route_of(&key));
        let Some((channel, target)) = route else {
            if now_ms - task.started_at_ms > GIVE_UP_MS {
                let _ = std::fs::remove_file(&path);
            }
            continue;
        };
        if !store.job_path(task.plume_task_id).exists() {
            let category = Category::parse(&task.category);
            let interval = category.map_or(5, |c| c.default_poll_interval().as_secs());
            let max_duration = category.map_or(1800, |c| c.default_time_limit().as_secs());
            let registered_at = task.started_at_ms / 1000;
            store.save_job(&Job {
                task_id: task.plume_task_id,
                channel,
                target,
                interval,
                max_duration,
                registered_at,
                deadline: registered_at + max_duration as i64,
                category: Some(task.category.clone()),
                delivery: None,
            })?;
            adopted += 1;
        }
        std::fs::remove_file(&path)?;
    }
    Ok(adopted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn session_keys_name_the_chat() {
        assert_eq!(
            route_of("agent:main:telegram:default:direct:4242"),
            Some(("telegram".into(), "telegram:4242".into()))
        );
        assert_eq!(
            route_of("agent:main:feishu:default:direct:ou_abc"),
            Some(("feishu".into(), "ou_abc".into()))
        );
        assert_eq!(route_of("agent:main:main"), None);
    }

    #[test]
    fn the_record_is_found_by_source_prompt_and_time() {
        let task = PluginTask {
            plume_task_id: 7,
            api_base: "http://x".into(),
            category: "Banana2".into(),
            source_id: "image_generate:plume".into(),
            prompt: "a kite".into(),
            started_at_ms: 1_000_000,
            pid: 1,
        };
        let record = |prompt: &str, at: i64, status: &str| {
            json!({"sourceId": "image_generate:plume", "task": prompt, "createdAt": at, "status": status,
                   "requesterSessionKey": format!("agent:main:telegram:default:direct:{at}")})
        };
        let records = json!({"tasks": [
            record("another kite", 1_000_000, "running"),
            record("a kite", 1_000_000 + 2 * MATCH_WINDOW_MS, "running"),
            record("a kite", 1_000_000, "succeeded"),
            record("a kite", 1_000_500, "lost"),
        ]});
        assert_eq!(
            find_session(&records, &task).as_deref(),
            Some("agent:main:telegram:default:direct:1000500")
        );
    }
}
