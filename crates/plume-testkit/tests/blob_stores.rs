//! One contract, both `BlobStore`s: a folder on disk and a bucket on a real S3-compatible
//! server (SeaweedFS). Whatever the rest of the server relies on is checked here the same way.

mod common;
use bytes::Bytes;
use common::*;
use futures::StreamExt;
use plume_server::blob::{s3::S3BlobStore, BlobStore, DiskBlobStore, FileKey};
use plume_server::config::{S3Config, Secret};

async fn contract(store: &dyn BlobStore) {
    store.check().await.unwrap();
    let upload = FileKey::new_upload("png");
    let result = FileKey::new_result(42, "mp4");
    assert!(store.head(&upload).await.unwrap().is_none());
    assert!(store.get(&upload, None).await.unwrap().is_none());
    assert!(store.read(&upload, 100).await.unwrap().is_none());

    let meta = store
        .put(&upload, Bytes::from_static(b"0123456789"))
        .await
        .unwrap();
    assert_eq!((meta.size, meta.content_type), (10, "image/png"));
    assert!(meta.etag.starts_with('"') && meta.etag.ends_with('"'));
    assert_eq!(store.head(&upload).await.unwrap().unwrap().etag, meta.etag);
    store
        .put(&result, Bytes::from(vec![7u8; 300_000]))
        .await
        .unwrap();

    let mut body = Vec::new();
    let mut stream = store.get(&upload, Some((2, 5))).await.unwrap().unwrap();
    while let Some(chunk) = stream.next().await {
        body.extend_from_slice(&chunk.unwrap());
    }
    assert_eq!(body, b"2345");
    assert_eq!(
        store.read(&upload, 10).await.unwrap().unwrap().as_ref(),
        b"0123456789"
    );
    assert!(store.read(&result, 1000).await.is_err(), "over the cap");

    let uploads = store.list("uploads/").await.unwrap();
    assert_eq!(uploads.len(), 1);
    assert_eq!((&uploads[0].key, uploads[0].size), (&upload, 10));
    assert!(uploads[0].modified > 0);
    assert_eq!(store.list("results/42/").await.unwrap().len(), 1);
    assert_eq!(
        store.list("results/4/").await.unwrap().len(),
        0,
        "whole segments"
    );
    assert_eq!(store.list("").await.unwrap().len(), 2);

    store.delete(&upload).await.unwrap();
    store.delete(&upload).await.unwrap(); // gone already: not an error
    assert!(store.head(&upload).await.unwrap().is_none());
    assert_eq!(store.list("").await.unwrap().len(), 1);
}

#[tokio::test]
async fn disk_store_keeps_the_contract() {
    let dir = TempDir::new("plume-blob-contract");
    contract(&DiskBlobStore::new(dir.0.join("files")).unwrap()).await;
}

fn s3_config(s3: &S3, secret: &str) -> S3Config {
    S3Config {
        endpoint: s3.endpoint.clone(),
        region: s3.region.clone(),
        access_key_id: s3.access_key_id.clone(),
        secret_access_key: Secret(secret.to_string()),
        public_base: String::new(),
    }
}

#[tokio::test]
async fn s3_store_keeps_the_contract_with_and_without_a_prefix() {
    let s3 = S3::shared();
    let bucket = format!("plume-contract-{}", free_port());
    s3.create_bucket(&bucket).await;
    let config = s3_config(s3, &s3.secret_access_key);
    contract(&S3BlobStore::new(&bucket, &config).unwrap()).await;
    let prefixed = S3BlobStore::new(&format!("{bucket}/install-b"), &config).unwrap();
    contract(&prefixed).await;

    // A wrong secret and a missing bucket fail the start-up check.
    let wrong = S3BlobStore::new(&bucket, &s3_config(s3, "not-the-secret")).unwrap();
    assert!(wrong.check().await.is_err());
    let missing = S3BlobStore::new("no-such-bucket-at-all", &config).unwrap();
    let e = missing.check().await.unwrap_err().to_string();
    assert!(e.contains("NoSuchBucket"), "{e}");
}
