//! TikTok's webhook deliveries applied once per delivery key. TikTok redelivers an event it got no 200 for, for up to
//! 72 hours, and a signed delivery can be replayed within the signature's 5-minute tolerance; both repeat the
//! delivery's key ([`WebhookDelivery::dedupe_key`](crate::tiktok::webhook::WebhookDelivery::dedupe_key)).
//!
//! The key is claimed before applying, with a conditional write (of two copies arriving together, one applies) and a
//! short lease; it is recorded as applied only once the delivery was applied, and released when applying failed, so
//! that TikTok's redelivery of a delivery we answered with an error is still applied. A request that dies without
//! releasing (a Lambda timeout) leaves a claim that lapses with its lease, so the redelivery after it applies too.

use std::future::Future;

use chrono::Duration;

use crate::{
    ports::{DeliveryClaim, StoreError, WebhookDeliveryRepo},
    Clock,
};

/// How long an applied delivery's key is kept: TikTok redelivers for up to 72 hours after the event, and the key is
/// recorded when we applied it, which is no earlier than TikTok's first attempt; the extra hour absorbs clocks a
/// little apart and a redelivery sent at the very end of TikTok's window.
pub const DELIVERY_KEY_RETENTION: Duration = Duration::hours(73);

/// How long a delivery being applied holds its key: past API Gateway's 29 s limit on a request (so a claim is never
/// taken over while its request may still be running), yet over long before TikTok's next retry of a request that
/// died.
pub const DELIVERY_CLAIM_LEASE: Duration = Duration::seconds(60);

/// What became of a delivery handed to [`apply_once`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Once<T> {
    /// Applied now, with this outcome.
    Applied(T),
    /// A delivery with the same key was applied before: nothing was done.
    Duplicate,
    /// Another copy is being applied now: nothing was done, and whether that copy succeeds is not known yet, so the
    /// sender should retry rather than hear that it was delivered.
    InProgress,
}

/// Runs `apply` unless a delivery with `key` was applied or is being applied, and records the key once it was.
pub async fn apply_once<T, E>(
    deliveries: &dyn WebhookDeliveryRepo,
    clock: &dyn Clock,
    key: &str,
    apply: impl Future<Output = Result<T, E>>,
) -> Result<Once<T>, E>
where
    E: From<StoreError>,
{
    let now = clock.now();
    match deliveries.claim_delivery(key, now, now + DELIVERY_CLAIM_LEASE).await? {
        DeliveryClaim::AlreadyApplied => return Ok(Once::Duplicate),
        DeliveryClaim::InProgress => return Ok(Once::InProgress),
        DeliveryClaim::Claimed => {}
    }
    match apply.await {
        Ok(outcome) => {
            if let Err(error) = deliveries
                .finish_delivery(key, clock.now() + DELIVERY_KEY_RETENTION)
                .await
            {
                // Applied all the same: the claim lapses with its lease, and a later copy finds the state it would
                // set already there (every webhook applies only from the states it leaves).
                tracing::warn!(%error, delivery = key, "webhook applied but its key not recorded");
            }
            Ok(Once::Applied(outcome))
        }
        Err(error) => {
            if let Err(release) = deliveries.release_delivery(key).await {
                tracing::warn!(error = %release, delivery = key, "failed webhook's claim not released; it lapses with its lease");
            }
            Err(error)
        }
    }
}
