//! The media worker (issue 13): the long media jobs, taken one at a time from a queue ([`MediaJob`]): a URL import
//! (fetch, then validate as an upload) and the MP4 remux of a transport stream too large for the validator's
//! invocation. The same code as the validator, run where 15 minutes are available: in AWS an SQS-triggered Lambda
//! (`media-worker` binary, batches of one), on one machine [`run_in_process`] over the in-process queue.
//!
//! Failure semantics: what the job finds wrong with the media is a verdict (a refused URL, a stream that cannot be
//! copied); a store, blob, queue or bus failure fails the job (`Err`), so the queue delivers it again and after a
//! few receives sets it aside. Every job is safe to run twice: it re-reads the media and does only what is left.

use std::{sync::Arc, time::Duration};

use serde_json::{json, Value};
use shared::{
    domain::MediaVerdict,
    ids::MediaId,
    media_jobs::{decode_job, MediaJob},
    ports::{BlobError, MediaJobInbox},
};
use tokio::sync::watch;
use tracing::{error, info, warn};

use crate::{
    handler::{remux_into_verdict, save_verdict_unless, Ignored, Outcome, ValidatorDeps, ValidatorError},
    import::ImportPolicy,
    import_media,
};

/// Runs one job to its end.
pub async fn run_job(deps: &ValidatorDeps, policy: &ImportPolicy, job: &MediaJob) -> Result<Outcome, ValidatorError> {
    match job {
        MediaJob::Import { media_id, url } => import_media(deps, policy, media_id, url).await,
        MediaJob::Remux { media_id } => remux_pending(deps, media_id).await,
    }
}

/// Makes the MP4 rendition an accepted verdict left pending, and stores the verdict with it (or with the violation
/// when the stream cannot be copied), announced anew and waking the posts that waited for it. A media whose
/// rendition is no longer pending (a duplicate job) or whose upload was replaced since (the newer version's
/// verdict decides) is left alone.
pub async fn remux_pending(deps: &ValidatorDeps, media_id: &MediaId) -> Result<Outcome, ValidatorError> {
    let store_error = |source| ValidatorError::Store {
        media: media_id.clone(),
        source,
    };
    let Some(media) = deps.media.get_media(media_id).await.map_err(store_error)? else {
        return Ok(Outcome::Ignored(Ignored::NoSuchMedia(media_id.clone())));
    };
    let Some(pending) = media.verdict.clone().filter(MediaVerdict::rendition_pending) else {
        info!(media_id = %media_id, "no rendition pending; nothing to remux");
        return Ok(Outcome::AlreadyValidated {
            media_id: media_id.clone(),
        });
    };
    let mut remuxed = pending.clone();
    match remux_into_verdict(deps, &media, pending.facts.size_bytes, &mut remuxed).await {
        Ok(()) => {}
        Err(ValidatorError::StoreRendition {
            source: BlobError::Changed(_) | BlobError::NotFound(_),
            ..
        }) => {
            info!(media_id = %media_id, "the upload was replaced or deleted during the remux; its own event decides");
            return Ok(Outcome::Superseded {
                media_id: media_id.clone(),
            });
        }
        Err(error) => return Err(error),
    }
    // A new instant, so the verdict's event is a new one (its id derives from the media, version and instant).
    remuxed.validated_at = deps.clock.now();
    save_verdict_unless(deps, media_id, &remuxed, |current| {
        let still_pending = current
            .verdict
            .as_ref()
            .is_some_and(|v| v.rendition_pending() && v.etag == pending.etag);
        let superseded = (!still_pending).then(|| Outcome::Superseded {
            media_id: media_id.clone(),
        });
        Box::pin(std::future::ready(Ok(superseded)))
    })
    .await
}

/// The SQS event source mapping's batch (`{"Records": [{"messageId", "body"}, ...]}`), answered with the messages
/// to deliver again (`{"batchItemFailures": [{"itemIdentifier": messageId}]}`, the mapping's
/// `ReportBatchItemFailures`). A message that is not a media job is logged and dropped: it could never succeed.
pub async fn handle_job_batch(deps: &ValidatorDeps, policy: &ImportPolicy, event: &Value) -> Value {
    let records = event
        .get("Records")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut failed = Vec::new();
    for record in records {
        let id = record.get("messageId").and_then(Value::as_str).unwrap_or_default();
        let body = record.get("body").and_then(Value::as_str).unwrap_or_default();
        let job = match decode_job(body) {
            Ok(job) => job,
            Err(e) => {
                warn!(message_id = %id, error = %e, "dropped a message that is not a media job");
                continue;
            }
        };
        if !run_logged(deps, policy, &job).await {
            failed.push(json!({ "itemIdentifier": id }));
        }
    }
    json!({ "batchItemFailures": failed })
}

/// Runs the job and logs its end; whether it succeeded (a failure is delivered again).
async fn run_logged(deps: &ValidatorDeps, policy: &ImportPolicy, job: &MediaJob) -> bool {
    match run_job(deps, policy, job).await {
        Ok(outcome) => {
            info!(job = job.kind(), media_id = %job.media_id(), outcome = ?outcome, "media job done");
            true
        }
        Err(error) => {
            error!(
                job = job.kind(),
                media_id = %job.media_id(),
                error.message = %error,
                error.cause_chain = ?error,
                "media job failed; it is delivered again"
            );
            false
        }
    }
}

/// The worker on one machine: takes jobs from `inbox` until `shutdown`, each on its own task, acknowledging those
/// that succeeded (the others come back after the inbox's redelivery delay).
pub async fn run_in_process(
    deps: Arc<ValidatorDeps>,
    policy: ImportPolicy,
    inbox: Arc<dyn MediaJobInbox>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let received = tokio::select! {
            received = inbox.receive(Duration::from_secs(1)) => received,
            _ = shutdown.wait_for(|stop| *stop) => return,
        };
        let deliveries = match received {
            Ok(deliveries) => deliveries,
            Err(error) => {
                warn!(error = %error, "the media job queue could not be read; trying again");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        for delivery in deliveries {
            let (deps, policy, inbox) = (deps.clone(), policy.clone(), inbox.clone());
            tokio::spawn(async move {
                if run_logged(&deps, &policy, &delivery.job).await {
                    if let Err(error) = inbox.acknowledge(&delivery).await {
                        warn!(error = %error, "a finished media job was not acknowledged; it runs again");
                    }
                }
            });
        }
    }
}
