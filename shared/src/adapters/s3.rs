//! Media bytes in S3: presigned uploads, ranged reads pinned to an ETag, heads and puts.

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_sdk_s3::{
    config::http::HttpResponse,
    error::{ProvideErrorMetadata, SdkError},
    operation::{get_object::GetObjectError, head_object::HeadObjectError},
    presigning::PresigningConfig,
    primitives::ByteStream,
    types::{CompletedMultipartUpload, CompletedPart, Tag, Tagging, TaggingDirective},
    Client,
};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use super::upload_window::upload_window;
use crate::ports::{BlobError, BlobStore, ByteRange, ObjectHead, PartWriter, RangeRead, UploadTarget};

/// Builds the S3 client from the shared AWS config. The Rust SDK ignores `AWS_S3_FORCE_PATH_STYLE`, and a local
/// endpoint (moto, MinIO) cannot serve `bucket.host` names, so path-style addressing follows the endpoint override.
pub fn s3_client(conf: &aws_config::SdkConfig, endpoint_overridden: bool) -> Client {
    Client::from_conf(
        aws_sdk_s3::config::Builder::from(conf)
            .force_path_style(endpoint_overridden)
            .build(),
    )
}

/// The object tag that tells abandoned uploads from media. Uploads arrive tagged `postato-state=pending` (the
/// presigned PUT signs the tag, so a caller cannot leave it out); the validator re-tags an accepted upload `kept`.
/// The bucket's lifecycle rule (template.yaml, `ExpireAbandonedUploads`) deletes `uploads/` objects still tagged
/// pending a day after they arrived: rejected files, and files whose validation never finished.
pub const STATE_TAG: &str = "postato-state";
pub const STATE_PENDING: &str = "pending";
pub const STATE_KEPT: &str = "kept";

#[derive(Clone, Debug)]
pub struct S3BlobStore {
    client: Client,
    bucket: String,
}

#[derive(Debug, thiserror::Error)]
#[error("S3 answered without a usable {0}")]
struct UnexpectedResponse(&'static str);

impl S3BlobStore {
    pub fn new(client: Client, bucket: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
        }
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The presigning behind [`BlobStore::presign_upload`], taking an expiry instant so tests can ask for one in the
    /// past.
    async fn presign_upload_at(
        &self,
        key: &str,
        content_type: &str,
        content_length: u64,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<UploadTarget, BlobError> {
        let (lifetime_secs, expires_at) = upload_window(now, expires_at)?;
        let length = i64::try_from(content_length).map_err(|e| BlobError::Unavailable(Box::new(e)))?;
        let config = PresigningConfig::builder()
            .start_time(SystemTime::from(now))
            .expires_in(Duration::from_secs(lifetime_secs))
            .build()
            .map_err(|e| BlobError::Unavailable(Box::new(e)))?;
        // Content type, length and the state tag are signed headers: S3 refuses an upload of another type or size,
        // or one without the tag.
        let presigned = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .content_length(length)
            .tagging(format!("{STATE_TAG}={STATE_PENDING}"))
            .presigned(config)
            .await
            .map_err(unavailable)?;
        let headers = presigned
            .headers()
            // Every HTTP client sets Content-Length from the body, and browsers refuse to set it by hand.
            .filter(|(name, _)| !name.eq_ignore_ascii_case("content-length"))
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect();
        Ok(UploadTarget {
            url: presigned.uri().to_owned(),
            method: "PUT",
            headers,
            expires_at,
        })
    }
}

fn unavailable<E>(error: SdkError<E, HttpResponse>) -> BlobError
where
    E: std::error::Error + Send + Sync + 'static,
{
    BlobError::Unavailable(Box::new(error))
}

fn status_of<E>(error: &SdkError<E, HttpResponse>) -> Option<u16> {
    error.raw_response().map(|response| response.status().as_u16())
}

/// What CopyObject's `x-amz-copy-source` leaves unescaped in a key: RFC 3986's unreserved characters and `/`.
const COPY_SOURCE_KEEPS: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'/')
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// CopyObject's `x-amz-copy-source`: the bucket and the URL-encoded key.
fn copy_source(bucket: &str, key: &str) -> String {
    format!("{bucket}/{}", utf8_percent_encode(key, COPY_SOURCE_KEEPS))
}

fn range_header(range: &ByteRange) -> Option<String> {
    match range {
        // HTTP ranges name the last byte; ours end before it. An empty span has no HTTP form.
        ByteRange::Span(span) if span.end > span.start => Some(format!("bytes={}-{}", span.start, span.end - 1)),
        ByteRange::Span(_) | ByteRange::Suffix(0) => None,
        ByteRange::Suffix(length) => Some(format!("bytes=-{length}")),
    }
}

/// `bytes <first>-<last>/<total>` into the offset and the total size.
fn parse_content_range(value: &str) -> Option<(u64, u64)> {
    let (span, total) = value.trim().strip_prefix("bytes ")?.split_once('/')?;
    let (first, _last) = span.split_once('-')?;
    Some((first.parse().ok()?, total.parse().ok()?))
}

fn etag_of(etag: Option<&str>) -> Result<String, BlobError> {
    etag.map(str::to_owned)
        .ok_or_else(|| BlobError::Unavailable(Box::new(UnexpectedResponse("ETag"))))
}

/// A multipart upload: parts go up as they come (any order), the completion lists them in order.
struct S3Parts {
    client: Client,
    bucket: String,
    key: String,
    upload_id: String,
    parts: Vec<CompletedPart>,
}

#[async_trait]
impl PartWriter for S3Parts {
    async fn write_part(&mut self, number: u32, bytes: Bytes) -> Result<(), BlobError> {
        let number = i32::try_from(number)
            .ok()
            .filter(|n| (1..=10_000).contains(n))
            .ok_or_else(|| BlobError::Unavailable(format!("S3 part number {number} out of 1..=10000").into()))?;
        let uploaded = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&self.upload_id)
            .part_number(number)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(unavailable)?;
        self.parts.retain(|p| p.part_number() != Some(number));
        self.parts.push(
            CompletedPart::builder()
                .part_number(number)
                .set_e_tag(uploaded.e_tag().map(str::to_owned))
                .build(),
        );
        Ok(())
    }

    async fn complete(mut self: Box<Self>) -> Result<ObjectHead, BlobError> {
        self.parts.sort_by_key(|p| p.part_number());
        let parts = CompletedMultipartUpload::builder()
            .set_parts(Some(std::mem::take(&mut self.parts)))
            .build();
        let done = self
            .client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&self.upload_id)
            .multipart_upload(parts)
            .send()
            .await;
        if let Err(e) = done {
            self.abort_upload().await;
            return Err(unavailable(e));
        }
        let head = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(&self.key)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(ObjectHead {
            size: head.content_length().and_then(|l| u64::try_from(l).ok()).unwrap_or(0),
            etag: etag_of(head.e_tag())?,
        })
    }

    async fn abort(self: Box<Self>) {
        self.abort_upload().await;
    }
}

impl S3Parts {
    async fn abort_upload(&self) {
        let aborted = self
            .client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&self.upload_id)
            .send()
            .await;
        if let Err(e) = aborted {
            // The bucket's lifecycle rule removes incomplete multipart uploads; this only frees them sooner.
            tracing::warn!(key = %self.key, error = %e, "aborting a multipart upload failed");
        }
    }
}

#[async_trait]
impl BlobStore for S3BlobStore {
    async fn start_parts(
        &self,
        key: &str,
        content_type: &str,
        part_size: u64,
    ) -> Result<Box<dyn PartWriter>, BlobError> {
        if part_size < 5 * 1024 * 1024 {
            return Err(BlobError::Unavailable("S3 parts are at least 5 MiB".into()));
        }
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .send()
            .await
            .map_err(unavailable)?;
        let upload_id = created
            .upload_id()
            .ok_or_else(|| BlobError::Unavailable(Box::new(UnexpectedResponse("upload id"))))?
            .to_owned();
        Ok(Box::new(S3Parts {
            client: self.client.clone(),
            bucket: self.bucket.clone(),
            key: key.to_owned(),
            upload_id,
            parts: Vec::new(),
        }))
    }

    async fn presign_upload(
        &self,
        key: &str,
        content_type: &str,
        content_length: u64,
        now: DateTime<Utc>,
        lifetime: chrono::Duration,
    ) -> Result<UploadTarget, BlobError> {
        // Signed from the caller's clock (the system clock in production); S3 checks the expiry against its own.
        self.presign_upload_at(key, content_type, content_length, now, now + lifetime)
            .await
    }

    async fn head(&self, key: &str) -> Result<ObjectHead, BlobError> {
        let output = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|error| match error.as_service_error() {
                Some(HeadObjectError::NotFound(_)) => BlobError::NotFound(key.to_owned()),
                _ => unavailable(error),
            })?;
        let size = output
            .content_length()
            .and_then(|length| u64::try_from(length).ok())
            .ok_or_else(|| BlobError::Unavailable(Box::new(UnexpectedResponse("Content-Length"))))?;
        Ok(ObjectHead {
            size,
            etag: etag_of(output.e_tag())?,
        })
    }

    async fn read_range(&self, key: &str, range: ByteRange, if_match: Option<&str>) -> Result<RangeRead, BlobError> {
        let header = range_header(&range).ok_or_else(|| BlobError::RangeNotSatisfiable(key.to_owned()))?;
        let output = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .range(header)
            .set_if_match(if_match.map(str::to_owned))
            .send()
            .await
            .map_err(|error| match (error.as_service_error(), status_of(&error)) {
                // Only a missing key is NotFound: a missing bucket (also 404) is a configuration fault, not gone media.
                (Some(GetObjectError::NoSuchKey(_)), _) => BlobError::NotFound(key.to_owned()),
                (_, Some(412)) => BlobError::Changed(key.to_owned()),
                (_, Some(416)) => BlobError::RangeNotSatisfiable(key.to_owned()),
                (Some(service), _) if service.code() == Some("PreconditionFailed") => {
                    BlobError::Changed(key.to_owned())
                }
                _ => unavailable(error),
            })?;
        let etag = etag_of(output.e_tag())?;
        let content_range = output.content_range().map(str::to_owned);
        let content_length = output.content_length().and_then(|length| u64::try_from(length).ok());
        let bytes: Bytes = output
            .body
            .collect()
            .await
            .map_err(|e| BlobError::Unavailable(Box::new(e)))?
            .into_bytes();
        let (offset, total_size) = match content_range {
            Some(value) => parse_content_range(&value)
                .ok_or_else(|| BlobError::Unavailable(Box::new(UnexpectedResponse("Content-Range"))))?,
            // A 200 without Content-Range is the whole object.
            None => (0, content_length.unwrap_or(bytes.len() as u64)),
        };
        Ok(RangeRead {
            offset,
            bytes,
            total_size,
            etag,
        })
    }

    async fn put(&self, key: &str, bytes: Bytes, content_type: &str) -> Result<(), BlobError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map(|_| ())
            .map_err(unavailable)
    }

    async fn copy(&self, from: &str, to: &str) -> Result<(), BlobError> {
        self.client
            .copy_object()
            .bucket(&self.bucket)
            .copy_source(copy_source(&self.bucket, from))
            .key(to)
            // Without the source's tags: copying them would need GetObjectTagging and PutObjectTagging, and an upload's
            // `pending` tag means nothing outside uploads/.
            .tagging_directive(TaggingDirective::Replace)
            .send()
            .await
            .map(|_| ())
            .map_err(|error| match error.code() {
                Some("NoSuchKey") => BlobError::NotFound(from.to_owned()),
                _ => unavailable(error),
            })
    }

    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map(|_| ())
            .map_err(unavailable)
    }

    async fn mark_kept(&self, key: &str) -> Result<(), BlobError> {
        let tag = Tag::builder()
            .key(STATE_TAG)
            .value(STATE_KEPT)
            .build()
            .map_err(|e| BlobError::Unavailable(Box::new(e)))?;
        let tagging = Tagging::builder()
            .tag_set(tag)
            .build()
            .map_err(|e| BlobError::Unavailable(Box::new(e)))?;
        self.client
            .put_object_tagging()
            .bucket(&self.bucket)
            .key(key)
            .tagging(tagging)
            .send()
            .await
            .map(|_| ())
            .map_err(|error| match error.code() {
                Some("NoSuchKey") => BlobError::NotFound(key.to_owned()),
                _ => unavailable(error),
            })
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
    use chrono::TimeZone;

    use super::*;

    fn offline_store() -> S3BlobStore {
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("AKIDEXAMPLE", "secret", None, None, "test"))
            .build();
        S3BlobStore::new(Client::from_conf(config), "media-bucket")
    }

    fn query_value(url: &str, name: &str) -> Option<String> {
        url::Url::parse(url)
            .ok()?
            .query_pairs()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned())
    }

    #[tokio::test]
    async fn presigned_put_signs_type_length_and_pending_tag_and_lives_at_most_fifteen_minutes() {
        let now = Utc.with_ymd_and_hms(2026, 11, 25, 22, 0, 0).unwrap();
        let target = offline_store()
            .presign_upload_at(
                "uploads/ws_1/med_1",
                "video/mp4",
                1_234,
                now,
                now + chrono::Duration::hours(2),
            )
            .await
            .unwrap();

        assert_eq!(target.method, "PUT");
        assert_eq!(target.expires_at, now + chrono::Duration::minutes(15));
        assert_eq!(query_value(&target.url, "X-Amz-Expires").as_deref(), Some("900"));
        let signed = query_value(&target.url, "X-Amz-SignedHeaders").unwrap();
        let signed: Vec<&str> = signed.split(';').collect();
        assert!(signed.contains(&"content-type"), "{signed:?}");
        assert!(signed.contains(&"content-length"), "{signed:?}");
        assert!(signed.contains(&"x-amz-tagging"), "{signed:?}");
        assert!(target.url.contains("/uploads/ws_1/med_1?"), "{}", target.url);
        let mut headers = target.headers.clone();
        headers.sort();
        assert_eq!(
            headers,
            vec![
                ("content-type".to_owned(), "video/mp4".to_owned()),
                ("x-amz-tagging".to_owned(), "postato-state=pending".to_owned()),
            ]
        );
    }

    #[tokio::test]
    async fn presigning_refuses_an_expiry_in_the_past() {
        let now = Utc::now();
        let result = offline_store()
            .presign_upload_at("k", "image/png", 1, now, now - chrono::Duration::seconds(1))
            .await;
        assert!(matches!(result, Err(BlobError::Unavailable(_))));
    }

    #[test]
    fn ranges_map_to_http_and_back() {
        assert_eq!(range_header(&ByteRange::Span(0..10)).as_deref(), Some("bytes=0-9"));
        assert_eq!(range_header(&ByteRange::Suffix(8)).as_deref(), Some("bytes=-8"));
        assert_eq!(range_header(&ByteRange::Span(5..5)), None);
        assert_eq!(range_header(&ByteRange::Suffix(0)), None);
        assert_eq!(parse_content_range("bytes 10-19/100"), Some((10, 100)));
        assert_eq!(parse_content_range("bytes */100"), None);
        assert_eq!(parse_content_range("items 1-2/3"), None);
    }
}
