//! remove-bg and remove-watermark through the HTTP API of the real `plume-server`, with the
//! models `scripts/setup-models` installed (PLUME_MODELS_DIR, default `target/models`).

mod common;
use common::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn photo_bytes(name: &str) -> Vec<u8> {
    std::fs::read(models_dir().join("test-photos").join(format!("{name}.jpg")))
        .expect("run scripts/setup-models --test-photos")
}

async fn start(extra: &str, models: &std::path::Path) -> Server {
    let config = format!("[queue]\npoll_interval_ms = 100\n{extra}");
    Server::start_bin(
        real_server_bin(),
        &config,
        &[("PLUME_MODELS_DIR", models.to_str().unwrap())],
    )
    .await
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

#[tokio::test]
async fn upload_create_poll_result_for_both_categories() {
    let s = start("", &models_dir()).await;
    let u = s.user(100);
    let photo = photo_bytes("people");
    let url = s.upload_url(&u.key, photo.clone(), "people.jpg").await;
    let r = s
        .create(
            &u.key,
            &json!({"category": "remove-bg", "content": {"imageUrls": [url]}}),
        )
        .await;
    assert_eq!(r.0, 200, "{}", r.1);
    let t = s
        .wait_terminal(
            &u.key,
            r.1["data"]["id"].as_i64().unwrap(),
            Duration::from_secs(120),
        )
        .await;
    assert_eq!(t["status"], 3, "{t}\n{}", s.log());
    assert_eq!(t["result"]["mimeType"], "image/png");
    let cut = s
        .http
        .get(t["result"]["imageUrl"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let cut = image::load_from_memory(&cut).unwrap().to_rgba8();
    let original = image::load_from_memory(&photo).unwrap();
    assert_eq!(
        cut.dimensions(),
        (original.width(), original.height()),
        "full resolution"
    );
    let transparent =
        cut.pixels().filter(|p| p[3] < 16).count() as f64 / (cut.width() * cut.height()) as f64;
    let opaque =
        cut.pixels().filter(|p| p[3] > 240).count() as f64 / (cut.width() * cut.height()) as f64;
    assert!(
        transparent > 0.2 && opaque > 0.2,
        "a real cut-out: {transparent:.2} clear, {opaque:.2} opaque"
    );

    let r = s.create(&u.key, &json!({"category": "remove-watermark", "content": {"imageUrls": [url], "regions": [[10, 10, 120, 40]]}})).await;
    let t = s
        .wait_terminal(
            &u.key,
            r.1["data"]["id"].as_i64().unwrap(),
            Duration::from_secs(120),
        )
        .await;
    assert_eq!(t["status"], 3, "{t}");
    assert_eq!(t["result"]["mimeType"], "image/jpeg", "the input's format");
    let b = s.balance(&u);
    assert_eq!(
        b["ledger"],
        json!({"topup": 100, "reserve": 10, "capture": 10, "refund": 0})
    );
    let metrics = s.metrics().await;
    assert!(
        metrics.contains("plume_vision_inferences_limit 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_corrupt_image_or_a_broken_model_fails_the_task_and_refunds() {
    let tmp = TempDir::new("plume-corrupt");
    // A PNG cut short (JPEG decoders fill a truncated scan with grey instead of failing).
    let whole = png(300, 200);
    let https = plume_testkit::tls::start(
        &tmp.0,
        whole[..whole.len() / 2].to_vec().into(),
        "https://127.0.0.1/".into(),
    )
    .await
    .unwrap();
    let extra = format!(
        "[fetch]\nallow_hosts = [\"localhost\"]\nallow_private_networks = [\"127.0.0.0/8\", \"::1/128\"]\nextra_root_certs = [{:?}]\n",
        https.cert_path
    );
    let s = start(&extra, &models_dir()).await;
    let u = s.user(100);
    let r = s.create(&u.key, &json!({"category": "remove-bg", "content": {"imageUrls": [format!("https://localhost:{}/image.png", https.port)]}})).await;
    let t = s
        .wait_terminal(
            &u.key,
            r.1["data"]["id"].as_i64().unwrap(),
            Duration::from_secs(60),
        )
        .await;
    assert_eq!(t["status"], 4, "{t}");
    assert_eq!(t["error"]["code"], "INPUT_INVALID");
    assert!(
        t["result"].as_str().unwrap().contains("cannot be read"),
        "{t}"
    );
    assert_eq!(s.balance(&u)["balance"], 100, "refunded");

    // A models folder whose u2netp file is damaged: the task fails with the reason.
    let broken = tmp.0.join("models");
    std::fs::create_dir_all(&broken).unwrap();
    for f in [
        "libonnxruntime.so.1.32.0",
        "ch_PP-OCRv4_det_infer.onnx",
        "gemini-sparkle-48.png",
        "gemini-sparkle-96.png",
    ] {
        std::os::unix::fs::symlink(models_dir().join(f), broken.join(f)).unwrap();
    }
    std::fs::write(broken.join("u2netp.onnx"), b"this is not an onnx model").unwrap();
    let s = start("", &broken).await;
    let u = s.user(100);
    let url = s.upload_url(&u.key, photo_bytes("animal"), "a.jpg").await;
    let r = s
        .create(
            &u.key,
            &json!({"category": "remove-bg", "content": {"imageUrls": [url]}}),
        )
        .await;
    let t = s
        .wait_terminal(
            &u.key,
            r.1["data"]["id"].as_i64().unwrap(),
            Duration::from_secs(60),
        )
        .await;
    assert_eq!(t["status"], 4, "{t}");
    assert_eq!(t["error"]["code"], "MODEL_UNAVAILABLE");
    assert!(t["result"].as_str().unwrap().contains("u2netp.onnx"), "{t}");
    assert_eq!(s.balance(&u)["balance"], 100, "refunded");
}

#[tokio::test]
async fn without_models_the_categories_are_unavailable_and_the_server_still_starts() {
    let empty = TempDir::new("plume-nomodels");
    let s = start("", &empty.0).await;
    let u = s.user(100);
    let url = s.upload_url(&u.key, png(16, 16), "a.png").await;
    for category in ["remove-bg", "remove-watermark"] {
        let r = s
            .create(
                &u.key,
                &json!({"category": category, "content": {"imageUrls": [url]}}),
            )
            .await;
        assert_error(&r, 503, "CATEGORY_UNAVAILABLE");
        assert!(
            r.1["message"]
                .as_str()
                .unwrap()
                .contains("scripts/setup-models"),
            "{}",
            r.1
        );
    }
    assert_eq!(s.balance(&u)["balance"], 100);
    let ready: Value = s.readyz().await;
    assert!(ready["data"]["categories"]["remove-bg"]
        .as_str()
        .unwrap()
        .contains("setup-models"));
    // With the models, the same server configuration is ready.
    let s = start("", &models_dir()).await;
    let ready: Value = s.readyz().await;
    assert_eq!(ready["data"]["categories"]["remove-bg"], "ready");
    assert_eq!(ready["data"]["categories"]["remove-watermark"], "ready");
}

#[tokio::test]
async fn inferences_stay_bounded_and_memory_flat_over_a_hundred_tasks() {
    let extra = "[models]\nmax_concurrent_inferences = 2\nthreads_per_inference = 1\n[queue.concurrency]\nremove-bg = 6\n";
    let s = start(extra, &models_dir()).await;
    let u = s.user(1000);
    let small = {
        let img = image::load_from_memory(&photo_bytes("product"))
            .unwrap()
            .resize(256, 256, image::imageops::FilterType::Triangle);
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Png).unwrap();
        out.into_inner()
    };
    let url = s.upload_url(&u.key, small, "p.png").await;
    let body = json!({"category": "remove-bg", "content": {"imageUrls": [url]}});
    let server_pid = find_pid(&s);
    let mut samples = Vec::new();
    for round in 0..5 {
        let mut ids = Vec::new();
        for _ in 0..20 {
            ids.push(
                s.create(&u.key, &body).await.1["data"]["id"]
                    .as_i64()
                    .unwrap(),
            );
        }
        for id in ids {
            assert_eq!(
                s.wait_terminal(&u.key, id, Duration::from_secs(120)).await["status"],
                3
            );
        }
        samples.push(rss_kib(server_pid));
        println!(
            "after {} tasks: RSS {} KiB",
            (round + 1) * 20,
            samples[round]
        );
    }
    let metrics = s.metrics().await;
    let peak: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("plume_vision_inferences_peak "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(peak <= 2, "the bound held: peak {peak}");
    assert_eq!(peak, 2, "six workers did run inferences side by side");
    // Flat: the model sessions and allocator warm up in the first rounds; after that, 80
    // more tasks must not grow the process by more than 32 MiB.
    let growth = samples[4].saturating_sub(samples[1]);
    assert!(
        growth <= 32 * 1024,
        "RSS grew {growth} KiB from task 40 to task 100: {samples:?}"
    );
    assert_eq!(s.balance(&u)["ledger"]["capture"], 500);
}

/// The server process's pid, from the listening socket's owner.
fn find_pid(s: &Server) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let out = std::process::Command::new("ss")
            .args(["-ltnpH", &format!("sport = :{}", s.port)])
            .output();
        if let Ok(out) = out {
            let text = String::from_utf8_lossy(&out.stdout);
            if let Some(pid) = text
                .split("pid=")
                .nth(1)
                .and_then(|t| t.split(',').next())
                .and_then(|p| p.parse().ok())
            {
                return pid;
            }
        }
        assert!(Instant::now() < deadline, "cannot find the server's pid");
        std::thread::sleep(Duration::from_millis(100));
    }
}
