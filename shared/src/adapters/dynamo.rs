//! Every storage port on one DynamoDB table (single-table design).
//!
//! Items carry `pk`, `sk`, the record as a JSON string `doc`, `version` for compare-and-set, and the attributes of
//! three global secondary indexes:
//! - `due` (sparse): `due_pk` = `DUE#<shard>`, `due_sk` = `<due at>#<post id>`, present only while the post is due.
//! - `workspace`: `ws_pk` = `WS#<ws>` / `ws_sk` = `<created at>#<post id>` for posts, `WSACCT#<ws>` for accounts.
//! - `publish` (sparse, keys only): `publish_id_pk` = `PUBLISH#<TikTok publish id>`, present once the publisher saved
//!   the id, so that TikTok's webhooks (which name only the publish id) find their post.
//!
//! | item | pk | sk |
//! |---|---|---|
//! | post | `POST#<id>` | `POST` |
//! | media | `MEDIA#<id>` | `MEDIA` |
//! | account | `ACCT#<id>` | `ACCT` |
//! | idempotency record (TTL) | `IDEM#<ws>#<key>` | `IDEM` |
//! | API key | `KEY#<sha256>` | `KEY` |
//! | workspace, and its unique name | `WS#<id>`, `WSNAME#<name>` | `WS`, `WSNAME` |
//! | OAuth state (TTL) | `OAUTH#<state>` | `OAUTH` |
//! | an account of a TikTok user (written with the account; open ids never change) | `OPENID#<open id>` | `ACCT#<id>` |
//! | fingerprint sent to an account (TTL: a day past the duplicate window) | `FP#<account>#<fingerprint>` | `<sent at>#<post id>` |
//! | TikTok webhook delivery key (TTL: the claim's lease, then 73 h once applied; `applied`) | `WEBHOOK#<dedupe key>` | `WEBHOOK` |

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::{
    client::Waiters,
    config::http::HttpResponse,
    error::{ProvideErrorMetadata, SdkError},
    operation::{query::builders::QueryFluentBuilder, transact_write_items::TransactWriteItemsError},
    types::{
        AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType,
        KeysAndAttributes, Projection, ProjectionType, Put, ReturnValue, ScalarAttributeType, TimeToLiveSpecification,
        TimeToLiveStatus, TransactWriteItem,
    },
    Client,
};
use chrono::{DateTime, Duration, Utc};
use futures::future::try_join_all;

use super::codec::{
    account_listing_key, decode_doc, decode_listing_cursor, due_entry, due_page_start, encode_doc, ensure_next_version,
    fingerprint_post, finish_due_entries, finish_listing, listing_fetch_size, post_index_keys, record_key,
    time_ordered_key, time_ordered_upper_bound, StoredIdempotency, StoredOAuthState, DUE_SHARDS,
};
use crate::{
    domain::{sortable_timestamp, Account, ApiKey, Media, Post, Workspace},
    ids::{AccountId, MediaId, PostId, WorkspaceId},
    ports::{
        AccountRepo, BoxError, DeliveryClaim, DispatchWatermark, DueEntry, IdempotencyRecord, IdempotencyRepo,
        MediaRepo, OAuthState, OAuthStateRepo, Page, PostFilter, PostRepo, StoreError, StoreResult,
        WebhookDeliveryRepo, WorkspaceRepo,
    },
    rules::post::DUPLICATE_WINDOW_DAYS,
};

pub const DUE_INDEX: &str = "due";
pub const WORKSPACE_INDEX: &str = "workspace";
pub const PUBLISH_INDEX: &str = "publish";
/// The TTL attribute (epoch seconds): DynamoDB deletes expired idempotency records and OAuth states by itself.
pub const TTL_ATTRIBUTE: &str = "expires_at";

const PK: &str = "pk";
const SK: &str = "sk";
const DOC: &str = "doc";
const VERSION: &str = "version";
const DUE_PK: &str = "due_pk";
const DUE_SK: &str = "due_sk";
/// The exact due instant; `due_sk` rounds it to the millisecond.
const DUE_AT: &str = "due_at";
const WS_PK: &str = "ws_pk";
const WS_SK: &str = "ws_sk";
const STATUS: &str = "status";
const ACCOUNT: &str = "account";
const OPEN_ID: &str = "open_id";
const PUBLISH_ID_PK: &str = "publish_id_pk";
/// On a webhook delivery's key: whether the delivery was applied (else it is being applied until the TTL).
const APPLIED: &str = "applied";
const WEBHOOK_SK: &str = "WEBHOOK";

/// With a filter, DynamoDB reads `Limit` items before filtering: read larger pages so a sparse filter does not cost
/// one round trip per match.
const FILTERED_PAGE_SIZE: usize = 200;

type Item = HashMap<String, AttributeValue>;

/// DynamoDB's limit on keys per BatchGetItem call.
const BATCH_GET_MAX_KEYS: usize = 100;
/// Calls per batch, the first included, before keys DynamoDB keeps leaving unprocessed make the read fail.
const BATCH_GET_ATTEMPTS: u32 = 8;

/// Every storage port on one DynamoDB table. Cheap to clone (the SDK client is a handle).
#[derive(Clone, Debug)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

#[derive(Debug, thiserror::Error)]
#[error("attribute `{0}` is missing or not of the expected type")]
struct MissingAttribute(&'static str);

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn string_attribute<'a>(item: &'a Item, name: &'static str, record: &str) -> StoreResult<&'a str> {
    match item.get(name) {
        Some(AttributeValue::S(value)) => Ok(value),
        _ => Err(StoreError::Corrupt(record.to_owned(), Box::new(MissingAttribute(name)))),
    }
}

fn decode_item<T: serde::de::DeserializeOwned>(item: &Item) -> StoreResult<T> {
    let record = match item.get(PK) {
        Some(AttributeValue::S(pk)) => pk.as_str(),
        _ => "an item without pk",
    };
    decode_doc(record, string_attribute(item, DOC, record)?)
}

fn record_item(pk: String, sk: &str, doc: String) -> Item {
    HashMap::from([(PK.to_owned(), s(pk)), (SK.to_owned(), s(sk)), (DOC.to_owned(), s(doc))])
}

/// DynamoDB's TTL is in whole seconds; rounding up never deletes a record before it expires.
fn ttl_seconds(at: DateTime<Utc>) -> i64 {
    let seconds = at.timestamp();
    if at.timestamp_subsec_nanos() > 0 {
        seconds.saturating_add(1)
    } else {
        seconds
    }
}

fn unavailable<E>(error: SdkError<E, HttpResponse>) -> StoreError
where
    E: std::error::Error + Send + Sync + 'static,
{
    StoreError::Unavailable(Box::new(error))
}

fn is_conditional_check_failure<E: ProvideErrorMetadata>(error: &SdkError<E, HttpResponse>) -> bool {
    error.as_service_error().and_then(ProvideErrorMetadata::code) == Some("ConditionalCheckFailedException")
}

/// A request that could not even be built is a bug in this adapter, reported like an outage so it is not retried
/// silently forever but shows up with its cause.
fn build_failure(error: aws_sdk_dynamodb::error::BuildError) -> StoreError {
    StoreError::Unavailable(Box::new(error))
}

/// What a transactional create requires of the item's key.
enum CreateCondition {
    Absent,
    /// Absent, or holding a record whose TTL has passed but that DynamoDB has not deleted yet (it may take days).
    AbsentOrExpired {
        now: DateTime<Utc>,
    },
}

struct ConditionalPut {
    item: Item,
    condition: CreateCondition,
    /// Names the key in `AlreadyExists` when this put's condition fails.
    record: String,
}

fn post_item(post: &Post) -> StoreResult<Item> {
    let record = record_key::post(&post.id);
    let keys = post_index_keys(post);
    let mut item = record_item(record.clone(), "POST", encode_doc(&record, post)?);
    item.insert(VERSION.to_owned(), n(post.version));
    item.insert(STATUS.to_owned(), s(post.status.as_str()));
    item.insert(ACCOUNT.to_owned(), s(post.account_id.as_str()));
    item.insert(WS_PK.to_owned(), s(posts_partition(&post.workspace_id)));
    item.insert(WS_SK.to_owned(), s(keys.listing_key));
    // A full put replaces the item, so a post that is no longer due simply leaves the sparse index.
    if let Some(due) = keys.due {
        item.insert(DUE_PK.to_owned(), s(due_partition(due.shard)));
        item.insert(DUE_SK.to_owned(), s(due.key));
        item.insert(DUE_AT.to_owned(), s(due.at));
    }
    // Likewise sparse: only posts TikTok has accepted carry a publish id.
    if let Some(publish_id) = &post.publish.publish_id {
        item.insert(PUBLISH_ID_PK.to_owned(), s(publish_partition(publish_id)));
    }
    Ok(item)
}

fn publish_partition(publish_id: &str) -> String {
    format!("PUBLISH#{publish_id}")
}

fn due_partition(shard: u8) -> String {
    format!("DUE#{shard}")
}

fn posts_partition(workspace: &WorkspaceId) -> String {
    format!("WS#{workspace}")
}

fn account_item(account: &Account) -> StoreResult<Item> {
    let record = record_key::account(&account.id);
    let mut item = record_item(record.clone(), "ACCT", encode_doc(&record, account)?);
    item.insert(VERSION.to_owned(), n(account.version));
    item.insert(OPEN_ID.to_owned(), s(account.open_id.as_str()));
    item.insert(WS_PK.to_owned(), s(accounts_partition(&account.workspace_id)));
    item.insert(WS_SK.to_owned(), s(account_listing_key(account)));
    Ok(item)
}

fn accounts_partition(workspace: &WorkspaceId) -> String {
    format!("WSACCT#{workspace}")
}

/// The item that lists an account under its TikTok user, across workspaces.
fn user_account_item(account: &Account) -> Item {
    HashMap::from([
        (PK.to_owned(), s(record_key::user_accounts(&account.open_id))),
        (SK.to_owned(), s(record_key::account(&account.id))),
    ])
}

fn media_item(media: &Media) -> StoreResult<Item> {
    let record = record_key::media(&media.id);
    let mut item = record_item(record.clone(), "MEDIA", encode_doc(&record, media)?);
    item.insert(VERSION.to_owned(), n(media.version));
    Ok(item)
}

fn idempotency_item(record: &IdempotencyRecord) -> StoreResult<Item> {
    let key = record_key::idempotency(&record.workspace_id, &record.key);
    let mut item = record_item(key.clone(), "IDEM", encode_doc(&key, &StoredIdempotency::from(record))?);
    item.insert(TTL_ATTRIBUTE.to_owned(), n(ttl_seconds(record.expires_at)));
    Ok(item)
}

fn workspace_items(workspace: &Workspace) -> StoreResult<(Item, Item)> {
    let record = record_key::workspace(&workspace.id);
    let doc = encode_doc(&record, workspace)?;
    // The name item carries the whole record too, so a lookup by name is one read.
    let by_name = record_item(record_key::workspace_name(&workspace.name), "WSNAME", doc.clone());
    Ok((record_item(record, "WS", doc), by_name))
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    async fn get_record<T: serde::de::DeserializeOwned>(&self, pk: String, sk: &str) -> StoreResult<Option<T>> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, s(pk))
            .key(SK, s(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        output.item().map(decode_item).transpose()
    }

    /// Puts an item whose key must be new.
    async fn put_new(&self, item: Item, record: &str) -> StoreResult<()> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                if is_conditional_check_failure(&e) {
                    StoreError::AlreadyExists(record.to_owned())
                } else {
                    unavailable(e)
                }
            })
    }

    /// Replaces an item only if it is still at `expected_version` (compare-and-set).
    async fn put_if_version(&self, item: Item, record: &str, expected_version: u64) -> StoreResult<()> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("#version = :expected")
            .expression_attribute_names("#version", VERSION)
            .expression_attribute_values(":expected", n(expected_version))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                if is_conditional_check_failure(&e) {
                    StoreError::Conflict(format!("{record} is no longer at version {expected_version}"))
                } else {
                    unavailable(e)
                }
            })
    }

    /// Creates several items atomically; `AlreadyExists` names the first whose key was taken.
    async fn create_together(&self, puts: Vec<ConditionalPut>) -> StoreResult<()> {
        let mut records = Vec::with_capacity(puts.len());
        let mut request = self.client.transact_write_items();
        for put in puts {
            let builder = Put::builder()
                .table_name(&self.table)
                .set_item(Some(put.item))
                .expression_attribute_names("#pk", PK);
            let builder = match put.condition {
                CreateCondition::Absent => builder.condition_expression("attribute_not_exists(#pk)"),
                CreateCondition::AbsentOrExpired { now } => builder
                    .condition_expression("attribute_not_exists(#pk) OR #expires_at <= :now")
                    .expression_attribute_names("#expires_at", TTL_ATTRIBUTE)
                    .expression_attribute_values(":now", n(now.timestamp())),
            };
            request = request.transact_items(
                TransactWriteItem::builder()
                    .put(builder.build().map_err(build_failure)?)
                    .build(),
            );
            records.push(put.record);
        }
        request.send().await.map(|_| ()).map_err(|error| {
            let taken = match error.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(canceled)) => canceled
                    .cancellation_reasons()
                    .iter()
                    .position(|reason| reason.code() == Some("ConditionalCheckFailed"))
                    .and_then(|index| records.get(index)),
                _ => None,
            };
            match taken {
                Some(record) => StoreError::AlreadyExists(record.clone()),
                // Throttling, a concurrent transaction on the same items: retrying may work.
                None => unavailable(error),
            }
        })
    }

    fn query_workspace_index(&self, partition: String) -> QueryFluentBuilder {
        self.client
            .query()
            .table_name(&self.table)
            .index_name(WORKSPACE_INDEX)
            .expression_attribute_names("#ws_pk", WS_PK)
            .expression_attribute_values(":ws_pk", s(partition))
    }

    /// Every item of a query, page after page, stopping early once `enough` says so.
    async fn collect_query<T>(
        &self,
        query: QueryFluentBuilder,
        mut accept: impl FnMut(&Item) -> StoreResult<Option<T>>,
        enough: usize,
    ) -> StoreResult<Vec<T>> {
        let mut found = Vec::new();
        if enough == 0 {
            return Ok(found);
        }
        let mut items = query.into_paginator().items().send();
        while let Some(item) = items.next().await {
            if let Some(value) = accept(&item.map_err(unavailable)?)? {
                found.push(value);
                if found.len() >= enough {
                    break;
                }
            }
        }
        Ok(found)
    }

    async fn due_in_shard(&self, shard: u8, start: &str, bound: &str, limit: usize) -> StoreResult<Vec<DueEntry>> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(DUE_INDEX)
            // No key equals `bound` (it ends in `$` where keys have `#`), so BETWEEN's inclusive top changes nothing.
            .key_condition_expression("#due_pk = :shard AND #due_sk BETWEEN :start AND :bound")
            .projection_expression("#due_sk, #due_at, #ws_pk")
            .expression_attribute_names("#ws_pk", WS_PK)
            .expression_attribute_names("#due_pk", DUE_PK)
            .expression_attribute_names("#due_sk", DUE_SK)
            .expression_attribute_names("#due_at", DUE_AT)
            .expression_attribute_values(":shard", s(due_partition(shard)))
            .expression_attribute_values(":start", s(start))
            .expression_attribute_values(":bound", s(bound))
            .limit(page_size(limit));
        let record = due_partition(shard);
        self.collect_query(
            query,
            |item| {
                let key = string_attribute(item, DUE_SK, &record)?;
                let workspace = string_attribute(item, WS_PK, &record)?;
                Ok(Some(due_entry(
                    key,
                    string_attribute(item, DUE_AT, &record)?,
                    workspace,
                )?))
            },
            limit,
        )
        .await
    }

    async fn accounts_where(
        &self,
        workspace: &WorkspaceId,
        open_id: Option<&str>,
        enough: usize,
    ) -> StoreResult<Vec<Account>> {
        let mut query = self
            .query_workspace_index(accounts_partition(workspace))
            .key_condition_expression("#ws_pk = :ws_pk");
        if let Some(open_id) = open_id {
            query = query
                .filter_expression("#open_id = :open_id")
                .expression_attribute_names("#open_id", OPEN_ID)
                .expression_attribute_values(":open_id", s(open_id));
        }
        self.collect_query(query, |item| decode_item(item).map(Some), enough)
            .await
    }
}

fn page_size(items: usize) -> i32 {
    i32::try_from(items).unwrap_or(i32::MAX).max(1)
}

#[async_trait]
impl PostRepo for DynamoStore {
    async fn create_post(&self, post: &Post, idempotency: Option<&IdempotencyRecord>) -> StoreResult<()> {
        let record = record_key::post(&post.id);
        let item = post_item(post)?;
        match idempotency {
            None => self.put_new(item, &record).await,
            Some(idempotency) => {
                let claim = ConditionalPut {
                    item: idempotency_item(idempotency)?,
                    condition: CreateCondition::AbsentOrExpired { now: post.created_at },
                    record: record_key::idempotency(&idempotency.workspace_id, &idempotency.key),
                };
                let post = ConditionalPut {
                    item,
                    condition: CreateCondition::Absent,
                    record,
                };
                self.create_together(vec![post, claim]).await
            }
        }
    }

    async fn get_post(&self, id: &PostId) -> StoreResult<Option<Post>> {
        self.get_record(record_key::post(id), "POST").await
    }

    async fn update_post(&self, post: &Post, expected_version: u64) -> StoreResult<()> {
        let record = record_key::post(&post.id);
        ensure_next_version(&record, post.version, expected_version)?;
        self.put_if_version(post_item(post)?, &record, expected_version).await
    }

    async fn list_posts(
        &self,
        workspace: &WorkspaceId,
        filter: &PostFilter,
        limit: usize,
        cursor: Option<&str>,
    ) -> StoreResult<Page<Post>> {
        let before = cursor.map(decode_listing_cursor).transpose()?;
        let wanted = listing_fetch_size(limit);
        let mut query = self
            .query_workspace_index(format!("WS#{workspace}"))
            .scan_index_forward(false);
        query = match before {
            Some(before) => query
                .key_condition_expression("#ws_pk = :ws_pk AND #ws_sk < :before")
                .expression_attribute_names("#ws_sk", WS_SK)
                .expression_attribute_values(":before", s(before)),
            None => query.key_condition_expression("#ws_pk = :ws_pk"),
        };
        let mut conditions = Vec::new();
        if let Some(account) = &filter.account_id {
            conditions.push("#account = :account");
            query = query
                .expression_attribute_names("#account", ACCOUNT)
                .expression_attribute_values(":account", s(account.as_str()));
        }
        if let Some(status) = filter.status {
            conditions.push("#status = :status");
            query = query
                .expression_attribute_names("#status", STATUS)
                .expression_attribute_values(":status", s(status.as_str()));
        }
        let query = if conditions.is_empty() {
            query.limit(page_size(wanted))
        } else {
            query
                .filter_expression(conditions.join(" AND "))
                .limit(page_size(wanted.max(FILTERED_PAGE_SIZE)))
        };
        let fetched = self
            .collect_query(
                query,
                |item| {
                    let post: Post = decode_item(item)?;
                    let listing_key = string_attribute(item, WS_SK, &record_key::post(&post.id))?.to_owned();
                    Ok(Some((post, listing_key)))
                },
                wanted,
            )
            .await?;
        Ok(finish_listing(fetched, limit))
    }

    async fn find_post_by_publish_id(&self, publish_id: &str) -> StoreResult<Option<Post>> {
        // The index holds keys only and is eventually consistent: it finds the post, the table gives its latest
        // version (a webhook's compare-and-set must start from that).
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(PUBLISH_INDEX)
            .key_condition_expression("#publish_id_pk = :publish_id_pk")
            .expression_attribute_names("#publish_id_pk", PUBLISH_ID_PK)
            .expression_attribute_values(":publish_id_pk", s(publish_partition(publish_id)))
            .limit(1)
            .send()
            .await
            .map_err(unavailable)?;
        let Some(item) = output.items().first() else {
            return Ok(None);
        };
        let pk = string_attribute(item, PK, &publish_partition(publish_id))?;
        self.get_record(pk.to_owned(), "POST").await
    }

    async fn due_posts(
        &self,
        until: DateTime<Utc>,
        after: Option<&DueEntry>,
        limit: usize,
    ) -> StoreResult<Vec<DueEntry>> {
        let bound = time_ordered_upper_bound(until);
        // BETWEEN is inclusive: the `after` entry itself comes back and `finish_due_entries` drops it (so one more).
        let start = due_page_start(after);
        let fetch = limit.saturating_add(usize::from(after.is_some()));
        // Each shard is ordered on its own: the earliest `limit` overall are among the earliest `limit` of each.
        let shards = try_join_all((0..DUE_SHARDS).map(|shard| self.due_in_shard(shard, &start, &bound, fetch))).await?;
        Ok(finish_due_entries(
            shards.into_iter().flatten().collect(),
            until,
            after,
            limit,
        ))
    }

    async fn fingerprint_published(
        &self,
        account: &AccountId,
        fingerprint: &str,
        since: DateTime<Utc>,
    ) -> StoreResult<Option<PostId>> {
        let record = record_key::fingerprint(account, fingerprint);
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :pk AND #sk >= :since")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#sk", SK)
            .expression_attribute_values(":pk", s(record.as_str()))
            .expression_attribute_values(":since", s(sortable_timestamp(since)))
            .scan_index_forward(false)
            .consistent_read(true)
            .limit(1)
            .send()
            .await
            .map_err(unavailable)?;
        output
            .items()
            .first()
            .map(|item| fingerprint_post(&record, string_attribute(item, SK, &record)?))
            .transpose()
    }

    async fn record_fingerprint(
        &self,
        account: &AccountId,
        fingerprint: &str,
        post: &PostId,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let item = HashMap::from([
            (PK.to_owned(), s(record_key::fingerprint(account, fingerprint))),
            (SK.to_owned(), s(time_ordered_key(at, post.as_str()))),
            // TTL deletion lags by up to days and the query bounds the window itself; the spare day only keeps a
            // record from vanishing while a post that started inside the window is still being checked.
            (
                TTL_ATTRIBUTE.to_owned(),
                n(ttl_seconds(at + Duration::days(DUPLICATE_WINDOW_DAYS + 1))),
            ),
        ]);
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map(|_| ())
            .map_err(unavailable)
    }

    async fn dispatch_watermark(&self) -> StoreResult<Option<DateTime<Utc>>> {
        let stored: Option<DispatchWatermark> = self.get_record(record_key::dispatch_watermark(), "DISPATCH").await?;
        Ok(stored.map(|watermark| watermark.armed_until))
    }

    async fn set_dispatch_watermark(&self, armed_until: DateTime<Utc>) -> StoreResult<()> {
        let doc = encode_doc(&record_key::dispatch_watermark(), &DispatchWatermark { armed_until })?;
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(record_item(record_key::dispatch_watermark(), "DISPATCH", doc)))
            .send()
            .await
            .map(|_| ())
            .map_err(unavailable)
    }
}

#[async_trait]
impl IdempotencyRepo for DynamoStore {
    async fn get_idempotency(
        &self,
        workspace: &WorkspaceId,
        key: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<IdempotencyRecord>> {
        let stored: Option<StoredIdempotency> =
            self.get_record(record_key::idempotency(workspace, key), "IDEM").await?;
        Ok(stored
            .map(IdempotencyRecord::from)
            .filter(|record| record.expires_at > now))
    }
}

#[async_trait]
impl MediaRepo for DynamoStore {
    async fn create_media(&self, media: &Media) -> StoreResult<()> {
        self.put_new(media_item(media)?, &record_key::media(&media.id)).await
    }

    async fn get_media(&self, id: &MediaId) -> StoreResult<Option<Media>> {
        self.get_record(record_key::media(id), "MEDIA").await
    }

    async fn get_media_many(&self, ids: &[MediaId]) -> StoreResult<Vec<Media>> {
        let mut ids: Vec<&MediaId> = ids.iter().collect();
        // BatchGetItem refuses a request naming one key twice.
        ids.sort();
        ids.dedup();
        let mut found = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(BATCH_GET_MAX_KEYS) {
            let keys = chunk
                .iter()
                .map(|id| HashMap::from([(PK.to_owned(), s(record_key::media(id))), (SK.to_owned(), s("MEDIA"))]))
                .collect();
            let mut pending = Some(
                KeysAndAttributes::builder()
                    .set_keys(Some(keys))
                    .consistent_read(true)
                    .build()
                    .map_err(|e| StoreError::Unavailable(Box::new(e)))?,
            );
            let mut attempt = 0;
            while let Some(request) = pending.take() {
                if attempt == BATCH_GET_ATTEMPTS {
                    return Err(StoreError::Unavailable(
                        "BatchGetItem still left keys unprocessed after every retry".into(),
                    ));
                }
                if attempt > 0 {
                    // Unprocessed keys mean throttling: back off before asking again, as the SDK would for a 400.
                    tokio::time::sleep(std::time::Duration::from_millis(25 << attempt.min(6))).await;
                }
                attempt += 1;
                let output = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(unavailable)?;
                for item in output
                    .responses()
                    .and_then(|r| r.get(&self.table))
                    .into_iter()
                    .flatten()
                {
                    found.push(decode_item(item)?);
                }
                pending = output
                    .unprocessed_keys()
                    .and_then(|unprocessed| unprocessed.get(&self.table))
                    .filter(|rest| !rest.keys().is_empty())
                    .cloned();
            }
        }
        Ok(found)
    }

    async fn update_media(&self, media: &Media, expected_version: u64) -> StoreResult<()> {
        let record = record_key::media(&media.id);
        ensure_next_version(&record, media.version, expected_version)?;
        self.put_if_version(media_item(media)?, &record, expected_version).await
    }

    async fn delete_media(&self, id: &MediaId) -> StoreResult<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key(PK, s(record_key::media(id)))
            .key(SK, s("MEDIA"))
            .send()
            .await
            .map(|_| ())
            .map_err(unavailable)
    }
}

#[async_trait]
impl AccountRepo for DynamoStore {
    async fn create_account(&self, account: &Account) -> StoreResult<()> {
        let record = record_key::account(&account.id);
        self.create_together(vec![
            ConditionalPut {
                item: account_item(account)?,
                condition: CreateCondition::Absent,
                record: record.clone(),
            },
            ConditionalPut {
                item: user_account_item(account),
                condition: CreateCondition::Absent,
                record,
            },
        ])
        .await
    }

    async fn get_account(&self, id: &AccountId) -> StoreResult<Option<Account>> {
        self.get_record(record_key::account(id), "ACCT").await
    }

    async fn update_account(&self, account: &Account, expected_version: u64) -> StoreResult<()> {
        let record = record_key::account(&account.id);
        ensure_next_version(&record, account.version, expected_version)?;
        self.put_if_version(account_item(account)?, &record, expected_version)
            .await
    }

    async fn list_accounts(&self, workspace: &WorkspaceId) -> StoreResult<Vec<Account>> {
        self.accounts_where(workspace, None, usize::MAX).await
    }

    async fn find_account_by_open_id(&self, workspace: &WorkspaceId, open_id: &str) -> StoreResult<Option<Account>> {
        Ok(self
            .accounts_where(workspace, Some(open_id), 1)
            .await?
            .into_iter()
            .next())
    }

    async fn find_accounts_by_open_id(&self, open_id: &str) -> StoreResult<Vec<Account>> {
        let partition = record_key::user_accounts(open_id);
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_values(":pk", s(partition.as_str()))
            .consistent_read(true);
        let records = self
            .collect_query(
                query,
                |item| string_attribute(item, SK, &partition).map(|sk| Some(sk.to_owned())),
                usize::MAX,
            )
            .await?;
        let accounts = try_join_all(
            records
                .into_iter()
                .map(|record| self.get_record::<Account>(record, "ACCT")),
        )
        .await?;
        let mut accounts: Vec<Account> = accounts.into_iter().flatten().collect();
        accounts.sort_by_key(account_listing_key);
        Ok(accounts)
    }
}

#[async_trait]
impl WorkspaceRepo for DynamoStore {
    async fn create_workspace(&self, workspace: &Workspace) -> StoreResult<()> {
        let (by_id, by_name) = workspace_items(workspace)?;
        self.create_together(vec![
            ConditionalPut {
                item: by_name,
                condition: CreateCondition::Absent,
                record: record_key::workspace_name(&workspace.name),
            },
            ConditionalPut {
                item: by_id,
                condition: CreateCondition::Absent,
                record: record_key::workspace(&workspace.id),
            },
        ])
        .await
    }

    async fn get_workspace(&self, id: &WorkspaceId) -> StoreResult<Option<Workspace>> {
        self.get_record(record_key::workspace(id), "WS").await
    }

    async fn find_workspace_by_name(&self, name: &str) -> StoreResult<Option<Workspace>> {
        self.get_record(record_key::workspace_name(name), "WSNAME").await
    }

    async fn put_api_key(&self, key: &ApiKey) -> StoreResult<()> {
        let record = record_key::api_key(&key.hash);
        let item = record_item(record.clone(), "KEY", encode_doc(&record, key)?);
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map(|_| ())
            .map_err(unavailable)
    }

    async fn find_api_key(&self, hash: &str) -> StoreResult<Option<ApiKey>> {
        self.get_record(record_key::api_key(hash), "KEY").await
    }
}

#[async_trait]
impl OAuthStateRepo for DynamoStore {
    async fn put_oauth_state(&self, state: &OAuthState) -> StoreResult<()> {
        let record = record_key::oauth_state(&state.state);
        let mut item = record_item(
            record.clone(),
            "OAUTH",
            encode_doc(&record, &StoredOAuthState::from(state))?,
        );
        item.insert(TTL_ATTRIBUTE.to_owned(), n(ttl_seconds(state.expires_at)));
        self.put_new(item, &record).await
    }

    async fn take_oauth_state(&self, state: &str, now: DateTime<Utc>) -> StoreResult<Option<OAuthState>> {
        // Deleting and reading in one call makes the state single-use even against a concurrent taker.
        let output = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key(PK, s(record_key::oauth_state(state)))
            .key(SK, s("OAUTH"))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(unavailable)?;
        let taken: Option<StoredOAuthState> = output.attributes().map(decode_item).transpose()?;
        Ok(taken.map(OAuthState::from).filter(|state| state.expires_at > now))
    }
}

fn webhook_delivery_item(key: &str, applied: bool, until: DateTime<Utc>) -> Item {
    HashMap::from([
        (PK.to_owned(), s(record_key::webhook_delivery(key))),
        (SK.to_owned(), s(WEBHOOK_SK)),
        (APPLIED.to_owned(), AttributeValue::Bool(applied)),
        (TTL_ATTRIBUTE.to_owned(), n(ttl_seconds(until))),
    ])
}

#[async_trait]
impl WebhookDeliveryRepo for DynamoStore {
    async fn claim_delivery(
        &self,
        key: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<DeliveryClaim> {
        // The TTL attribute doubles as the holding time: DynamoDB deletes lazily, so the condition judges it too.
        let claimed = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(webhook_delivery_item(key, false, lease_until)))
            .condition_expression("attribute_not_exists(#pk) OR #expires_at <= :now")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#expires_at", TTL_ATTRIBUTE)
            .expression_attribute_values(":now", n(now.timestamp()))
            .send()
            .await;
        match claimed {
            Ok(_) => return Ok(DeliveryClaim::Claimed),
            Err(error) if is_conditional_check_failure(&error) => {}
            Err(error) => return Err(unavailable(error)),
        }
        let holder = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, s(record_key::webhook_delivery(key)))
            .key(SK, s(WEBHOOK_SK))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        // Gone since the condition failed (released): still not ours, and the sender's retry will find it free.
        let applied = matches!(
            holder.item().and_then(|item| item.get(APPLIED)),
            Some(AttributeValue::Bool(true))
        );
        Ok(if applied {
            DeliveryClaim::AlreadyApplied
        } else {
            DeliveryClaim::InProgress
        })
    }

    async fn finish_delivery(&self, key: &str, expires_at: DateTime<Utc>) -> StoreResult<()> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(webhook_delivery_item(key, true, expires_at)))
            .send()
            .await
            .map(|_| ())
            .map_err(unavailable)
    }

    async fn release_delivery(&self, key: &str) -> StoreResult<()> {
        let released = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key(PK, s(record_key::webhook_delivery(key)))
            .key(SK, s(WEBHOOK_SK))
            .condition_expression("#applied = :claimed")
            .expression_attribute_names("#applied", APPLIED)
            .expression_attribute_values(":claimed", AttributeValue::Bool(false))
            .send()
            .await;
        match released {
            // Already applied (or gone): nothing of ours to give up.
            Err(error) if is_conditional_check_failure(&error) => Ok(()),
            other => other.map(|_| ()).map_err(unavailable),
        }
    }
}

/// Creates the table with its three indexes (on-demand; `due` and `workspace` project ALL, `publish` keys only) and TTL on [`TTL_ATTRIBUTE`], and waits until
/// it is active. A table that already exists is left as it is, so the local runner can call this at every start.
pub async fn create_table(client: &Client, table: &str) -> Result<(), StoreError> {
    let attribute = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .map_err(build_failure)
    };
    let key = |name: &str, key_type: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(key_type)
            .build()
            .map_err(build_failure)
    };
    let index = |name: &str, partition: &str, sort: &str| -> Result<GlobalSecondaryIndex, StoreError> {
        GlobalSecondaryIndex::builder()
            .index_name(name)
            .key_schema(key(partition, KeyType::Hash)?)
            .key_schema(key(sort, KeyType::Range)?)
            .projection(Projection::builder().projection_type(ProjectionType::All).build())
            .build()
            .map_err(build_failure)
    };
    let created = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .set_attribute_definitions(Some(
            [PK, SK, DUE_PK, DUE_SK, WS_PK, WS_SK, PUBLISH_ID_PK]
                .into_iter()
                .map(attribute)
                .collect::<Result<_, _>>()?,
        ))
        .key_schema(key(PK, KeyType::Hash)?)
        .key_schema(key(SK, KeyType::Range)?)
        .global_secondary_indexes(index(DUE_INDEX, DUE_PK, DUE_SK)?)
        .global_secondary_indexes(index(WORKSPACE_INDEX, WS_PK, WS_SK)?)
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(PUBLISH_INDEX)
                .key_schema(key(PUBLISH_ID_PK, KeyType::Hash)?)
                .projection(Projection::builder().projection_type(ProjectionType::KeysOnly).build())
                .build()
                .map_err(build_failure)?,
        )
        .send()
        .await;
    match created {
        Ok(_) => {}
        Err(error)
            if error
                .as_service_error()
                .is_some_and(|e| e.is_resource_in_use_exception()) => {}
        Err(error) => return Err(unavailable(error)),
    }
    client
        .wait_until_table_exists()
        .table_name(table)
        .wait(std::time::Duration::from_secs(120))
        .await
        .map_err(|e| StoreError::Unavailable(Box::new(e) as BoxError))?;

    let ttl = client
        .describe_time_to_live()
        .table_name(table)
        .send()
        .await
        .map_err(unavailable)?;
    let ttl_on = ttl
        .time_to_live_description()
        .and_then(|description| description.time_to_live_status())
        .is_some_and(|status| matches!(status, TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling));
    if !ttl_on {
        client
            .update_time_to_live()
            .table_name(table)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .enabled(true)
                    .attribute_name(TTL_ATTRIBUTE)
                    .build()
                    .map_err(build_failure)?,
            )
            .send()
            .await
            .map_err(unavailable)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
    use serde_json::{json, Value};
    use tokio::{
        io::{AsyncReadExt, AsyncWriteExt},
        net::TcpListener,
    };

    use super::*;
    use crate::domain::{MediaKind, MediaStatus};

    const TABLE: &str = "postato-test";

    fn media() -> Media {
        let (id, workspace_id, at) = (MediaId::new(), WorkspaceId::new(), Utc::now());
        Media {
            object_key: Media::object_key_for(&workspace_id, &id),
            id,
            workspace_id,
            kind: MediaKind::Image,
            content_type: "image/jpeg".into(),
            declared_size: 1000,
            file_name: "a.jpg".into(),
            status: MediaStatus::Valid,
            verdict: None,
            created_at: at,
            updated_at: at,
            version: 1,
            waiting_posts: Vec::new(),
        }
    }

    fn wire_item(media: &Media) -> Value {
        let record = record_key::media(&media.id);
        let doc = encode_doc(&record, media).expect("encodes");
        json!({ "pk": {"S": record}, "sk": {"S": "MEDIA"}, "doc": {"S": doc}, "version": {"N": "1"} })
    }

    fn wire_key(media: &Media) -> Value {
        json!({ "pk": {"S": record_key::media(&media.id)}, "sk": {"S": "MEDIA"} })
    }

    /// A DynamoDB endpoint answering each request with the next of `answers` (JSON protocol); keeps the requests.
    async fn fake_dynamodb(answers: Vec<Value>) -> (String, Arc<Mutex<Vec<Value>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let endpoint = format!("http://{}", listener.local_addr().expect("bound"));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        let answers = Arc::new(Mutex::new(answers.into_iter()));
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let (seen, answers) = (seen.clone(), answers.clone());
                tokio::spawn(async move {
                    let mut buffer = Vec::new();
                    loop {
                        let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") else {
                            let mut chunk = [0; 8192];
                            match socket.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                            }
                            continue;
                        };
                        let head = String::from_utf8_lossy(&buffer[..end]).to_ascii_lowercase();
                        let length: usize = head
                            .lines()
                            .find_map(|line| line.strip_prefix("content-length:"))
                            .and_then(|value| value.trim().parse().ok())
                            .unwrap_or(0);
                        while buffer.len() < end + 4 + length {
                            let mut chunk = [0; 8192];
                            match socket.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                            }
                        }
                        let body: Vec<u8> = buffer.drain(..end + 4 + length).skip(end + 4).collect();
                        seen.lock()
                            .unwrap()
                            .push(serde_json::from_slice(&body).unwrap_or(Value::Null));
                        let answer = answers.lock().unwrap().next().unwrap_or_else(|| json!({}));
                        let answer = answer.to_string();
                        let response = format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.0\r\n\
                             content-length: {}\r\n\r\n{answer}",
                            answer.len()
                        );
                        if socket.write_all(response.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (endpoint, requests)
    }

    fn store(endpoint: &str) -> DynamoStore {
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .endpoint_url(endpoint)
            .region(Region::new("eu-west-1"))
            .credentials_provider(Credentials::new("AKIDTEST", "test-secret", None, None, "test"))
            .build();
        DynamoStore::new(Client::from_conf(config), TABLE)
    }

    fn requested_keys(request: &Value) -> usize {
        request["RequestItems"][TABLE]["Keys"].as_array().map_or(0, Vec::len)
    }

    #[tokio::test]
    async fn a_batch_read_asks_again_for_the_keys_dynamodb_left_unprocessed() {
        let (a, b, c) = (media(), media(), media());
        let (endpoint, requests) = fake_dynamodb(vec![
            json!({
                "Responses": { TABLE: [wire_item(&a)] },
                "UnprocessedKeys": { TABLE: { "Keys": [wire_key(&b), wire_key(&c)] } },
            }),
            json!({ "Responses": { TABLE: [wire_item(&b), wire_item(&c)] }, "UnprocessedKeys": {} }),
        ])
        .await;

        let ids = [a.id.clone(), b.id.clone(), c.id.clone(), a.id.clone()];
        let mut found = store(&endpoint).get_media_many(&ids).await.expect("read");

        found.sort_by(|x, y| x.id.cmp(&y.id));
        let mut expected = vec![a, b, c];
        expected.sort_by(|x, y| x.id.cmp(&y.id));
        assert_eq!(found, expected);
        let requests = requests.lock().unwrap();
        let counts: Vec<usize> = requests.iter().map(requested_keys).collect();
        assert_eq!(
            counts,
            [3, 2],
            "a repeated id is asked once; the retry asks only for what was left"
        );
    }

    #[tokio::test]
    async fn a_batch_read_asks_at_most_100_keys_per_call() {
        let ids: Vec<MediaId> = (0..130).map(|_| MediaId::new()).collect();
        let (endpoint, requests) = fake_dynamodb(Vec::new()).await;

        let found = store(&endpoint).get_media_many(&ids).await.expect("read");

        assert!(found.is_empty());
        let counts: Vec<usize> = requests.lock().unwrap().iter().map(requested_keys).collect();
        assert_eq!(counts, [100, 30]);
    }
}
