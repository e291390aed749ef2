//! Fresh storage for a test server: nothing (SQLite and a folder, the default), or a new
//! PostgreSQL database and a new bucket on a real S3-compatible server.
//!
//! `PLUME_TEST_BACKEND=postgres` runs the end-to-end suites on PostgreSQL + S3 (the matrix
//! `scripts/test` runs). The PostgreSQL server is `PLUME_TEST_POSTGRES` (default
//! `postgres://postgres@127.0.0.1:5432`, trust auth). The S3 server is the one whose settings
//! `PLUME_TEST_S3_ENDPOINT`, `PLUME_TEST_S3_REGION`, `PLUME_TEST_S3_ACCESS_KEY_ID` and
//! `PLUME_TEST_S3_SECRET_ACCESS_KEY` give (`scripts/test` starts one with `scripts/s3-server`),
//! or else one this process starts itself and that stops when it exits.

use object_store::aws::{AwsAuthorizer, AwsCredential};
use std::io::BufRead;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// Which backends a test server gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Sqlite,
    Postgres,
}

impl Kind {
    /// The matrix entry this test run is for.
    pub fn from_env() -> Kind {
        match std::env::var("PLUME_TEST_BACKEND").as_deref() {
            Ok("postgres") => Kind::Postgres,
            _ => Kind::Sqlite,
        }
    }
}

/// Settings for a node plus whatever must be removed afterwards.
pub struct Backend {
    pub kind: Kind,
    /// `NAME=VALUE` settings a node needs (none for SQLite: the data folder is enough).
    pub env: Vec<(String, String)>,
    pub database_url: Option<String>,
    pub bucket: Option<String>,
    database: Option<String>,
}

/// A real S3-compatible server's settings.
#[derive(Debug, Clone)]
pub struct S3 {
    pub endpoint: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
}

pub fn postgres_server() -> String {
    std::env::var("PLUME_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

fn random_name(prefix: &str) -> String {
    format!("{prefix}{:012x}", rand::random::<u64>() & 0xffff_ffff_ffff)
}

impl Backend {
    pub async fn new(kind: Kind) -> Backend {
        match kind {
            Kind::Sqlite => Backend {
                kind,
                env: Vec::new(),
                database_url: None,
                bucket: None,
                database: None,
            },
            Kind::Postgres => {
                let name = random_name("plume_e2e_");
                let url = create_database(&name).await;
                let s3 = S3::shared().clone();
                let bucket = random_name("plume-e2e-").replace('_', "-");
                s3.create_bucket(&bucket).await;
                let mut env = s3.env(&bucket);
                env.push(("PLUME_DATABASE_URL".into(), url.clone()));
                Backend {
                    kind,
                    env,
                    database_url: Some(url),
                    bucket: Some(bucket),
                    database: Some(name),
                }
            }
        }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        if let Some(name) = self.database.take() {
            drop_database(name);
        }
    }
}

/// Creates an empty database on the test PostgreSQL server; its URL.
pub async fn create_database(name: &str) -> String {
    use sqlx::Connection;
    let server = postgres_server();
    let mut conn = sqlx::PgConnection::connect(&format!("{server}/postgres"))
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {server} (PLUME_TEST_POSTGRES): {e}"));
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .unwrap();
    format!("{server}/{name}")
}

/// Drops a test database, from a thread of its own (a test's runtime may be shutting down).
pub fn drop_database(name: String) {
    let _ = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            use sqlx::Connection;
            if let Ok(mut c) =
                sqlx::PgConnection::connect(&format!("{}/postgres", postgres_server())).await
            {
                let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut c)
                    .await;
            }
        })
    })
    .join();
}

impl S3 {
    /// The S3 server of this test run (see the module docs).
    pub fn shared() -> &'static S3 {
        static SHARED: OnceLock<S3> = OnceLock::new();
        SHARED.get_or_init(|| {
            let var = |n: &str| std::env::var(n).ok().filter(|v| !v.is_empty());
            if let (Some(endpoint), Some(access_key_id), Some(secret_access_key)) = (
                var("PLUME_TEST_S3_ENDPOINT"),
                var("PLUME_TEST_S3_ACCESS_KEY_ID"),
                var("PLUME_TEST_S3_SECRET_ACCESS_KEY"),
            ) {
                return S3 {
                    endpoint,
                    region: var("PLUME_TEST_S3_REGION").unwrap_or_else(|| "us-east-1".into()),
                    access_key_id,
                    secret_access_key,
                };
            }
            S3::start_own()
        })
    }

    /// Starts `scripts/s3-server` for this process. It gets SIGTERM when the thread that
    /// started it ends, and that thread lives as long as the process.
    fn start_own() -> S3 {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
            let dir = std::env::temp_dir().join(random_name("plume-s3-"));
            let mut cmd = Command::new(root.join("scripts/s3-server"));
            cmd.arg("--dir")
                .arg(&dir)
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit());
            #[cfg(target_os = "linux")]
            unsafe {
                use std::os::unix::process::CommandExt;
                cmd.pre_exec(|| {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                    Ok(())
                });
            }
            let mut child = cmd.spawn().expect("scripts/s3-server starts");
            let out = std::io::BufReader::new(child.stdout.take().unwrap());
            let mut settings = Vec::new();
            for line in out.lines() {
                let line = line.unwrap();
                if line == "READY" {
                    break;
                }
                if let Some((k, v)) = line.split_once('=') {
                    settings.push((k.to_string(), v.to_string()));
                }
            }
            let get = |n: &str| {
                settings
                    .iter()
                    .find(|(k, _)| k == n)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_else(|| panic!("scripts/s3-server printed no {n}"))
            };
            tx.send(S3 {
                endpoint: get("PLUME_S3_ENDPOINT"),
                region: get("PLUME_S3_REGION"),
                access_key_id: get("AWS_ACCESS_KEY_ID"),
                secret_access_key: get("AWS_SECRET_ACCESS_KEY"),
            })
            .unwrap();
            let _ = child.wait();
            let _ = std::fs::remove_dir_all(dir);
        });
        rx.recv_timeout(std::time::Duration::from_secs(180))
            .expect("scripts/s3-server printed READY")
    }

    /// The settings a node needs for `bucket`.
    pub fn env(&self, bucket: &str) -> Vec<(String, String)> {
        vec![
            ("PLUME_STORAGE_URL".into(), format!("s3://{bucket}")),
            ("PLUME_S3_ENDPOINT".into(), self.endpoint.clone()),
            ("PLUME_S3_REGION".into(), self.region.clone()),
            ("AWS_ACCESS_KEY_ID".into(), self.access_key_id.clone()),
            (
                "AWS_SECRET_ACCESS_KEY".into(),
                self.secret_access_key.clone(),
            ),
        ]
    }

    /// `PUT /bucket`, signed with AWS Signature V4.
    pub async fn create_bucket(&self, bucket: &str) {
        let status = self
            .signed(reqwest::Method::PUT, &format!("/{bucket}"))
            .await
            .0;
        assert!(
            status == 200 || status == 409,
            "creating bucket {bucket}: HTTP {status}"
        );
    }

    /// A signed request with no body: its status and body text.
    pub async fn signed(&self, method: reqwest::Method, path: &str) -> (u16, String) {
        let url = format!("{}{path}", self.endpoint);
        let mut request = object_store::client::HttpRequest::new(
            object_store::client::HttpRequestBody::from(Vec::new()),
        );
        *request.method_mut() = method.as_str().parse().unwrap();
        *request.uri_mut() = url.parse().unwrap();
        let credential = AwsCredential {
            key_id: self.access_key_id.clone(),
            secret_key: self.secret_access_key.clone(),
            token: None,
        };
        AwsAuthorizer::new(&credential, "s3", &self.region).authorize(&mut request, None);
        let mut builder = reqwest::Client::new().request(method, &url);
        for (name, value) in request.headers() {
            builder = builder.header(name.as_str(), value.as_bytes());
        }
        let response = builder.send().await.expect("S3 answers");
        let status = response.status().as_u16();
        (status, response.text().await.unwrap_or_default())
    }

    /// How many objects `bucket` holds (one page of up to 1,000 is enough for tests).
    pub async fn object_count(&self, bucket: &str) -> usize {
        let (status, body) = self
            .signed(reqwest::Method::GET, &format!("/{bucket}?list-type=2"))
            .await;
        assert_eq!(status, 200, "{body}");
        body.matches("<Key>").count()
    }
}
