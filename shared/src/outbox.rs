//! Delivering a record's outbox: the events a transition wrote into the record (with the same compare-and-set) are
//! published, then removed from it. Written together, an event is never lost between the state change and the bus;
//! a failed delivery leaves it in the outbox for the next delivery. Posts and accounts have one each: a post stays
//! due until the publisher delivers it; an account's is delivered again whenever its tokens are next asked for.

use std::collections::HashSet;

use async_trait::async_trait;

use crate::{
    domain::{Account, Post},
    events::Event,
    ids::EventId,
    ports::{AccountRepo, EventSink, PostRepo, StoreError, StoreResult},
};

/// How often removing delivered events is re-applied after losing a compare-and-set to another writer.
const REMOVE_ATTEMPTS: u32 = 10;

/// A record that carries an outbox, and the compare-and-set store it lives in.
#[async_trait]
pub trait OutboxRecord: Clone + Send + Sync + Sized {
    type Store: ?Sized + Send + Sync;
    fn outbox(&self) -> &Vec<Event>;
    fn outbox_mut(&mut self) -> &mut Vec<Event>;
    fn version(&self) -> u64;
    fn set_version(&mut self, version: u64);
    /// For logs: the record's kind and id.
    fn label(&self) -> String;
    async fn write(store: &Self::Store, next: &Self, expected_version: u64) -> StoreResult<()>;
    async fn reread(store: &Self::Store, current: &Self) -> StoreResult<Option<Self>>;
}

/// The one implementation of [`OutboxRecord`] for a record with `outbox`, `version` and `id` fields, over its repo's
/// compare-and-set update and its read by id.
macro_rules! outbox_record {
    ($record:ty, $repo:path, $update:ident, $get:ident, $kind:literal) => {
        #[async_trait]
        impl OutboxRecord for $record {
            type Store = dyn $repo;
            fn outbox(&self) -> &Vec<Event> {
                &self.outbox
            }
            fn outbox_mut(&mut self) -> &mut Vec<Event> {
                &mut self.outbox
            }
            fn version(&self) -> u64 {
                self.version
            }
            fn set_version(&mut self, version: u64) {
                self.version = version;
            }
            fn label(&self) -> String {
                format!("{} {}", $kind, self.id)
            }
            async fn write(store: &Self::Store, next: &Self, expected_version: u64) -> StoreResult<()> {
                store.$update(next, expected_version).await
            }
            async fn reread(store: &Self::Store, current: &Self) -> StoreResult<Option<Self>> {
                store.$get(&current.id).await
            }
        }
    };
}

outbox_record!(Post, PostRepo, update_post, get_post, "post");
outbox_record!(Account, AccountRepo, update_account, get_account, "account");

/// Publishes `post.outbox` and removes what was delivered; returns the post as last written (or read).
pub async fn deliver_outbox(posts: &(dyn PostRepo + 'static), events: &dyn EventSink, post: Post) -> StoreResult<Post> {
    deliver(posts, events, post).await
}

/// Publishes `account.outbox` and removes what was delivered; returns the account as last written (or read).
pub async fn deliver_account_outbox(
    accounts: &(dyn AccountRepo + 'static),
    events: &dyn EventSink,
    account: Account,
) -> StoreResult<Account> {
    deliver(accounts, events, account).await
}

/// A bus that refuses leaves the outbox as it is (logged), which is not an error for the caller: the transition
/// itself is saved.
async fn deliver<R: OutboxRecord>(store: &R::Store, events: &dyn EventSink, record: R) -> StoreResult<R> {
    if record.outbox().is_empty() {
        return Ok(record);
    }
    if let Err(error) = events.publish(record.outbox()).await {
        tracing::warn!(record = %record.label(), error = %error, "events not delivered yet; they stay in the outbox");
        return Ok(record);
    }
    let sent: HashSet<EventId> = record.outbox().iter().map(|event| event.id.clone()).collect();
    let mut current = record;
    for _ in 0..REMOVE_ATTEMPTS {
        let mut next = current.clone();
        next.outbox_mut().retain(|event| !sent.contains(&event.id));
        if next.outbox().len() == current.outbox().len() {
            return Ok(current);
        }
        next.set_version(current.version() + 1);
        match R::write(store, &next, current.version()).await {
            Ok(()) => return Ok(next),
            Err(StoreError::Conflict(_)) => match R::reread(store, &current).await? {
                Some(latest) => current = latest,
                None => return Ok(next),
            },
            // Delivered but still listed: consumers dedupe by event id, and the next delivery removes them.
            Err(error) => {
                tracing::warn!(record = %current.label(), error = %error, "delivered events not yet removed from the outbox");
                return Ok(current);
            }
        }
    }
    Ok(current)
}
