//! Image URLs in task content: the SSRF rules of API.md against a real HTTPS server on
//! loopback (a self-signed certificate the server is told to trust).

mod common;
use common::*;
use serde_json::json;
use std::sync::atomic::Ordering;
use std::time::Duration;

fn remove_bg(url: &str) -> serde_json::Value {
    json!({"category": "remove-bg", "content": {"imageUrls": [url]}})
}

#[tokio::test]
async fn private_loopback_and_link_local_addresses_are_refused() {
    let tmp = TempDir::new("plume-tls");
    let https =
        plume_testkit::tls::start(&tmp.0, png(20, 10).into(), "https://10.0.0.1/x.png".into())
            .await
            .unwrap();
    let config = format!(
        "[fetch]\nallow_hosts = [\"localhost\", \"127.0.0.1\", \"10.0.0.1\", \"169.254.169.254\", \"192.168.1.10\", \"::1\"]\nextra_root_certs = [{:?}]\n",
        https.cert_path
    );
    let s = Server::start(&config, &[]).await;
    let u = s.user(100);
    for (url, why) in [
        ("https://127.0.0.1/x.png", "loopback"),
        ("https://[::1]/x.png", "loopback"),
        ("https://10.0.0.1/x.png", "private"),
        ("https://192.168.1.10/x.png", "private"),
        ("https://169.254.169.254/latest/meta-data", "link-local"),
        ("http://localhost/x.png", "only https"),
        ("https://evil.example.com/x.png", "not allow-listed"),
        ("https://user:pw@localhost/x.png", "not a valid URL"),
    ] {
        let r = s.create(&u.key, &remove_bg(url)).await;
        assert_error(&r, 400, "VALIDATION_ERROR");
        let detail = r.1["message"].as_str().unwrap_or_default();
        assert!(detail.contains(why), "{url}: {detail:?} should say {why}");
    }
    // A name that resolves to loopback passes the create-time check and is refused at fetch,
    // before any connection: the task fails with the reason and is refunded.
    let id = s
        .create(
            &u.key,
            &remove_bg(&format!("https://localhost:{}/image.png", https.port)),
        )
        .await
        .1["data"]["id"]
        .as_i64()
        .unwrap();
    let t = s.wait_terminal(&u.key, id, Duration::from_secs(20)).await;
    assert_eq!(t["status"], 4, "{t}");
    assert!(
        t["result"].as_str().unwrap().contains("loopback address"),
        "{t}"
    );
    assert_eq!(
        https.hits.load(Ordering::SeqCst),
        0,
        "nothing reached the server"
    );
    assert_eq!(s.balance(&u)["balance"], 100);
}

#[tokio::test]
async fn allow_listed_hosts_are_fetched_and_redirects_rechecked() {
    let tmp = TempDir::new("plume-tls");
    let https =
        plume_testkit::tls::start(&tmp.0, png(20, 10).into(), "https://10.0.0.1/x.png".into())
            .await
            .unwrap();
    let config = format!(
        "[fetch]\nallow_hosts = [\"localhost\", \"10.0.0.1\"]\nallow_private_networks = [\"127.0.0.0/8\", \"::1/128\"]\nextra_root_certs = [{:?}]\n",
        https.cert_path
    );
    let s = Server::start(&config, &[]).await;
    let u = s.user(100);
    let base = format!("https://localhost:{}", https.port);

    let id = s
        .create(&u.key, &remove_bg(&format!("{base}/image.png")))
        .await
        .1["data"]["id"]
        .as_i64()
        .unwrap();
    let t = s.wait_terminal(&u.key, id, Duration::from_secs(20)).await;
    assert_eq!(t["status"], 3, "{t}\n{}", s.log());
    assert_eq!(
        (
            t["result"]["width"].as_u64(),
            t["result"]["height"].as_u64()
        ),
        (Some(20), Some(10))
    );
    assert_eq!(https.hits.load(Ordering::SeqCst), 1);

    // The redirect's target is private: refused when it is checked, never connected to.
    let id = s
        .create(&u.key, &remove_bg(&format!("{base}/redirect")))
        .await
        .1["data"]["id"]
        .as_i64()
        .unwrap();
    let t = s.wait_terminal(&u.key, id, Duration::from_secs(20)).await;
    assert_eq!(t["status"], 4, "{t}");
    assert!(
        t["result"]
            .as_str()
            .unwrap()
            .contains("10.0.0.1 is a private address"),
        "{t}"
    );

    let id = s
        .create(&u.key, &remove_bg(&format!("{base}/missing.png")))
        .await
        .1["data"]["id"]
        .as_i64()
        .unwrap();
    let t = s.wait_terminal(&u.key, id, Duration::from_secs(20)).await;
    assert_eq!(t["status"], 4);
    assert!(t["result"].as_str().unwrap().contains("404"), "{t}");
    let b = s.balance(&u);
    assert_eq!(b["ledger"]["capture"], 5);
    assert_eq!(b["ledger"]["refund"], 10);
}

#[tokio::test]
async fn a_remote_image_over_the_upload_limit_is_refused_while_downloading() {
    let tmp = TempDir::new("plume-tls");
    // Noise does not compress: tens of kilobytes of PNG.
    let noise = image::RgbImage::from_fn(200, 200, |x, y| {
        let h =
            (x.wrapping_mul(2_654_435_761) ^ y.wrapping_mul(40_503)).wrapping_mul(2_246_822_519);
        image::Rgb([(h >> 8) as u8, (h >> 16) as u8, (h >> 24) as u8])
    });
    let mut big = std::io::Cursor::new(Vec::new());
    noise.write_to(&mut big, image::ImageFormat::Png).unwrap();
    let big = big.into_inner();
    assert!(big.len() > 4096);
    let https = plume_testkit::tls::start(&tmp.0, big.into(), "https://10.0.0.1/x.png".into())
        .await
        .unwrap();
    let config = format!(
        "[limits]\nupload_max_bytes = 4096\n[fetch]\nallow_hosts = [\"localhost\"]\nallow_private_networks = [\"127.0.0.0/8\", \"::1/128\"]\nextra_root_certs = [{:?}]\n",
        https.cert_path
    );
    let s = Server::start(&config, &[]).await;
    let u = s.user(100);
    let url = format!("https://localhost:{}/image.png", https.port);
    let id = s.create(&u.key, &remove_bg(&url)).await.1["data"]["id"]
        .as_i64()
        .unwrap();
    let t = s.wait_terminal(&u.key, id, Duration::from_secs(20)).await;
    assert_eq!(t["status"], 4, "{t}");
    assert!(
        t["result"]
            .as_str()
            .unwrap()
            .contains("larger than 4096 bytes"),
        "{t}"
    );
    assert_eq!(s.balance(&u)["balance"], 100, "refunded");
}
