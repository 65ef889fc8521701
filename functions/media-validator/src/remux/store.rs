//! The remuxer over the `BlobStore` port: the transport stream read front to back in ranged reads pinned to its
//! ETag, the MP4 written as a multipart upload, the next read overlapping the upload of the parts the last one
//! completed. Memory: two reads, part 1 (kept until the `mdat` size is known), the parts being sent or filled, and
//! the sample tables, whatever the file size.

use bytes::Bytes;
use shared::ports::{BlobError, BlobStore, ByteRange, ObjectHead, PartWriter};

use super::{RemuxError, RemuxSummary, Remuxer};

/// Source read size and multipart part size (S3's minimum part is 5 MiB; 8 MiB × 10,000 parts = 80 GB).
pub const READ_BYTES: u64 = 8 * 1024 * 1024;
pub const PART_BYTES: u64 = 8 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum RemuxObjectError {
    /// The stream cannot be copied into an MP4 as it is: a verdict about the file.
    #[error(transparent)]
    Remux(#[from] RemuxError),
    /// The store failed (or the source changed): transient.
    #[error("the blob store failed during the remux")]
    Blob(#[from] BlobError),
}

/// Remuxes `source` (version `etag`, `size` bytes) into `target`; returns what was written.
pub async fn remux_object(
    store: &dyn BlobStore,
    source: &str,
    etag: Option<&str>,
    size: u64,
    target: &str,
) -> Result<(RemuxSummary, ObjectHead), RemuxObjectError> {
    remux_object_in_parts(store, source, etag, size, target, PART_BYTES).await
}

/// [`remux_object`] with another part size (tests use small parts to cross many part boundaries).
pub async fn remux_object_in_parts(
    store: &dyn BlobStore,
    source: &str,
    etag: Option<&str>,
    size: u64,
    target: &str,
    part_bytes: u64,
) -> Result<(RemuxSummary, ObjectHead), RemuxObjectError> {
    let mut writer = store.start_parts(target, "video/mp4", part_bytes).await?;
    match write(store, source, etag, size, part_bytes, writer.as_mut()).await {
        Ok(summary) => Ok((summary, writer.complete().await?)),
        Err(e) => {
            writer.abort().await;
            Err(e)
        }
    }
}

async fn write(
    store: &dyn BlobStore,
    source: &str,
    etag: Option<&str>,
    size: u64,
    part_bytes: u64,
    writer: &mut dyn PartWriter,
) -> Result<RemuxSummary, RemuxObjectError> {
    let part = usize::try_from(part_bytes).unwrap_or(usize::MAX).max(64);
    let mut remuxer = Remuxer::new();
    let mut out = remuxer.header();
    let mut first: Option<Vec<u8>> = None;
    let mut next = 1u32;
    let read = |offset: u64| async move {
        let end = (offset + READ_BYTES).min(size);
        let read = store.read_range(source, ByteRange::Span(offset..end), etag).await?;
        if read.offset != offset || read.bytes.is_empty() {
            return Err(BlobError::Changed(source.to_owned()));
        }
        Ok(read.bytes)
    };
    let mut offset = 0;
    let mut current = if size > 0 { Some(read(0).await?) } else { None };
    while let Some(bytes) = current.take() {
        offset += bytes.len() as u64;
        remuxer.push(&bytes, &mut out)?;
        drop(bytes);
        let mut full_parts = Vec::new();
        while out.len() >= part {
            let rest = out.split_off(part);
            let full = std::mem::replace(&mut out, rest);
            if next == 1 {
                first = Some(full);
            } else {
                full_parts.push((next, full));
            }
            next += 1;
        }
        // The next read runs while the finished parts go up: the remux costs max(read, upload), not their sum.
        let upload = async {
            for (number, full) in full_parts {
                writer.write_part(number, Bytes::from(full)).await?;
            }
            Ok::<_, BlobError>(())
        };
        let following = async {
            if offset < size {
                read(offset).await.map(Some)
            } else {
                Ok(None)
            }
        };
        let (uploaded, following) = futures::join!(upload, following);
        uploaded?;
        current = following?;
    }
    let summary = remuxer.finish(&mut out)?;
    let patch = summary.mdat_size;
    let at = patch.offset as usize;
    // The patch lies in the 40-byte header, which is in part 1 whichever buffer holds it.
    let (head, rest) = match first {
        Some(first) => (first, Some(out)),
        None => (out, None),
    };
    let mut head = head;
    head.get_mut(at..at + 8)
        .ok_or_else(|| BlobError::Unavailable("the MP4 header is not in part 1".into()))?
        .copy_from_slice(&patch.bytes);
    writer.write_part(1, Bytes::from(head)).await?;
    if let Some(rest) = rest.filter(|r| !r.is_empty()) {
        writer.write_part(next, Bytes::from(rest)).await?;
    }
    Ok(summary)
}
