//! The soak's clients: what they send, and a tally of what they got back.

use rand::seq::SliceRandom;
use rand::Rng;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

/// What the clients saw, by kind of request and answer.
#[derive(Default)]
pub struct Tally {
    pub counts: Mutex<BTreeMap<(String, String), u64>>,
    pub unexpected: Mutex<Vec<String>>,
}

impl Tally {
    fn add(&self, kind: &str, outcome: &str) {
        *self
            .counts
            .lock()
            .unwrap()
            .entry((kind.into(), outcome.into()))
            .or_default() += 1;
    }
    fn unexpected(&self, what: String) {
        let mut u = self.unexpected.lock().unwrap();
        if u.len() < 50 {
            u.push(what);
        }
    }
}

pub struct Client {
    pub http: reqwest::Client,
    /// One base URL per node; each request goes to one at random.
    pub bases: Vec<String>,
    pub keys: Vec<String>,
    /// Task ids with the key that made them.
    pub tasks: Mutex<Vec<(i64, usize)>>,
    pub tally: Tally,
    /// Per node, set while it is down on purpose: its failures then are expected.
    pub restarting: Vec<AtomicBool>,
    pub created: AtomicU64,
}

const PROMPTS: &[&str] = &[
    "a kite",
    "sleep=300 a quick kite",
    "sleep=4000 a slow kite",
    "late=2000 stored early",
    "fail=refused_by_upstream",
    "retry=1 flaky once",
    "retry=9 never works",
    "upstream sleep=1500 long job",
];

impl Client {
    fn known(&self) -> Option<(i64, usize)> {
        self.tasks
            .lock()
            .unwrap()
            .choose(&mut rand::thread_rng())
            .copied()
    }

    /// Records an answer: 2xx and the expected 4xx are fine; anything else (5xx, a dropped
    /// connection) is unexpected unless the server is being restarted.
    fn record(
        &self,
        node: usize,
        kind: &str,
        result: &Result<reqwest::StatusCode, reqwest::Error>,
        ok4xx: bool,
    ) {
        let restarting = self.restarting[node].load(Ordering::SeqCst);
        match result {
            Ok(s) if s.is_success() => self.tally.add(kind, "2xx"),
            Ok(s) if s.is_client_error() && (ok4xx || s.as_u16() == 404 || s.as_u16() == 400) => {
                self.tally.add(kind, "4xx")
            }
            Ok(s) if restarting => self.tally.add(kind, &format!("{} (restart)", s.as_u16())),
            Ok(s) => {
                self.tally.add(kind, &s.as_u16().to_string());
                self.tally.unexpected(format!("{kind}: HTTP {s}"));
            }
            Err(_) if restarting => self.tally.add(kind, "refused (restart)"),
            Err(e) => {
                self.tally.add(kind, "error");
                self.tally.unexpected(format!("{kind}: {e}"));
            }
        }
    }

    pub async fn one_request(&self) {
        // Every random choice is made before the first await (the thread's RNG stays here).
        let (node, roll, user, prompt, idempotency, bad_kind) = {
            let mut rng = rand::thread_rng();
            (
                rng.gen_range(0..self.bases.len()),
                rng.gen_range(0..100u32),
                rng.gen_range(0..self.keys.len()),
                *PROMPTS.choose(&mut rng).unwrap_or(&"a kite"),
                rng.gen_bool(0.1)
                    .then(|| format!("soak-{}", rng.gen_range(0..50))),
                rng.gen_range(0..4u32),
            )
        };
        let key = &self.keys[user];
        let url = |p: &str| format!("{}{p}", self.bases[node]);
        match roll {
            0..=34 => {
                let mut req = self
                    .http
                    .post(url("/api/open/tasks"))
                    .bearer_auth(key)
                    .json(&json!({"category": "Banana2", "content": {"prompt": prompt}}));
                if let Some(k) = idempotency {
                    req = req.header("Idempotency-Key", k);
                }
                match req.send().await {
                    Ok(r) => {
                        let status = r.status();
                        if let Ok(body) = r.json::<Value>().await {
                            if let Some(id) = body["data"]["id"].as_i64() {
                                self.tasks.lock().unwrap().push((id, user));
                                self.created.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        // 422: the idempotency key was reused with another prompt.
                        self.record(node, "create", &Ok(status), status.as_u16() == 422);
                    }
                    Err(e) => self.record(node, "create", &Err(e), false),
                }
            }
            35..=59 => {
                let Some((id, owner)) = self.known() else {
                    return;
                };
                let r = self
                    .http
                    .get(url(&format!("/api/open/tasks/{id}?wait=5")))
                    .bearer_auth(&self.keys[owner])
                    .send()
                    .await;
                self.record(node, "long poll", &r.map(|r| r.status()), false);
            }
            60..=69 => {
                let ids: Vec<String> = (0..5)
                    .filter_map(|_| self.known())
                    .filter(|(_, owner)| *owner == user)
                    .map(|(id, _)| id.to_string())
                    .collect();
                if ids.is_empty() {
                    return;
                }
                let r = self
                    .http
                    .get(url(&format!("/api/open/tasks/batch?ids={}", ids.join(","))))
                    .bearer_auth(key)
                    .send()
                    .await;
                self.record(node, "batch", &r.map(|r| r.status()), false);
            }
            70..=77 => {
                let img = image::RgbaImage::from_fn(32, 24, |x, y| {
                    image::Rgba([x as u8 * 8, y as u8 * 10, 90, 255])
                });
                let mut png = std::io::Cursor::new(Vec::new());
                let _ = img.write_to(&mut png, image::ImageFormat::Png);
                let part = reqwest::multipart::Part::bytes(png.into_inner()).file_name("soak.png");
                let r = self
                    .http
                    .post(url("/api/open/upload"))
                    .bearer_auth(key)
                    .multipart(reqwest::multipart::Form::new().part("file", part))
                    .send()
                    .await;
                self.record(node, "upload", &r.map(|r| r.status()), false);
            }
            78..=85 => {
                let Some((id, owner)) = self.known() else {
                    return;
                };
                let r = self
                    .http
                    .post(url(&format!("/api/open/tasks/{id}/cancel")))
                    .bearer_auth(&self.keys[owner])
                    .send()
                    .await;
                // 400: it had already ended.
                self.record(node, "cancel", &r.map(|r| r.status()), true);
            }
            _ => {
                let bad = match bad_kind {
                    0 => self
                        .http
                        .post(url("/api/open/tasks"))
                        .bearer_auth(key)
                        .body("{not json"),
                    1 => self
                        .http
                        .post(url("/api/open/tasks"))
                        .bearer_auth(key)
                        .json(&json!({"category": "Painting", "content": {}})),
                    2 => self
                        .http
                        .get(url("/api/open/tasks/1"))
                        .bearer_auth("plume_sk_wrong"),
                    _ => self
                        .http
                        .get(url("/api/open/tasks/999999999"))
                        .bearer_auth(key),
                };
                let r = bad.send().await;
                self.record(node, "bad request", &r.map(|r| r.status()), true);
            }
        }
    }
}
