//! The media job queue contract: every job arrives intact (each kind, the caller's URL unaltered), an acknowledged
//! job never comes again, and one left unacknowledged (a worker that failed or died) comes again after the
//! visibility timeout, as the worker's event source mapping relies on.

use std::time::{Duration, Instant};

use shared::{
    ids::MediaId,
    media_jobs::MediaJob,
    ports::{JobDelivery, MediaJobInbox, MediaJobQueue},
};

/// How late a delivery may be on a loaded test machine.
const SLACK: Duration = Duration::from_secs(3);

/// Runs every part of the contract. `redelivery` is the adapter's visibility timeout, set short by the fixture.
pub async fn media_jobs_contract<Q: MediaJobQueue + MediaJobInbox>(
    queue: &Q,
    redelivery: Duration,
) -> anyhow::Result<()> {
    jobs_arrive_intact(queue).await?;
    unacknowledged_jobs_come_again(queue, redelivery).await?;
    Ok(())
}

/// Receives until `wanted` jobs arrived or `within` passed, acknowledging each at once when `acknowledge`.
async fn receive_until<Q: MediaJobInbox>(
    queue: &Q,
    wanted: usize,
    within: Duration,
    acknowledge: bool,
) -> anyhow::Result<Vec<(Instant, JobDelivery)>> {
    let give_up = Instant::now() + within;
    let mut received = Vec::new();
    while received.len() < wanted && Instant::now() < give_up {
        for delivery in queue.receive(Duration::from_millis(500)).await? {
            if acknowledge {
                queue.acknowledge(&delivery).await?;
            }
            received.push((Instant::now(), delivery));
        }
    }
    Ok(received)
}

async fn jobs_arrive_intact<Q: MediaJobQueue + MediaJobInbox>(queue: &Q) -> anyhow::Result<()> {
    let jobs = [
        MediaJob::Import {
            media_id: MediaId::new(),
            // A signed URL, as callers send them: query, percent-escapes and all must survive the trip.
            url: "https://cdn.example.com/v/clip%20one.ts?X-Amz-Signature=ab%2Fcd&expires=1767225600".into(),
        },
        MediaJob::Remux {
            media_id: MediaId::new(),
        },
    ];
    for job in &jobs {
        queue.enqueue(job).await?;
    }
    let received = receive_until(queue, jobs.len(), SLACK, true).await?;
    let mut got: Vec<MediaJob> = received.into_iter().map(|(_, d)| d.job).collect();
    got.sort_by_key(|job| job.kind());
    assert_eq!(got, jobs, "each job once, as sent");
    let after = receive_until(queue, 1, Duration::from_secs(1), true).await?;
    assert!(after.is_empty(), "an acknowledged job never comes again: {after:?}");
    Ok(())
}

async fn unacknowledged_jobs_come_again<Q: MediaJobQueue + MediaJobInbox>(
    queue: &Q,
    redelivery: Duration,
) -> anyhow::Result<()> {
    let failed = MediaJob::Remux {
        media_id: MediaId::new(),
    };
    queue.enqueue(&failed).await?;
    let first = receive_until(queue, 1, SLACK, false).await?;
    let (failed_at, delivery) = first.first().ok_or_else(|| anyhow::anyhow!("the job never came"))?;
    assert_eq!(delivery.job, failed);
    let again = receive_until(queue, 1, redelivery + SLACK + SLACK, true).await?;
    let redelivered: Vec<&MediaJob> = again.iter().map(|(_, d)| &d.job).collect();
    assert_eq!(redelivered, vec![&failed], "the unacknowledged job comes again, once");
    let waited = again[0].0.duration_since(*failed_at);
    assert!(
        waited >= redelivery / 2,
        "redelivered after {waited:?}, before its visibility timeout"
    );
    Ok(())
}
