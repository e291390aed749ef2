//! Runs a real server process on a free loopback port with its own data folder, and talks
//! to it over HTTP. Everything started here is stopped on drop.
#![allow(dead_code)]

pub use plume_testkit::backends::{Backend, Kind, S3};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const ADMIN_TOKEN: &str = "test-operator-token";

/// `plume-test-server`: this package's binary, or (from another package's tests) the one
/// `cargo test --workspace` built beside the test executable.
pub fn test_server_bin() -> PathBuf {
    match option_env!("CARGO_BIN_EXE_plume-test-server") {
        Some(path) => PathBuf::from(path),
        None => {
            let exe = std::env::current_exe().unwrap();
            let bin = exe
                .parent()
                .and_then(|deps| deps.parent())
                .unwrap()
                .join("plume-test-server");
            assert!(
                bin.exists(),
                "{} is missing: run cargo test --workspace",
                bin.display()
            );
            bin
        }
    }
}

/// The real `plume-server` binary, built beside the test binary by `cargo test --workspace`.
pub fn real_server_bin() -> PathBuf {
    let bin = test_server_bin().with_file_name("plume-server");
    assert!(
        bin.exists(),
        "{} is missing: run cargo test --workspace",
        bin.display()
    );
    bin
}

/// The local models and sample photos `scripts/setup-models --test-photos` installs
/// (`PLUME_MODELS_DIR`, default `target/models`).
pub fn models_dir() -> PathBuf {
    std::env::var_os("PLUME_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/models"))
        .canonicalize()
        .expect("the models folder: run scripts/setup-models --test-photos")
}

pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let base = std::env::var_os("CARGO_TARGET_TMPDIR")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        let dir = base.join(format!("{tag}-{}-{}", std::process::id(), rand_suffix()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(Instant::now().elapsed().as_nanos());
    h.finish() & 0xffff_ffff
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub struct Server {
    pub bin: PathBuf,
    pub dir: TempDir,
    pub port: u16,
    pub base: String,
    pub config: String,
    pub env: Vec<(String, String)>,
    /// The database and file store (shared by the nodes of a multi-node test).
    pub backend: Arc<Backend>,
    child: Option<Child>,
    pub http: reqwest::Client,
}

impl Server {
    /// Starts `plume-test-server` with `config` (TOML) and extra environment.
    pub async fn start(config: &str, env: &[(&str, &str)]) -> Server {
        Server::start_bin(test_server_bin(), config, env).await
    }

    pub async fn start_bin(bin: PathBuf, config: &str, env: &[(&str, &str)]) -> Server {
        let backend = Arc::new(Backend::new(Kind::from_env()).await);
        Server::start_with(bin, backend, config, env).await
    }

    /// Starts `plume-test-server` on the given backends, whatever the matrix says (for tests of
    /// one backend's own behaviour).
    pub async fn start_on(kind: Kind, config: &str, env: &[(&str, &str)]) -> Server {
        let backend = Arc::new(Backend::new(kind).await);
        Server::start_with(test_server_bin(), backend, config, env).await
    }

    /// Starts another node on the same database and file store as `self`.
    pub async fn start_sibling(&self, config: &str, env: &[(&str, &str)]) -> Server {
        Server::start_with(self.bin.clone(), self.backend.clone(), config, env).await
    }

    pub async fn start_with(
        bin: PathBuf,
        backend: Arc<Backend>,
        config: &str,
        env: &[(&str, &str)],
    ) -> Server {
        let dir = TempDir::new("plume-e2e");
        let port = free_port();
        let mut server = Server {
            bin,
            base: format!("http://127.0.0.1:{port}"),
            port,
            config: config.to_string(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            dir,
            backend,
            child: None,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
        };
        server.spawn().await;
        server
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.0.join("data")
    }

    fn command(&self) -> Command {
        let config_path = self.dir.0.join("config.toml");
        std::fs::write(&config_path, &self.config).unwrap();
        let mut cmd = Command::new(&self.bin);
        cmd.current_dir(&self.dir.0)
            .env("PLUME_CONFIG", &config_path)
            .env("PLUME_LISTEN", format!("127.0.0.1:{}", self.port))
            .env("PLUME_DATA_DIR", self.data_dir())
            .env("PLUME_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("PLUME_TEST_UPSTREAM_DIR", &self.dir.0)
            .env("RUST_LOG", "warn");
        for (k, v) in self.backend.env.iter().chain(&self.env) {
            cmd.env(k, v);
        }
        cmd
    }

    pub async fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.0.join("server.log"))
            .unwrap();
        let child = self
            .command()
            .arg("serve")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("server starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = self.http.get(format!("{}/healthz", self.base)).send().await {
                if r.status().is_success() {
                    return;
                }
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("server exited with {status}: {}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "server did not start: {}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.0.join("server.log")).unwrap_or_default()
    }

    /// `kill -9`: no shutdown code runs.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// SIGTERM, then wait for the process to leave.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status()
            .unwrap();
        child.wait().unwrap()
    }

    /// Runs `admin ARGS` against this server's database and returns its JSON and success.
    pub fn admin(&self, args: &[&str]) -> (Value, bool) {
        let out = self.command().arg("admin").args(args).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let json: Value =
            serde_json::from_str(text.trim()).unwrap_or_else(|_| panic!("admin printed {text:?}"));
        (json, out.status.success())
    }

    /// Runs `admin ARGS` with `input` on its stdin (a password).
    pub fn admin_with_input(&self, args: &[&str], input: &str) -> (Value, bool) {
        use std::io::Write;
        let mut child = self
            .command()
            .arg("admin")
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let json: Value =
            serde_json::from_str(text.trim()).unwrap_or_else(|_| panic!("admin printed {text:?}"));
        (json, out.status.success())
    }

    /// A user with a key and `credits` (no account when 0).
    pub fn user(&self, credits: i64) -> User {
        let (u, ok) = self.admin(&["create-user", "--name", "tester"]);
        assert!(ok, "{u}");
        let id = u["user_id"].as_str().unwrap().to_string();
        let (k, ok) = self.admin(&["create-key", "--user", &id]);
        assert!(ok, "{k}");
        if credits > 0 {
            let (t, ok) = self.admin(&["topup", "--user", &id, "--amount", &credits.to_string()]);
            assert!(ok, "{t}");
        }
        User {
            id,
            key: k["key"].as_str().unwrap().to_string(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The bytes a file URL serves (a result, an upload).
    pub async fn download(&self, url: &str) -> Vec<u8> {
        let response = self.http.get(url).send().await.expect("GET");
        assert!(
            response.status().is_success(),
            "{url}: {}",
            response.status()
        );
        response.bytes().await.expect("body").to_vec()
    }

    /// The image a successful task made.
    pub async fn result_bytes(&self, key: &str, task_id: i64) -> Vec<u8> {
        let (_, t) = self.get(key, &format!("/api/open/tasks/{task_id}")).await;
        let url = t["data"]["result"]["imageUrl"]
            .as_str()
            .unwrap_or_else(|| panic!("{t}"));
        self.download(url).await
    }

    pub async fn get(&self, key: &str, path: &str) -> (u16, Value) {
        let r = self
            .http
            .get(self.url(path))
            .bearer_auth(key)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap())
    }

    pub async fn post(&self, key: &str, path: &str, body: &Value) -> (u16, Value) {
        let r = self
            .http
            .post(self.url(path))
            .bearer_auth(key)
            .json(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap())
    }

    pub async fn create(&self, key: &str, body: &Value) -> (u16, Value) {
        self.post(key, "/api/open/tasks", body).await
    }

    pub async fn upload(&self, key: &str, bytes: Vec<u8>, name: &str) -> (u16, Value) {
        let r = self.upload_response(key, bytes, name).await;
        let status = r.status().as_u16();
        (status, r.json().await.unwrap())
    }

    /// `POST /api/open/upload` of one file, the response as it came (headers and all).
    pub async fn upload_response(
        &self,
        key: &str,
        bytes: Vec<u8>,
        name: &str,
    ) -> reqwest::Response {
        let form = reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(bytes).file_name(name.to_string()),
        );
        self.http
            .post(self.url("/api/open/upload"))
            .bearer_auth(key)
            .multipart(form)
            .send()
            .await
            .unwrap()
    }

    /// Uploads an image that must be accepted; its file URL.
    pub async fn upload_url(&self, key: &str, bytes: Vec<u8>, name: &str) -> String {
        let (status, body) = self.upload(key, bytes, name).await;
        assert_eq!(status, 200, "{body}");
        body["data"]["file_url"].as_str().unwrap().to_string()
    }

    /// `GET /readyz`, as JSON.
    pub async fn readyz(&self) -> Value {
        self.http
            .get(self.url("/readyz"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// `GET /metrics`, as text.
    pub async fn metrics(&self) -> String {
        self.http
            .get(self.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Polls a task until it is terminal (status ≥ 3).
    pub async fn wait_terminal(&self, key: &str, id: i64, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let (status, body) = self.get(key, &format!("/api/open/tasks/{id}?wait=2")).await;
            assert_eq!(status, 200, "{body}");
            if body["data"]["status"].as_i64().unwrap() >= 3 {
                return body["data"].clone();
            }
            assert!(
                Instant::now() < deadline,
                "task {id} not terminal in time: {body}\n{}",
                self.log()
            );
        }
    }

    pub fn balance(&self, user: &User) -> Value {
        let (b, ok) = self.admin(&["balance", "--user", &user.id]);
        assert!(ok, "{b}");
        b
    }

    /// Files in the blob store, temporary files included.
    pub async fn stored_files(&self) -> usize {
        if let Some(bucket) = &self.backend.bucket {
            return S3::shared().object_count(bucket).await;
        }
        fn count(p: &Path) -> usize {
            std::fs::read_dir(p)
                .map(|d| {
                    d.flatten()
                        .map(|e| {
                            if e.path().is_dir() {
                                count(&e.path())
                            } else {
                                1
                            }
                        })
                        .sum()
                })
                .unwrap_or(0)
        }
        count(&self.data_dir().join("files"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub struct User {
    pub id: String,
    pub key: String,
}

pub fn png(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([(x * 7) as u8, (y * 3) as u8, 90]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

pub fn banana(prompt: &str) -> Value {
    json!({"category": "Banana2", "content": {"prompt": prompt, "generationConfig": {"imageConfig": {"image_size": "1K"}}}})
}

/// Asserts the failure envelope: status, code, and that `success` is false.
#[track_caller]
pub fn assert_error(got: &(u16, Value), status: u16, code: &str) {
    assert_eq!(got.0, status, "{}", got.1);
    assert_eq!(got.1["success"], false, "{}", got.1);
    assert_eq!(got.1["code"], code, "{}", got.1);
    assert!(
        got.1["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{}",
        got.1
    );
}

/// `balance = topups − reserves + refunds`, from `admin balance`; once every task has settled
/// (`settled`), also `reserve = capture + refund`.
#[track_caller]
pub fn assert_ledger_adds_up(balance: &Value, settled: bool) {
    let l = &balance["ledger"];
    let n = |k: &str| l[k].as_i64().unwrap();
    assert_eq!(
        balance["balance"].as_i64().unwrap(),
        n("topup") - n("reserve") + n("refund"),
        "{balance}"
    );
    if settled {
        assert_eq!(n("reserve"), n("capture") + n("refund"), "{balance}");
    }
}

/// Sends `n` creates of `body` at once, round-robin over `nodes`; the ids accepted and how
/// many were refused with 402 INSUFFICIENT_CREDITS (anything else fails the test).
pub async fn race_creates(
    nodes: &[&Server],
    key: &str,
    body: &Value,
    n: usize,
) -> (Vec<i64>, usize) {
    let mut handles = Vec::new();
    for i in 0..n {
        let node = nodes[i % nodes.len()];
        let (http, target, key, body) = (
            node.http.clone(),
            node.url("/api/open/tasks"),
            key.to_string(),
            body.clone(),
        );
        handles.push(tokio::spawn(async move {
            let r = http
                .post(target)
                .bearer_auth(key)
                .json(&body)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }));
    }
    let (mut accepted, mut refused) = (Vec::new(), 0);
    for h in handles {
        let (status, body) = h.await.unwrap();
        match status {
            200 => accepted.push(body["data"]["id"].as_i64().unwrap()),
            402 => {
                assert_eq!(body["code"], "INSUFFICIENT_CREDITS", "{body}");
                refused += 1;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    (accepted, refused)
}
