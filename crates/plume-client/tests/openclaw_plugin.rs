//! The Plume provider plugin (`integrations/openclaw-plugin`) in the real OpenClaw, offline:
//! installed from its packed `.tgz` the way users install it, then driven by
//! `openclaw infer image|video` against a real `plume-server` (the scripted executor for the
//! generating categories, the real local model for remove-bg), and by an agent on a
//! scripted model that calls the `image_generate` tool in a Telegram chat. Run by
//! `scripts/test-openclaw`.

#[path = "../../plume-testkit/tests/common/mod.rs"]
mod common;
mod openclaw;

use common::*;
use openclaw::OpenClaw;
use plume_testkit::fake_model::{ModelRequest, Reply, ScriptedModel};
use plume_testkit::fake_telegram::FakeTelegram;
use serde_json::{json, Value};
use std::time::Duration;

/// A server whose generating categories are scripted and whose remove-bg is the real model.
async fn server() -> Server {
    let models = models_dir();
    Server::start(
        "[queue]\npoll_interval_ms = 100\n",
        &[
            (
                "PLUME_TEST_EXECUTORS",
                "Banana2,BananaPro,seedream,veo,seedance2",
            ),
            ("PLUME_MODELS_DIR", models.to_str().unwrap()),
        ],
    )
    .await
}

/// OpenClaw with the plugin installed and configured for `server` and `key`.
fn openclaw_with_plugin(telegram_root: &str, server: &Server, key: &str, extra: Value) -> OpenClaw {
    let oc = OpenClaw::new(telegram_root);
    oc.install_plume_plugin();
    let mut config = json!({
        "plugins": {"entries": {"plume": {"enabled": true, "config": {"apiBase": server.base, "apiKey": key}}}},
    });
    if let Value::Object(extra) = extra {
        for (k, v) in extra {
            config[k] = v;
        }
    }
    oc.write_config_with(telegram_root, None, config);
    oc
}

/// OpenClaw with the plugin, its gateway running an agent on `model` whose image model is
/// `plume/Banana2`, open to Telegram direct messages.
fn agent_with_plugin(
    telegram: &FakeTelegram,
    server: &Server,
    key: &str,
    model: &ScriptedModel,
) -> OpenClaw {
    let mut oc = openclaw_with_plugin(
        &telegram.api_root,
        server,
        key,
        json!({
            "models": {"providers": {"scripted": model.provider_config("scripted-1")}},
            "agents": {"defaults": {"model": {"primary": "scripted/scripted-1"},
                                    "mediaModels": {"image": {"primary": "plume/Banana2"}}}},
            "channels": {"telegram": {"dmPolicy": "open", "allowFrom": ["*"]}},
        }),
    );
    oc.start_gateway(telegram);
    oc
}

/// Waits for a picture in chat 4242, then checks that it came once (nothing more within
/// 8 s) and is the image Plume task `task_id` made.
async fn assert_one_photo(
    telegram: &FakeTelegram,
    server: &Server,
    key: &str,
    task_id: i64,
    oc: &OpenClaw,
) {
    let photos = || -> Vec<_> {
        telegram
            .sent()
            .into_iter()
            .filter(|m| m.file.is_some())
            .collect()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(180);
    while photos().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "no picture: {:?}\npoller.log:\n{}\n{}",
            telegram.sent(),
            oc.poller_log(),
            oc.gateway_log()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    tokio::time::sleep(Duration::from_secs(8)).await;
    let photos = photos();
    assert_eq!(photos.len(), 1, "once: {photos:?}");
    assert_eq!(photos[0].chat_id, "4242");
    let made = server.result_bytes(key, task_id).await;
    assert_eq!(photos[0].file.as_ref().unwrap().1, made);
}

async fn task_count(server: &Server, key: &str) -> usize {
    let mut n = 0;
    for id in 1..50 {
        if server.get(key, &format!("/api/open/tasks/{id}")).await.0 == 200 {
            n = id;
        }
    }
    n as usize
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the real openclaw CLI and the packed plugin: run scripts/test-openclaw"]
async fn infer_generates_edits_and_animates_through_plume() {
    let server = server().await;
    let user = server.user(1_000);
    let telegram = FakeTelegram::start().await;
    let oc = openclaw_with_plugin(&telegram.api_root, &server, &user.key, json!({}));
    let out = |name: &str| oc.state().join(format!("media/{name}"));
    std::fs::create_dir_all(oc.state().join("media")).unwrap();

    // An image: the bytes Plume made, one task, charged once.
    let png = out("kite.png");
    let (ok, json, log) = oc.run_json(&[
        "infer",
        "image",
        "generate",
        "--model",
        "plume/Banana2",
        "--prompt",
        "a red kite",
        "--aspect-ratio",
        "16:9",
        "--json",
        "--output",
        png.to_str().unwrap(),
    ]);
    assert!(ok, "{log}");
    assert_eq!(json["provider"], "plume", "{json}");
    let task = server.get(&user.key, "/api/open/tasks/1").await.1["data"].clone();
    assert_eq!(task["status"], 3, "{task}");
    assert_eq!(
        task["content"]["generationConfig"]["imageConfig"]["aspectRatio"],
        "16:9"
    );
    let url = task["result"]["imageUrl"].as_str().unwrap();
    let made = server.download(url).await;
    assert_eq!(std::fs::read(&png).unwrap(), made);
    let cost = task["credits_cost"].as_i64().unwrap();
    let balance = server.balance(&user);
    assert_eq!(balance["balance"], 1_000 - cost, "{balance}");
    assert_ledger_adds_up(&balance, true);

    // remove-bg as an edit model: the real cut-out of the file given.
    let photo = models_dir().join("test-photos/people.jpg");
    let cut = out("cut.png");
    let (ok, _, log) = oc.run_json(&[
        "infer",
        "image",
        "edit",
        "--model",
        "plume/remove-bg",
        "--file",
        photo.to_str().unwrap(),
        "--prompt",
        "remove the background",
        "--json",
        "--output",
        cut.to_str().unwrap(),
    ]);
    assert!(ok, "{log}");
    let cut = image::open(&cut).unwrap().to_rgba8();
    let original = image::open(&photo).unwrap();
    assert_eq!(cut.dimensions(), (original.width(), original.height()));
    assert!(cut.pixels().any(|p| p[3] == 0) && cut.pixels().any(|p| p[3] == 255));

    // remove-bg with no image, and a model Plume does not have: refused, no task made.
    let tasks = task_count(&server, &user.key).await;
    let (ok, _, log) = oc.run_json(&[
        "infer",
        "image",
        "generate",
        "--model",
        "plume/remove-bg",
        "--prompt",
        "remove it",
        "--json",
    ]);
    assert!(!ok && log.contains("exactly 1 input image"), "{log}");
    let (ok, _, log) = oc.run_json(&[
        "infer",
        "image",
        "generate",
        "--model",
        "plume/dall-e",
        "--prompt",
        "x",
        "--json",
    ]);
    assert!(!ok && log.contains("no image model dall-e"), "{log}");
    assert_eq!(task_count(&server, &user.key).await, tasks);

    // A video: the bytes Plume stored.
    let mp4 = out("waves.mp4");
    let (ok, _, log) = oc.run_json(&[
        "infer",
        "video",
        "generate",
        "--model",
        "plume/veo",
        "--prompt",
        "waves at dusk",
        "--duration",
        "4",
        "--json",
        "--output",
        mp4.to_str().unwrap(),
    ]);
    assert!(ok, "{log}");
    let id = task_count(&server, &user.key).await;
    let video = server
        .get(&user.key, &format!("/api/open/tasks/{id}"))
        .await
        .1["data"]
        .clone();
    assert_eq!(
        video["content"]["videoConfig"]["durationSeconds"], 4,
        "{video}"
    );
    let url = video["result"]["parts"][0]["videoUrl"].as_str().unwrap();
    let stored = server.download(url).await;
    assert_eq!(std::fs::read(&mp4).unwrap(), stored);

    // A call that runs out of time leaves its task cancelled and refunded.
    let (ok, _, log) = oc.run_json(&[
        "infer",
        "image",
        "generate",
        "--model",
        "plume/Banana2",
        "--prompt",
        "slow sleep=120000",
        "--timeout-ms",
        "5000",
        "--json",
    ]);
    assert!(!ok, "{log}");
    let id = task_count(&server, &user.key).await;
    let slow = server
        .get(&user.key, &format!("/api/open/tasks/{id}"))
        .await
        .1["data"]
        .clone();
    assert_eq!(slow["status"], 6, "cancelled: {slow}\n{log}");
    let balance = server.balance(&user);
    assert_ledger_adds_up(&balance, true);
    assert_eq!(
        balance["ledger"]["reserve"].as_i64().unwrap()
            - balance["ledger"]["capture"].as_i64().unwrap(),
        balance["ledger"]["refund"].as_i64().unwrap()
    );
}

/// An agent on a scripted model calls `image_generate` (through OpenClaw's tool search
/// wrapper) with `plume/Banana2`: OpenClaw runs the call as a background task, and the image
/// reaches the Telegram chat once.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the real openclaw CLI and the packed plugin: run scripts/test-openclaw"]
async fn an_agents_image_generate_call_reaches_the_chat_once() {
    let server = server().await;
    let user = server.user(1_000);
    let telegram = FakeTelegram::start().await;
    // Draws what it is asked through image_generate; once OpenClaw reports a failed
    // generation back to it, passes the reason on.
    let model = ScriptedModel::start(|req: &ModelRequest| {
        let prompt = match req.user_text() {
            t if t.contains("draw a red kite") => "a red kite in a blue sky",
            t if t.contains("draw a forbidden kite") => "a kite fail=the_prompt_was_refused",
            _ => "",
        };
        if req.body.to_string().contains("the prompt was refused") {
            Reply::Text("Sorry, Plume could not draw it: the prompt was refused.".into())
        } else if req.tool_results().is_empty() && !prompt.is_empty() {
            Reply::Tool {
                name: "tool_call".into(),
                arguments: json!({"id": "image_generate", "args": {"prompt": prompt, "model": "plume/Banana2"}}),
            }
        } else {
            Reply::Text("🎨 Drawing it now.".into())
        }
    })
    .await;
    let oc = agent_with_plugin(&telegram, &server, &user.key, &model);
    telegram.user_says(4242, "draw a red kite");
    assert_one_photo(&telegram, &server, &user.key, 1, &oc).await;
    let task = server.get(&user.key, "/api/open/tasks/1").await.1["data"].clone();
    assert_eq!(task["status"], 3, "{task}");
    assert_eq!(task_count(&server, &user.key).await, 1, "one Plume task");

    // A generation Plume refuses: the agent hears Plume's reason and tells the chat.
    telegram.user_says(4242, "draw a forbidden kite");
    let deadline = std::time::Instant::now() + Duration::from_secs(180);
    while !telegram
        .sent()
        .iter()
        .any(|m| m.text.contains("the prompt was refused"))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no reason: {:?}\nreplies {:?}\n{}",
            telegram.sent(),
            model.replies(),
            oc.gateway_log()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let failed = server.get(&user.key, "/api/open/tasks/2").await.1["data"].clone();
    assert_eq!(failed["status"], 4, "{failed}");
    let balance = server.balance(&user);
    assert_ledger_adds_up(&balance, true);
    assert_eq!(
        balance["balance"],
        1_000 - task["credits_cost"].as_i64().unwrap()
    );
}

/// The gateway dies while an `image_generate` call waits: OpenClaw will never finish that
/// call, but the plugin's journal names the Plume task, and the next `plume` command adopts
/// it (OpenClaw's task record names the chat): the picture reaches the chat once.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the real openclaw CLI and the packed plugin: run scripts/test-openclaw"]
async fn a_result_survives_a_gateway_killed_mid_call() {
    let server = server().await;
    let user = server.user(1_000);
    let telegram = FakeTelegram::start().await;
    let model = ScriptedModel::start(|req: &ModelRequest| {
        if req.tool_results().is_empty() && req.user_text().contains("draw a slow kite") {
            Reply::Tool {
                name: "tool_call".into(),
                arguments: json!({"id": "image_generate", "args": {"prompt": "a slow kite sleep=15000", "model": "plume/Banana2"}}),
            }
        } else {
            Reply::Text("🎨 Drawing it now.".into())
        }
    })
    .await;
    let mut oc = agent_with_plugin(&telegram, &server, &user.key, &model);
    telegram.user_says(4242, "draw a slow kite");
    let journal = oc.state().join("media/plume/plugin-tasks/1.json");
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while !journal.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the call never started: {:?}\n{}",
            model.replies(),
            oc.gateway_log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    oc.stop_gateway(); // kill -9, mid-call
    oc.start_gateway(&telegram);
    let jobs = oc.plume(&["jobs"]);
    assert_eq!(jobs["jobs"][0]["task_id"], 1, "adopted: {jobs}");
    assert_eq!(jobs["jobs"][0]["target"], "telegram:4242", "{jobs}");
    assert!(!journal.exists());
    assert_one_photo(&telegram, &server, &user.key, 1, &oc).await;
    assert_eq!(task_count(&server, &user.key).await, 1, "one Plume task");
}
