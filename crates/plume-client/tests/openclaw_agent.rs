//! Whole agent turns through the real OpenClaw, offline: a user message arrives through the
//! Telegram fake, the gateway runs the agent on a scripted OpenAI-compatible model on
//! loopback, the model calls OpenClaw's `read` and `exec` tools with what SKILL.md prescribes,
//! and the poller delivers the result to the same chat. Run by `scripts/test-openclaw`.
//!
//! The scripted model proves the wiring (the skill reaches the prompt and is readable where
//! OpenClaw put it, the key reaches the commands from `skills.entries`, the attachment path
//! OpenClaw hands the agent works with `plume transfer`, the chat target is in the context,
//! the turn ends at `register`, delivery happens once and after the turn). It says nothing
//! about a real model's judgement: which category or words a model would choose.

#[path = "../../plume-testkit/tests/common/mod.rs"]
mod common;
mod openclaw;

use common::*;
use openclaw::OpenClaw;
use plume_testkit::fake_feishu::FakeFeishu;
use plume_testkit::fake_model::{ModelRequest, Reply, ScriptedModel};
use plume_testkit::fake_telegram::{FakeTelegram, Sent};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// At most this many tool calls in one turn: a script that went wrong ends the turn instead
/// of looping until OpenClaw's turn timeout.
const MAX_TOOL_CALLS: usize = 8;
const CHAT: i64 = 4242;

/// The text between `start` and the next `end` after it.
fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = text.find(start)? + start.len();
    let len = text[from..].find(end)?;
    Some(&text[from..from + len])
}

/// The value of the first `"<key>":"<prefix>…"` in OpenClaw's conversation info, which is
/// quoted as data inside a message (so its quotes may arrive escaped).
fn context_value(body: &str, key: &str, prefix: &str) -> Option<String> {
    body.match_indices(&format!("{key}\\")).find_map(|(i, _)| {
        let rest = body[i + key.len()..].trim_start_matches(['\\', '"', ':', ' ']);
        let id: String = rest
            .strip_prefix(prefix)?
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect();
        (!id.is_empty()).then(|| format!("{prefix}{id}"))
    })
}

/// `--channel` and `--target` as SKILL.md's table chooses them: a Telegram chat id, or a
/// Feishu sender whose id starts `ou_`.
fn chat_target(body: &str) -> Option<(&'static str, String)> {
    if let Some(chat) = context_value(body, "chat_id", "telegram:") {
        return Some(("telegram", chat));
    }
    context_value(body, "id", "ou_").map(|sender| ("feishu", sender))
}

/// A model that follows SKILL.md, scripted: read the skill at the location the prompt lists,
/// `plume check-config`, upload the attached photo if there is one, `plume create`,
/// `plume register` to the chat the context names, then a one-line reply. Each step is
/// decided from the tool results so far, as a model would.
fn follow_the_skill(req: &ModelRequest) -> Reply {
    let results = req.tool_results();
    if results.len() >= MAX_TOOL_CALLS {
        return Reply::Text("Sorry, something went wrong.".into());
    }
    let user = req.user_text();
    let system = req.system();
    let Some(skill) = between(&system, "<name>plume-image</name>", "</location>")
        .and_then(|s| s.split("<location>").nth(1))
    else {
        return Reply::Text("I cannot draw here.".into());
    };
    let attachment = between(&user, "[media attached: ", " (");
    let Some((channel, target)) = chat_target(&req.body.to_string()) else {
        return Reply::Text("Which chat is this?".into());
    };
    let step = results.len();
    match step {
        0 => {
            return Reply::Tool {
                name: "read".into(),
                arguments: json!({"path": skill}),
            }
        }
        1 => return Reply::exec("plume check-config"),
        _ => {}
    }
    if results[1].trim() != "CONFIGURED" {
        return Reply::Text("Plume is not configured yet.".into());
    }
    let mut next = 2;
    let mut image_url = None;
    if let Some(path) = attachment {
        if step == next {
            return Reply::exec(format!("plume transfer --file '{path}'"));
        }
        let uploaded: Value = serde_json::from_str(results[next].trim()).unwrap_or_default();
        match uploaded["image_url"].as_str() {
            Some(url) => image_url = Some(url.to_string()),
            None => return Reply::Text(format!("The upload failed: {}", results[next])),
        }
        next += 1;
    }
    if step == next {
        return Reply::exec(match (&image_url, user.contains("remove the background")) {
            (Some(url), true) => format!("plume create --category remove-bg --image-url '{url}'"),
            _ => "plume create --category Banana2 --prompt 'a red kite in a blue sky'".into(),
        });
    }
    let created: Value = serde_json::from_str(results[next].trim()).unwrap_or_default();
    let Some(task) = created["task_id"].as_i64() else {
        return Reply::Text(format!("It did not work: {}", created["error"]));
    };
    next += 1;
    if step == next {
        return Reply::exec(format!(
            "plume register --task-id {task} --channel {channel} --target {target}"
        ));
    }
    Reply::Text(format!(
        "🎨 On it — task #{task}. I'll send the picture here when it's ready."
    ))
}

/// The plume-server, a Telegram fake, the scripted model and a gateway whose agent runs on it,
/// with the skill installed and the key only in `skills.entries."plume-image"`.
struct AgentWorld {
    server: Server,
    user: User,
    telegram: FakeTelegram,
    model: ScriptedModel,
    oc: OpenClaw,
}

impl AgentWorld {
    /// Users reach the agent through the Telegram fake.
    async fn start(server: Server) -> AgentWorld {
        let telegram = FakeTelegram::start().await;
        let oc = OpenClaw::new(&telegram.api_root);
        let channels = json!({"telegram": {"dmPolicy": "open", "allowFrom": ["*"]}});
        AgentWorld::start_with(server, telegram, oc, channels).await
    }

    /// `oc` configured with `channels` and the scripted model, the skill installed, and its
    /// gateway running (the Telegram fake is there in any case: the gateway is ready once
    /// the Telegram channel polls).
    async fn start_with(
        server: Server,
        telegram: FakeTelegram,
        mut oc: OpenClaw,
        channels: Value,
    ) -> AgentWorld {
        let user = server.user(10_000);
        let model = ScriptedModel::start(follow_the_skill).await;
        oc.install_skill();
        oc.write_config_with(
            &telegram.api_root,
            Some((&user.key, &server.base)),
            json!({
                "models": {"providers": {"scripted": model.provider_config("scripted-1")}},
                "agents": {"defaults": {"model": {"primary": "scripted/scripted-1"}}},
                "channels": channels,
            }),
        );
        oc.start_gateway(&telegram);
        AgentWorld {
            server,
            user,
            telegram,
            model,
            oc,
        }
    }

    /// Waits until the model has answered a turn with text, and returns every reply so far.
    fn wait_turn_end(&self) -> Vec<Reply> {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let replies = self.model.replies();
            if matches!(replies.last(), Some(Reply::Text(_))) {
                return replies;
            }
            assert!(
                Instant::now() < deadline,
                "the turn did not end; replies {replies:?}\ngateway log:\n{}",
                self.oc.gateway_log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The messages sent to the chat other than OpenClaw's "Working" progress line.
    fn chat(&self) -> Vec<Sent> {
        self.telegram
            .sent()
            .into_iter()
            .filter(|m| m.chat_id == CHAT.to_string() && !m.text.contains("Working"))
            .collect()
    }

    /// Waits for `n` chat messages (progress lines aside).
    fn wait_chat(&self, n: usize) -> Vec<Sent> {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let chat = self.chat();
            if chat.len() >= n {
                return chat;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {n} chat messages: {chat:?}\npoller.log:\n{}",
                chat.len(),
                self.oc.poller_log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The commands the agent ran through `exec`, in order.
    fn commands(replies: &[Reply]) -> Vec<String> {
        replies
            .iter()
            .filter_map(|r| match r {
                Reply::Tool { name, arguments } if name == "exec" => {
                    arguments["command"].as_str().map(String::from)
                }
                _ => None,
            })
            .collect()
    }

    async fn result_bytes(&self, task: i64) -> Vec<u8> {
        self.server.result_bytes(&self.user.key, task).await
    }
}

fn task_id_of(reply: &Reply) -> i64 {
    let Reply::Text(text) = reply else {
        panic!("{reply:?}")
    };
    between(text, "task #", ".").unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the real openclaw CLI: run scripts/test-openclaw"]
async fn a_chat_message_becomes_a_task_and_the_picture_comes_back_once() {
    let server = Server::start("[queue]\npoll_interval_ms = 100\n", &[]).await;
    let world = AgentWorld::start(server).await;
    world.telegram.user_says(CHAT, "draw a red kite");
    let replies = world.wait_turn_end();

    // The model saw the skill in its prompt and read it where OpenClaw installed it.
    let requests = world.model.requests();
    assert!(requests[0].system().contains("<name>plume-image</name>"));
    assert!(requests[0].user_text().contains("draw a red kite"));
    let read = &requests[1].tool_results()[0];
    assert!(read.contains("create → register → reply → end"), "{read}");
    // The key came from skills.entries (the gateway's environment has none), and the
    // turn ran exactly what the skill prescribes, ending right after register.
    let commands = AgentWorld::commands(&replies);
    assert_eq!(commands.len(), 3, "{commands:?}");
    assert_eq!(commands[0], "plume check-config");
    assert!(commands[1].starts_with("plume create --category Banana2"));
    let task = task_id_of(replies.last().unwrap());
    assert_eq!(
        commands[2],
        format!("plume register --task-id {task} --channel telegram --target telegram:{CHAT}")
    );
    let last_results = requests.last().unwrap().tool_results();
    let registered: Value = serde_json::from_str(last_results.last().unwrap()).unwrap();
    assert_eq!(registered["success"], true, "{registered}");
    let (status, _) = world
        .server
        .get(&world.user.key, &format!("/api/open/tasks/{task}"))
        .await;
    assert_eq!(status, 200, "the task belongs to the configured key");

    // The reply first, then the picture, once, byte-identical to the result.
    let chat = world.wait_chat(2);
    assert_eq!(chat[0].method, "sendMessage");
    assert!(chat[0].text.contains(&format!("task #{task}")), "{chat:?}");
    assert_eq!(chat[1].method, "sendPhoto", "{chat:?}");
    assert_eq!(
        chat[1].file.as_ref().unwrap().1,
        world.result_bytes(task).await
    );
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert_eq!(world.chat().len(), 2, "delivered once: {:?}", world.chat());
    assert_eq!(
        world.model.requests().len(),
        requests.len(),
        "nothing ran after the turn"
    );
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the real openclaw CLI: run scripts/test-openclaw"]
async fn a_photo_with_a_caption_comes_back_cut_out() {
    // The scripted executor for Banana2 only: remove-bg runs the real local model.
    let models = models_dir();
    let server = Server::start(
        "[queue]\npoll_interval_ms = 100\n",
        &[
            ("PLUME_TEST_EXECUTORS", "Banana2"),
            ("PLUME_MODELS_DIR", models.to_str().unwrap()),
        ],
    )
    .await;
    let world = AgentWorld::start(server).await;
    let photo = std::fs::read(models.join("test-photos/people.jpg"))
        .expect("run scripts/setup-models --test-photos");
    world
        .telegram
        .user_sends_photo(CHAT, photo.clone(), "remove the background");
    let replies = world.wait_turn_end();
    let commands = AgentWorld::commands(&replies);
    assert_eq!(commands.len(), 4, "{commands:?}");
    assert!(commands[1].starts_with("plume transfer --file '"));
    assert!(
        commands[1].contains("/.openclaw/"),
        "OpenClaw's own media folder: {commands:?}"
    );
    assert!(commands[2].starts_with("plume create --category remove-bg --image-url"));
    let task = task_id_of(replies.last().unwrap());

    // What the agent uploaded is the user's photo.
    let requests = world.model.requests();
    let uploaded: Value =
        serde_json::from_str(&requests.last().unwrap().tool_results()[2]).unwrap();
    let url = uploaded["image_url"].as_str().unwrap();
    let stored = world.server.http.get(url).send().await.unwrap();
    let stored = image::load_from_memory(&stored.bytes().await.unwrap()).unwrap();
    let original = image::load_from_memory(&photo).unwrap();
    assert_eq!(
        (stored.width(), stored.height()),
        (original.width(), original.height())
    );

    // The cut-out (a PNG with transparency) reaches the same chat once, after the reply.
    let chat = world.wait_chat(2);
    assert!(chat[0].text.contains(&format!("task #{task}")), "{chat:?}");
    let (_, bytes) = chat[1].file.clone().expect("a media file");
    assert_eq!(bytes, world.result_bytes(task).await, "{chat:?}");
    let cut = image::load_from_memory(&bytes).unwrap().to_rgba8();
    assert!(
        cut.pixels().any(|p| p[3] == 0) && cut.pixels().any(|p| p[3] == 255),
        "a cut-out has clear and solid pixels"
    );
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert_eq!(world.chat().len(), 2, "delivered once: {:?}", world.chat());
}

/// The same turn from Feishu: a direct message reaches the plugin's webhook (signed as Feishu
/// signs), the agent registers the task for the sender's `ou_…` id, and the poller's
/// `openclaw message send --channel feishu` uploads the picture and sends it to that user.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the real openclaw CLI and the Feishu plugin: run scripts/test-openclaw"]
async fn a_feishu_message_becomes_a_task_and_the_picture_comes_back_once() {
    const ENCRYPT_KEY: &str = "feishu-test-encrypt-key";
    const SENDER: &str = "ou_ada0000000000000000000000000001";
    let server = Server::start("[queue]\npoll_interval_ms = 100\n", &[]).await;
    let certs = TempDir::new("plume-feishu-certs");
    let feishu = FakeFeishu::start(&certs.0).await.unwrap();
    let telegram = FakeTelegram::start().await;
    let mut oc = OpenClaw::with_feishu(&telegram.api_root);
    oc.set_env("NODE_EXTRA_CA_CERTS", feishu.ca_path.to_str().unwrap());
    let webhook_port = free_port();
    let channels = json!({"feishu": {
        "enabled": true, "appId": "cli_plume_test", "appSecret": "feishu-test-secret",
        "domain": feishu.domain, "connectionMode": "webhook",
        "verificationToken": "feishu-test-token", "encryptKey": ENCRYPT_KEY,
        "webhookHost": "127.0.0.1", "webhookPort": webhook_port,
        "dmPolicy": "open", "allowFrom": ["*"]
    }});
    let world = AgentWorld::start_with(server, telegram, oc, channels).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", webhook_port)).is_err() {
        assert!(Instant::now() < deadline, "{}", world.oc.gateway_log());
        std::thread::sleep(Duration::from_millis(200));
    }
    let (body, headers) =
        FakeFeishu::signed_event(ENCRYPT_KEY, SENDER, "om_in_1", "draw a red kite");
    let mut post = world
        .server
        .http
        .post(format!("http://127.0.0.1:{webhook_port}/feishu/events"))
        .body(body);
    for (name, value) in headers {
        post = post.header(name, value);
    }
    let answer = post.send().await.unwrap();
    assert_eq!(answer.status(), 200, "{:?}", answer.text().await);
    let replies = world.wait_turn_end();

    let commands = AgentWorld::commands(&replies);
    let task = task_id_of(replies.last().unwrap());
    assert_eq!(
        commands.last().unwrap(),
        &format!("plume register --task-id {task} --channel feishu --target {SENDER}"),
        "{commands:?}"
    );
    // The reply (a card) went to the chat during the turn; then the poller's caption and
    // picture to the sender, once, byte-identical to the result.
    let deadline = Instant::now() + Duration::from_secs(120);
    while !feishu.sent().iter().any(|m| m.msg_type == "image") {
        assert!(
            Instant::now() < deadline,
            "{:?}\n{:?}\npoller.log:\n{}",
            feishu.sent(),
            feishu.calls(),
            world.oc.poller_log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    tokio::time::sleep(Duration::from_secs(8)).await;
    let sent = feishu.sent();
    assert_eq!(sent.len(), 3, "{sent:?}");
    assert_eq!(sent[0].receive_id, "oc_direct_chat_with_ada");
    assert_eq!(sent[0].msg_type, "interactive");
    assert_eq!(sent[1].receive_id, SENDER);
    assert_eq!(sent[1].text(), "✅ image generation complete!");
    assert_eq!(sent[2].receive_id, SENDER);
    assert_eq!(sent[2].image, Some(world.result_bytes(task).await));
    assert_eq!(
        world.model.requests().len(),
        replies.len(),
        "nothing ran after the turn"
    );
}
