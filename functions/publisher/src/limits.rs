//! TikTok's per-token rate limits, enforced before calling rather than discovered by a 429: the windows live on the
//! account record and every worker takes its slot with a compare-and-set.

use chrono::{DateTime, Duration, Utc};
use shared::{domain::RateLimited, ids::AccountId, ports::StoreError};

use crate::{PublisherDeps, PublisherError};

/// Takes a slot for a call of `kind` made at `at`, or returns when the next slot frees up.
pub(crate) async fn take_slot(
    deps: &PublisherDeps,
    account_id: &AccountId,
    kind: RateLimited,
    at: DateTime<Utc>,
) -> Result<Result<(), DateTime<Utc>>, PublisherError> {
    for attempt in 0u64..32 {
        let Some(account) = deps.stores.accounts.get_account(account_id).await? else {
            // A vanished account is for the pre-flight to report, not for the limiter.
            return Ok(Ok(()));
        };
        let mut next = account.clone();
        if let Err(free_at) = next.rate_windows.try_take(kind, at) {
            return Ok(Err(free_at));
        }
        next.version = account.version + 1;
        match deps.stores.accounts.update_account(&next, account.version).await {
            Ok(()) => return Ok(Ok(())),
            // Many posts of one account at once: retry with a little jitter so they do not collide in lockstep.
            Err(StoreError::Conflict(_)) => {
                tokio::time::sleep(std::time::Duration::from_millis(
                    1 + (attempt * 7 + rand::random::<u64>() % 5) % 20,
                ))
                .await
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Err(at + Duration::seconds(1)))
}
