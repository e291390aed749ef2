//! Where `plume` reads its settings: the process environment, then `openclaw.json` (JSON5)
//! in the OpenClaw state folder, then that folder's `.env` (CLIENT.md, "Where it reads its
//! settings"). A malformed file is an error that names the file; the key is never printed.

use anyhow::{Context, Result};
use serde_json::Value;
use std::path::{Path, PathBuf};

pub const SKILL_NAME: &str = "plume-image";

/// The OpenClaw state folder: `$OPENCLAW_STATE_DIR`, else `~/.openclaw`.
pub fn state_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("OPENCLAW_STATE_DIR").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .context("neither OPENCLAW_STATE_DIR nor HOME is set")?;
    Ok(PathBuf::from(home).join(".openclaw"))
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub state: PathBuf,
    pub api_key: Option<String>,
    pub api_base: String,
    /// The parsed `openclaw.json`, for Feishu credentials.
    pub openclaw: Value,
}

/// Parses `openclaw.json` (JSON5: comments and trailing commas); absent means empty.
pub fn read_openclaw_json(state: &Path) -> Result<Value> {
    let path = state.join("openclaw.json");
    match std::fs::read_to_string(&path) {
        Ok(text) => parse_openclaw_json(&text)
            .with_context(|| format!("{} is not valid JSON5", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Value::Null),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// The text of `openclaw.json` as JSON (JSON5 allows comments, trailing commas, unquoted keys).
pub fn parse_openclaw_json(text: &str) -> Result<Value> {
    Ok(json5::from_str::<Value>(text)?)
}

/// Parses a `.env` file: `NAME=value` lines, `#` comments, optional quotes and `export`.
pub fn parse_dotenv(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                return None;
            }
            let line = line.strip_prefix("export ").unwrap_or(line);
            let (name, value) = line.split_once('=')?;
            let mut value = value.trim();
            if value.len() >= 2
                && ((value.starts_with('"') && value.ends_with('"'))
                    || (value.starts_with('\'') && value.ends_with('\'')))
            {
                value = &value[1..value.len() - 1];
            } else if let Some(i) = value.find(" #") {
                value = value[..i].trim_end();
            }
            Some((name.trim().to_string(), value.to_string()))
        })
        .collect()
}

fn non_empty(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

impl Settings {
    pub fn load() -> Result<Settings> {
        let state = state_dir()?;
        let openclaw = read_openclaw_json(&state)?;
        let env_path = state.join(".env");
        let dotenv = match std::fs::read_to_string(&env_path) {
            Ok(text) => parse_dotenv(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", env_path.display())),
        };
        let entry = openclaw
            .pointer(&format!("/skills/entries/{SKILL_NAME}"))
            .cloned()
            .unwrap_or(Value::Null);
        let lookup = |name: &str| {
            non_empty(std::env::var(name).ok())
                .or_else(|| {
                    non_empty(
                        entry
                            .pointer(&format!("/env/{name}"))
                            .and_then(Value::as_str)
                            .map(String::from),
                    )
                })
                .or_else(|| {
                    (name == "PLUME_API_KEY")
                        .then(|| {
                            non_empty(
                                entry
                                    .get("apiKey")
                                    .and_then(Value::as_str)
                                    .map(String::from),
                            )
                        })
                        .flatten()
                })
                .or_else(|| {
                    non_empty(
                        dotenv
                            .iter()
                            .find(|(k, _)| k == name)
                            .map(|(_, v)| v.clone()),
                    )
                })
                .or_else(|| {
                    // Last: the OpenClaw provider plugin's settings (same account, same server).
                    let field = match name {
                        "PLUME_API_KEY" => "apiKey",
                        "PLUME_API_BASE" => "apiBase",
                        _ => return None,
                    };
                    non_empty(
                        openclaw
                            .pointer(&format!("/plugins/entries/plume/config/{field}"))
                            .and_then(Value::as_str)
                            .map(String::from),
                    )
                })
        };
        Ok(Settings {
            api_key: lookup("PLUME_API_KEY"),
            api_base: lookup("PLUME_API_BASE")
                .unwrap_or_else(|| plume_core::HOSTED_API_BASE.to_string())
                .trim_end_matches('/')
                .to_string(),
            state,
            openclaw,
        })
    }

    /// `<state>/media/plume`, where every file of the client lives.
    pub fn media_dir(&self) -> PathBuf {
        self.state.join("media").join("plume")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotenv_lines() {
        let parsed = parse_dotenv("# comment\nPLUME_API_KEY=\"abc\"\nexport PLUME_API_BASE='http://x'\nEMPTY=\nA=b # note\n\nbad line\n");
        assert_eq!(
            parsed,
            vec![
                ("PLUME_API_KEY".into(), "abc".into()),
                ("PLUME_API_BASE".into(), "http://x".into()),
                ("EMPTY".into(), "".into()),
                ("A".into(), "b".into()),
            ]
        );
    }

    #[test]
    fn openclaw_json_is_json5() {
        let dir = std::env::temp_dir().join(format!("plume-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("openclaw.json"),
            "{\n // comment\n skills: {entries: {'plume-image': {apiKey: 'k1',},},},\n}",
        )
        .unwrap();
        let v = read_openclaw_json(&dir).unwrap();
        assert_eq!(
            v.pointer("/skills/entries/plume-image/apiKey").unwrap(),
            "k1"
        );
        std::fs::write(dir.join("openclaw.json"), "{ nope").unwrap();
        let e = format!("{:#}", read_openclaw_json(&dir).unwrap_err());
        assert!(e.contains("openclaw.json"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
