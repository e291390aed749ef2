//! The `plume-server` command line as an operator meets it.

use serde_json::Value;
use std::process::Command;

fn plume_server() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_plume-server"));
    cmd.env_remove("PLUME_CONFIG")
        .env_remove("PLUME_DATA_DIR")
        .env_remove("PLUME_ADMIN_TOKEN");
    cmd
}

fn temp_dir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("plume-cli-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn help_teaches_the_first_steps() {
    let out = plume_server().arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "serve",
        "admin",
        "create-user",
        "create-key",
        "topup",
        "PLUME_DATA_DIR",
    ] {
        assert!(
            text.contains(needle),
            "--help does not mention {needle}:\n{text}"
        );
    }
}

#[test]
fn admin_commands_print_one_json_object() {
    let dir = temp_dir("admin");
    let run = |args: &[&str]| {
        let out = plume_server()
            .arg("admin")
            .args(args)
            .env("PLUME_DATA_DIR", &dir)
            .output()
            .unwrap();
        let json: Value =
            serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{:?}", out));
        (json, out.status.success())
    };
    let (user, ok) = run(&["create-user", "--name", "ops"]);
    assert!(ok, "{user}");
    let id = user["user_id"].as_str().unwrap();
    let (key, ok) = run(&["create-key", "--user", id]);
    assert!(ok && key["key"].as_str().unwrap().starts_with("plume_sk_"));
    let (balance, ok) = run(&["balance", "--user", id]);
    assert!(!ok);
    assert_eq!(balance["code"], "CREDITS_ACCOUNT_NOT_FOUND");
    let (topped, ok) = run(&["topup", "--user", id, "--amount", "25"]);
    assert!(ok);
    assert_eq!(topped["balance"], 25);
    let (bad, ok) = run(&["topup", "--user", id, "--amount", "-3"]);
    assert!(!ok);
    assert_eq!(bad["code"], "VALIDATION_ERROR");
    let (missing, ok) = run(&["create-key", "--user", "999"]);
    assert!(!ok);
    assert_eq!(missing["code"], "NOT_FOUND");
    let (bad, ok) = run(&["tasks", "--status", "finished"]);
    assert!(!ok);
    assert!(bad["error"]["details"]["status"].is_string());
    let (disabled, ok) = run(&["disable-key", "--key", key["key"].as_str().unwrap()]);
    assert!(ok, "{disabled}");
    // The database stores no key in the clear.
    let db = std::fs::read(dir.join("plume.db")).unwrap();
    let key_text = key["key"].as_str().unwrap().as_bytes();
    assert!(!db.windows(key_text.len()).any(|w| w == key_text));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_bad_config_file_is_named_in_the_error() {
    let dir = temp_dir("config");
    let file = dir.join("plume.toml");
    std::fs::write(&file, "listen = \"nowhere\"\n").unwrap();
    let out = plume_server()
        .args(["serve", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("listen address") && err.contains("nowhere"),
        "{err}"
    );
    std::fs::write(&file, "[queue]\nlease = 3\n").unwrap();
    let out = plume_server()
        .args(["serve", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("plume.toml") && err.contains("lease"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
