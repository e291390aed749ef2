//! The portal in a real browser (`scripts/test-browser`): starts a server with the scripted
//! executor, makes the operator the documented way, then runs `browser/portal.mjs` in Node
//! with Playwright driving Debian's Chromium. Ignored by default: it needs Chromium and
//! playwright-core, which the script installs.

mod common;
use common::*;
use std::path::PathBuf;
use std::process::Command;

#[tokio::test]
#[ignore = "needs Chromium and playwright-core: run scripts/test-browser"]
async fn a_newcomer_goes_from_nothing_to_a_result_in_the_browser() {
    let playwright = std::env::var("PLUME_TEST_PLAYWRIGHT")
        .expect("PLUME_TEST_PLAYWRIGHT names node_modules with playwright-core");
    let shots = PathBuf::from(
        std::env::var("PLUME_TEST_SHOTS").unwrap_or_else(|_| "target/browser/shots".into()),
    );
    std::fs::create_dir_all(&shots).unwrap();
    let plume = test_server_bin().with_file_name("plume");
    assert!(
        plume.exists(),
        "{} is missing: cargo build -p plume-client",
        plume.display()
    );

    let s = Server::start("[queue]\ndefault_concurrency = 2\n", &[]).await;
    let (ops, ok) = s.admin_with_input(
        &["create-user", "--email", "ops@example.com", "--admin"],
        "operator passphrase\n",
    );
    assert!(ok, "{ops}");

    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser/portal.mjs");
    let out = tokio::task::spawn_blocking({
        let base = s.base.clone();
        move || {
            Command::new("node")
                .arg(script)
                .env("BASE", base)
                .env("OPS_EMAIL", "ops@example.com")
                .env("OPS_PASSWORD", "operator passphrase")
                .env("PLUME_BIN", plume)
                .env("PLAYWRIGHT_DIR", playwright)
                .env("SHOTS", shots)
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("browser flow: ok"),
        "the browser flow failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}\n--- server log\n{}",
        s.log()
    );
}
