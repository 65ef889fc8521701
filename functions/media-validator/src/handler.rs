//! The S3-triggered Lambda's logic, over the ports: find the media by object key, probe the object with ranged
//! reads pinned to its ETag, judge it, store the verdict with a compare-and-set, announce it.
//!
//! Failure semantics: an unreadable or rejected file is a verdict. A store, blob or event-bus failure fails the
//! record (`Err`), so Lambda retries the invocation and its on-failure destination keeps what never succeeds; a
//! retry is harmless because a verdict already stored for the same ETag is not written again, only re-announced
//! under the same event id. An object that names no media is logged and ignored.

use std::sync::Arc;

use aws_lambda_events::event::s3::{S3Event, S3EventRecord};
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use shared::{
    domain::{Finding, Media, MediaKind, MediaStatus, MediaVerdict, Rendition, RenditionStatus},
    events::{Event, EventType},
    ids::{EventId, MediaId, PostId},
    media_jobs::MediaJob,
    ports::{
        BlobError, BlobStore, EventError, EventSink, JobQueueError, MediaJobQueue, MediaRepo, StoreError, Timer, Wakeup,
    },
    Clock,
};
use tracing::{error, info, warn};

use crate::{
    import::{import_url, ImportError, ImportPolicy},
    probe::{Budget, Container},
    remux::store::{remux_object, RemuxObjectError},
    rendition,
    source::{normalise_etag, run_probe, BlobObject, ProbeRun},
    verdict::{codes, judge, Judgement},
};

/// Compare-and-set attempts before giving up on a media record that keeps changing (the Lambda then retries).
pub(crate) const MAX_WRITE_ATTEMPTS: u32 = 5;

/// The largest transport stream the validator Lambda remuxes itself. Reads overlap the part uploads, so at an
/// assumed 30 MB/s per S3 stream 1 GB costs ≈ 35 s of the function's 60 s. A larger one is accepted with its MP4
/// rendition `pending` and a remux job for the media worker (15 minutes; see the README, "Remux").
pub const LAMBDA_REMUX_MAX_BYTES: u64 = 1_000_000_000;

/// What the validator needs from the world.
#[derive(Clone)]
pub struct ValidatorDeps {
    pub media: Arc<dyn MediaRepo>,
    pub blobs: Arc<dyn BlobStore>,
    pub events: Arc<dyn EventSink>,
    /// Wakes the posts that were waiting for a verdict (the publisher's timer).
    pub timer: Arc<dyn Timer>,
    pub clock: Arc<dyn Clock>,
    pub budget: Budget,
    /// The largest MPEG-TS remuxed to MP4 inside this invocation (the Lambda's 60 s bound it; the local runner
    /// has no such limit). A larger one gets a pending rendition and a remux job on `jobs`.
    pub remux_max_bytes: u64,
    /// The media worker's queue: remuxes too large for this invocation.
    pub jobs: Arc<dyn MediaJobQueue>,
}

/// What happened to one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The verdict was stored and announced.
    Validated { media_id: MediaId, status: MediaStatus },
    /// A verdict for this very version was already stored (a duplicate event or a retry); it was announced again.
    AlreadyValidated { media_id: MediaId },
    /// The object was replaced since this event; the newer version's event will carry the verdict.
    Superseded { media_id: MediaId },
    /// Nothing to do; logged.
    Ignored(Ignored),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ignored {
    /// The key is not an upload key (`uploads/<workspace>/<media>`).
    UnknownKey(String),
    /// The key names a media record that does not exist (deleted, or never created).
    NoSuchMedia(MediaId),
    /// The record exists but belongs to another key.
    KeyMismatch(MediaId),
    /// The object was deleted before it could be read.
    ObjectGone(String),
}

#[derive(Debug, thiserror::Error)]
pub enum ValidatorError {
    #[error("reading object {key} failed")]
    Read {
        key: String,
        #[source]
        source: BlobError,
    },
    #[error("making or storing the rendition of {media} failed")]
    StoreRendition {
        media: MediaId,
        #[source]
        source: BlobError,
    },
    #[error("storing the file imported for {media} failed")]
    Import {
        media: MediaId,
        #[source]
        source: BlobError,
    },
    #[error("marking object {key} as kept (turned into media) failed")]
    Keep {
        key: String,
        #[source]
        source: BlobError,
    },
    #[error("the media store failed for {media}")]
    Store {
        media: MediaId,
        #[source]
        source: StoreError,
    },
    #[error("publishing {event} for {media} failed")]
    Publish {
        media: MediaId,
        event: &'static str,
        #[source]
        source: EventError,
    },
    #[error("queueing the remux of {media} failed")]
    Enqueue {
        media: MediaId,
        #[source]
        source: JobQueueError,
    },
    #[error("media {media} kept changing while its verdict was written ({MAX_WRITE_ATTEMPTS} attempts)")]
    Contention { media: MediaId },
    #[error("{failed} of {total} S3 record(s) failed")]
    Records {
        failed: usize,
        total: usize,
        /// The first failure; every one is logged.
        #[source]
        first: Box<ValidatorError>,
    },
}

/// What Lambda records for a failed invocation: every handler error is transient (unreadable files are verdicts),
/// so the type says `Retryable`, and the message carries the whole cause chain (ids and error kinds, no secrets).
impl From<ValidatorError> for lambda_runtime::Diagnostic {
    fn from(error: ValidatorError) -> Self {
        let mut message = error.to_string();
        let mut source = std::error::Error::source(&error);
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        lambda_runtime::Diagnostic {
            error_type: "Retryable".into(),
            error_message: message,
        }
    }
}

/// Handles an S3 notification: every ObjectCreated record in turn. Fails (so that Lambda retries) when any record
/// failed for a transient reason, after trying all of them.
pub async fn handle_s3_event(deps: &ValidatorDeps, event: S3Event) -> Result<(), ValidatorError> {
    let total = event.records.len();
    let mut failures = Vec::new();
    for record in event.records {
        match handle_record(deps, record).await {
            Ok(()) => {}
            Err(error) => {
                error!(error.message = %error, error.cause_chain = ?error, "validating an uploaded object failed");
                failures.push(error);
            }
        }
    }
    let failed = failures.len();
    match failures.into_iter().next() {
        None => Ok(()),
        Some(first) => Err(ValidatorError::Records {
            failed,
            total,
            first: Box::new(first),
        }),
    }
}

async fn handle_record(deps: &ValidatorDeps, record: S3EventRecord) -> Result<(), ValidatorError> {
    let event_name = record.event_name.as_deref().unwrap_or_default();
    if !event_name.starts_with("ObjectCreated") {
        info!(event_name, "not an ObjectCreated record; ignored");
        return Ok(());
    }
    let Some(raw_key) = record.s3.object.key.as_deref() else {
        warn!(event_name, "S3 record without an object key; ignored");
        return Ok(());
    };
    let key = decode_s3_key(raw_key);
    // A size of 0 is treated as unknown: the parallel reads find an empty object just as well, and a missing
    // field must not make a real file look empty.
    let size = record
        .s3
        .object
        .size
        .and_then(|s| u64::try_from(s).ok())
        .filter(|&s| s > 0);
    let outcome = validate(deps, &key, record.s3.object.e_tag.as_deref(), size).await?;
    info!(key = %key, outcome = ?outcome, "object handled");
    Ok(())
}

/// Validates the object at `key` now, whatever its version: what the local runner calls after an upload.
pub async fn validate_object(deps: &ValidatorDeps, key: &str) -> Result<Outcome, ValidatorError> {
    validate(deps, key, None, None).await
}

/// Imports a media's file from the caller's URL (issue 13 §2), then validates it as any upload. A URL that cannot
/// be imported (refused address or scheme, too large, too slow, unreachable) ends the media `invalid` with the
/// failure's code, announced as `media.rejected`; a store failure is transient (`Err`, retried).
pub async fn import_media(
    deps: &ValidatorDeps,
    policy: &ImportPolicy,
    media_id: &MediaId,
    url: &str,
) -> Result<Outcome, ValidatorError> {
    let store_error = |source| ValidatorError::Store {
        media: media_id.clone(),
        source,
    };
    let Some(media) = deps.media.get_media(media_id).await.map_err(store_error)? else {
        return Ok(Outcome::Ignored(Ignored::NoSuchMedia(media_id.clone())));
    };
    match import_url(policy, url, media.kind, deps.blobs.as_ref(), &media.object_key).await {
        Ok(head) => {
            info!(media_id = %media_id, bytes = head.size, "imported from a URL");
            validate_object(deps, &media.object_key).await
        }
        Err(ImportError::Store(source)) => Err(ValidatorError::Import {
            media: media_id.clone(),
            source,
        }),
        Err(ImportError::Failure(failure)) => {
            warn!(media_id = %media_id, code = failure.code(), reason = %failure, "import refused or failed");
            let finding = Finding::new(
                failure.code(),
                format!(
                    "The file could not be imported from its URL: {failure}. Use a public https URL of a file within \
                     the guide's limits, or upload the file instead."
                ),
            );
            write_import_failure(deps, media_id, MediaVerdict::refused(finding, deps.clock.now())).await
        }
    }
}

/// The failure verdict with a compare-and-set; a record that already has a verdict (a later upload won) is left.
async fn write_import_failure(
    deps: &ValidatorDeps,
    media_id: &MediaId,
    verdict: MediaVerdict,
) -> Result<Outcome, ValidatorError> {
    save_verdict_unless(deps, media_id, &verdict, |current| {
        let superseded = current.verdict.is_some().then(|| Outcome::Superseded {
            media_id: media_id.clone(),
        });
        Box::pin(std::future::ready(Ok(superseded)))
    })
    .await
}

/// S3 event keys are URL-encoded, with `+` for spaces.
pub fn decode_s3_key(raw: &str) -> String {
    let spaced = raw.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8_lossy()
        .into_owned()
}

/// `event_size` comes with an S3 event; without one the store is asked (a metadata request, no bytes), so that a
/// small object is read once whichever way it arrives.
async fn validate(
    deps: &ValidatorDeps,
    key: &str,
    event_etag: Option<&str>,
    event_size: Option<u64>,
) -> Result<Outcome, ValidatorError> {
    let Some((workspace_id, media_id)) = Media::id_from_object_key(key) else {
        warn!(key, "object key names no media; ignored");
        return Ok(Outcome::Ignored(Ignored::UnknownKey(key.to_owned())));
    };
    let store_error = |source| ValidatorError::Store {
        media: media_id.clone(),
        source,
    };
    let Some(media) = deps.media.get_media(&media_id).await.map_err(store_error)? else {
        warn!(key, media_id = %media_id, "no media record for this upload; ignored");
        return Ok(Outcome::Ignored(Ignored::NoSuchMedia(media_id)));
    };
    if media.workspace_id != workspace_id || media.object_key != key {
        warn!(key, media_id = %media_id, "the media record belongs to another object key; ignored");
        return Ok(Outcome::Ignored(Ignored::KeyMismatch(media_id)));
    }
    if let (Some(etag), Some(verdict)) = (event_etag, &media.verdict) {
        if verdict.etag.as_deref().map(normalise_etag) == Some(normalise_etag(etag)) {
            publish_verdict(deps, &media, verdict).await?;
            return Ok(Outcome::AlreadyValidated { media_id });
        }
    }
    let media = mark_validating(deps, media).await?;

    let size = match event_size {
        Some(size) => Some(size),
        None => match deps.blobs.head(key).await {
            Ok(head) => Some(head.size),
            Err(BlobError::NotFound(_)) => {
                warn!(key, media_id = %media_id, "the object was deleted before it could be read; ignored");
                return Ok(Outcome::Ignored(Ignored::ObjectGone(key.to_owned())));
            }
            Err(source) => {
                return Err(ValidatorError::Read {
                    key: key.to_owned(),
                    source,
                })
            }
        },
    };
    let object = BlobObject {
        store: deps.blobs.as_ref(),
        key,
        size,
    };
    let mut run = match run_probe(&object, deps.budget, event_etag).await {
        Ok(run) => run,
        Err(BlobError::NotFound(_)) => {
            warn!(key, media_id = %media_id, "the object was deleted before it could be read; ignored");
            return Ok(Outcome::Ignored(Ignored::ObjectGone(key.to_owned())));
        }
        Err(BlobError::Changed(_)) => {
            info!(key, media_id = %media_id, "the object was replaced; the newer version's event decides");
            return Ok(Outcome::Superseded { media_id });
        }
        Err(source) => {
            return Err(ValidatorError::Read {
                key: key.to_owned(),
                source,
            })
        }
    };
    info!(
        key,
        media_id = %media_id,
        requests = run.reads.requests,
        bytes = run.reads.bytes,
        size = run.size,
        "probed"
    );
    let mut judgement = judge(&run.outcome, run.size, Some(media.kind));
    let rendition_key = make_rendition(deps, &media, &mut run, &mut judgement).await?;
    let remuxable = rendition_key.is_none() && remuxable(&media, &run, &judgement);
    let mut verdict = MediaVerdict {
        accepted: judgement.accepted,
        detected_kind: judgement.kind.as_str().to_owned(),
        violations: judgement.violations,
        warnings: judgement.warnings,
        info: Vec::new(),
        facts: judgement.facts,
        fingerprint: run.outcome.as_ref().ok().and_then(|r| r.fingerprint).map(hex::encode),
        rendition_key,
        rendition: None,
        etag: Some(run.etag.clone()),
        validated_at: deps.clock.now(),
    };
    if remuxable && run.size > deps.remux_max_bytes {
        // Too large to copy within this invocation: accepted now, its MP4 made by the media worker (the job is
        // queued once the verdict is stored), and posts wait for it as for a verdict.
        verdict.rendition = Some(Rendition {
            container: "mp4".into(),
            size_bytes: 0,
            status: RenditionStatus::Pending,
            etag: None,
        });
    } else if remuxable {
        remux_into_verdict(deps, &media, run.size, &mut verdict).await?;
    }
    write_verdict(deps, &media_id, key, verdict).await
}

/// `pending_upload` → `validating`, so that a reader sees the bytes arrived. A lost race is fine: whoever won
/// moved the record on, and the verdict write below re-reads it.
async fn mark_validating(deps: &ValidatorDeps, media: Media) -> Result<Media, ValidatorError> {
    if media.status != MediaStatus::PendingUpload {
        return Ok(media);
    }
    let mut next = media.clone();
    next.status = MediaStatus::Validating;
    next.version += 1;
    next.updated_at = deps.clock.now();
    match deps.media.update_media(&next, media.version).await {
        Ok(()) => Ok(next),
        Err(StoreError::Conflict(_)) => Ok(media),
        Err(source) => Err(ValidatorError::Store {
            media: media.id,
            source,
        }),
    }
}

/// For an accepted PNG, stores the JPEG copy the publisher will send. A PNG that cannot be converted cannot be
/// published, so that is a violation; failing to store the copy is transient and fails the record.
async fn make_rendition(
    deps: &ValidatorDeps,
    media: &Media,
    run: &mut ProbeRun,
    judgement: &mut Judgement,
) -> Result<Option<String>, ValidatorError> {
    if !judgement.accepted || judgement.container != Some(Container::Png) || media.kind != MediaKind::Image {
        return Ok(None);
    }
    let converted = match run.take_whole_file() {
        Some(png) => rendition::render_off_thread(png).await.map_err(|e| e.to_string()),
        None => Err("the PNG was not read whole".to_owned()),
    };
    match converted {
        Ok(jpeg) => {
            let key = Media::rendition_key_for(&media.workspace_id, &media.id);
            deps.blobs
                .put(&key, jpeg.into(), "image/jpeg")
                .await
                .map_err(|source| ValidatorError::StoreRendition {
                    media: media.id.clone(),
                    source,
                })?;
            Ok(Some(key))
        }
        Err(reason) => {
            warn!(media_id = %media.id, reason, "PNG rendition failed");
            judgement.violation(
                codes::RENDITION_FAILED,
                format!("This PNG could not be converted to JPEG for TikTok ({reason}). Upload it as a JPEG."),
            );
            Ok(None)
        }
    }
}

/// An accepted MPEG-TS or MPEG-PS video with H.264 (and AAC, or no audio): TikTok takes MP4 and neither of those,
/// and these streams can be copied into one without re-encoding.
fn remuxable(media: &Media, run: &ProbeRun, judgement: &Judgement) -> bool {
    let Ok(report) = &run.outcome else { return false };
    let copyable = report.video.as_ref().is_some_and(|v| v.codec == "h264")
        && report.audio.as_ref().is_none_or(|a| a.codec == "aac");
    let stream = matches!(judgement.container, Some(Container::MpegTs | Container::MpegPs));
    judgement.accepted && stream && media.kind == MediaKind::Video && copyable
}

/// Remuxes the version of the upload that `verdict` is about (`size` bytes) into the media's MP4 rendition and
/// records the outcome on the verdict: the rendition, ready, and the `sent_as_mp4` note; or, for a stream that
/// cannot be copied (lost packets, a splice, a picture that cannot be dated) and so cannot be published, a
/// violation. A store failure is transient and fails the record. Run by the validator for files it has time for,
/// by the media worker for the others.
pub(crate) async fn remux_into_verdict(
    deps: &ValidatorDeps,
    media: &Media,
    size: u64,
    verdict: &mut MediaVerdict,
) -> Result<(), ValidatorError> {
    let container = match verdict.facts.container.as_deref() {
        Some("mpegps") => Container::MpegPs,
        _ => Container::MpegTs,
    };
    let key = Media::mp4_rendition_key_for(&media.workspace_id, &media.id);
    let etag = verdict.etag.as_deref().filter(|etag| !etag.is_empty());
    verdict.rendition = None;
    match remux_object(deps.blobs.as_ref(), &media.object_key, etag, size, &key).await {
        Ok((summary, written)) => {
            info!(
                media_id = %media.id,
                frames = summary.video_frames,
                audio_frames = summary.audio_frames,
                bytes = written.size,
                "remuxed to MP4"
            );
            verdict.warnings.retain(|w| w.code != codes::CONTAINER_NEEDS_REMUX);
            verdict.info.push(Finding::new(
                codes::SENT_AS_MP4,
                format!(
                    "TikTok's posting API takes MP4, not an {}: the same video and audio, not re-encoded, were \
                     copied into an MP4, which is what gets published.",
                    container.name()
                ),
            ));
            verdict.rendition_key = Some(key);
            verdict.rendition = Some(Rendition {
                container: "mp4".into(),
                size_bytes: written.size,
                status: RenditionStatus::Ready,
                etag: Some(normalise_etag(&written.etag).to_owned()),
            });
            Ok(())
        }
        Err(RemuxObjectError::Remux(reason)) => {
            warn!(media_id = %media.id, reason = %reason, "remux failed");
            verdict.accepted = false;
            verdict.violations.push(Finding::new(
                codes::REMUX_FAILED,
                format!(
                    "This {} could not be copied into an MP4 for TikTok ({reason}). Re-encode it: ffmpeg -i \
                     INPUT -c:v libx264 -preset medium -crf 18 -pix_fmt yuv420p -c:a aac -b:a 128k -movflags \
                     +faststart OUTPUT.mp4",
                    container.name()
                ),
            ));
            Ok(())
        }
        Err(RemuxObjectError::Blob(source)) => Err(ValidatorError::StoreRendition {
            media: media.id.clone(),
            source,
        }),
    }
}

/// Stores the verdict unless one for the same version is there already, then announces it. Before each attempt
/// it checks that the object still is the version probed, so a slow probe of an old version never overwrites the
/// verdict of a newer one; the compare-and-set closes the remaining window.
async fn write_verdict(
    deps: &ValidatorDeps,
    media_id: &MediaId,
    key: &str,
    verdict: MediaVerdict,
) -> Result<Outcome, ValidatorError> {
    let (etag, accepted) = (verdict.etag.as_deref().unwrap_or_default(), verdict.accepted);
    save_verdict_unless(deps, media_id, &verdict, |current| {
        Box::pin(async move {
            if let Some(stored) = current.verdict.as_ref().filter(|v| v.etag.as_deref() == Some(etag)) {
                publish_verdict(deps, &current, stored).await?;
                return Ok(Some(Outcome::AlreadyValidated {
                    media_id: media_id.clone(),
                }));
            }
            match deps.blobs.head(key).await {
                Ok(head) if normalise_etag(&head.etag) != etag => {
                    return Ok(Some(Outcome::Superseded {
                        media_id: media_id.clone(),
                    }));
                }
                Ok(_) => {}
                Err(BlobError::NotFound(_)) => return Ok(Some(Outcome::Ignored(Ignored::ObjectGone(key.to_owned())))),
                Err(source) => {
                    return Err(ValidatorError::Read {
                        key: key.to_owned(),
                        source,
                    })
                }
            }
            // Before the verdict, so that a failure here is retried with the whole record; a rejected upload keeps its
            // pending tag and the bucket's lifecycle rule deletes it after a day.
            if accepted {
                match deps.blobs.mark_kept(key).await {
                    Ok(()) => {}
                    Err(BlobError::NotFound(_)) => {
                        return Ok(Some(Outcome::Ignored(Ignored::ObjectGone(key.to_owned()))))
                    }
                    Err(source) => {
                        return Err(ValidatorError::Keep {
                            key: key.to_owned(),
                            source,
                        })
                    }
                }
            }
            Ok(None)
        })
    })
    .await
}

/// What [`save_verdict_unless`] asks of each version it reads (given a copy of it): an outcome that ends it, or
/// `None` to write.
pub(crate) type VerdictGuard<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Option<Outcome>, ValidatorError>> + Send + 'a>>;

/// Writes `verdict` over the latest version of the media with a compare-and-set, read again for as long as other
/// writers win (up to [`MAX_WRITE_ATTEMPTS`]). `unless` looks at each version read before the write and ends it
/// with its own outcome when the record moved on (a newer upload's verdict, one already stored); a record that
/// disappeared is ignored.
pub(crate) async fn save_verdict_unless<'env>(
    deps: &'env ValidatorDeps,
    media_id: &'env MediaId,
    verdict: &'env MediaVerdict,
    mut unless: impl FnMut(Media) -> VerdictGuard<'env>,
) -> Result<Outcome, ValidatorError> {
    let store_error = |source| ValidatorError::Store {
        media: media_id.clone(),
        source,
    };
    for _ in 0..MAX_WRITE_ATTEMPTS {
        let Some(current) = deps.media.get_media(media_id).await.map_err(store_error)? else {
            warn!(media_id = %media_id, "the media record disappeared before its verdict was stored; ignored");
            return Ok(Outcome::Ignored(Ignored::NoSuchMedia(media_id.clone())));
        };
        if let Some(outcome) = unless(current.clone()).await? {
            return Ok(outcome);
        }
        if let Some(outcome) = save_verdict(deps, &current, verdict).await? {
            return Ok(outcome);
        }
    }
    Err(ValidatorError::Contention {
        media: media_id.clone(),
    })
}

/// Writes the verdict (and the status it implies) over `current` with a compare-and-set, then announces it and
/// wakes the posts waiting for it (unless its rendition is still to come). `None` when another writer changed the
/// record first: the caller reads it again.
pub(crate) async fn save_verdict(
    deps: &ValidatorDeps,
    current: &Media,
    verdict: &MediaVerdict,
) -> Result<Option<Outcome>, ValidatorError> {
    let status = if verdict.accepted {
        MediaStatus::Valid
    } else {
        MediaStatus::Invalid
    };
    let mut next = current.clone();
    next.status = status;
    next.verdict = Some(verdict.clone());
    next.version += 1;
    next.updated_at = deps.clock.now();
    let waiting = if next.awaits_verdict_or_rendition() {
        Vec::new()
    } else {
        std::mem::take(&mut next.waiting_posts)
    };
    match deps.media.update_media(&next, current.version).await {
        Ok(()) => {
            publish_verdict(deps, &next, verdict).await?;
            wake_waiting_posts(deps, &current.id, waiting).await;
            Ok(Some(Outcome::Validated {
                media_id: current.id.clone(),
                status,
            }))
        }
        Err(StoreError::Conflict(_)) => Ok(None),
        Err(source) => Err(ValidatorError::Store {
            media: current.id.clone(),
            source,
        }),
    }
}

/// Arms a wakeup now for every post that waited for this verdict: they go out (or fail with the rejection) at once
/// instead of at their next look. Best effort: a post not woken here still looks again on its own (see the
/// publisher's pre-flight), so a timer failure costs seconds, never a post, and must not fail the verdict.
async fn wake_waiting_posts(deps: &ValidatorDeps, media: &MediaId, waiting: Vec<PostId>) {
    if waiting.is_empty() {
        return;
    }
    let now = deps.clock.now();
    let wakeups: Vec<Wakeup> = waiting.into_iter().map(|post_id| Wakeup { post_id, at: now }).collect();
    match deps.timer.schedule(&wakeups, now).await {
        Ok(()) => info!(media_id = %media, posts = wakeups.len(), "woke the posts waiting for this verdict"),
        Err(error) => warn!(
            media_id = %media,
            posts = wakeups.len(),
            error = %error,
            "waiting posts not woken; they look again on their own"
        ),
    }
}

/// Announces a stored verdict and, when its rendition is pending, queues the remux: after the store, so the worker
/// finds what it must do, and again whenever the verdict is announced again (a retried event), so a queue that
/// refused the job once costs a retry, never a rendition left pending. A duplicate job finds nothing to do.
async fn publish_verdict(deps: &ValidatorDeps, media: &Media, verdict: &MediaVerdict) -> Result<(), ValidatorError> {
    announce(deps, media, verdict).await?;
    if verdict.rendition_pending() {
        let job = MediaJob::Remux {
            media_id: media.id.clone(),
        };
        deps.jobs
            .enqueue(&job)
            .await
            .map_err(|source| ValidatorError::Enqueue {
                media: media.id.clone(),
                source,
            })?;
        info!(media_id = %media.id, "remux queued for the media worker");
    }
    Ok(())
}

/// Publishes `media.validated` or `media.rejected`. The event id is derived from the media and the version, so
/// announcing the same verdict again (after a retry) produces the same id and consumers drop the duplicate.
async fn announce(deps: &ValidatorDeps, media: &Media, verdict: &MediaVerdict) -> Result<(), ValidatorError> {
    let event_type = if verdict.accepted {
        EventType::MediaValidated
    } else {
        EventType::MediaRejected
    };
    let codes_of = |findings: &[shared::domain::Finding]| findings.iter().map(|f| f.code.clone()).collect::<Vec<_>>();
    let mut event = Event::new(event_type, media.workspace_id.clone(), verdict.validated_at)
        .media(&media.id)
        .data(serde_json::json!({
            "accepted": verdict.accepted,
            "detectedKind": verdict.detected_kind,
            "violations": codes_of(&verdict.violations),
            "warnings": codes_of(&verdict.warnings),
            "etag": verdict.etag,
            "fingerprint": verdict.fingerprint,
            "renditionKey": verdict.rendition_key,
            "renditionStatus": verdict.rendition.as_ref().map(|r| r.status),
        }));
    if let Some(id) = stable_event_id(
        &media.id,
        verdict.etag.as_deref().unwrap_or_default(),
        verdict.validated_at,
    ) {
        event.id = id;
    }
    deps.events
        .publish(&[event])
        .await
        .map_err(|source| ValidatorError::Publish {
            media: media.id.clone(),
            event: event_type.as_str(),
            source,
        })
}

/// A ULID whose time part is the verdict's time and whose random part is a hash of media id and ETag.
fn stable_event_id(media: &MediaId, etag: &str, at: DateTime<Utc>) -> Option<EventId> {
    let digest = Sha256::new()
        .chain_update(media.as_str())
        .chain_update([0])
        .chain_update(etag)
        .finalize();
    let mut random = [0u8; 16];
    random[6..].copy_from_slice(digest.get(..10)?);
    let millis = u64::try_from(at.timestamp_millis()).ok()?;
    let ulid = ulid::Ulid::from_parts(millis, u128::from_be_bytes(random));
    EventId::parse(&format!("{}_{ulid}", EventId::PREFIX)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lambda_sees_a_retryable_failure_with_its_causes() {
        let error = ValidatorError::Read {
            key: "uploads/ws/med".into(),
            source: BlobError::Unavailable("connection reset".into()),
        };
        let diagnostic = lambda_runtime::Diagnostic::from(error);
        assert_eq!(diagnostic.error_type, "Retryable");
        assert_eq!(
            diagnostic.error_message,
            "reading object uploads/ws/med failed: blob store unavailable: connection reset"
        );
    }

    #[test]
    fn s3_keys_are_url_decoded() {
        assert_eq!(
            decode_s3_key("uploads/ws_1/Happy+Face%21.jpg"),
            "uploads/ws_1/Happy Face!.jpg"
        );
    }

    #[test]
    fn event_ids_are_stable_per_media_and_version() {
        let media = MediaId::new();
        let at = Utc::now();
        let first = stable_event_id(&media, "abc", at);
        assert!(first.is_some());
        assert_eq!(first, stable_event_id(&media, "abc", at));
        assert_ne!(first, stable_event_id(&media, "abd", at));
    }
}
