//! How long an upload URL lives, the same for S3 and the local runner.

use chrono::{DateTime, Utc};

use crate::ports::BlobError;

/// Upload URLs live at most 15 minutes (the intake API's promise): a leaked URL is soon worthless.
pub const MAX_UPLOAD_URL_LIFETIME_SECS: i64 = 15 * 60;

#[derive(Debug, thiserror::Error)]
#[error("an upload URL must expire in the future (asked for {requested}, now is {now})")]
pub struct ExpiryNotInFuture {
    pub requested: DateTime<Utc>,
    pub now: DateTime<Utc>,
}

/// The URL's lifetime in whole seconds (signatures count seconds), capped at the maximum, and the instant it ends.
pub(crate) fn upload_window(now: DateTime<Utc>, requested: DateTime<Utc>) -> Result<(u64, DateTime<Utc>), BlobError> {
    let seconds = (requested - now).num_seconds().min(MAX_UPLOAD_URL_LIFETIME_SECS);
    if seconds <= 0 {
        return Err(BlobError::Unavailable(Box::new(ExpiryNotInFuture { requested, now })));
    }
    Ok((seconds.unsigned_abs(), now + chrono::Duration::seconds(seconds)))
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;

    #[test]
    fn lifetime_is_capped_at_fifteen_minutes_and_must_be_positive() {
        let now = Utc::now();
        assert_eq!(
            upload_window(now, now + Duration::hours(1)).unwrap(),
            (900, now + Duration::seconds(900))
        );
        assert_eq!(
            upload_window(now, now + Duration::seconds(60)).unwrap(),
            (60, now + Duration::seconds(60))
        );
        assert!(upload_window(now, now).is_err());
        assert!(upload_window(now, now + Duration::milliseconds(300)).is_err());
        assert!(upload_window(now, now - Duration::seconds(5)).is_err());
    }
}
