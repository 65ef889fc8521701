//! The blob contract: uploads through the presigned target, heads, and ranged reads that behave as S3's do.

use std::sync::Arc;

use crate::fixtures;
use anyhow::Context as _;
use async_trait::async_trait;
use bytes::Bytes;
use chrono::Duration;
use shared::{
    adapters::local_blobs::{LocalBlobStore, SignedUpload},
    ports::{BlobError, BlobStore, ByteRange, RangeRead, UploadTarget},
};

/// Sends bytes to an upload target the way a caller would.
#[async_trait]
pub trait Uploader: Send + Sync {
    async fn upload(&self, target: &UploadTarget, body: Bytes) -> anyhow::Result<()>;
}

/// A plain HTTP PUT with the target's headers: what an API caller does with an S3 presigned URL.
pub struct HttpUploader(pub reqwest::Client);

#[async_trait]
impl Uploader for HttpUploader {
    async fn upload(&self, target: &UploadTarget, body: Bytes) -> anyhow::Result<()> {
        anyhow::ensure!(target.method == "PUT", "uploads are PUTs, got {}", target.method);
        let mut request = self.0.put(&target.url).body(body);
        for (name, value) in &target.headers {
            request = request.header(name, value);
        }
        let response = request.send().await.context("PUT to the upload URL")?;
        anyhow::ensure!(response.status().is_success(), "upload answered {}", response.status());
        Ok(())
    }
}

/// What the local runner's upload route does with a PUT to the target: check the signed URL, then store the body.
pub struct LocalRouteUploader(pub Arc<LocalBlobStore>);

#[async_trait]
impl Uploader for LocalRouteUploader {
    async fn upload(&self, target: &UploadTarget, body: Bytes) -> anyhow::Result<()> {
        anyhow::ensure!(target.method == "PUT", "uploads are PUTs, got {}", target.method);
        let url = url::Url::parse(&target.url)?;
        let key = url
            .path()
            .strip_prefix("/local/uploads/")
            .context("the upload route's path")?;
        let key = percent_encoding::percent_decode_str(key).decode_utf8()?.into_owned();
        let signed: SignedUpload = serde_urlencoded::from_str(url.query().unwrap_or_default())?;
        let content_type = target
            .headers
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case("content-type"));
        self.0.verify_upload(
            &key,
            &signed,
            content_type.map(|(_, value)| value.as_str()),
            Some(body.len() as u64),
            fixtures::now_ms(),
        )?;
        self.0
            .write_upload(&key, &signed, futures::stream::iter([Ok::<_, std::io::Error>(body)]))
            .await?;
        Ok(())
    }
}

fn sample(length: usize) -> Bytes {
    (0..length).map(|n| (n % 251) as u8).collect::<Vec<u8>>().into()
}

async fn read(
    store: &dyn BlobStore,
    key: &str,
    range: ByteRange,
    if_match: Option<&str>,
) -> Result<RangeRead, BlobError> {
    store.read_range(key, range, if_match).await
}

/// `store` must be empty of keys under `contract/`; `uploader` sends to its upload targets.
pub async fn blob_store_contract(store: &dyn BlobStore, uploader: &dyn Uploader) -> anyhow::Result<()> {
    let prefix = format!("contract/{}", ulid::Ulid::new());
    let video = format!("{prefix}/video");
    let data = sample(1_000);
    let length = data.len() as u64;

    assert!(
        matches!(store.head(&video).await, Err(BlobError::NotFound(_))),
        "head of a missing object"
    );
    assert!(matches!(
        read(store, &video, ByteRange::Span(0..10), None).await,
        Err(BlobError::NotFound(_))
    ));

    let now = fixtures::now_ms();
    let target = store
        .presign_upload(&video, "video/mp4", length, now, Duration::minutes(10))
        .await?;
    assert_eq!(target.method, "PUT");
    assert!(target
        .headers
        .iter()
        .any(|(name, value)| name.eq_ignore_ascii_case("content-type") && value == "video/mp4"));
    assert!(target.expires_at > now && target.expires_at <= now + Duration::minutes(10) + Duration::seconds(2));
    let capped = store
        .presign_upload(&video, "video/mp4", length, now, Duration::hours(3))
        .await?;
    assert!(
        capped.expires_at <= now + Duration::minutes(15),
        "upload URLs live at most 15 minutes"
    );

    uploader
        .upload(&target, data.clone())
        .await
        .context("uploading through the presigned target")?;
    let head = store.head(&video).await?;
    assert_eq!(head.size, length);
    assert!(!head.etag.is_empty());

    let check = |read: RangeRead, offset: u64, expected: &[u8]| {
        assert_eq!(
            (read.offset, read.total_size, read.etag.as_str()),
            (offset, length, head.etag.as_str())
        );
        assert_eq!(read.bytes.as_ref(), expected);
    };
    check(read(store, &video, ByteRange::Span(0..16), None).await?, 0, &data[..16]);
    check(
        read(store, &video, ByteRange::Span(100..300), Some(&head.etag)).await?,
        100,
        &data[100..300],
    );
    check(
        read(store, &video, ByteRange::Suffix(10), None).await?,
        990,
        &data[990..],
    );
    check(read(store, &video, ByteRange::Suffix(5_000), None).await?, 0, &data[..]);
    check(
        read(store, &video, ByteRange::Span(995..2_000), None).await?,
        995,
        &data[995..],
    );
    check(
        read(store, &video, ByteRange::Span(0..length), None).await?,
        0,
        &data[..],
    );
    for beyond in [ByteRange::Span(length..length + 10), ByteRange::Span(5_000..6_000)] {
        let result = read(store, &video, beyond.clone(), None).await;
        assert!(
            matches!(result, Err(BlobError::RangeNotSatisfiable(_))),
            "{beyond:?}: {result:?}"
        );
    }
    let mismatch = read(store, &video, ByteRange::Span(0..10), Some("\"not-the-etag\"")).await;
    assert!(matches!(mismatch, Err(BlobError::Changed(_))), "{mismatch:?}");

    let image = format!("{prefix}/image");
    store
        .put(&image, Bytes::from_static(b"first version"), "image/png")
        .await?;
    let first = store.head(&image).await?;
    assert_eq!(first.size, 13);
    store
        .put(&image, Bytes::from_static(b"second version"), "image/png")
        .await?;
    let second = store.head(&image).await?;
    assert_eq!(second.size, 14);
    assert_ne!(first.etag, second.etag, "the ETag changes with the content");
    let pinned = read(store, &image, ByteRange::Span(0..6), Some(&first.etag)).await;
    assert!(
        matches!(pinned, Err(BlobError::Changed(_))),
        "a read pinned to the old version: {pinned:?}"
    );
    assert_eq!(
        read(store, &image, ByteRange::Span(0..6), Some(&second.etag))
            .await?
            .bytes
            .as_ref(),
        b"second"
    );
    parts_contract(store, &prefix).await?;
    copy_and_delete_contract(store, &prefix).await?;
    Ok(())
}

/// Copies inside the store (the public copies TikTok pulls) and deletes: a copy has the bytes and type of its source
/// and lives on when the source goes; deleting what is not there succeeds, so an interrupted clean-up can finish.
async fn copy_and_delete_contract(store: &dyn BlobStore, prefix: &str) -> anyhow::Result<()> {
    let source = format!("{prefix}/source.jpg");
    let copy = format!("{prefix}/public/0123abcd/0.jpg");
    let data = sample(3_000);
    store.put(&source, data.clone(), "image/jpeg").await?;

    store.copy(&source, &copy).await.context("copying an object")?;
    let copied = read(store, &copy, ByteRange::Span(0..3_000), None).await?;
    assert_eq!(copied.bytes, data, "the copy has the source's bytes");
    assert_eq!(store.head(&copy).await?.size, 3_000);
    let missing = store
        .copy(&format!("{prefix}/nothing"), &format!("{prefix}/public/x"))
        .await;
    assert!(
        matches!(missing, Err(BlobError::NotFound(_))),
        "copying a missing object: {missing:?}"
    );

    store.delete(&source).await.context("deleting an object")?;
    assert!(
        matches!(store.head(&source).await, Err(BlobError::NotFound(_))),
        "a deleted object is gone"
    );
    assert!(
        matches!(
            read(store, &source, ByteRange::Span(0..1), None).await,
            Err(BlobError::NotFound(_))
        ),
        "a deleted object cannot be read"
    );
    assert_eq!(store.head(&copy).await?.size, 3_000, "the copy outlives its source");
    store
        .delete(&source)
        .await
        .context("deleting a missing object succeeds")?;
    store.delete(&copy).await?;
    assert!(matches!(store.head(&copy).await, Err(BlobError::NotFound(_))));
    Ok(())
}

/// Objects written in parts ([`BlobStore::start_parts`]): parts out of order (part 1 last, as the remuxer sends
/// it), 5 MiB parts (S3's minimum for all but the last), nothing visible before `complete`, nothing after `abort`.
async fn parts_contract(store: &dyn BlobStore, prefix: &str) -> anyhow::Result<()> {
    const PART: u64 = 5 * 1024 * 1024;
    let key = format!("{prefix}/remuxed.mp4");
    let first = sample(PART as usize);
    let last: Bytes = Bytes::from(vec![7u8; 1000]);
    let mut writer = store.start_parts(&key, "video/mp4", PART).await?;
    writer.write_part(2, last.clone()).await?;
    assert!(
        matches!(store.head(&key).await, Err(BlobError::NotFound(_))),
        "a part-written object is invisible before completion"
    );
    writer.write_part(1, first.clone()).await?;
    let head = writer.complete().await?;
    assert_eq!(head.size, PART + 1000);
    assert_eq!(store.head(&key).await?.size, PART + 1000);
    let read_back = read(store, &key, ByteRange::Span(PART - 10..PART + 1000), None).await?;
    assert_eq!(&read_back.bytes[..10], &first[first.len() - 10..]);
    assert_eq!(&read_back.bytes[10..], &last[..]);

    let abandoned = format!("{prefix}/abandoned.mp4");
    let mut writer = store.start_parts(&abandoned, "video/mp4", PART).await?;
    writer.write_part(1, last).await?;
    writer.abort().await;
    assert!(
        matches!(store.head(&abandoned).await, Err(BlobError::NotFound(_))),
        "an aborted part-written object leaves nothing"
    );
    Ok(())
}
