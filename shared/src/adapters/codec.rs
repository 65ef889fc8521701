//! What the storage adapters share, so that SQLite and DynamoDB read and write records the same way: records as
//! JSON documents, the version rule of compare-and-set, the sort keys of the listing and due indexes, and cursors.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use chrono::{DateTime, Utc};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{
    domain::{sortable_timestamp, Account, Post},
    ids::{PostId, WorkspaceId},
    ports::{DueEntry, IdempotencyRecord, OAuthState, Page, PendingConnection, StoreError, StoreResult},
};

/// Number of partitions of the due index. Posts due in the same minute spread over them, so one hot minute does not
/// become one hot DynamoDB partition; the dispatcher reads all of them in parallel.
pub const DUE_SHARDS: u8 = 16;

/// Record keys: DynamoDB's partition keys, and in SQLite the names errors use, so a message reads the same on both.
pub(crate) mod record_key {
    use std::fmt::Display;

    pub(crate) fn post(id: impl Display) -> String {
        format!("POST#{id}")
    }

    pub(crate) fn dispatch_watermark() -> String {
        "DISPATCH#WATERMARK".to_owned()
    }

    pub(crate) fn media(id: impl Display) -> String {
        format!("MEDIA#{id}")
    }

    pub(crate) fn account(id: impl Display) -> String {
        format!("ACCT#{id}")
    }

    pub(crate) fn workspace(id: impl Display) -> String {
        format!("WS#{id}")
    }

    pub(crate) fn workspace_name(name: &str) -> String {
        format!("WSNAME#{name}")
    }

    pub(crate) fn idempotency(workspace: impl Display, key: &str) -> String {
        format!("IDEM#{workspace}#{key}")
    }

    pub(crate) fn api_key(hash: &str) -> String {
        format!("KEY#{hash}")
    }

    /// Where the accounts of one TikTok user (in any workspace) are listed.
    pub(crate) fn user_accounts(open_id: &str) -> String {
        format!("OPENID#{open_id}")
    }

    pub(crate) fn oauth_state(state: &str) -> String {
        format!("OAUTH#{state}")
    }

    pub(crate) fn fingerprint(account: impl Display, fingerprint: &str) -> String {
        format!("FP#{account}#{fingerprint}")
    }

    pub(crate) fn webhook_delivery(dedupe_key: &str) -> String {
        format!("WEBHOOK#{dedupe_key}")
    }
}

/// Where a post sits in the listing and due indexes; both adapters derive their index columns from this alone.
pub(crate) struct PostIndexKeys {
    /// `<created_at>#<post id>`, newest last.
    pub listing_key: String,
    /// Present exactly while `post.due_at()` is.
    pub due: Option<DueKeys>,
}

pub(crate) struct DueKeys {
    pub shard: u8,
    /// `<due_at>#<post id>`, earliest first.
    pub key: String,
    /// The exact instant, which the millisecond key may round.
    pub at: String,
}

pub(crate) fn post_index_keys(post: &Post) -> PostIndexKeys {
    PostIndexKeys {
        listing_key: time_ordered_key(post.created_at, post.id.as_str()),
        due: post.due_at().map(|due_at| DueKeys {
            shard: due_shard(&post.id),
            key: time_ordered_key(due_at, post.id.as_str()),
            at: encode_instant(due_at),
        }),
    }
}

pub(crate) fn account_listing_key(account: &Account) -> String {
    time_ordered_key(account.created_at, account.id.as_str())
}

/// A due-index row back into the port's entry.
pub(crate) fn due_entry(due_key: &str, due_at: &str, workspace: &str) -> StoreResult<DueEntry> {
    let record = || format!("due index entry {due_key}");
    let post_id = id_of_time_ordered_key(due_key)
        .and_then(|id| PostId::parse(id).ok())
        .ok_or_else(|| StoreError::Corrupt(record(), "the due key names no post".into()))?;
    let workspace_id = WorkspaceId::parse(workspace.strip_prefix("WS#").unwrap_or(workspace))
        .map_err(|e| StoreError::Corrupt(record(), Box::new(e)))?;
    Ok(DueEntry {
        post_id,
        workspace_id,
        due_at: decode_instant(&record(), due_at)?,
    })
}

/// The post a fingerprint entry (`<sent at>#<post id>`) names.
pub(crate) fn fingerprint_post(record_key: &str, entry_key: &str) -> StoreResult<PostId> {
    id_of_time_ordered_key(entry_key)
        .and_then(|id| PostId::parse(id).ok())
        .ok_or_else(|| StoreError::Corrupt(record_key.to_owned(), "the fingerprint entry names no post".into()))
}

pub(crate) fn encode_doc<T: Serialize>(record_key: &str, record: &T) -> StoreResult<String> {
    // Our records serialise infallibly (string keys only); should that ever change, say which record it was.
    serde_json::to_string(record).map_err(|e| StoreError::Corrupt(record_key.to_owned(), Box::new(e)))
}

pub(crate) fn decode_doc<T: DeserializeOwned>(record_key: &str, doc: &str) -> StoreResult<T> {
    serde_json::from_str(doc).map_err(|e| StoreError::Corrupt(record_key.to_owned(), Box::new(e)))
}

/// The compare-and-set rule of every repo: the new record carries exactly the next version, so that two writers
/// starting from the same read cannot both succeed and a writer cannot skip or reuse a version.
pub(crate) fn ensure_next_version(record_key: &str, new_version: u64, expected_version: u64) -> StoreResult<()> {
    if expected_version.checked_add(1) == Some(new_version) {
        Ok(())
    } else {
        Err(StoreError::Conflict(format!(
            "{record_key}: a write expecting version {expected_version} must carry version {}, not {new_version}",
            expected_version.saturating_add(1)
        )))
    }
}

/// `<timestamp>#<id>`: sorts by time, then id, as a plain string (the listing and due indexes, fingerprints).
pub(crate) fn time_ordered_key(at: DateTime<Utc>, id: &str) -> String {
    format!("{}#{id}", sortable_timestamp(at))
}

/// The id half of a [`time_ordered_key`].
pub(crate) fn id_of_time_ordered_key(key: &str) -> Option<&str> {
    key.split_once('#').map(|(_, id)| id)
}

/// Exclusive upper bound of the time-ordered keys at or before `until`: `$` is the character after `#`, so every
/// key stamped with `until`'s millisecond sorts below it.
pub(crate) fn time_ordered_upper_bound(until: DateTime<Utc>) -> String {
    format!("{}$", sortable_timestamp(until))
}

/// Which due-index shard holds a post: stable across processes and releases (a std hasher is not).
pub(crate) fn due_shard(post: &PostId) -> u8 {
    let digest = Sha256::digest(post.as_str().as_bytes());
    digest[0] % DUE_SHARDS
}

/// Due timestamps are stored with full precision beside the millisecond sort key, so the exact instant survives.
pub(crate) fn encode_instant(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

pub(crate) fn decode_instant(record_key: &str, value: &str) -> StoreResult<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(value)
        .map(|at| at.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt(record_key.to_owned(), Box::new(e)))
}

/// Turns index rows into the port's answer: the index compares at millisecond precision, so drop what is due after
/// `until` within its millisecond, then order earliest first and keep `limit`.
pub(crate) fn finish_due_entries(
    mut entries: Vec<DueEntry>,
    until: DateTime<Utc>,
    after: Option<&DueEntry>,
    limit: usize,
) -> Vec<DueEntry> {
    let after = after.map(due_sort_key);
    entries.retain(|entry| entry.due_at <= until && after.as_ref().is_none_or(|after| &due_sort_key(entry) > after));
    // The index's own order (millisecond, then post id), so that a page ends where the next one starts.
    entries.sort_by_cached_key(due_sort_key);
    entries.truncate(limit);
    entries
}

/// An entry's key in the due index.
pub(crate) fn due_sort_key(entry: &DueEntry) -> String {
    time_ordered_key(entry.due_at, entry.post_id.as_str())
}

/// The due index's lowest key after `after`, or below every key (they start with a year's digits) for the first
/// page. Not empty: DynamoDB refuses an empty string in a key condition.
pub(crate) fn due_page_start(after: Option<&DueEntry>) -> String {
    after.map(due_sort_key).unwrap_or_else(|| "!".to_owned())
}

/// A listing cursor is the listing sort key of the last post handed out, opaque to callers. Both adapters page with
/// `sort key < cursor`, so a cursor stays valid however the pages before it were read.
pub(crate) fn encode_listing_cursor(listing_key: &str) -> String {
    URL_SAFE_NO_PAD.encode(listing_key.as_bytes())
}

pub(crate) fn decode_listing_cursor(cursor: &str) -> StoreResult<String> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| StoreError::InvalidCursor)?;
    let key = String::from_utf8(bytes).map_err(|_| StoreError::InvalidCursor)?;
    let (at, id) = key.split_once('#').ok_or(StoreError::InvalidCursor)?;
    DateTime::parse_from_rfc3339(at).map_err(|_| StoreError::InvalidCursor)?;
    PostId::parse(id).map_err(|_| StoreError::InvalidCursor)?;
    Ok(key)
}

/// How many posts a listing fetches: one more than asked, so that `next_cursor` is set only when more posts match.
pub(crate) fn listing_fetch_size(limit: usize) -> usize {
    limit.max(1).saturating_add(1)
}

/// Cuts the fetched posts (newest first, at most [`listing_fetch_size`]) to the page and its cursor.
pub(crate) fn finish_listing<T>(mut fetched: Vec<(T, String)>, limit: usize) -> Page<T> {
    let limit = limit.max(1);
    let next_cursor = if fetched.len() > limit {
        fetched.truncate(limit);
        fetched.last().map(|(_, key)| encode_listing_cursor(key))
    } else {
        None
    };
    Page {
        items: fetched.into_iter().map(|(item, _)| item).collect(),
        next_cursor,
    }
}

/// The stored form of an [`IdempotencyRecord`] (the port type stays free of serde).
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StoredIdempotency {
    workspace_id: WorkspaceId,
    key: String,
    request_hash: String,
    status: u16,
    body: String,
    expires_at: DateTime<Utc>,
}

impl From<&IdempotencyRecord> for StoredIdempotency {
    fn from(record: &IdempotencyRecord) -> Self {
        Self {
            workspace_id: record.workspace_id.clone(),
            key: record.key.clone(),
            request_hash: record.request_hash.clone(),
            status: record.status,
            body: record.body.clone(),
            expires_at: record.expires_at,
        }
    }
}

impl From<StoredIdempotency> for IdempotencyRecord {
    fn from(stored: StoredIdempotency) -> Self {
        Self {
            workspace_id: stored.workspace_id,
            key: stored.key,
            request_hash: stored.request_hash,
            status: stored.status,
            body: stored.body,
            expires_at: stored.expires_at,
        }
    }
}

/// The stored form of an [`OAuthState`].
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StoredOAuthState {
    state: String,
    workspace_id: WorkspaceId,
    expires_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    connection: Option<PendingConnection>,
}

impl From<&OAuthState> for StoredOAuthState {
    fn from(state: &OAuthState) -> Self {
        Self {
            state: state.state.clone(),
            workspace_id: state.workspace_id.clone(),
            expires_at: state.expires_at,
            connection: state.connection.clone(),
        }
    }
}

impl From<StoredOAuthState> for OAuthState {
    fn from(stored: StoredOAuthState) -> Self {
        Self {
            state: stored.state,
            workspace_id: stored.workspace_id,
            expires_at: stored.expires_at,
            connection: stored.connection,
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};

    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000 + secs, 0).single().unwrap()
    }

    #[test]
    fn next_version_must_follow_the_expected_one() {
        assert!(ensure_next_version("POST#x", 4, 3).is_ok());
        assert!(matches!(
            ensure_next_version("POST#x", 3, 3),
            Err(StoreError::Conflict(_))
        ));
        assert!(matches!(
            ensure_next_version("POST#x", 5, 3),
            Err(StoreError::Conflict(_))
        ));
        assert!(matches!(
            ensure_next_version("POST#x", 0, u64::MAX),
            Err(StoreError::Conflict(_))
        ));
    }

    #[test]
    fn upper_bound_includes_keys_stamped_with_the_same_millisecond() {
        let post = PostId::new();
        let key = time_ordered_key(at(0), post.as_str());
        assert!(key < time_ordered_upper_bound(at(0)));
        assert!(key > time_ordered_upper_bound(at(-1)));
        assert_eq!(id_of_time_ordered_key(&key), Some(post.as_str()));
    }

    #[test]
    fn listing_cursors_round_trip_and_refuse_garbage() {
        let key = time_ordered_key(at(5), PostId::new().as_str());
        assert_eq!(decode_listing_cursor(&encode_listing_cursor(&key)).unwrap(), key);
        for garbage in [
            "",
            "!!!",
            &encode_listing_cursor("no-hash"),
            &encode_listing_cursor("2026-01-01#post_x"),
        ] {
            assert!(
                matches!(decode_listing_cursor(garbage), Err(StoreError::InvalidCursor)),
                "{garbage}"
            );
        }
    }

    #[test]
    fn due_entries_are_cut_at_until_ordered_and_bounded() {
        let until = at(10) + Duration::microseconds(100);
        let entry = |due_at| DueEntry {
            post_id: PostId::new(),
            workspace_id: crate::ids::WorkspaceId::new(),
            due_at,
        };
        let late_in_same_millisecond = entry(at(10) + Duration::microseconds(500));
        let entries = vec![entry(at(9)), late_in_same_millisecond, entry(at(1)), entry(at(5))];
        let finished = finish_due_entries(entries.clone(), until, None, 2);
        assert_eq!(
            finished.iter().map(|e| e.due_at).collect::<Vec<_>>(),
            vec![at(1), at(5)]
        );
        let next_page = finish_due_entries(entries, until, finished.last(), 2);
        assert_eq!(
            next_page.iter().map(|e| e.due_at).collect::<Vec<_>>(),
            vec![at(9)],
            "after the last entry of a page, only what sorts after it"
        );
    }

    #[test]
    fn shards_are_spread_and_stable() {
        let shards: std::collections::HashSet<u8> = (0..400).map(|_| due_shard(&PostId::new())).collect();
        assert_eq!(shards.len(), usize::from(DUE_SHARDS));
        let id = PostId::parse("post_01HZX3V8Q6Y2M4N5P7R9S1T3W5").unwrap();
        assert_eq!(due_shard(&id), due_shard(&id.clone()));
    }
}
