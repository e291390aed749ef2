//! The client's files under `<state>/media/plume/` (CLIENT.md): poll jobs, results, the
//! last result per channel, the image registry, the category of each created task. Every
//! write goes to a temporary name in the same folder and is renamed into place, so a crash
//! never leaves half a JSON file.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Most entries `image_registry.json` and the category record keep.
const REGISTRY_LIMIT: usize = 50;
const CATEGORY_LIMIT: usize = 500;

pub fn temp_path(dest: &Path) -> PathBuf {
    let name = dest.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    dest.with_file_name(format!(
        ".{name}.{}.{:08x}.tmp",
        std::process::id(),
        rand_u32()
    ))
}

fn rand_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    h.finish() as u32
}

/// Writes `bytes` to `path` atomically, creating the folder.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let tmp = temp_path(path);
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.with_context(|| format!("cannot write {}", path.display()))
}

pub fn write_json(path: &Path, value: &impl Serialize) -> Result<()> {
    write_atomic(path, &serde_json::to_vec_pretty(value)?)
}

pub fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Option<T>> {
    match std::fs::read(path) {
        Ok(bytes) => {
            Ok(Some(serde_json::from_slice(&bytes).with_context(|| {
                format!("{} is not valid JSON", path.display())
            })?))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Where a job's delivery stands. A job file is removed only once this is settled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    /// `pending`: ready to send; `sending`: `openclaw message send` may be running or may
    /// have run (never sent again); `failed`: nothing was sent, retry at `retry_at`.
    pub state: String,
    pub message: String,
    #[serde(default)]
    pub media: Option<String>,
    #[serde(default)]
    pub attempts: u32,
    #[serde(default)]
    pub first_attempt_at: Option<i64>,
    #[serde(default)]
    pub retry_at: Option<i64>,
    #[serde(default)]
    pub pid: Option<u32>,
}

/// One registered poll job: `cron_tasks/<task_id>.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub task_id: i64,
    pub channel: String,
    pub target: String,
    /// Seconds between polls.
    pub interval: u64,
    /// Seconds after registration when polling gives up.
    pub max_duration: u64,
    /// Unix seconds.
    pub registered_at: i64,
    pub deadline: i64,
    #[serde(default)]
    pub category: Option<String>,
    #[serde(default)]
    pub delivery: Option<Delivery>,
}

pub struct Store {
    pub dir: PathBuf,
}

impl Store {
    pub fn new(media_dir: PathBuf) -> Store {
        Store { dir: media_dir }
    }

    pub fn jobs_dir(&self) -> PathBuf {
        self.dir.join("cron_tasks")
    }

    pub fn job_path(&self, task_id: i64) -> PathBuf {
        self.jobs_dir().join(format!("{task_id}.json"))
    }

    pub fn lock_path(&self) -> PathBuf {
        self.dir.join("poller.lock")
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join("poller.log")
    }

    pub fn save_job(&self, job: &Job) -> Result<()> {
        write_json(&self.job_path(job.task_id), job)
    }

    pub fn remove_job(&self, task_id: i64) -> Result<()> {
        match std::fs::remove_file(self.job_path(task_id)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }

    /// Every job file; unreadable ones are reported and skipped.
    pub fn jobs(&self) -> Vec<Job> {
        let Ok(entries) = std::fs::read_dir(self.jobs_dir()) else {
            return Vec::new();
        };
        let mut jobs: Vec<Job> = entries
            .flatten()
            .filter(|e| {
                e.file_name()
                    .to_str()
                    .is_some_and(|n| n.ends_with(".json") && !n.starts_with('.'))
            })
            .filter_map(|e| match read_json::<Job>(&e.path()) {
                Ok(job) => job,
                Err(err) => {
                    eprintln!("plume: skipping {}: {err:#}", e.path().display());
                    None
                }
            })
            .collect();
        jobs.sort_by_key(|j| j.task_id);
        jobs
    }

    pub fn result_path(&self, task_id: i64, ext: &str) -> PathBuf {
        self.dir.join(format!("result_{task_id}.{ext}"))
    }

    pub fn last_result_path(&self, channel: &str) -> PathBuf {
        let safe: String = channel
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        self.dir.join(format!("last_result_{safe}.json"))
    }

    /// Adds an entry at the front of `image_registry.json`, keeping the newest entries.
    pub fn register_image(&self, entry: Value) -> Result<()> {
        let path = self.dir.join("image_registry.json");
        let mut list: Vec<Value> = read_json(&path).unwrap_or_default().unwrap_or_default();
        let url = entry.get("url").cloned();
        list.retain(|e| e.get("url") != url.as_ref());
        list.insert(0, entry);
        list.truncate(REGISTRY_LIMIT);
        write_json(&path, &list)
    }

    /// Remembers a created task's category, so `register` can pick poll defaults.
    pub fn record_category(&self, task_id: i64, category: &str) -> Result<()> {
        let path = self.dir.join("task_categories.json");
        let mut map: serde_json::Map<String, Value> =
            read_json(&path).unwrap_or_default().unwrap_or_default();
        map.insert(task_id.to_string(), Value::String(category.to_string()));
        if map.len() > CATEGORY_LIMIT {
            let mut ids: Vec<i64> = map.keys().filter_map(|k| k.parse().ok()).collect();
            ids.sort_unstable();
            for id in &ids[..ids.len() - CATEGORY_LIMIT] {
                map.remove(&id.to_string());
            }
        }
        write_json(&path, &map)
    }

    pub fn category_of(&self, task_id: i64) -> Option<String> {
        let map: serde_json::Map<String, Value> = read_json(&self.dir.join("task_categories.json"))
            .ok()
            .flatten()?;
        map.get(&task_id.to_string())
            .and_then(Value::as_str)
            .map(String::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_writes_leave_no_temp_files() {
        let dir = std::env::temp_dir().join(format!("plume-store-{}", std::process::id()));
        let store = Store::new(dir.clone());
        for i in 0..60 {
            store
                .register_image(serde_json::json!({"url": format!("u{i}")}))
                .unwrap();
        }
        let list: Vec<Value> = read_json(&dir.join("image_registry.json"))
            .unwrap()
            .unwrap();
        assert_eq!(list.len(), REGISTRY_LIMIT);
        assert_eq!(list[0]["url"], "u59");
        store.record_category(7, "veo").unwrap();
        assert_eq!(store.category_of(7).as_deref(), Some("veo"));
        let leftovers = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .count();
        assert_eq!(leftovers, 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
