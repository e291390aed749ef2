//! Several nodes on one PostgreSQL database and one S3 bucket (a real SeaweedFS), whatever
//! the test matrix says; plus what keeps an install whole when it moves: inputs kept as file
//! keys across a change of address, `migrate-store` from SQLite + disk, bad settings, and a
//! database that goes away and comes back.

mod common;
use common::*;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

const FAST_QUEUE: &str =
    "[queue]\nlease_seconds = 1.0\npoll_interval_ms = 200\nretry_backoff_ms = 50\ndefault_concurrency = 4\n";

/// Two nodes on one database and bucket, each with nothing but the shared settings (so each
/// has its own public base: a file URL of one is still recognised by the other).
async fn two_nodes(b_env: &[(&str, &str)]) -> (Server, Server) {
    let a = Server::start_on(Kind::Postgres, FAST_QUEUE, &[]).await;
    let b = a.start_sibling(FAST_QUEUE, b_env).await;
    (a, b)
}

#[tokio::test]
async fn two_nodes_share_credits_files_and_wake_each_others_waiters() {
    // B runs no seedream tasks, so the seedream task below is settled by A's worker.
    let (a, b) = two_nodes(&[(
        "PLUME_TEST_EXECUTORS",
        "Banana2,BananaPro,remove-bg,remove-watermark,veo,seedance2",
    )])
    .await;
    let u = a.user(500); // remove-bg costs 5: exactly 100 tasks

    // A file uploaded through A is served by B, byte for byte, with the same ETag.
    let bytes = png(16, 16);
    let url = a.upload_url(&u.key, bytes.clone(), "in.png").await;
    let on_b = url.replace(&a.base, &b.base);
    let (ra, rb) = (
        a.http.get(&url).send().await.unwrap(),
        b.http.get(&on_b).send().await.unwrap(),
    );
    assert_eq!((ra.status().as_u16(), rb.status().as_u16()), (200, 200));
    assert_eq!(ra.headers()["etag"], rb.headers()["etag"]);
    assert_eq!(rb.bytes().await.unwrap().as_ref(), bytes.as_slice());

    // 200 creates racing across both nodes against credit for 100.
    let body = json!({"category": "remove-bg", "content": {"imageUrls": [url]}});
    let (accepted, _) = race_creates(&[&a, &b], &u.key, &body, 200).await;
    assert_eq!(accepted.len(), 100, "exactly the credit's worth");
    for id in &accepted {
        let node = if id % 2 == 0 { &a } else { &b };
        let done = node
            .wait_terminal(&u.key, *id, Duration::from_secs(120))
            .await;
        assert_eq!(done["status"], 3, "{done}");
    }
    let balance = a.balance(&u);
    assert_eq!(balance["balance"], 0);
    assert_eq!(
        balance["ledger"],
        json!({"topup": 500, "reserve": 500, "capture": 500, "refund": 0})
    );

    // A ?wait= on B returns within a second of A settling (LISTEN/NOTIFY, not the re-read).
    b.admin(&["topup", "--user", &u.id, "--amount", "100"]);
    let (status, created) = a
        .create(
            &u.key,
            &json!({"category": "seedream", "content": {"prompt": "sleep=1500"}}),
        )
        .await;
    assert_eq!(status, 200, "{created}");
    let id = created["data"]["id"].as_i64().unwrap();
    let settled = loop {
        let (status, body) = b
            .get(&u.key, &format!("/api/open/tasks/{id}?wait=20"))
            .await;
        assert_eq!(status, 200, "{body}");
        if body["data"]["status"].as_i64().unwrap() >= 3 {
            break body["data"].clone();
        }
    };
    let returned_at = chrono::Utc::now();
    assert_eq!(settled["status"], 3, "{settled}");
    let finished_at =
        chrono::DateTime::parse_from_rfc3339(settled["finished_at"].as_str().unwrap()).unwrap();
    let lag = returned_at.signed_duration_since(finished_at);
    assert!(
        lag < chrono::Duration::milliseconds(1000),
        "B answered {lag} after A settled"
    );

    // Each node's /metrics shows the cluster's figures, labelled as such.
    let captured = 500 + settled["credits_cost"].as_i64().unwrap();
    for node in [&a, &b] {
        let text = node.metrics().await;
        let line = format!("plume_credits_captured_total{{scope=\"cluster\"}} {captured}");
        assert!(text.contains(&line), "{line} missing in {text}");
    }
}

#[tokio::test]
async fn a_killed_nodes_tasks_are_finished_by_the_other_once_each() {
    let upstream = TempDir::new("plume-upstream");
    let shared = upstream.0.to_str().unwrap().to_string();
    let env = [("PLUME_TEST_UPSTREAM_DIR", shared.as_str())];
    let mut a = Server::start_on(Kind::Postgres, FAST_QUEUE, &env).await;
    let u = a.user(1000);
    let mut ids = Vec::new();
    for _ in 0..6 {
        let (status, body) = a.create(&u.key, &banana("upstream sleep=1500")).await;
        assert_eq!(status, 200, "{body}");
        ids.push(body["data"]["id"].as_i64().unwrap());
    }
    // Wait until A runs some of them upstream, then start B and kill A without warning.
    let deadline = Instant::now() + Duration::from_secs(20);
    while ids
        .iter()
        .filter(|id| upstream.0.join(id.to_string()).exists())
        .count()
        < 3
    {
        assert!(Instant::now() < deadline, "A never started: {}", a.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let b = a.start_sibling(FAST_QUEUE, &env).await;
    // Which tasks have their upstream job id saved (the executor reports 10 % right after).
    let list: Vec<String> = ids.iter().map(i64::to_string).collect();
    let (_, batch) = a
        .get(
            &u.key,
            &format!("/api/open/tasks/batch?ids={}", list.join(",")),
        )
        .await;
    let saved: Vec<i64> = batch["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["progress"].as_i64().unwrap_or(0) >= 10)
        .map(|t| t["id"].as_i64().unwrap())
        .collect();
    a.kill9();
    for id in &ids {
        let done = b.wait_terminal(&u.key, *id, Duration::from_secs(60)).await;
        assert_eq!(done["status"], 3, "{done}\n{}", b.log());
        let submissions = std::fs::read_to_string(upstream.0.join(id.to_string())).unwrap();
        let count = submissions.lines().count();
        if saved.contains(id) {
            // Saved before the kill: B resumed the job and never submitted it again.
            assert_eq!(count, 1, "task {id} was submitted upstream once");
        } else {
            // Killed between submitting and saving the id, at most one more submission.
            assert!(
                (1..=2).contains(&count),
                "task {id} submitted {count} times"
            );
        }
    }
    assert!(saved.len() >= 3, "the kill hit saved jobs: {batch}");
    let balance = b.balance(&u);
    assert_ledger_adds_up(&balance, true);
    assert_eq!(balance["ledger"]["capture"], 60);
}

#[tokio::test]
async fn queued_inputs_survive_a_change_of_address() {
    // One worker, so the tasks wait in the queue while the server moves to another port.
    let config =
        "[queue]\nlease_seconds = 1.0\npoll_interval_ms = 100\n[queue.concurrency]\nBanana2 = 1\n";
    let mut s = Server::start(config, &[]).await;
    let u = s.user(1000);
    let input = png(20, 10);
    let url = s.upload_url(&u.key, input.clone(), "in.png").await;
    // Past the edge of "our file under another address": a key we do not hold, on a private
    // host, is a remote URL like any other and refused; nothing is charged.
    let path = url.strip_prefix(&s.base).unwrap();
    let missing = format!("http://10.0.0.1{}", path.replace(".png", "0.png"));
    let edit = |image: &str| {
        json!({"category": "Banana2", "content": {"prompt": "sleep=300", "imageUrls": [image],
            "generationConfig": {"imageConfig": {"image_size": "1K"}}}})
    };
    assert_error(
        &s.create(&u.key, &edit(&missing)).await,
        400,
        "VALIDATION_ERROR",
    );
    assert_eq!(s.balance(&u)["balance"], 1000);
    let mut ids = Vec::new();
    // The same key under another address (a sibling node, an old base) is read by key.
    let elsewhere = format!("http://10.0.0.1{path}");
    for i in 0..5 {
        let image = if i == 0 { &elsewhere } else { &url };
        let (status, created) = s.create(&u.key, &edit(image)).await;
        assert_eq!(status, 200, "{created}");
        ids.push(created["data"]["id"].as_i64().unwrap());
    }
    s.kill9();
    s.port = free_port();
    s.base = format!("http://127.0.0.1:{}", s.port);
    s.spawn().await;
    for id in &ids {
        let done = s.wait_terminal(&u.key, *id, Duration::from_secs(60)).await;
        assert_eq!(done["status"], 3, "{done}\n{}", s.log());
        let input_now = done["content"]["imageUrls"][0].as_str().unwrap();
        assert!(
            input_now.starts_with(&s.base),
            "the input is shown under today's address: {input_now}"
        );
        let output = done["result"]["imageUrl"].as_str().unwrap();
        let bytes = s
            .http
            .get(output)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let mut expected = image::load_from_memory(&input).unwrap().to_rgba8();
        image::imageops::invert(&mut expected);
        assert_eq!(
            image::load_from_memory(&bytes).unwrap().to_rgba8(),
            expected
        );
    }
}

#[tokio::test]
async fn migrate_store_moves_a_sqlite_install_to_postgres_and_s3() {
    let mut old = Server::start_on(Kind::Sqlite, FAST_QUEUE, &[]).await;
    let alice = old.user(300);
    let bob = old.user(0);
    let url = old.upload_url(&alice.key, png(12, 12), "a.png").await;
    let mut ids = Vec::new();
    for body in [
        json!({"category": "remove-bg", "content": {"imageUrls": [url]}}),
        banana("fail=no_luck"),
        banana("plain"),
    ] {
        let (status, created) = old.create(&alice.key, &body).await;
        assert_eq!(status, 200, "{created}");
        ids.push(created["data"]["id"].as_i64().unwrap());
    }
    let mut before = Vec::new();
    for id in &ids {
        before.push(
            old.wait_terminal(&alice.key, *id, Duration::from_secs(30))
                .await,
        );
    }
    let balance_before = old.balance(&alice);
    assert_eq!(old.terminate().code(), Some(0));

    let target = Arc::new(Backend::new(Kind::Postgres).await);
    let data = old.data_dir();
    let out = std::process::Command::new(real_server_bin())
        .arg("migrate-store")
        .arg("--from")
        .arg(format!("sqlite://{}", data.join("plume.db").display()))
        .arg("--to")
        .arg(target.database_url.as_ref().unwrap())
        .arg("--from-storage")
        .arg(format!("file://{}", data.join("files").display()))
        .arg("--to-storage")
        .arg(format!("s3://{}", target.bucket.as_ref().unwrap()))
        .envs(target.env.iter().cloned())
        .env_remove("PLUME_CONFIG")
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
    assert!(out.status.success(), "{report}");
    assert_eq!(report["rows"]["tasks"], 3, "{report}");
    assert_eq!(
        report["files"]["copied"], 3,
        "upload + two results: {report}"
    );

    let new = Server::start_with(test_server_bin(), target, FAST_QUEUE, &[]).await;
    assert_eq!(new.balance(&alice), balance_before);
    for (id, old_view) in ids.iter().zip(&before) {
        let (status, body) = new.get(&alice.key, &format!("/api/open/tasks/{id}")).await;
        assert_eq!(status, 200);
        let now = &body["data"];
        for field in [
            "status",
            "error",
            "credits_cost",
            "created_at",
            "finished_at",
        ] {
            assert_eq!(now[field], old_view[field], "{field} of task {id}");
        }
        if let Some(result) = now["result"]["imageUrl"].as_str() {
            assert!(result.starts_with(&new.base));
            let r = new.http.get(result).send().await.unwrap();
            assert_eq!(r.status(), 200, "result file of task {id} moved");
        }
    }
    // The migrated install keeps working: keys, ids and the ledger carry on.
    let (status, next) = new.create(&alice.key, &banana("after")).await;
    assert_eq!(status, 200, "{next}");
    assert!(next["data"]["id"].as_i64().unwrap() > *ids.last().unwrap());
    let (_, who) = new.get(&bob.key, "/api/open/validate").await;
    assert_eq!(who["success"], true, "{who}");
}

/// Runs the real binary's `serve` and returns its exit status and last stderr line.
fn serve_fails(env: &[(&str, &str)]) -> (bool, String) {
    let dir = TempDir::new("plume-badsettings");
    let out = std::process::Command::new(real_server_bin())
        .arg("serve")
        .current_dir(&dir.0)
        .env("PLUME_LISTEN", format!("127.0.0.1:{}", free_port()))
        .env("PLUME_DATA_DIR", dir.0.join("data"))
        .env_remove("PLUME_CONFIG")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    (
        !out.status.success(),
        stderr.lines().last().unwrap_or("").to_string(),
    )
}

#[tokio::test]
async fn bad_settings_stop_start_up_with_one_clear_line() {
    let (failed, line) = serve_fails(&[(
        "PLUME_DATABASE_URL",
        "postgres://postgres:hunter2@127.0.0.1:1/plume",
    )]);
    assert!(failed);
    assert!(line.contains("PLUME_DATABASE_URL"), "{line}");
    assert!(!line.contains("hunter2"), "the password is hidden: {line}");

    let s3 = S3::shared();
    let bucket = format!("plume-bad-{}", free_port());
    s3.create_bucket(&bucket).await;
    let mut env: Vec<(String, String)> = s3.env(&bucket);
    for (k, v) in env.iter_mut() {
        if k == "AWS_SECRET_ACCESS_KEY" {
            *v = "not-the-secret".into();
        }
    }
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let (failed, line) = serve_fails(&env);
    assert!(failed);
    assert!(
        line.contains("storage_url") && line.contains("AWS_SECRET_ACCESS_KEY"),
        "{line}"
    );
    assert!(!line.contains("not-the-secret"), "{line}");

    let mut env = s3.env("no-such-bucket-here");
    env.push(("PLUME_DATA_DIR".into(), "/nonexistent".into()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let (failed, line) = serve_fails(&env);
    assert!(failed);
    assert!(line.contains("s3://no-such-bucket-here"), "{line}");

    let (failed, line) = serve_fails(&[("PLUME_STORAGE_URL", "ftp://files")]);
    assert!(failed);
    assert!(line.contains("PLUME_STORAGE_URL"), "{line}");
}

/// A TCP relay to the test PostgreSQL that can be cut (every connection dropped, new ones
/// refused) and restored: the database "disappears" for this one server only.
struct Relay {
    port: u16,
    up: Arc<std::sync::atomic::AtomicBool>,
    generation: Arc<tokio::sync::watch::Sender<u64>>,
}

impl Relay {
    async fn start(target: std::net::SocketAddr) -> Relay {
        use std::sync::atomic::Ordering;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let generation = Arc::new(tokio::sync::watch::channel(0u64).0);
        let (up2, gen2) = (up.clone(), generation.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                if !up2.load(Ordering::SeqCst) {
                    continue; // dropped: the client sees the connection close
                }
                let mut cut = gen2.subscribe();
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Relay {
            port,
            up,
            generation,
        }
    }

    fn cut(&self) {
        self.up.store(false, std::sync::atomic::Ordering::SeqCst);
        self.generation.send_modify(|g| *g += 1);
    }

    fn restore(&self) {
        self.up.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_that_goes_away_fails_requests_with_503_and_loses_nothing() {
    let backend = Backend::new(Kind::Postgres).await;
    let direct = url::Url::parse(backend.database_url.as_ref().unwrap()).unwrap();
    let target = format!(
        "{}:{}",
        direct.host_str().unwrap(),
        direct.port().unwrap_or(5432)
    );
    let relay = Relay::start(target.parse().unwrap()).await;
    let mut through = direct.clone();
    through.set_port(Some(relay.port)).unwrap();
    let mut backend = backend;
    for (k, v) in backend.env.iter_mut() {
        if k == "PLUME_DATABASE_URL" {
            *v = through.to_string();
        }
    }
    let backend = Arc::new(backend);
    let s = Server::start_with(test_server_bin(), backend, FAST_QUEUE, &[]).await;
    let u = s.user(100);
    let (_, created) = s.create(&u.key, &banana("sleep=3000")).await;
    let id = created["data"]["id"].as_i64().unwrap();

    relay.cut();
    let r = s
        .http
        .get(s.url(&format!("/api/open/tasks/{id}")))
        .bearer_auth(&u.key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "INTERNAL_ERROR", "{body}");
    let ready = s.http.get(s.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    let refused = s.create(&u.key, &banana("during the outage")).await;
    assert_eq!(refused.0, 503, "{}", refused.1);

    relay.restore();
    let done = s.wait_terminal(&u.key, id, Duration::from_secs(60)).await;
    assert_eq!(done["status"], 3, "{done}\n{}", s.log());
    let balance = s.balance(&u);
    assert_ledger_adds_up(&balance, true);
    assert_eq!(
        balance["ledger"]["reserve"], 10,
        "the refused create charged nothing"
    );
}

#[tokio::test]
async fn migrate_creates_the_schema_and_says_so() {
    let backend = Backend::new(Kind::Postgres).await;
    let url = backend.database_url.clone().unwrap();
    for _ in 0..2 {
        // Twice: the second run finds the schema up to date.
        let out = std::process::Command::new(real_server_bin())
            .arg("migrate")
            .env("PLUME_DATABASE_URL", &url)
            .env_remove("PLUME_CONFIG")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["schema"], "up to date", "{report}");
    }
    let out = std::process::Command::new(real_server_bin())
        .arg("migrate")
        .env("PLUME_DATABASE_URL", "postgres://postgres@127.0.0.1:1/none")
        .env_remove("PLUME_CONFIG")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("PLUME_DATABASE_URL"), "{stderr}");
}

#[tokio::test]
async fn with_a_cdn_base_file_urls_point_at_the_cdn_and_nothing_touches_local_disk() {
    let cdn = "https://cdn.example.com/plume";
    let config = format!("{FAST_QUEUE}[s3]\npublic_base = \"{cdn}/\"\n");
    let s = Server::start_on(Kind::Postgres, &config, &[]).await;
    let u = s.user(100);
    let (status, up) = s.upload(&u.key, png(8, 8), "a.png").await;
    assert_eq!(status, 200, "{up}");
    let url = up["data"]["file_url"].as_str().unwrap();
    assert!(url.starts_with(&format!("{cdn}/uploads/")), "{url}");
    // The CDN URL is known as our own file: accepted, read from the bucket, never fetched.
    let (status, created) = s
        .create(
            &u.key,
            &json!({"category": "remove-bg", "content": {"imageUrls": [url]}}),
        )
        .await;
    assert_eq!(status, 200, "{created}");
    let id = created["data"]["id"].as_i64().unwrap();
    let done = s.wait_terminal(&u.key, id, Duration::from_secs(30)).await;
    assert_eq!(done["status"], 3, "{done}");
    let result = done["result"]["imageUrl"].as_str().unwrap();
    assert!(
        result.starts_with(&format!("{cdn}/results/{id}/")),
        "{result}"
    );
    // /files/ on the node still serves the same object.
    let key = result.strip_prefix(&format!("{cdn}/")).unwrap();
    let r = s
        .http
        .get(s.url(&format!("/files/{key}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        !s.data_dir().exists(),
        "PostgreSQL + S3 write nothing under the data folder"
    );
}
