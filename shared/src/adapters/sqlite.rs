//! The embedded store: every storage port on one SQLite file (or in memory), for the local runner and tests.
//!
//! Tables mirror the DynamoDB items: each record is a JSON document plus the columns that are indexed or compared
//! (status, version, workspace, the listing and due keys). rusqlite blocks, so each call runs on tokio's blocking
//! pool. Writes share one connection behind a mutex (SQLite serialises writers anyway, and with WAL, cached
//! statements and `synchronous=NORMAL` a write takes tens of microseconds). Reads of a file take one of a few
//! connections of their own: in WAL mode a reader sees the last commit without waiting for the writer, so a write
//! lock held elsewhere (another process, a long transaction) never stalls a GET. A write that cannot get the lock
//! within [`WRITE_LOCK_WAIT`] fails as unavailable, which the intake answers with a quick 503 and `Retry-After`.

use std::{
    path::{Path, PathBuf},
    sync::{mpsc, Arc, Mutex, PoisonError},
    time::Duration,
};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{named_params, params, params_from_iter, Connection, ErrorCode, OptionalExtension, TransactionBehavior};

use super::codec::{
    account_listing_key, decode_doc, decode_listing_cursor, due_entry, due_page_start, encode_doc, ensure_next_version,
    fingerprint_post, finish_due_entries, finish_listing, listing_fetch_size, post_index_keys, record_key,
    time_ordered_key, time_ordered_upper_bound, StoredIdempotency, StoredOAuthState,
};
use crate::{
    domain::{sortable_timestamp, Account, ApiKey, Media, Post, Workspace},
    ids::{AccountId, MediaId, PostId, WorkspaceId},
    ports::{
        AccountRepo, DeliveryClaim, DispatchWatermark, DueEntry, IdempotencyRecord, IdempotencyRepo, MediaRepo,
        OAuthState, OAuthStateRepo, Page, PostFilter, PostRepo, StoreError, StoreResult, WebhookDeliveryRepo,
        WorkspaceRepo,
    },
};

/// Bumped with every change to [`SCHEMA`]; a file written by a newer release is refused rather than misread, and an
/// older one is brought up to date by [`MIGRATIONS`].
const SCHEMA_VERSION: i64 = 3;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS posts (
    id           TEXT PRIMARY KEY NOT NULL,
    workspace_id TEXT NOT NULL,
    account_id   TEXT NOT NULL,
    status       TEXT NOT NULL,
    version      INTEGER NOT NULL,
    listing_key  TEXT NOT NULL,
    due_key      TEXT,
    due_at       TEXT,
    publish_id   TEXT,
    doc          TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS posts_by_workspace ON posts (workspace_id, listing_key);
CREATE INDEX IF NOT EXISTS posts_due ON posts (due_key) WHERE due_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS posts_by_publish_id ON posts (publish_id) WHERE publish_id IS NOT NULL;

CREATE TABLE IF NOT EXISTS idempotency (
    workspace_id TEXT NOT NULL,
    key          TEXT NOT NULL,
    expires_at   INTEGER NOT NULL,
    doc          TEXT NOT NULL,
    PRIMARY KEY (workspace_id, key)
);

CREATE TABLE IF NOT EXISTS media (
    id           TEXT PRIMARY KEY NOT NULL,
    workspace_id TEXT NOT NULL,
    version      INTEGER NOT NULL,
    doc          TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS accounts (
    id           TEXT PRIMARY KEY NOT NULL,
    workspace_id TEXT NOT NULL,
    open_id      TEXT NOT NULL,
    listing_key  TEXT NOT NULL,
    version      INTEGER NOT NULL,
    doc          TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS accounts_by_workspace ON accounts (workspace_id, listing_key);
CREATE INDEX IF NOT EXISTS accounts_by_open_id ON accounts (workspace_id, open_id);
CREATE INDEX IF NOT EXISTS accounts_by_user ON accounts (open_id, listing_key);

CREATE TABLE IF NOT EXISTS workspaces (
    id   TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL UNIQUE,
    doc  TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS api_keys (
    hash         TEXT PRIMARY KEY NOT NULL,
    workspace_id TEXT NOT NULL,
    doc          TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS oauth_states (
    state      TEXT PRIMARY KEY NOT NULL,
    expires_at INTEGER NOT NULL,
    doc        TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS webhook_deliveries (
    key     TEXT PRIMARY KEY NOT NULL,
    applied INTEGER NOT NULL,
    until   INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS fingerprints (
    account_id  TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    sent_key    TEXT NOT NULL,
    PRIMARY KEY (account_id, fingerprint, sent_key)
) WITHOUT ROWID;
"#;

/// What brings a file written at schema version `index + 1` to the next version; run in order before [`SCHEMA`], whose
/// `IF NOT EXISTS` statements then add whatever is new (indexes on the columns added here).
const MIGRATIONS: [&str; 2] = [
    // 1 -> 2: webhooks find posts by TikTok's publish id.
    "ALTER TABLE posts ADD COLUMN publish_id TEXT;
     UPDATE posts SET publish_id = json_extract(doc, '$.publish.publishId');",
    // 2 -> 3: webhook delivery keys, a new table that SCHEMA creates.
    "",
];

/// Sorts after every listing key (they start with a year's digits).
const LISTING_KEY_CEILING: &str = "~";

/// Enough for every distinct statement this adapter prepares, so none is ever re-parsed.
const STATEMENT_CACHE_CAPACITY: usize = 64;
/// Ids per `IN (...)` list of a batched read.
const SQLITE_IN_LIST_MAX: usize = 500;

/// Opening (and migrating) waits this long for another process (the runner's `keys create`) to finish writing: a
/// start may take a while, a request may not.
const OPEN_BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a write waits for the write lock, in this process and in the file together, before it fails as
/// unavailable: short enough that a caller hears "retry shortly" (503) within a couple of seconds instead of queueing
/// behind a writer that holds the lock for longer, long enough for any ordinary write (well under a millisecond) and
/// a second process's short transaction.
pub const WRITE_LOCK_WAIT: Duration = Duration::from_millis(1500);
/// Readers of a file, each on its own connection; more concurrent reads wait for one to be free.
const READERS: usize = 4;
/// A reader waits only while SQLite rebuilds the WAL index after a crash, never for a writer.
const READ_BUSY_TIMEOUT: Duration = Duration::from_secs(1);

/// How often a background thread copies the write-ahead log into the database. Checkpoints are where WAL mode
/// fsyncs; left to SQLite, they run inside whichever request happens to commit the 1000th page, which shows up as
/// that request's latency.
const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(250);
/// Should the background thread fall behind, the writer still checkpoints past this many pages, so the log stays
/// bounded.
const FALLBACK_AUTOCHECKPOINT_PAGES: i64 = 8_000;

#[derive(Debug, thiserror::Error)]
#[error("the database was written by a newer release (schema version {found}, this release knows {SCHEMA_VERSION})")]
pub struct SchemaTooNew {
    pub found: i64,
}

/// A write gave up waiting for the write lock ([`WRITE_LOCK_WAIT`]).
#[derive(Debug, thiserror::Error)]
#[error("the database is locked by another writer; retry shortly")]
pub struct DatabaseBusy;

/// Every storage port on SQLite. Clones share the connections.
#[derive(Clone)]
pub struct SqliteStore {
    writer: Arc<tokio::sync::Mutex<Connection>>,
    /// `None` in memory: a private in-memory database has only the writer's connection, which then reads too.
    readers: Option<Arc<ReaderPool>>,
    /// Held only to be dropped: when the last clone goes, the checkpoint thread sees the channel close and stops.
    _checkpointer: Option<mpsc::Sender<()>>,
}

/// Read-only connections to the database file, opened as they are first needed, at most [`READERS`].
struct ReaderPool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    permits: Arc<tokio::sync::Semaphore>,
}

impl ReaderPool {
    fn new(path: &Path) -> Self {
        Self {
            path: path.to_path_buf(),
            idle: Mutex::new(Vec::with_capacity(READERS)),
            permits: Arc::new(tokio::sync::Semaphore::new(READERS)),
        }
    }

    /// An idle connection, or a new one (at first, or after a read that panicked took its connection with it).
    fn take(&self) -> StoreResult<Connection> {
        let idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner).pop();
        match idle {
            Some(connection) => Ok(connection),
            None => open_reader(&self.path),
        }
    }

    fn put_back(&self, connection: Connection) {
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(connection);
    }
}

fn open_reader(path: &Path) -> StoreResult<Connection> {
    let connection = Connection::open(path).map_err(sqlite_failure)?;
    connection.busy_timeout(READ_BUSY_TIMEOUT).map_err(sqlite_failure)?;
    // A read path that wrote by mistake would take the write lock this connection exists to avoid.
    connection
        .pragma_update(None, "query_only", true)
        .map_err(sqlite_failure)?;
    connection.set_prepared_statement_cache_capacity(STATEMENT_CACHE_CAPACITY);
    Ok(connection)
}

impl SqliteStore {
    /// Opens (creating when absent, parent folders included) the database file and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(parent) = path.parent().filter(|parent| !parent.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| StoreError::Unavailable(Box::new(e)))?;
        }
        let connection = Self::prepare(Connection::open(path).map_err(sqlite_failure)?)?;
        connection
            .pragma_update(None, "wal_autocheckpoint", FALLBACK_AUTOCHECKPOINT_PAGES)
            .map_err(sqlite_failure)?;
        let checkpointer = spawn_checkpointer(path)?;
        Ok(Self {
            writer: Arc::new(tokio::sync::Mutex::new(connection)),
            readers: Some(Arc::new(ReaderPool::new(path))),
            _checkpointer: Some(checkpointer),
        })
    }

    /// A private database that lives as long as the store: for tests.
    pub fn in_memory() -> Result<Self, StoreError> {
        let connection = Self::prepare(Connection::open_in_memory().map_err(sqlite_failure)?)?;
        Ok(Self {
            writer: Arc::new(tokio::sync::Mutex::new(connection)),
            readers: None,
            _checkpointer: None,
        })
    }

    fn prepare(mut connection: Connection) -> Result<Connection, StoreError> {
        connection.busy_timeout(OPEN_BUSY_TIMEOUT).map_err(sqlite_failure)?;
        // WAL lets readers in other processes proceed during a write; NORMAL syncs at checkpoints only, which keeps
        // the database consistent on power loss and costs the last transactions at most.
        connection
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get::<_, String>(0))
            .map_err(sqlite_failure)?;
        connection
            .pragma_update(None, "synchronous", "NORMAL")
            .map_err(sqlite_failure)?;
        connection.set_prepared_statement_cache_capacity(STATEMENT_CACHE_CAPACITY);

        // One transaction from reading the version to writing the new one: a second process opening the same file
        // (the runner's `keys create`) waits instead of migrating twice, and a crash half-way changes nothing.
        let transaction = connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sqlite_failure)?;
        let found: i64 = transaction
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(sqlite_failure)?;
        if found > SCHEMA_VERSION {
            return Err(StoreError::Unavailable(Box::new(SchemaTooNew { found })));
        }
        // Version 0 is a new file: SCHEMA creates everything at the latest version.
        if found > 0 {
            let applied = usize::try_from(found - 1).unwrap_or(usize::MAX);
            for migration in MIGRATIONS.iter().skip(applied) {
                transaction.execute_batch(migration).map_err(sqlite_failure)?;
            }
        }
        transaction.execute_batch(SCHEMA).map_err(sqlite_failure)?;
        transaction
            .pragma_update(None, "user_version", SCHEMA_VERSION)
            .map_err(sqlite_failure)?;
        transaction.commit().map_err(sqlite_failure)?;
        Ok(connection)
    }

    /// Runs `work` on the blocking pool with the write connection, once it has the write lock: both the connection's
    /// (queued writes of this process) and the file's (another connection's transaction) within [`WRITE_LOCK_WAIT`]
    /// together, else `Unavailable`.
    async fn write<T, F>(&self, work: F) -> StoreResult<T>
    where
        F: FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let deadline = tokio::time::Instant::now() + WRITE_LOCK_WAIT;
        let mut connection = tokio::time::timeout_at(deadline, Arc::clone(&self.writer).lock_owned())
            .await
            .map_err(|_| StoreError::Unavailable(Box::new(DatabaseBusy)))?;
        // A panic in `work` drops the guard with any open transaction, which rolls it back: nothing half-done stays.
        tokio::task::spawn_blocking(move || {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            connection.busy_timeout(left).map_err(sqlite_failure)?;
            work(&mut connection)
        })
        .await
        .map_err(|e| StoreError::Unavailable(Box::new(e)))?
    }

    /// Runs `work` on the blocking pool with a reader connection of its own, so it never waits for a writer.
    async fn read<T, F>(&self, work: F) -> StoreResult<T>
    where
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let Some(readers) = &self.readers else {
            return self.write(move |connection| work(connection)).await;
        };
        let readers = Arc::clone(readers);
        let permit = Arc::clone(&readers.permits)
            .acquire_owned()
            .await
            .map_err(|e| StoreError::Unavailable(Box::new(e)))?;
        tokio::task::spawn_blocking(move || {
            let connection = readers.take()?;
            let result = work(&connection);
            readers.put_back(connection);
            drop(permit);
            result
        })
        .await
        .map_err(|e| StoreError::Unavailable(Box::new(e)))?
    }

    /// Reads one JSON document by key and decodes it.
    async fn get_doc<T>(&self, sql: &'static str, key: String, record: String) -> StoreResult<Option<T>>
    where
        T: serde::de::DeserializeOwned + Send + 'static,
    {
        self.read(move |connection| {
            let doc: Option<String> = connection
                .prepare_cached(sql)
                .and_then(|mut statement| statement.query_row([&key], |row| row.get(0)).optional())
                .map_err(sqlite_failure)?;
            doc.map(|doc| decode_doc(&record, &doc)).transpose()
        })
        .await
    }
}

/// Starts the thread that checkpoints the database at `path` until the returned sender (and its clones) drop.
fn spawn_checkpointer(path: &Path) -> Result<mpsc::Sender<()>, StoreError> {
    let connection = Connection::open(path).map_err(sqlite_failure)?;
    connection.busy_timeout(READ_BUSY_TIMEOUT).map_err(sqlite_failure)?;
    let (keep_running, stop) = mpsc::channel::<()>();
    std::thread::Builder::new()
        .name("sqlite-checkpoint".to_owned())
        .spawn(move || {
            while let Err(mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(CHECKPOINT_INTERVAL) {
                // PASSIVE never waits for readers or the writer: whatever it cannot copy now, it copies next time.
                if let Err(error) = connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                    tracing::warn!(%error, "SQLite checkpoint failed; the writer will checkpoint instead");
                }
            }
        })
        .map_err(|e| StoreError::Unavailable(Box::new(e)))?;
    Ok(keep_running)
}

fn sqlite_failure(error: rusqlite::Error) -> StoreError {
    match error.sqlite_error_code() {
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => {
            StoreError::Corrupt("the database file".to_owned(), Box::new(error))
        }
        _ => StoreError::Unavailable(Box::new(error)),
    }
}

/// An insert that may only create: a taken key is `AlreadyExists`, anything else a storage failure.
fn insert_new(result: rusqlite::Result<usize>, record: &str) -> StoreResult<()> {
    match result {
        Ok(_) => Ok(()),
        Err(e) if e.sqlite_error_code() == Some(ErrorCode::ConstraintViolation) => {
            Err(StoreError::AlreadyExists(record.to_owned()))
        }
        Err(e) => Err(sqlite_failure(e)),
    }
}

/// The outcome of `UPDATE ... WHERE id = ? AND version = ?`: no row changed means another writer got there first
/// (or the record is gone).
fn compare_and_set(result: rusqlite::Result<usize>, record: &str, expected_version: u64) -> StoreResult<()> {
    match result.map_err(sqlite_failure)? {
        0 => Err(StoreError::Conflict(format!(
            "{record} is no longer at version {expected_version}"
        ))),
        _ => Ok(()),
    }
}

/// A post's columns, computed on the async side so that the blocking closure only binds them.
struct PostRow {
    record: String,
    id: String,
    workspace_id: String,
    account_id: String,
    status: &'static str,
    version: u64,
    listing_key: String,
    due_key: Option<String>,
    due_at: Option<String>,
    publish_id: Option<String>,
    doc: String,
}

impl PostRow {
    fn new(post: &Post) -> StoreResult<Self> {
        let record = record_key::post(&post.id);
        let keys = post_index_keys(post);
        let (due_key, due_at) = keys.due.map(|due| (due.key, due.at)).unzip();
        Ok(Self {
            doc: encode_doc(&record, post)?,
            record,
            id: post.id.to_string(),
            workspace_id: post.workspace_id.to_string(),
            account_id: post.account_id.to_string(),
            status: post.status.as_str(),
            version: post.version,
            listing_key: keys.listing_key,
            due_key,
            due_at,
            publish_id: post.publish.publish_id.clone(),
        })
    }
}

fn epoch_millis(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

#[async_trait]
impl PostRepo for SqliteStore {
    async fn create_post(&self, post: &Post, idempotency: Option<&IdempotencyRecord>) -> StoreResult<()> {
        let row = PostRow::new(post)?;
        let idempotency = idempotency
            .map(|record| {
                let key = record_key::idempotency(&record.workspace_id, &record.key);
                let doc = encode_doc(&key, &StoredIdempotency::from(record))?;
                Ok::<_, StoreError>((key, record.clone(), doc))
            })
            .transpose()?;
        let now = epoch_millis(post.created_at);
        self.write(move |connection| {
            let transaction =
                connection.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sqlite_failure)?;
            let inserted = transaction
                .prepare_cached(
                    "INSERT INTO posts
                       (id, workspace_id, account_id, status, version, listing_key, due_key, due_at, publish_id, doc)
                     VALUES (:id, :workspace_id, :account_id, :status, :version, :listing_key, :due_key, :due_at,
                       :publish_id, :doc)",
                )
                .and_then(|mut statement| {
                    statement.execute(named_params! {
                        ":id": row.id,
                        ":workspace_id": row.workspace_id,
                        ":account_id": row.account_id,
                        ":status": row.status,
                        ":version": row.version,
                        ":listing_key": row.listing_key,
                        ":due_key": row.due_key,
                        ":due_at": row.due_at,
                        ":publish_id": row.publish_id,
                        ":doc": row.doc,
                    })
                });
            insert_new(inserted, &row.record)?;
            if let Some((key, record, doc)) = idempotency {
                // An expired record may linger (DynamoDB's TTL deletes lazily; here nothing deletes): it no longer
                // holds the key, so it is replaced.
                let claimed = transaction
                    .prepare_cached(
                        "INSERT INTO idempotency (workspace_id, key, expires_at, doc) VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT (workspace_id, key) DO UPDATE SET expires_at = excluded.expires_at, doc = excluded.doc
                         WHERE idempotency.expires_at <= ?5",
                    )
                    .and_then(|mut statement| {
                        statement.execute(params![
                            record.workspace_id.as_str(),
                            record.key,
                            epoch_millis(record.expires_at),
                            doc,
                            now
                        ])
                    })
                    .map_err(sqlite_failure)?;
                if claimed == 0 {
                    // Dropping the transaction rolls the post back: both or neither.
                    return Err(StoreError::AlreadyExists(key));
                }
            }
            transaction.commit().map_err(sqlite_failure)
        })
        .await
    }

    async fn get_post(&self, id: &PostId) -> StoreResult<Option<Post>> {
        self.get_doc(
            "SELECT doc FROM posts WHERE id = ?1",
            id.to_string(),
            record_key::post(id),
        )
        .await
    }

    async fn update_post(&self, post: &Post, expected_version: u64) -> StoreResult<()> {
        let row = PostRow::new(post)?;
        ensure_next_version(&row.record, row.version, expected_version)?;
        self.write(move |connection| {
            let updated = connection
                .prepare_cached(
                    "UPDATE posts SET workspace_id = :workspace_id, account_id = :account_id, status = :status,
                       version = :version, listing_key = :listing_key, due_key = :due_key, due_at = :due_at,
                       publish_id = :publish_id, doc = :doc
                     WHERE id = :id AND version = :expected_version",
                )
                .and_then(|mut statement| {
                    statement.execute(named_params! {
                        ":id": row.id,
                        ":workspace_id": row.workspace_id,
                        ":account_id": row.account_id,
                        ":status": row.status,
                        ":version": row.version,
                        ":listing_key": row.listing_key,
                        ":due_key": row.due_key,
                        ":due_at": row.due_at,
                        ":publish_id": row.publish_id,
                        ":doc": row.doc,
                        ":expected_version": expected_version,
                    })
                });
            compare_and_set(updated, &row.record, expected_version)
        })
        .await
    }

    async fn list_posts(
        &self,
        workspace: &WorkspaceId,
        filter: &PostFilter,
        limit: usize,
        cursor: Option<&str>,
    ) -> StoreResult<Page<Post>> {
        // Without a cursor, a bound above every key keeps one statement that seeks in the index either way.
        let before = cursor
            .map(decode_listing_cursor)
            .transpose()?
            .unwrap_or_else(|| LISTING_KEY_CEILING.to_owned());
        let workspace = workspace.to_string();
        let account = filter.account_id.as_ref().map(ToString::to_string);
        let status = filter.status.map(|status| status.as_str());
        let fetch = i64::try_from(listing_fetch_size(limit)).unwrap_or(i64::MAX);
        let fetched = self
            .read(move |connection| {
                let mut statement = connection
                    .prepare_cached(
                        "SELECT id, doc, listing_key FROM posts
                         WHERE workspace_id = :workspace AND listing_key < :before
                           AND (:account IS NULL OR account_id = :account) AND (:status IS NULL OR status = :status)
                         ORDER BY listing_key DESC LIMIT :fetch",
                    )
                    .map_err(sqlite_failure)?;
                let rows = statement
                    .query_map(
                        named_params! {
                            ":workspace": workspace,
                            ":before": before,
                            ":account": account,
                            ":status": status,
                            ":fetch": fetch,
                        },
                        |row| {
                            Ok((
                                row.get::<_, String>(0)?,
                                row.get::<_, String>(1)?,
                                row.get::<_, String>(2)?,
                            ))
                        },
                    )
                    .map_err(sqlite_failure)?;
                rows.map(|row| {
                    let (id, doc, listing_key) = row.map_err(sqlite_failure)?;
                    let post: Post = decode_doc(&record_key::post(id), &doc)?;
                    Ok((post, listing_key))
                })
                .collect::<StoreResult<Vec<_>>>()
            })
            .await?;
        Ok(finish_listing(fetched, limit))
    }

    async fn find_post_by_publish_id(&self, publish_id: &str) -> StoreResult<Option<Post>> {
        let publish_id = publish_id.to_owned();
        self.read(move |connection| {
            let found: Option<(String, String)> = connection
                .prepare_cached("SELECT id, doc FROM posts WHERE publish_id = ?1 LIMIT 1")
                .and_then(|mut statement| {
                    statement
                        .query_row([publish_id], |row| Ok((row.get(0)?, row.get(1)?)))
                        .optional()
                })
                .map_err(sqlite_failure)?;
            found
                .map(|(id, doc)| decode_doc(&record_key::post(id), &doc))
                .transpose()
        })
        .await
    }

    async fn due_posts(
        &self,
        until: DateTime<Utc>,
        after: Option<&DueEntry>,
        limit: usize,
    ) -> StoreResult<Vec<DueEntry>> {
        let bound = time_ordered_upper_bound(until);
        let start = due_page_start(after);
        let fetch = i64::try_from(limit).unwrap_or(i64::MAX);
        let entries = self
            .read(move |connection| {
                let mut statement = connection
                    .prepare_cached(
                        "SELECT due_key, due_at, workspace_id FROM posts
                         WHERE due_key IS NOT NULL AND due_key > ?1 AND due_key < ?2
                         ORDER BY due_key LIMIT ?3",
                    )
                    .map_err(sqlite_failure)?;
                let rows = statement
                    .query_map(params![start, bound, fetch], |row| {
                        Ok((
                            row.get::<_, String>(0)?,
                            row.get::<_, String>(1)?,
                            row.get::<_, String>(2)?,
                        ))
                    })
                    .map_err(sqlite_failure)?;
                rows.map(|row| {
                    let (due_key, due_at, workspace) = row.map_err(sqlite_failure)?;
                    due_entry(&due_key, &due_at, &workspace)
                })
                .collect::<StoreResult<Vec<_>>>()
            })
            .await?;
        Ok(finish_due_entries(entries, until, after, limit))
    }

    async fn fingerprint_published(
        &self,
        account: &AccountId,
        fingerprint: &str,
        since: DateTime<Utc>,
    ) -> StoreResult<Option<PostId>> {
        let record = record_key::fingerprint(account, fingerprint);
        let account = account.to_string();
        let fingerprint = fingerprint.to_owned();
        let since = sortable_timestamp(since);
        self.read(move |connection| {
            let latest: Option<String> = connection
                .prepare_cached(
                    "SELECT sent_key FROM fingerprints WHERE account_id = ?1 AND fingerprint = ?2 AND sent_key >= ?3
                     ORDER BY sent_key DESC LIMIT 1",
                )
                .and_then(|mut statement| {
                    statement
                        .query_row(params![account, fingerprint, since], |row| row.get(0))
                        .optional()
                })
                .map_err(sqlite_failure)?;
            latest.map(|sent_key| fingerprint_post(&record, &sent_key)).transpose()
        })
        .await
    }

    async fn record_fingerprint(
        &self,
        account: &AccountId,
        fingerprint: &str,
        post: &PostId,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let account = account.to_string();
        let fingerprint = fingerprint.to_owned();
        let sent_key = time_ordered_key(at, post.as_str());
        self.write(move |connection| {
            connection
                .prepare_cached(
                    "INSERT INTO fingerprints (account_id, fingerprint, sent_key) VALUES (?1, ?2, ?3)
                     ON CONFLICT DO NOTHING",
                )
                .and_then(|mut statement| statement.execute(params![account, fingerprint, sent_key]))
                .map(|_| ())
                .map_err(sqlite_failure)
        })
        .await
    }

    async fn dispatch_watermark(&self) -> StoreResult<Option<DateTime<Utc>>> {
        let record = record_key::dispatch_watermark();
        self.read(move |connection| {
            let value: Option<String> = connection
                .prepare_cached("SELECT value FROM settings WHERE key = ?1")
                .and_then(|mut statement| statement.query_row([&record], |row| row.get(0)).optional())
                .map_err(sqlite_failure)?;
            value
                .map(|doc| decode_doc::<DispatchWatermark>(&record, &doc).map(|w| w.armed_until))
                .transpose()
        })
        .await
    }

    async fn set_dispatch_watermark(&self, armed_until: DateTime<Utc>) -> StoreResult<()> {
        let record = record_key::dispatch_watermark();
        let doc = encode_doc(&record, &DispatchWatermark { armed_until })?;
        self.write(move |connection| {
            connection
                .prepare_cached(
                    "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = ?2",
                )
                .and_then(|mut statement| statement.execute(params![record, doc]))
                .map(|_| ())
                .map_err(sqlite_failure)
        })
        .await
    }
}

#[async_trait]
impl IdempotencyRepo for SqliteStore {
    async fn get_idempotency(
        &self,
        workspace: &WorkspaceId,
        key: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<IdempotencyRecord>> {
        let record = record_key::idempotency(workspace, key);
        let workspace = workspace.to_string();
        let key = key.to_owned();
        let stored: Option<StoredIdempotency> = self
            .read(move |connection| {
                let doc: Option<String> = connection
                    .prepare_cached("SELECT doc FROM idempotency WHERE workspace_id = ?1 AND key = ?2")
                    .and_then(|mut statement| statement.query_row([workspace, key], |row| row.get(0)).optional())
                    .map_err(sqlite_failure)?;
                doc.map(|doc| decode_doc(&record, &doc)).transpose()
            })
            .await?;
        Ok(stored
            .map(IdempotencyRecord::from)
            .filter(|record| record.expires_at > now))
    }
}

#[async_trait]
impl MediaRepo for SqliteStore {
    async fn create_media(&self, media: &Media) -> StoreResult<()> {
        let record = record_key::media(&media.id);
        let doc = encode_doc(&record, media)?;
        let (id, workspace, version) = (media.id.to_string(), media.workspace_id.to_string(), media.version);
        self.write(move |connection| {
            let inserted = connection
                .prepare_cached("INSERT INTO media (id, workspace_id, version, doc) VALUES (?1, ?2, ?3, ?4)")
                .and_then(|mut statement| statement.execute(params![id, workspace, version, doc]));
            insert_new(inserted, &record)
        })
        .await
    }

    async fn get_media(&self, id: &MediaId) -> StoreResult<Option<Media>> {
        self.get_doc(
            "SELECT doc FROM media WHERE id = ?1",
            id.to_string(),
            record_key::media(id),
        )
        .await
    }

    async fn get_media_many(&self, ids: &[MediaId]) -> StoreResult<Vec<Media>> {
        let mut ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
        ids.sort();
        ids.dedup();
        self.read(move |connection| {
            let mut found = Vec::with_capacity(ids.len());
            // Well under SQLite's limit on bound parameters per statement, whatever its compile-time setting.
            for chunk in ids.chunks(SQLITE_IN_LIST_MAX) {
                let placeholders = vec!["?"; chunk.len()].join(", ");
                let mut statement = connection
                    .prepare(&format!("SELECT id, doc FROM media WHERE id IN ({placeholders})"))
                    .map_err(sqlite_failure)?;
                let rows = statement
                    .query_map(params_from_iter(chunk), |row| {
                        Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
                    })
                    .map_err(sqlite_failure)?;
                for row in rows {
                    let (id, doc) = row.map_err(sqlite_failure)?;
                    found.push(decode_doc(&record_key::media(id), &doc)?);
                }
            }
            Ok(found)
        })
        .await
    }

    async fn update_media(&self, media: &Media, expected_version: u64) -> StoreResult<()> {
        let record = record_key::media(&media.id);
        ensure_next_version(&record, media.version, expected_version)?;
        let doc = encode_doc(&record, media)?;
        let (id, workspace, version) = (media.id.to_string(), media.workspace_id.to_string(), media.version);
        self.write(move |connection| {
            let updated = connection
                .prepare_cached(
                    "UPDATE media SET workspace_id = ?2, version = ?3, doc = ?4 WHERE id = ?1 AND version = ?5",
                )
                .and_then(|mut statement| statement.execute(params![id, workspace, version, doc, expected_version]));
            compare_and_set(updated, &record, expected_version)
        })
        .await
    }

    async fn delete_media(&self, id: &MediaId) -> StoreResult<()> {
        let id = id.to_string();
        self.write(move |connection| {
            connection
                .prepare_cached("DELETE FROM media WHERE id = ?1")
                .and_then(|mut statement| statement.execute(params![id]))
                .map(|_| ())
                .map_err(sqlite_failure)
        })
        .await
    }
}

#[async_trait]
impl AccountRepo for SqliteStore {
    async fn create_account(&self, account: &Account) -> StoreResult<()> {
        let row = AccountRow::new(account)?;
        self.write(move |connection| {
            let inserted = connection
                .prepare_cached(
                    "INSERT INTO accounts (id, workspace_id, open_id, listing_key, version, doc)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .and_then(|mut statement| {
                    statement.execute(params![
                        row.id,
                        row.workspace_id,
                        row.open_id,
                        row.listing_key,
                        row.version,
                        row.doc
                    ])
                });
            insert_new(inserted, &row.record)
        })
        .await
    }

    async fn get_account(&self, id: &AccountId) -> StoreResult<Option<Account>> {
        self.get_doc(
            "SELECT doc FROM accounts WHERE id = ?1",
            id.to_string(),
            record_key::account(id),
        )
        .await
    }

    async fn update_account(&self, account: &Account, expected_version: u64) -> StoreResult<()> {
        let row = AccountRow::new(account)?;
        ensure_next_version(&row.record, row.version, expected_version)?;
        self.write(move |connection| {
            let updated = connection
                .prepare_cached(
                    "UPDATE accounts SET workspace_id = ?2, open_id = ?3, listing_key = ?4, version = ?5, doc = ?6
                     WHERE id = ?1 AND version = ?7",
                )
                .and_then(|mut statement| {
                    statement.execute(params![
                        row.id,
                        row.workspace_id,
                        row.open_id,
                        row.listing_key,
                        row.version,
                        row.doc,
                        expected_version
                    ])
                });
            compare_and_set(updated, &row.record, expected_version)
        })
        .await
    }

    async fn list_accounts(&self, workspace: &WorkspaceId) -> StoreResult<Vec<Account>> {
        self.accounts_where("workspace_id = ?1", workspace.to_string()).await
    }

    async fn find_account_by_open_id(&self, workspace: &WorkspaceId, open_id: &str) -> StoreResult<Option<Account>> {
        let workspace = workspace.to_string();
        let open_id = open_id.to_owned();
        self.read(move |connection| {
            let found: Option<(String, String)> = connection
                .prepare_cached(
                    "SELECT id, doc FROM accounts WHERE workspace_id = ?1 AND open_id = ?2 ORDER BY listing_key LIMIT 1",
                )
                .and_then(|mut statement| {
                    statement.query_row([workspace, open_id], |row| Ok((row.get(0)?, row.get(1)?))).optional()
                })
                .map_err(sqlite_failure)?;
            found.map(|(id, doc)| decode_doc(&record_key::account(id), &doc)).transpose()
        })
        .await
    }

    async fn find_accounts_by_open_id(&self, open_id: &str) -> StoreResult<Vec<Account>> {
        self.accounts_where("open_id = ?1", open_id.to_owned()).await
    }
}

struct AccountRow {
    record: String,
    id: String,
    workspace_id: String,
    open_id: String,
    listing_key: String,
    version: u64,
    doc: String,
}

impl AccountRow {
    fn new(account: &Account) -> StoreResult<Self> {
        let record = record_key::account(&account.id);
        Ok(Self {
            doc: encode_doc(&record, account)?,
            record,
            id: account.id.to_string(),
            workspace_id: account.workspace_id.to_string(),
            open_id: account.open_id.clone(),
            listing_key: account_listing_key(account),
            version: account.version,
        })
    }
}

#[async_trait]
impl WorkspaceRepo for SqliteStore {
    async fn create_workspace(&self, workspace: &Workspace) -> StoreResult<()> {
        let record = record_key::workspace(&workspace.id);
        let name_record = record_key::workspace_name(&workspace.name);
        let doc = encode_doc(&record, workspace)?;
        let id = workspace.id.to_string();
        let name = workspace.name.clone();
        self.write(move |connection| {
            let transaction = connection
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(sqlite_failure)?;
            // Looked up first only to say which of the two unique keys is taken.
            let name_taken = transaction
                .prepare_cached("SELECT 1 FROM workspaces WHERE name = ?1")
                .and_then(|mut statement| statement.exists([&name]))
                .map_err(sqlite_failure)?;
            if name_taken {
                return Err(StoreError::AlreadyExists(name_record));
            }
            let inserted = transaction
                .prepare_cached("INSERT INTO workspaces (id, name, doc) VALUES (?1, ?2, ?3)")
                .and_then(|mut statement| statement.execute(params![id, name, doc]));
            insert_new(inserted, &record)?;
            transaction.commit().map_err(sqlite_failure)
        })
        .await
    }

    async fn get_workspace(&self, id: &WorkspaceId) -> StoreResult<Option<Workspace>> {
        self.get_doc(
            "SELECT doc FROM workspaces WHERE id = ?1",
            id.to_string(),
            record_key::workspace(id),
        )
        .await
    }

    async fn find_workspace_by_name(&self, name: &str) -> StoreResult<Option<Workspace>> {
        self.get_doc(
            "SELECT doc FROM workspaces WHERE name = ?1",
            name.to_owned(),
            record_key::workspace_name(name),
        )
        .await
    }

    async fn put_api_key(&self, key: &ApiKey) -> StoreResult<()> {
        let record = record_key::api_key(&key.hash);
        let doc = encode_doc(&record, key)?;
        let hash = key.hash.clone();
        let workspace = key.workspace_id.to_string();
        self.write(move |connection| {
            connection
                .prepare_cached(
                    "INSERT INTO api_keys (hash, workspace_id, doc) VALUES (?1, ?2, ?3)
                     ON CONFLICT (hash) DO UPDATE SET workspace_id = excluded.workspace_id, doc = excluded.doc",
                )
                .and_then(|mut statement| statement.execute(params![hash, workspace, doc]))
                .map(|_| ())
                .map_err(sqlite_failure)
        })
        .await
    }

    async fn find_api_key(&self, hash: &str) -> StoreResult<Option<ApiKey>> {
        self.get_doc(
            "SELECT doc FROM api_keys WHERE hash = ?1",
            hash.to_owned(),
            record_key::api_key(hash),
        )
        .await
    }
}

#[async_trait]
impl OAuthStateRepo for SqliteStore {
    async fn put_oauth_state(&self, state: &OAuthState) -> StoreResult<()> {
        let record = record_key::oauth_state(&state.state);
        let doc = encode_doc(&record, &StoredOAuthState::from(state))?;
        let value = state.state.clone();
        let expires_at = epoch_millis(state.expires_at);
        self.write(move |connection| {
            let inserted = connection
                .prepare_cached("INSERT INTO oauth_states (state, expires_at, doc) VALUES (?1, ?2, ?3)")
                .and_then(|mut statement| statement.execute(params![value, expires_at, doc]));
            insert_new(inserted, &record)
        })
        .await
    }

    async fn take_oauth_state(&self, state: &str, now: DateTime<Utc>) -> StoreResult<Option<OAuthState>> {
        let record = record_key::oauth_state(state);
        let value = state.to_owned();
        let taken: Option<StoredOAuthState> = self
            .write(move |connection| {
                // Deleting and reading in one statement makes the state single-use even against a concurrent taker.
                let doc: Option<String> = connection
                    .prepare_cached("DELETE FROM oauth_states WHERE state = ?1 RETURNING doc")
                    .and_then(|mut statement| statement.query_row([value], |row| row.get(0)).optional())
                    .map_err(sqlite_failure)?;
                doc.map(|doc| decode_doc(&record, &doc)).transpose()
            })
            .await?;
        Ok(taken.map(OAuthState::from).filter(|state| state.expires_at > now))
    }
}

/// Nothing deletes expired keys here (they only stop holding): a developer's data dir sees a few webhooks a day.
#[async_trait]
impl WebhookDeliveryRepo for SqliteStore {
    async fn claim_delivery(
        &self,
        key: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<DeliveryClaim> {
        let key = key.to_owned();
        let (now, lease_until) = (epoch_millis(now), epoch_millis(lease_until));
        self.write(move |connection| {
            let transaction = connection
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(sqlite_failure)?;
            let claimed = transaction
                .prepare_cached(
                    "INSERT INTO webhook_deliveries (key, applied, until) VALUES (?1, 0, ?3)
                     ON CONFLICT (key) DO UPDATE SET applied = 0, until = excluded.until
                     WHERE webhook_deliveries.until <= ?2",
                )
                .and_then(|mut statement| statement.execute(params![key, now, lease_until]))
                .map_err(sqlite_failure)?;
            let claim = if claimed == 1 {
                DeliveryClaim::Claimed
            } else {
                let applied: bool = transaction
                    .prepare_cached("SELECT applied FROM webhook_deliveries WHERE key = ?1")
                    .and_then(|mut statement| statement.query_row([&key], |row| row.get(0)))
                    .map_err(sqlite_failure)?;
                if applied {
                    DeliveryClaim::AlreadyApplied
                } else {
                    DeliveryClaim::InProgress
                }
            };
            transaction.commit().map_err(sqlite_failure)?;
            Ok(claim)
        })
        .await
    }

    async fn finish_delivery(&self, key: &str, expires_at: DateTime<Utc>) -> StoreResult<()> {
        let key = key.to_owned();
        let until = epoch_millis(expires_at);
        self.write(move |connection| {
            connection
                .prepare_cached(
                    "INSERT INTO webhook_deliveries (key, applied, until) VALUES (?1, 1, ?2)
                     ON CONFLICT (key) DO UPDATE SET applied = 1, until = excluded.until",
                )
                .and_then(|mut statement| statement.execute(params![key, until]))
                .map(|_| ())
                .map_err(sqlite_failure)
        })
        .await
    }

    async fn release_delivery(&self, key: &str) -> StoreResult<()> {
        let key = key.to_owned();
        self.write(move |connection| {
            connection
                .prepare_cached("DELETE FROM webhook_deliveries WHERE key = ?1 AND applied = 0")
                .and_then(|mut statement| statement.execute([key]))
                .map(|_| ())
                .map_err(sqlite_failure)
        })
        .await
    }
}

impl SqliteStore {
    /// The accounts matching one condition on one value (a constant SQL fragment), oldest first.
    async fn accounts_where(&self, condition: &'static str, value: String) -> StoreResult<Vec<Account>> {
        self.read(move |connection| {
            let mut statement = connection
                .prepare_cached(&format!(
                    "SELECT id, doc FROM accounts WHERE {condition} ORDER BY listing_key"
                ))
                .map_err(sqlite_failure)?;
            let rows = statement
                .query_map([value], |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)))
                .map_err(sqlite_failure)?;
            rows.map(|row| {
                let (id, doc) = row.map_err(sqlite_failure)?;
                decode_doc(&record_key::account(id), &doc)
            })
            .collect()
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{PostOptions, PostStatus, PostType};

    fn accepted_post(publish_id: &str) -> Post {
        let now = Utc::now();
        let mut post = Post {
            id: PostId::new(),
            workspace_id: WorkspaceId::new(),
            account_id: AccountId::new(),
            status: PostStatus::Published,
            post_type: PostType::Video,
            content: String::new(),
            media: vec![MediaId::new()],
            options: PostOptions::default(),
            scheduled_at: Some(now),
            warnings: Vec::new(),
            publish: Default::default(),
            failure: None,
            created_at: now,
            updated_at: now,
            outbox: Vec::new(),
            audit: Vec::new(),
            version: 1,
        };
        post.publish.publish_id = Some(publish_id.to_owned());
        post
    }

    #[tokio::test]
    async fn a_schema_1_file_gains_the_publish_id_lookup_filled_from_its_posts() {
        let folder = tempfile::tempdir().expect("tempdir");
        let path = folder.path().join("postato.sqlite3");
        let post = accepted_post("v_pub_file~v2-1.42");
        {
            let store = SqliteStore::open(&path).expect("opens");
            store.create_post(&post, None).await.expect("created");
        }
        // What a file written before schema version 2 looks like.
        Connection::open(&path)
            .and_then(|old| {
                old.execute_batch(
                    "DROP INDEX posts_by_publish_id; DROP INDEX accounts_by_user;
                     ALTER TABLE posts DROP COLUMN publish_id; PRAGMA user_version = 1;",
                )
            })
            .expect("rolled back to version 1");

        let reopened = SqliteStore::open(&path).expect("migrates");
        assert_eq!(
            reopened
                .find_post_by_publish_id("v_pub_file~v2-1.42")
                .await
                .expect("reads"),
            Some(post)
        );
        let version: i64 = Connection::open(&path)
            .and_then(|c| c.pragma_query_value(None, "user_version", |row| row.get(0)))
            .expect("reads the version");
        assert_eq!(version, SCHEMA_VERSION);
        drop(reopened);
        SqliteStore::open(&path).expect("an up-to-date file opens again without migrating twice");
    }
}
