//! The worker against a slow file store: an attempt abandoned while its result write is in
//! flight (a cancel, here) must not leave that file behind once the write lands.

use super::*;
use crate::blob::{BlobError, BlobMeta, BlobStore, BlobStream, DiskBlobStore, FileKey, Listed};
use crate::executor::{ExecContext, ExecError, ExecOutput, Executor, Executors};
use async_trait::async_trait;
use bytes::Bytes;
use plume_core::ValidatedContent;
use serde_json::json;

/// A remote store whose writes take `delay` and finish even when the caller stops waiting
/// (as S3 does with a request it has received): the write runs as a task of its own.
struct SlowStore {
    inner: Arc<DiskBlobStore>,
    delay: Duration,
}

#[async_trait]
impl BlobStore for SlowStore {
    async fn put(&self, key: &FileKey, bytes: Bytes) -> Result<BlobMeta, BlobError> {
        let (inner, key, delay) = (self.inner.clone(), key.clone(), self.delay);
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            inner.put(&key, bytes).await
        })
        .await
        .map_err(|e| BlobError::Io(std::io::Error::other(e)))?
    }
    async fn head(&self, key: &FileKey) -> Result<Option<BlobMeta>, BlobError> {
        self.inner.head(key).await
    }
    async fn get(
        &self,
        key: &FileKey,
        range: Option<(u64, u64)>,
    ) -> Result<Option<BlobStream>, BlobError> {
        self.inner.get(key, range).await
    }
    async fn read(&self, key: &FileKey, max: u64) -> Result<Option<Bytes>, BlobError> {
        self.inner.read(key, max).await
    }
    async fn delete(&self, key: &FileKey) -> Result<(), BlobError> {
        self.inner.delete(key).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<Listed>, BlobError> {
        self.inner.list(prefix).await
    }
    async fn check(&self) -> Result<(), BlobError> {
        self.inner.check().await
    }
}

/// Stores its result at once, then takes a long time to answer.
struct StoreThenWait;

#[async_trait]
impl Executor for StoreThenWait {
    async fn execute(
        &self,
        _content: &ValidatedContent,
        ctx: &ExecContext,
    ) -> Result<ExecOutput, ExecError> {
        ctx.store_output(Bytes::from_static(b"result"), "png")
            .await?;
        tokio::time::sleep(Duration::from_secs(30)).await;
        Err(ExecError::permanent("TEST", "should have been abandoned"))
    }
}

#[tokio::test]
async fn an_abandoned_attempt_lets_its_result_write_land_before_collecting_orphans() {
    let dir = std::env::temp_dir().join(format!(
        "plume-worker-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let mut config = crate::Config {
        data_dir: dir.clone(),
        ..Default::default()
    };
    config.queue.lease_seconds = 0.3;
    config.queue.poll_interval_ms = 50;
    let db = crate::db::open(&format!("sqlite://{}", dir.join("plume.db").display()))
        .await
        .unwrap();
    let inner = Arc::new(DiskBlobStore::new(dir.join("files")).unwrap());
    let blobs = Arc::new(SlowStore {
        inner: inner.clone(),
        delay: Duration::from_millis(1500),
    });
    let executors = Executors::new().with(Category::Banana2, Arc::new(StoreThenWait));
    let service = Service::with_backends(config, db, blobs, executors).unwrap();
    let user = service.db.create_user("worker").await.unwrap();
    service.db.topup(user, 1000, None).await.unwrap();
    let body = json!({"category": "Banana2", "content": {"prompt": "a kite"}});
    let (task, _) = service.create_task(user, &body, None).await.unwrap();

    let (stop_claiming, claiming) = watch::channel(false);
    let (stop_running, running) = watch::channel(false);
    let workers = tokio::spawn(run_workers(
        service.clone(),
        Shutdown {
            stop_claiming: claiming,
            stop_running: running,
        },
    ));
    let started = Instant::now();
    while service.db.task(task.id).await.unwrap().unwrap().status != TaskStatus::Processing {
        assert!(started.elapsed() < Duration::from_secs(10), "never claimed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Cancelled while the write is in flight: the cancel's own sweep finds nothing yet, and
    // the worker learns of it at its next lease renewal (every 0.1 s), long before the
    // write lands.
    service.cancel_task(user, task.id).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let left = inner.list(&format!("results/{}/", task.id)).await.unwrap();
    assert!(
        left.is_empty(),
        "the abandoned attempt's result was collected after it landed: {:?}",
        left.iter().map(|l| l.key.as_str()).collect::<Vec<_>>()
    );

    stop_claiming.send(true).unwrap();
    stop_running.send(true).unwrap();
    workers.await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
