//! The media worker (issue 13 §1): a transport stream too large for the validator's invocation is accepted with its
//! MP4 rendition pending and a remux job; the worker makes the rendition with the same code, stores it with the
//! verdict's note, announces it and wakes the posts that waited for it. Over the fake ports and the in-process queue.

mod support;

use std::time::Duration;

use media_validator::{
    handle_s3_event,
    import::ImportPolicy,
    verdict::codes,
    worker::{handle_job_batch, run_job},
    Outcome, ValidatorError,
};
use serde_json::json;
use shared::{
    adapters::local_jobs::LocalMediaJobs,
    domain::{Media, MediaKind, MediaStatus, RenditionStatus},
    events::EventType,
    ids::{MediaId, PostId},
    media_jobs::{encode_job, MediaJob},
    ports::{JobQueueError, MediaJobInbox, MediaJobQueue, MediaRepo},
};
use support::{s3_event, Harness};

fn codes_of(findings: &[shared::domain::Finding]) -> Vec<String> {
    findings.iter().map(|f| f.code.clone()).collect()
}

async fn queued(jobs: &LocalMediaJobs) -> Vec<MediaJob> {
    let deliveries = jobs
        .receive(Duration::ZERO)
        .await
        .expect("the in-process queue answers");
    for delivery in &deliveries {
        jobs.acknowledge(delivery).await.expect("acknowledged");
    }
    deliveries.into_iter().map(|d| d.job).collect()
}

/// Records `post` on the media's waiting list as the publisher's pre-flight does; whether it could.
async fn wait_on(h: &Harness, media: &MediaId, post: &PostId) -> bool {
    let current = h.repo.get(media).expect("media");
    let mut next = current.clone();
    if !next.add_waiting_post(post) {
        return false;
    }
    next.version += 1;
    h.repo.update_media(&next, current.version).await.expect("recorded");
    true
}

#[tokio::test]
async fn when_a_transport_stream_is_over_the_limit_the_worker_makes_its_rendition_and_wakes_the_waiting_posts() {
    let Ok(dir) = support::corpus::corpus_dir() else {
        println!("skipped: no media corpus");
        return;
    };
    let mut h = Harness::new();
    let ts = std::fs::read(dir.join("mpegts-h264-aac.ts")).expect("corpus TS");
    // Lowered so that the corpus file counts as too large for the validator's invocation.
    h.deps.remux_max_bytes = ts.len() as u64 - 1;
    let media = h.pending_media(MediaKind::Video).await;
    let waiting_before = PostId::new();
    assert!(wait_on(&h, &media.id, &waiting_before).await);
    let etag = h.blobs.insert(&media.object_key, ts.clone());

    handle_s3_event(&h.deps, s3_event(&media.object_key, &etag, ts.len() as u64))
        .await
        .expect("handled");

    // Accepted, the rendition pending, a remux job queued, and nobody woken yet: the rendition is still to come.
    let stored = h.repo.get(&media.id).expect("media");
    assert_eq!(stored.status, MediaStatus::Valid);
    let verdict = stored.verdict.clone().expect("verdict");
    assert!(verdict.accepted, "{verdict:?}");
    assert_eq!(
        verdict.rendition.as_ref().map(|r| r.status),
        Some(RenditionStatus::Pending)
    );
    assert_eq!(verdict.rendition_key, None);
    assert_eq!(stored.waiting_posts, std::slice::from_ref(&waiting_before));
    assert!(h.timer.wakeups().is_empty());
    let job = MediaJob::Remux {
        media_id: media.id.clone(),
    };
    assert_eq!(queued(&h.jobs).await, std::slice::from_ref(&job));
    let events = h.events.published();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].data["renditionStatus"], "pending");
    // A post due meanwhile waits on the rendition as on a verdict.
    let waiting_during = PostId::new();
    assert!(wait_on(&h, &media.id, &waiting_during).await);

    h.clock.advance(chrono::Duration::seconds(90));
    let outcome = run_job(&h.deps, &ImportPolicy::default(), &job).await.expect("remuxed");
    assert_eq!(
        outcome,
        Outcome::Validated {
            media_id: media.id.clone(),
            status: MediaStatus::Valid
        }
    );

    let stored = h.repo.get(&media.id).expect("media");
    let verdict = stored.verdict.clone().expect("verdict");
    let key = Media::mp4_rendition_key_for(&media.workspace_id, &media.id);
    assert_eq!(stored.publishable_key(), key);
    let rendition = verdict.rendition.clone().expect("rendition");
    assert_eq!(rendition.status, RenditionStatus::Ready);
    assert_eq!(
        Some(rendition.size_bytes),
        h.blobs.object(&key).map(|mp4| mp4.len() as u64)
    );
    assert!(!codes_of(&verdict.warnings).contains(&codes::CONTAINER_NEEDS_REMUX.to_owned()));
    assert_eq!(codes_of(&verdict.info), [codes::SENT_AS_MP4]);
    assert!(!stored.awaits_verdict_or_rendition());
    assert!(stored.waiting_posts.is_empty(), "{:?}", stored.waiting_posts);
    let woken: Vec<PostId> = h.timer.wakeups().into_iter().map(|w| w.post_id).collect();
    assert_eq!(woken, [waiting_before, waiting_during]);
    let events = h.events.published();
    assert_eq!(events.len(), 2);
    assert_eq!(events[1].event_type, EventType::MediaValidated);
    assert_eq!(events[1].data["renditionStatus"], "ready");
    assert_ne!(
        events[0].id, events[1].id,
        "the rendition's announcement is a new event"
    );

    // At least once: a second delivery of the job finds nothing left to do.
    let again = run_job(&h.deps, &ImportPolicy::default(), &job).await.expect("no-op");
    assert_eq!(again, Outcome::AlreadyValidated { media_id: media.id });
    assert_eq!(h.repo.get(&stored.id).expect("media"), stored);
    assert!(queued(&h.jobs).await.is_empty());
}

struct RefusingQueue;

#[async_trait::async_trait]
impl MediaJobQueue for RefusingQueue {
    async fn enqueue(&self, _job: &MediaJob) -> Result<(), JobQueueError> {
        Err(JobQueueError::Unavailable("refused".into()))
    }
}

/// The job is queued after the verdict is stored; a queue that refuses it fails the record (Lambda retries the S3
/// event), and the retry, finding the verdict stored, queues it again instead of leaving the rendition pending.
#[tokio::test]
async fn when_the_queue_refuses_the_remux_the_record_fails_and_its_retry_queues_it() {
    let Ok(dir) = support::corpus::corpus_dir() else {
        println!("skipped: no media corpus");
        return;
    };
    let mut h = Harness::new();
    let ts = std::fs::read(dir.join("mpegts-h264-aac.ts")).expect("corpus TS");
    h.deps.remux_max_bytes = 1;
    let queue = std::mem::replace(&mut h.deps.jobs, std::sync::Arc::new(RefusingQueue));
    let media = h.pending_media(MediaKind::Video).await;
    let etag = h.blobs.insert(&media.object_key, ts.clone());
    let event = || s3_event(&media.object_key, &etag, ts.len() as u64);

    let failed = handle_s3_event(&h.deps, event())
        .await
        .expect_err("the job was refused");
    assert!(
        matches!(&failed, ValidatorError::Records { first, .. } if matches!(**first, ValidatorError::Enqueue { .. })),
        "{failed:?}"
    );
    h.deps.jobs = queue;
    handle_s3_event(&h.deps, event())
        .await
        .expect("the retry queues the job");
    assert_eq!(
        queued(&h.jobs).await,
        [MediaJob::Remux {
            media_id: media.id.clone()
        }]
    );
}

/// The Lambda's batch answer: a job that fails is reported for redelivery, a body that is not a job is dropped (it
/// could never succeed), a job about a media that no longer exists is done.
#[tokio::test]
async fn the_worker_reports_only_failed_jobs_for_redelivery() {
    let h = Harness::new();
    let media = h.pending_media(MediaKind::Video).await;
    // The media store fails the first read: transient, so the job comes back.
    h.repo.fail_gets.store(1, std::sync::atomic::Ordering::SeqCst);
    let failing = encode_job(&MediaJob::Remux {
        media_id: media.id.clone(),
    });
    let gone = encode_job(&MediaJob::Remux {
        media_id: MediaId::new(),
    });
    let event = json!({"Records": [
        {"messageId": "m1", "body": failing},
        {"messageId": "m2", "body": "{\"wakeups\":[]}"},
        {"messageId": "m3", "body": gone},
    ]});
    let answer = handle_job_batch(&h.deps, &ImportPolicy::default(), &event).await;
    assert_eq!(answer, json!({"batchItemFailures": [{"itemIdentifier": "m1"}]}));
}
