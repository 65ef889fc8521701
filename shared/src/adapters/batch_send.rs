//! Batch calls that accept or refuse each entry (EventBridge PutEvents, SQS SendMessageBatch): only the refused
//! entries are sent again, with a doubling delay, so one throttled entry never re-sends (or fails) the whole batch.

use std::{future::Future, time::Duration};

use crate::ports::BoxError;

/// Entries the service refused (throttled, internal failure) are sent again this many times in all.
const MAX_ATTEMPTS: u32 = 3;
const FIRST_RETRY_DELAY: Duration = Duration::from_millis(50);

/// Why a batch did not get through.
pub(crate) enum BatchFailure {
    /// The service refused the entries with these ids on every attempt.
    Refused(Vec<String>),
    /// The call itself failed (after the SDK's own retries).
    Unavailable(BoxError),
}

/// Sends `entries` (each with its id) and re-sends only those refused, with a doubling delay, up to
/// [`MAX_ATTEMPTS`] calls.
pub(crate) async fn deliver_with_retries<T, F, Fut>(mut pending: Vec<(String, T)>, put: F) -> Result<(), BatchFailure>
where
    T: Clone,
    F: Fn(Vec<T>) -> Fut,
    Fut: Future<Output = Result<Vec<bool>, BoxError>>,
{
    let mut delay = FIRST_RETRY_DELAY;
    for attempt in 1..=MAX_ATTEMPTS {
        let accepted = put(pending.iter().map(|(_, entry)| entry.clone()).collect())
            .await
            .map_err(BatchFailure::Unavailable)?;
        let mut flags = accepted.into_iter();
        // A missing flag counts as refused, so a short answer can never drop an entry.
        pending.retain(|_| !flags.next().unwrap_or(false));
        if pending.is_empty() {
            return Ok(());
        }
        if attempt < MAX_ATTEMPTS {
            tracing::warn!(
                refused = pending.len(),
                attempt,
                "some entries were refused; sending them again"
            );
            tokio::time::sleep(delay).await;
            delay *= 2;
        }
    }
    Err(BatchFailure::Refused(pending.into_iter().map(|(id, _)| id).collect()))
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    fn entries(count: usize) -> Vec<(String, usize)> {
        (0..count).map(|n| (format!("evt_{n}"), n)).collect()
    }

    #[tokio::test]
    async fn only_refused_entries_are_sent_again() {
        let calls = Mutex::new(Vec::new());
        let result = deliver_with_retries(entries(4), |batch: Vec<usize>| {
            calls.lock().unwrap().push(batch.clone());
            let first_call = calls.lock().unwrap().len() == 1;
            // The first call refuses entries 1 and 3; the second accepts everything.
            async move { Ok(batch.iter().map(|n| !first_call || n % 2 == 0).collect()) }
        })
        .await;
        assert!(result.is_ok());
        assert_eq!(*calls.lock().unwrap(), vec![vec![0, 1, 2, 3], vec![1, 3]]);
    }

    #[tokio::test]
    async fn entries_refused_on_every_attempt_are_named() {
        let calls = Mutex::new(0);
        let result = deliver_with_retries(entries(3), |batch: Vec<usize>| {
            *calls.lock().unwrap() += 1;
            async move { Ok(batch.iter().map(|n| *n != 2).collect()) }
        })
        .await;
        assert!(matches!(result, Err(BatchFailure::Refused(ids)) if ids == vec!["evt_2".to_owned()]));
        assert_eq!(*calls.lock().unwrap(), MAX_ATTEMPTS);
    }

    #[tokio::test]
    async fn a_short_answer_counts_the_missing_entries_as_refused() {
        // One flag short on every call: the last entry of each batch never gets an answer.
        let result = deliver_with_retries(entries(2), |batch: Vec<usize>| async move {
            Ok(vec![true; batch.len() - 1])
        })
        .await;
        assert!(matches!(result, Err(BatchFailure::Refused(ids)) if ids == vec!["evt_1".to_owned()]));
    }

    #[tokio::test]
    async fn a_failed_call_is_reported_with_its_cause() {
        let result = deliver_with_retries(entries(1), |_batch: Vec<usize>| async move {
            Err::<Vec<bool>, BoxError>("connection refused".into())
        })
        .await;
        assert!(matches!(result, Err(BatchFailure::Unavailable(e)) if e.to_string() == "connection refused"));
    }
}
