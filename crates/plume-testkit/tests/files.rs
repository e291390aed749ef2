//! Uploads and `/files/`: types from bytes, limits before decoding, keys that cannot escape.

mod common;
use common::*;
use serde_json::{json, Value};
use std::io::Write;
use std::time::Duration;

/// A PNG whose header declares `w`×`h` but carries almost no data (a decompression bomb).
fn bomb_png(w: u32, h: u32) -> Vec<u8> {
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(b"IHDR");
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let crc = crc32(&ihdr);
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    out.extend_from_slice(&13u32.to_be_bytes());
    out.extend_from_slice(&ihdr);
    out.extend_from_slice(&crc.to_be_bytes());
    // The start of a zlib stream as the only image data, then the end.
    for (kind, data) in [(&b"IDAT"[..], &b"\x78\x9c"[..]), (&b"IEND"[..], &b""[..])] {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let chunk = [kind, data].concat();
        out.extend_from_slice(&chunk);
        out.extend_from_slice(&crc32(&chunk).to_be_bytes());
    }
    out
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for byte in data {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[tokio::test]
async fn uploads_are_checked_before_anything_is_stored() {
    let s = Server::start("[limits]\nupload_max_bytes = 200000\n", &[]).await;
    let u = s.user(10);

    let good = png(40, 30);
    let r = s.upload(&u.key, good.clone(), "photo.jpg").await;
    assert_eq!(r.0, 200, "{}", r.1);
    let d = &r.1["data"];
    assert_eq!(
        d["content_type"], "image/png",
        "type from the bytes, not the name"
    );
    assert_eq!(
        (d["width"].as_u64(), d["height"].as_u64()),
        (Some(40), Some(30))
    );
    assert_eq!(d["file_size"], good.len());
    assert_eq!(d["sha256"].as_str().unwrap().len(), 64);
    let key = d["file_key"].as_str().unwrap();
    assert!(key.ends_with(".png"));
    assert_eq!(d["file_url"], format!("{}/files/{key}", s.base));
    let mut jpeg = Vec::new();
    image::RgbImage::new(8, 8)
        .write_to(
            &mut std::io::Cursor::new(&mut jpeg),
            image::ImageFormat::Jpeg,
        )
        .unwrap();
    assert_eq!(
        s.upload(&u.key, jpeg, "x.png").await.1["data"]["content_type"],
        "image/jpeg"
    );
    let stored = s.stored_files().await;

    let refusals: Vec<(Vec<u8>, &str)> = vec![
        (b"%PDF-1.7 not an image".to_vec(), "not a JPEG"),
        (good[..good.len() - 40].to_vec(), "corrupt or truncated"),
        (bomb_png(100_000, 100_000), "pixels"),
        (Vec::new(), "empty"),
    ];
    for (bytes, why) in refusals {
        let r = s.upload(&u.key, bytes, "x.png").await;
        assert_error(&r, 400, "VALIDATION_ERROR");
        let detail = r.1["error"]["details"]["file"].as_str().unwrap();
        assert!(detail.contains(why), "{detail:?} should say {why:?}");
    }
    let mut huge = png(8, 8);
    huge.resize(300_000, 0);
    let r = s.upload_response(&u.key, huge, "big.png").await;
    // A 413 leaves the rest of the body unread, so it closes the connection: a client that
    // reused it would have its next request fail mid-write.
    let connection = r
        .headers()
        .get("connection")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    assert_error(
        &(r.status().as_u16(), r.json().await.unwrap()),
        413,
        "VALIDATION_ERROR",
    );
    assert_eq!(connection.as_deref(), Some("close"));
    let form = reqwest::multipart::Form::new().text("other", "x");
    let r = s
        .http
        .post(s.url("/api/open/upload"))
        .bearer_auth(&u.key)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_error(
        &(r.status().as_u16(), r.json::<Value>().await.unwrap()),
        400,
        "VALIDATION_ERROR",
    );
    let r = s
        .http
        .post(s.url("/api/open/upload"))
        .bearer_auth(&u.key)
        .body("raw")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = s
        .http
        .post(s.url("/api/open/upload"))
        .multipart(reqwest::multipart::Form::new())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        s.stored_files().await,
        stored,
        "nothing written for refused uploads"
    );
}

#[tokio::test]
async fn a_store_that_refuses_writes_answers_upload_failed() {
    // The disk store's own failure mode: a file in the way of a folder.
    let s = Server::start_on(Kind::Sqlite, "", &[]).await;
    let u = s.user(10);
    // Put a plain file where the uploads folder must go: every write under it fails.
    let uploads = s.data_dir().join("files/uploads");
    let _ = std::fs::remove_dir_all(&uploads);
    std::fs::File::create(&uploads)
        .unwrap()
        .write_all(b"in the way")
        .unwrap();
    assert_error(
        &s.upload(&u.key, png(8, 8), "a.png").await,
        502,
        "UPLOAD_FAILED",
    );
    assert_eq!(
        std::fs::read_dir(s.data_dir().join("files/.tmp"))
            .unwrap()
            .count(),
        0,
        "no partial file left"
    );
    // A store that cannot be used makes the node not ready.
    std::fs::remove_dir_all(s.data_dir().join("files/.tmp")).unwrap();
    let r = s.http.get(s.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_ne!(body["error"]["details"]["storage"], "ok", "{body}");
}

#[tokio::test]
async fn files_have_type_etag_and_ranges_and_keys_cannot_escape() {
    let s = Server::start("", &[]).await;
    let u = s.user(10);
    let bytes = png(50, 50);
    let url = s.upload_url(&u.key, bytes.clone(), "a.png").await;

    let r = s.http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/png");
    assert_eq!(
        r.headers()["content-length"],
        bytes.len().to_string().as_str()
    );
    assert_eq!(r.headers()["accept-ranges"], "bytes");
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    assert!(etag.starts_with('"'));
    assert_eq!(r.bytes().await.unwrap().to_vec(), bytes);

    let r = s
        .http
        .get(&url)
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    let r = s
        .http
        .get(&url)
        .header("Range", "bytes=10-19")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(
        r.headers()["content-range"],
        format!("bytes 10-19/{}", bytes.len()).as_str()
    );
    assert_eq!(r.bytes().await.unwrap().to_vec(), bytes[10..20].to_vec());
    let r = s
        .http
        .get(&url)
        .header("Range", "bytes=-5")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.bytes().await.unwrap().to_vec(),
        bytes[bytes.len() - 5..].to_vec()
    );
    let r = s
        .http
        .get(&url)
        .header("Range", format!("bytes={}-", bytes.len()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 416);
    let r = s.http.head(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);

    // A secret next to the store that an escaping key would reach.
    std::fs::create_dir_all(s.data_dir()).unwrap();
    std::fs::write(s.data_dir().join("secret.txt"), "secret").unwrap();
    for path in [
        "/files/../plume.db",
        "/files/..%2Fsecret.txt",
        "/files/uploads%2F..%2F..%2Fsecret.txt",
        "/files/%2e%2e/secret.txt",
        "/files//etc/passwd",
        "/files/%2Fetc%2Fpasswd",
        "/files/.tmp/x",
        "/files/uploads/../../secret.txt",
        "/files/",
        "/files/uploads/none.png",
    ] {
        // Send the path raw, as a hostile client would, without client-side normalising.
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", s.port))
            .await
            .unwrap();
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        stream
            .write_all(
                format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
            )
            .await
            .unwrap();
        let mut reply = String::new();
        stream.read_to_string(&mut reply).await.unwrap();
        assert!(
            reply.starts_with("HTTP/1.1 404") || reply.starts_with("HTTP/1.1 400"),
            "{path}: {reply}"
        );
        assert!(
            !reply.contains("secret") && !reply.contains("SQLite"),
            "{path} leaked: {reply}"
        );
    }
}

#[tokio::test]
async fn a_result_that_lost_its_settle_leaves_no_file_behind() {
    let s = Server::start("", &[("RUST_LOG", "info")]).await;
    let u = s.user(100);
    let before = s.stored_files().await;
    let (_, created) = s.create(&u.key, &banana("sleep=1500 slow kite")).await;
    let id = created["data"]["id"].as_i64().unwrap();
    // Cancelled while the executor runs: it still stores its image, then loses the settle.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while s.get(&u.key, &format!("/api/open/tasks/{id}")).await.1["data"]["status"] != 2 {
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, body) = s
        .post(&u.key, &format!("/api/open/tasks/{id}/cancel"), &json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let log = s.log();
    assert!(
        log.contains("settled elsewhere") && log.contains("orphan result file deleted"),
        "the executor stored its image after the cancel, and it was collected: {log}"
    );
    assert_eq!(
        s.stored_files().await,
        before,
        "the lost result's file was collected"
    );

    // A task that succeeds keeps exactly its result.
    let (_, created) = s.create(&u.key, &banana("a kite")).await;
    let id = created["data"]["id"].as_i64().unwrap();
    let done = s.wait_terminal(&u.key, id, Duration::from_secs(30)).await;
    assert_eq!(done["status"], 3);
    assert_eq!(s.stored_files().await, before + 1);
}
