//! Media bytes on one machine: objects are files under a root folder, uploads go to the local runner's upload route
//! with a URL signed like an S3 presigned PUT (bound to key, type, length and expiry), and the runner serves the
//! files back on its media route (TikTok's PULL_FROM_URL in the sandbox).

use std::{
    io::SeekFrom,
    ops::Range,
    path::{Path, PathBuf},
};

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt};
use hmac::{Hmac, Mac};
use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use super::upload_window::upload_window;
use crate::domain::exposure::is_public_key;
use crate::ports::{BlobError, BlobStore, BoxError, ByteRange, ObjectHead, PartWriter, RangeRead, UploadTarget};

/// Characters escaped in one path segment of a URL (RFC 3986 `pchar` keeps the rest).
const PATH_SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}');

const MAX_KEY_BYTES: usize = 1024;
const DEFAULT_CONTENT_TYPE: &str = "application/octet-stream";

/// The signed part of an upload URL's query, as the runner's upload route receives it (`Query<SignedUpload>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedUpload {
    pub content_type: String,
    pub content_length: u64,
    /// Unix seconds.
    pub expires: i64,
    /// Hex HMAC-SHA256 of key, content type, content length and expiry.
    pub sig: String,
}

/// Why the upload route refuses a PUT.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UploadRejection {
    #[error("the object key is not valid")]
    InvalidKey,
    #[error("the upload URL's signature does not match")]
    BadSignature,
    #[error("the upload URL has expired")]
    Expired,
    #[error("the upload was signed for Content-Type {expected}, not {got}")]
    WrongContentType { expected: String, got: String },
    #[error("the upload was signed for {expected} bytes, not {got}")]
    WrongContentLength { expected: u64, got: u64 },
}

#[derive(Debug, thiserror::Error)]
pub enum UploadWriteError {
    #[error("the body ended after {got} of the {expected} signed bytes")]
    TooShort { expected: u64, got: u64 },
    #[error("the body is longer than the {expected} signed bytes")]
    TooLong { expected: u64 },
    #[error("the upload body could not be read")]
    Body(#[source] BoxError),
    #[error(transparent)]
    Store(#[from] BlobError),
}

#[derive(Debug, thiserror::Error)]
#[error("`{key}` is not a valid object key (relative, `/`-separated, no empty, dot-led or control characters)")]
pub struct InvalidObjectKey {
    pub key: String,
}

pub struct LocalBlobStore {
    root: PathBuf,
    public_base_url: String,
    signing_key: [u8; 32],
}

impl std::fmt::Debug for LocalBlobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalBlobStore")
            .field("root", &self.root)
            .field("public_base_url", &self.public_base_url)
            .field("signing_key", &"[secret]")
            .finish()
    }
}

fn io_failure(error: std::io::Error) -> BlobError {
    BlobError::Unavailable(Box::new(error))
}

/// The object key as a relative path, refusing anything that could leave the root (`..`, absolute paths,
/// backslashes) or collide with this store's own dot-files (temporary files and content-type sidecars).
fn relative_path(key: &str) -> Result<PathBuf, InvalidObjectKey> {
    let invalid = || InvalidObjectKey {
        key: key.chars().take(200).collect(),
    };
    if key.is_empty() || key.len() > MAX_KEY_BYTES || key.contains('\\') || key.chars().any(char::is_control) {
        return Err(invalid());
    }
    let mut path = PathBuf::new();
    for segment in key.split('/') {
        if segment.is_empty() || segment.starts_with('.') || segment.contains(':') {
            return Err(invalid());
        }
        path.push(segment);
    }
    Ok(path)
}

/// A sibling of `path` named `.<file name><suffix>`: hidden from keys, since no key segment may start with a dot.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}{suffix}"))
}

/// Changes whenever the content does: every write renames a new file into place (a new inode) and stamps it.
fn etag_of(metadata: &std::fs::Metadata) -> String {
    let modified = metadata
        .modified()
        .ok()
        .and_then(|at| at.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |since| since.as_nanos());
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(metadata);
    #[cfg(not(unix))]
    let inode = 0u64;
    format!("\"{:x}-{modified:x}-{inode:x}\"", metadata.len())
}

/// The bytes a range names in an object of `size` bytes, as S3 answers: a span that starts inside the object is cut
/// at its end, one that starts at or past the end is not satisfiable, a suffix longer than the object is all of it.
fn resolve_range(range: &ByteRange, size: u64) -> Option<Range<u64>> {
    match *range {
        ByteRange::Span(ref span) if span.start < span.end && span.start < size => Some(span.start..span.end.min(size)),
        ByteRange::Span(_) => None,
        ByteRange::Suffix(length) if length > 0 && size > 0 => Some(size.saturating_sub(length)..size),
        ByteRange::Suffix(_) => None,
    }
}

fn encode_key(key: &str) -> String {
    key.split('/')
        .map(|segment| utf8_percent_encode(segment, PATH_SEGMENT).to_string())
        .collect::<Vec<_>>()
        .join("/")
}

impl LocalBlobStore {
    pub fn new(root_dir: PathBuf, public_base_url: String, signing_key: [u8; 32]) -> Self {
        Self {
            root: root_dir,
            public_base_url: public_base_url.trim_end_matches('/').to_owned(),
            signing_key,
        }
    }

    /// Where the object lives on disk, for the runner's media route to stream it.
    pub fn object_path(&self, key: &str) -> Result<PathBuf, InvalidObjectKey> {
        relative_path(key).map(|relative| self.root.join(relative))
    }

    /// Where an object the runner's media route may serve lives: only public copies (the stand-in for CloudFront,
    /// which may read nothing else), never an upload or a rendition.
    pub fn public_object_path(&self, key: &str) -> Option<PathBuf> {
        is_public_key(key).then(|| self.object_path(key).ok()).flatten()
    }

    /// The URL the runner serves the object at.
    pub fn public_url(&self, key: &str) -> String {
        format!("{}/local/media/{}", self.public_base_url, encode_key(key))
    }

    /// The Content-Type the object was stored with.
    pub async fn content_type(&self, key: &str) -> Result<String, BlobError> {
        let path = self.object_path(key).map_err(|_| BlobError::NotFound(key.to_owned()))?;
        match tokio::fs::read_to_string(sibling(&path, ".content-type")).await {
            Ok(content_type) => Ok(content_type),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(DEFAULT_CONTENT_TYPE.to_owned()),
            Err(e) => Err(io_failure(e)),
        }
    }

    fn signature(&self, key: &str, content_type: &str, content_length: u64, expires: i64) -> Option<Hmac<Sha256>> {
        // HMAC takes keys of any length, so this never fails; the Option only avoids a panic path.
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.signing_key).ok()?;
        // Newlines cannot occur in a key or a header value, so the fields cannot be shifted into one another.
        mac.update(format!("{key}\n{content_type}\n{content_length}\n{expires}").as_bytes());
        Some(mac)
    }

    /// Checks a PUT to the upload route against its signed URL: the signature first (a forged URL learns nothing
    /// else), then the expiry, then that the request's type and length are the signed ones.
    pub fn verify_upload(
        &self,
        key: &str,
        signed: &SignedUpload,
        request_content_type: Option<&str>,
        request_content_length: Option<u64>,
        now: DateTime<Utc>,
    ) -> Result<(), UploadRejection> {
        relative_path(key).map_err(|_| UploadRejection::InvalidKey)?;
        let presented = hex::decode(&signed.sig).map_err(|_| UploadRejection::BadSignature)?;
        self.signature(key, &signed.content_type, signed.content_length, signed.expires)
            .ok_or(UploadRejection::BadSignature)?
            .verify_slice(&presented)
            .map_err(|_| UploadRejection::BadSignature)?;
        if now.timestamp() >= signed.expires {
            return Err(UploadRejection::Expired);
        }
        let content_type = request_content_type.unwrap_or_default().trim();
        if content_type != signed.content_type {
            return Err(UploadRejection::WrongContentType {
                expected: signed.content_type.clone(),
                got: content_type.to_owned(),
            });
        }
        match request_content_length {
            Some(length) if length != signed.content_length => Err(UploadRejection::WrongContentLength {
                expected: signed.content_length,
                got: length,
            }),
            _ => Ok(()),
        }
    }

    /// Stores an upload's body, which must be exactly the signed length; readers see the old object or the new one,
    /// never a part.
    pub async fn write_upload<S, E>(
        &self,
        key: &str,
        signed: &SignedUpload,
        body: S,
    ) -> Result<ObjectHead, UploadWriteError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
        E: Into<BoxError>,
    {
        self.write_atomically(key, &signed.content_type, Some(signed.content_length), body)
            .await
    }

    async fn write_atomically<S, E>(
        &self,
        key: &str,
        content_type: &str,
        expected_length: Option<u64>,
        body: S,
    ) -> Result<ObjectHead, UploadWriteError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
        E: Into<BoxError>,
    {
        let path = self.object_path(key).map_err(|e| BlobError::Unavailable(Box::new(e)))?;
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(io_failure)?;
        }
        let temporary = sibling(&path, &format!(".{}.tmp", ulid::Ulid::new()));
        let written = write_file(&temporary, expected_length, body).await;
        let stored = match written {
            Ok(()) => self.commit(&path, &temporary, content_type).await,
            Err(e) => Err(e),
        };
        if stored.is_err() {
            discard(&temporary).await;
        }
        stored?;
        let metadata = tokio::fs::metadata(&path).await.map_err(io_failure)?;
        Ok(ObjectHead {
            size: metadata.len(),
            etag: etag_of(&metadata),
        })
    }

    async fn commit(&self, path: &Path, temporary: &Path, content_type: &str) -> Result<(), UploadWriteError> {
        commit_file(path, temporary, content_type)
            .await
            .map_err(UploadWriteError::Store)
    }
}

async fn commit_file(path: &Path, temporary: &Path, content_type: &str) -> Result<(), BlobError> {
    tokio::fs::write(sibling(path, ".content-type"), content_type)
        .await
        .map_err(io_failure)?;
    tokio::fs::rename(temporary, path).await.map_err(io_failure)?;
    Ok(())
}

async fn write_file<S, E>(path: &Path, expected_length: Option<u64>, body: S) -> Result<(), UploadWriteError>
where
    S: Stream<Item = Result<Bytes, E>> + Send,
    E: Into<BoxError>,
{
    let mut file = tokio::fs::File::create(path).await.map_err(io_failure)?;
    let mut written: u64 = 0;
    let mut body = std::pin::pin!(body);
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| UploadWriteError::Body(e.into()))?;
        written = written.saturating_add(chunk.len() as u64);
        if let Some(expected) = expected_length.filter(|expected| written > *expected) {
            return Err(UploadWriteError::TooLong { expected });
        }
        file.write_all(&chunk).await.map_err(io_failure)?;
    }
    if let Some(expected) = expected_length.filter(|expected| written != *expected) {
        return Err(UploadWriteError::TooShort { expected, got: written });
    }
    // On disk before the rename publishes it, so a crash cannot leave a complete-looking empty file.
    file.sync_all().await.map_err(io_failure)?;
    Ok(())
}

async fn discard(temporary: &Path) {
    match tokio::fs::remove_file(temporary).await {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!(path = %temporary.display(), error = %e, "could not remove a failed upload's file"),
    }
}

/// A file written part by part at `(number − 1) × part_size`, renamed into place on completion like any write.
struct LocalParts {
    key: String,
    content_type: String,
    part_size: u64,
    path: PathBuf,
    temporary: PathBuf,
    file: tokio::fs::File,
}

#[async_trait]
impl PartWriter for LocalParts {
    async fn write_part(&mut self, number: u32, bytes: Bytes) -> Result<(), BlobError> {
        let index = u64::from(
            number
                .checked_sub(1)
                .ok_or_else(|| BlobError::Unavailable(format!("part numbers start at 1 ({})", self.key).into()))?,
        );
        let at = index
            .checked_mul(self.part_size)
            .ok_or_else(|| BlobError::Unavailable("part offset overflows".into()))?;
        self.file.seek(SeekFrom::Start(at)).await.map_err(io_failure)?;
        self.file.write_all(&bytes).await.map_err(io_failure)
    }

    async fn complete(mut self: Box<Self>) -> Result<ObjectHead, BlobError> {
        self.file.sync_all().await.map_err(io_failure)?;
        if let Err(e) = commit_file(&self.path, &self.temporary, &self.content_type).await {
            discard(&self.temporary).await;
            return Err(e);
        }
        let metadata = tokio::fs::metadata(&self.path).await.map_err(io_failure)?;
        Ok(ObjectHead {
            size: metadata.len(),
            etag: etag_of(&metadata),
        })
    }

    async fn abort(self: Box<Self>) {
        discard(&self.temporary).await;
    }
}

#[async_trait]
impl BlobStore for LocalBlobStore {
    async fn start_parts(
        &self,
        key: &str,
        content_type: &str,
        part_size: u64,
    ) -> Result<Box<dyn PartWriter>, BlobError> {
        if part_size == 0 {
            return Err(BlobError::Unavailable("a part size of 0".into()));
        }
        let path = self.object_path(key).map_err(|e| BlobError::Unavailable(Box::new(e)))?;
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(io_failure)?;
        }
        let temporary = sibling(&path, &format!(".{}.tmp", ulid::Ulid::new()));
        let file = tokio::fs::File::create(&temporary).await.map_err(io_failure)?;
        Ok(Box::new(LocalParts {
            key: key.to_owned(),
            content_type: content_type.to_owned(),
            part_size,
            path,
            temporary,
            file,
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
        relative_path(key).map_err(|e| BlobError::Unavailable(Box::new(e)))?;
        let (_, expires_at) = upload_window(now, now + lifetime)?;
        let expires = expires_at.timestamp();
        let sig = self
            .signature(key, content_type, content_length, expires)
            .map(|mac| hex::encode(mac.finalize().into_bytes()))
            .ok_or_else(|| BlobError::Unavailable("the signing key was refused".into()))?;
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("content_type", content_type)
            .append_pair("content_length", &content_length.to_string())
            .append_pair("expires", &expires.to_string())
            .append_pair("sig", &sig)
            .finish();
        Ok(UploadTarget {
            url: format!("{}/local/uploads/{}?{query}", self.public_base_url, encode_key(key)),
            method: "PUT",
            headers: vec![("content-type".to_owned(), content_type.to_owned())],
            expires_at,
        })
    }

    async fn head(&self, key: &str) -> Result<ObjectHead, BlobError> {
        let path = self.object_path(key).map_err(|_| BlobError::NotFound(key.to_owned()))?;
        match tokio::fs::metadata(&path).await {
            Ok(metadata) if metadata.is_file() => Ok(ObjectHead {
                size: metadata.len(),
                etag: etag_of(&metadata),
            }),
            Ok(_) => Err(BlobError::NotFound(key.to_owned())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(BlobError::NotFound(key.to_owned())),
            Err(e) => Err(io_failure(e)),
        }
    }

    async fn read_range(&self, key: &str, range: ByteRange, if_match: Option<&str>) -> Result<RangeRead, BlobError> {
        let path = self.object_path(key).map_err(|_| BlobError::NotFound(key.to_owned()))?;
        let mut file = match tokio::fs::File::open(&path).await {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(BlobError::NotFound(key.to_owned())),
            Err(e) => return Err(io_failure(e)),
        };
        // The ETag of the open file itself: a replacement renamed in after this point cannot be read by mistake.
        let metadata = file.metadata().await.map_err(io_failure)?;
        if !metadata.is_file() {
            return Err(BlobError::NotFound(key.to_owned()));
        }
        let etag = etag_of(&metadata);
        // ETags compare without their quotes, as S3's If-Match does: callers hold them either way (events carry
        // them bare, reads quoted).
        if if_match.is_some_and(|expected| expected.trim_matches('"') != etag.trim_matches('"')) {
            return Err(BlobError::Changed(key.to_owned()));
        }
        let total_size = metadata.len();
        let span = resolve_range(&range, total_size).ok_or_else(|| BlobError::RangeNotSatisfiable(key.to_owned()))?;
        let length = usize::try_from(span.end - span.start).map_err(|e| BlobError::Unavailable(Box::new(e)))?;
        file.seek(SeekFrom::Start(span.start)).await.map_err(io_failure)?;
        let mut bytes = vec![0; length];
        file.read_exact(&mut bytes).await.map_err(io_failure)?;
        Ok(RangeRead {
            offset: span.start,
            bytes: Bytes::from(bytes),
            total_size,
            etag,
        })
    }

    async fn put(&self, key: &str, bytes: Bytes, content_type: &str) -> Result<(), BlobError> {
        let body = futures::stream::once(async move { Ok::<_, std::convert::Infallible>(bytes) });
        match self.write_atomically(key, content_type, None, body).await {
            Ok(_) => Ok(()),
            Err(UploadWriteError::Store(e)) => Err(e),
            Err(other) => Err(BlobError::Unavailable(Box::new(other))),
        }
    }

    async fn copy(&self, from: &str, to: &str) -> Result<(), BlobError> {
        let source = self
            .object_path(from)
            .map_err(|_| BlobError::NotFound(from.to_owned()))?;
        let content_type = self.content_type(from).await?;
        let path = self.object_path(to).map_err(|e| BlobError::Unavailable(Box::new(e)))?;
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(io_failure)?;
        }
        // Copied beside the target and renamed into place, as every write is: a reader never sees half a copy.
        let temporary = sibling(&path, &format!(".{}.tmp", ulid::Ulid::new()));
        let copied = match tokio::fs::copy(&source, &temporary).await {
            Ok(_) => commit_file(&path, &temporary, &content_type).await,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(BlobError::NotFound(from.to_owned())),
            Err(e) => Err(io_failure(e)),
        };
        if copied.is_err() {
            discard(&temporary).await;
        }
        copied
    }

    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        let Ok(path) = self.object_path(key) else {
            return Ok(());
        };
        for file in [sibling(&path, ".content-type"), path] {
            match tokio::fs::remove_file(&file).await {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_failure(e)),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_cannot_leave_the_root_or_touch_the_stores_own_files() {
        assert!(relative_path("uploads/ws_1/med_1").is_ok());
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../b",
            "a/./b",
            "a//b",
            "a/",
            "a\\b",
            ".hidden",
            "a/.x.content-type",
            "c:/x",
            "a\nb",
        ] {
            assert!(relative_path(bad).is_err(), "{bad:?}");
        }
        assert!(relative_path(&"a".repeat(MAX_KEY_BYTES + 1)).is_err());
    }

    #[test]
    fn ranges_resolve_as_s3_does() {
        assert_eq!(resolve_range(&ByteRange::Span(2..5), 10), Some(2..5));
        assert_eq!(resolve_range(&ByteRange::Span(8..50), 10), Some(8..10));
        assert_eq!(resolve_range(&ByteRange::Span(10..12), 10), None);
        assert_eq!(resolve_range(&ByteRange::Span(3..3), 10), None);
        assert_eq!(resolve_range(&ByteRange::Suffix(4), 10), Some(6..10));
        assert_eq!(resolve_range(&ByteRange::Suffix(40), 10), Some(0..10));
        assert_eq!(resolve_range(&ByteRange::Suffix(0), 10), None);
    }

    fn store(root: &Path) -> LocalBlobStore {
        LocalBlobStore::new(root.to_path_buf(), "http://127.0.0.1:8080/".to_owned(), [7; 32])
    }

    fn signed_from(url: &str) -> SignedUpload {
        let query = url.split_once('?').map(|(_, query)| query).unwrap_or_default();
        serde_urlencoded::from_str(query).unwrap()
    }

    #[tokio::test]
    async fn upload_urls_verify_only_for_their_key_type_length_and_time() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path());
        let now = Utc::now();
        let target = store
            .presign_upload("uploads/a b/c", "image/png", 3, now, chrono::Duration::minutes(5))
            .await
            .unwrap();
        assert!(
            target
                .url
                .starts_with("http://127.0.0.1:8080/local/uploads/uploads/a%20b/c?"),
            "{}",
            target.url
        );
        let signed = signed_from(&target.url);

        assert_eq!(
            store.verify_upload("uploads/a b/c", &signed, Some("image/png"), Some(3), now),
            Ok(())
        );
        assert_eq!(
            store.verify_upload("uploads/other", &signed, Some("image/png"), Some(3), now),
            Err(UploadRejection::BadSignature)
        );
        let forged = SignedUpload {
            content_length: 4_000,
            ..signed.clone()
        };
        assert_eq!(
            store.verify_upload("uploads/a b/c", &forged, Some("image/png"), Some(4_000), now),
            Err(UploadRejection::BadSignature)
        );
        assert_eq!(
            store.verify_upload(
                "uploads/a b/c",
                &signed,
                Some("image/png"),
                Some(3),
                now + chrono::Duration::minutes(6)
            ),
            Err(UploadRejection::Expired)
        );
        assert!(matches!(
            store.verify_upload("uploads/a b/c", &signed, Some("image/jpeg"), Some(3), now),
            Err(UploadRejection::WrongContentType { .. })
        ));
        assert_eq!(
            store.verify_upload("uploads/a b/c", &signed, Some("image/png"), Some(2), now),
            Err(UploadRejection::WrongContentLength { expected: 3, got: 2 })
        );
        assert_eq!(
            store.verify_upload("../x", &signed, Some("image/png"), Some(3), now),
            Err(UploadRejection::InvalidKey)
        );
    }

    #[tokio::test]
    async fn uploads_of_the_wrong_length_leave_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path());
        let signed = SignedUpload {
            content_type: "image/png".into(),
            content_length: 4,
            expires: 0,
            sig: String::new(),
        };
        let chunks = |parts: Vec<&'static [u8]>| {
            futures::stream::iter(
                parts
                    .into_iter()
                    .map(|part| Ok::<_, std::io::Error>(Bytes::from_static(part))),
            )
        };

        let long = store.write_upload("k/long", &signed, chunks(vec![b"abc", b"de"])).await;
        let short = store.write_upload("k/short", &signed, chunks(vec![b"abc"])).await;
        let exact = store
            .write_upload("k/exact", &signed, chunks(vec![b"ab", b"cd"]))
            .await
            .unwrap();

        assert!(matches!(long, Err(UploadWriteError::TooLong { expected: 4 })));
        assert!(matches!(short, Err(UploadWriteError::TooShort { expected: 4, got: 3 })));
        assert_eq!(exact.size, 4);
        assert_eq!(store.content_type("k/exact").await.unwrap(), "image/png");
        let mut left: Vec<String> = std::fs::read_dir(dir.path().join("k"))
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, vec![".exact.content-type".to_owned(), "exact".to_owned()]);
    }

    #[tokio::test]
    async fn the_etag_changes_when_the_content_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path());
        store
            .put("a/b", Bytes::from_static(b"one"), "text/plain")
            .await
            .unwrap();
        let first = store.head("a/b").await.unwrap();
        store
            .put("a/b", Bytes::from_static(b"two"), "text/plain")
            .await
            .unwrap();
        let second = store.head("a/b").await.unwrap();
        assert_ne!(first.etag, second.etag);
        assert_eq!(store.public_url("a/b"), "http://127.0.0.1:8080/local/media/a/b");
    }
}
