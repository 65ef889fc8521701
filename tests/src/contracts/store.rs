//! The storage contract: what every adapter of the storage ports must do, run against each of them.

use std::collections::HashSet;

use anyhow::Context as _;
use chrono::{DateTime, Duration, Utc};
use shared::{
    domain::{AccountStatus, AuditEntry, MediaStatus, Post, PostStatus, SealedTokens},
    ids::{AccountId, MediaId, PostId, WorkspaceId},
    ports::{
        DeliveryClaim, IdempotencyRecord, OAuthState, Page, PendingConnection, PostFilter, StoreError, StoreResult,
        Stores,
    },
};

use crate::fixtures::{self, next_version, now_ms, scheduled};

fn assert_already_exists<T: std::fmt::Debug>(result: StoreResult<T>, what: &str) {
    assert!(
        matches!(result, Err(StoreError::AlreadyExists(_))),
        "{what}: expected AlreadyExists, got {result:?}"
    );
}

fn assert_conflict<T: std::fmt::Debug>(result: StoreResult<T>, what: &str) {
    assert!(
        matches!(result, Err(StoreError::Conflict(_))),
        "{what}: expected Conflict, got {result:?}"
    );
}

fn idempotency_record(workspace: &WorkspaceId, key: &str, expires_at: DateTime<Utc>) -> IdempotencyRecord {
    IdempotencyRecord {
        workspace_id: workspace.clone(),
        key: key.to_owned(),
        request_hash: format!("hash-of-{key}"),
        status: 201,
        body: format!(r#"{{"key":"{key}"}}"#),
        expires_at,
    }
}

/// Create, read, compare-and-set update, and the version rule.
pub async fn post_crud_contract(stores: &Stores) -> anyhow::Result<()> {
    let repo = &stores.posts;
    let workspace = WorkspaceId::new();
    let post = fixtures::post(&workspace, &AccountId::new(), now_ms());

    assert_eq!(
        repo.get_post(&post.id).await?,
        None,
        "a post never created reads as absent"
    );
    repo.create_post(&post, None).await.context("create")?;
    assert_eq!(
        repo.get_post(&post.id).await?,
        Some(post.clone()),
        "a created post reads back unchanged"
    );
    assert_already_exists(repo.create_post(&post, None).await, "creating the same post id again");

    let edited = next_version(post.clone(), |p| {
        p.content = "Evening run".to_owned();
        // The audit trail is part of the record (a field added later, `#[serde(default)]`): it reads back as written.
        p.audit.push(AuditEntry {
            at: now_ms(),
            by: "key_0123456789abcdef".to_owned(),
            action: "retried".to_owned(),
            detail: "failed with internal".to_owned(),
        });
    });
    repo.update_post(&edited, 1).await.context("first update")?;
    assert_eq!(repo.get_post(&post.id).await?, Some(edited.clone()));

    let stale = next_version(post.clone(), |p| p.content = "written from a stale read".to_owned());
    assert_conflict(
        repo.update_post(&stale, 1).await,
        "an update expecting a version that moved on",
    );
    assert_eq!(
        repo.get_post(&post.id).await?,
        Some(edited.clone()),
        "a lost compare-and-set writes nothing"
    );

    let same_version = edited.clone();
    assert_conflict(
        repo.update_post(&same_version, 2).await,
        "an update that does not bump the version",
    );
    let skipping = next_version(next_version(edited.clone(), |_| {}), |_| {});
    assert_conflict(repo.update_post(&skipping, 2).await, "an update that skips a version");
    assert_eq!(repo.get_post(&post.id).await?, Some(edited.clone()));

    let ghost = next_version(fixtures::post(&workspace, &AccountId::new(), now_ms()), |_| {});
    assert_conflict(
        repo.update_post(&ghost, 1).await,
        "an update of a post that does not exist",
    );
    assert_eq!(repo.get_post(&ghost.id).await?, None, "a failed update creates nothing");
    Ok(())
}

/// Posts created with an idempotency key: both or neither, per workspace, with expiry.
pub async fn idempotency_contract(stores: &Stores) -> anyhow::Result<()> {
    let (posts, records) = (&stores.posts, &stores.idempotency);
    let workspace = WorkspaceId::new();
    let account = AccountId::new();
    // Far from the wall clock, so that a store deciding expiry with its own clock instead of the caller's fails here.
    let now = fixtures::fixed_instant();
    let day = now + Duration::hours(24);

    let first = fixtures::post(&workspace, &account, now);
    let record = idempotency_record(&workspace, "key-1", day);
    posts
        .create_post(&first, Some(&record))
        .await
        .context("create with a fresh key")?;
    assert_eq!(
        records.get_idempotency(&workspace, "key-1", now).await?,
        Some(record.clone())
    );
    assert_eq!(posts.get_post(&first.id).await?, Some(first.clone()));

    let second = fixtures::post(&workspace, &account, now);
    let reuse = idempotency_record(&workspace, "key-1", day + Duration::hours(1));
    assert_already_exists(posts.create_post(&second, Some(&reuse)).await, "a key already used");
    assert_eq!(
        posts.get_post(&second.id).await?,
        None,
        "the post of a refused key is not created"
    );
    assert_eq!(
        records.get_idempotency(&workspace, "key-1", now).await?,
        Some(record.clone()),
        "the first record stays"
    );

    let other_key = idempotency_record(&workspace, "key-2", day);
    assert_already_exists(
        posts.create_post(&first, Some(&other_key)).await,
        "a post id already used, with a new key",
    );
    assert_eq!(
        records.get_idempotency(&workspace, "key-2", now).await?,
        None,
        "the key of a refused post is not kept"
    );

    let elsewhere = WorkspaceId::new();
    let other_workspace_post = fixtures::post(&elsewhere, &account, now);
    let same_key_elsewhere = idempotency_record(&elsewhere, "key-1", day);
    posts
        .create_post(&other_workspace_post, Some(&same_key_elsewhere))
        .await
        .context("keys are per workspace")?;
    assert_eq!(
        records.get_idempotency(&elsewhere, "key-1", now).await?,
        Some(same_key_elsewhere)
    );
    assert_eq!(
        records.get_idempotency(&workspace, "key-1", now).await?,
        Some(record.clone())
    );

    assert_eq!(
        records
            .get_idempotency(&workspace, "key-1", day - Duration::seconds(1))
            .await?,
        Some(record.clone())
    );
    assert_eq!(
        records.get_idempotency(&workspace, "key-1", day).await?,
        None,
        "a record reads as absent once expired"
    );
    assert_eq!(records.get_idempotency(&workspace, "never-used", now).await?, None);

    // A record past its expiry no longer holds its key, even while it is still stored.
    let lapsed = idempotency_record(&workspace, "key-3", now - Duration::minutes(1));
    posts
        .create_post(&fixtures::post(&workspace, &account, now), Some(&lapsed))
        .await?;
    let renewed = idempotency_record(&workspace, "key-3", day);
    let third = fixtures::post(&workspace, &account, now);
    posts
        .create_post(&third, Some(&renewed))
        .await
        .context("reusing an expired key")?;
    assert_eq!(records.get_idempotency(&workspace, "key-3", now).await?, Some(renewed));
    assert_eq!(posts.get_post(&third.id).await?, Some(third));
    Ok(())
}

/// Every page of a listing, following cursors; fails on a cursor loop.
async fn list_all(
    stores: &Stores,
    workspace: &WorkspaceId,
    filter: &PostFilter,
    limit: usize,
) -> anyhow::Result<Vec<Post>> {
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..1_000 {
        let Page { items, next_cursor } = stores
            .posts
            .list_posts(workspace, filter, limit, cursor.as_deref())
            .await?;
        assert!(items.len() <= limit.max(1), "a page holds at most `limit` posts");
        if next_cursor.is_some() {
            assert_eq!(items.len(), limit.max(1), "only a full page has a next cursor");
        }
        all.extend(items);
        match next_cursor {
            Some(next) => cursor = Some(next),
            None => return Ok(all),
        }
    }
    anyhow::bail!("the listing did not end after 1000 pages")
}

fn newest_first(mut posts: Vec<Post>) -> Vec<Post> {
    posts.sort_by(|a, b| b.created_at.cmp(&a.created_at).then_with(|| b.id.cmp(&a.id)));
    posts
}

fn ids(posts: &[Post]) -> Vec<PostId> {
    posts.iter().map(|post| post.id.clone()).collect()
}

/// Newest first, filters, limits and cursors across pages without gaps or repeats.
pub async fn post_listing_contract(stores: &Stores) -> anyhow::Result<()> {
    let repo = &stores.posts;
    let workspace = WorkspaceId::new();
    let neighbour = WorkspaceId::new();
    let (alice, bob) = (AccountId::new(), AccountId::new());
    let start = now_ms() - Duration::hours(1);

    let mut created = Vec::new();
    for n in 0..25i64 {
        // Posts 10 to 12 share one instant: ties must still page without gaps or repeats.
        let at = if (10..13).contains(&n) {
            start + Duration::seconds(10)
        } else {
            start + Duration::seconds(n)
        };
        let account = if n % 2 == 0 { &alice } else { &bob };
        let post = fixtures::post(&workspace, account, at);
        let post = if n % 3 == 0 {
            scheduled(post, at + Duration::days(1))
        } else {
            post
        };
        repo.create_post(&post, None).await?;
        created.push(post);
        if n % 5 == 0 {
            repo.create_post(&fixtures::post(&neighbour, &alice, at), None).await?;
        }
    }
    let everything = newest_first(created.clone());
    let unfiltered = PostFilter::default();

    let first = repo.list_posts(&workspace, &unfiltered, 10, None).await?;
    assert_eq!(
        ids(&first.items),
        ids(&everything[..10]),
        "the first page is the ten newest, newest first"
    );
    assert!(first.next_cursor.is_some());
    for limit in [1, 3, 10, 24, 25, 100] {
        assert_eq!(
            ids(&list_all(stores, &workspace, &unfiltered, limit).await?),
            ids(&everything),
            "pages of {limit}"
        );
    }
    let whole = repo.list_posts(&workspace, &unfiltered, 25, None).await?;
    assert_eq!(
        (whole.items.len(), whole.next_cursor),
        (25, None),
        "no cursor when nothing more matches"
    );
    assert_eq!(
        repo.list_posts(&workspace, &unfiltered, 0, None).await?.items.len(),
        1,
        "a limit of 0 reads as 1"
    );

    let by_alice = PostFilter {
        account_id: Some(alice.clone()),
        status: None,
    };
    let alice_posts: Vec<Post> = everything.iter().filter(|p| p.account_id == alice).cloned().collect();
    assert_eq!(
        ids(&list_all(stores, &workspace, &by_alice, 4).await?),
        ids(&alice_posts),
        "account filter"
    );

    let drafts = PostFilter {
        account_id: None,
        status: Some(PostStatus::Draft),
    };
    let draft_posts: Vec<Post> = everything
        .iter()
        .filter(|p| p.status == PostStatus::Draft)
        .cloned()
        .collect();
    assert_eq!(
        ids(&list_all(stores, &workspace, &drafts, 5).await?),
        ids(&draft_posts),
        "status filter"
    );

    let bobs_scheduled = PostFilter {
        account_id: Some(bob.clone()),
        status: Some(PostStatus::Scheduled),
    };
    let expected: Vec<Post> = everything
        .iter()
        .filter(|p| p.account_id == bob && p.status == PostStatus::Scheduled)
        .cloned()
        .collect();
    assert!(!expected.is_empty());
    assert_eq!(
        ids(&list_all(stores, &workspace, &bobs_scheduled, 2).await?),
        ids(&expected),
        "both filters"
    );
    let nobody = PostFilter {
        account_id: Some(AccountId::new()),
        status: None,
    };
    assert_eq!(
        repo.list_posts(&workspace, &nobody, 10, None).await?,
        Page {
            items: vec![],
            next_cursor: None
        }
    );

    assert_eq!(
        list_all(stores, &neighbour, &unfiltered, 2).await?.len(),
        5,
        "only the workspace's own posts"
    );
    assert_eq!(
        repo.list_posts(&WorkspaceId::new(), &unfiltered, 10, None).await?,
        Page {
            items: vec![],
            next_cursor: None
        }
    );

    // An update moves nothing in the listing and shows the new version.
    let edited = next_version(created[7].clone(), |p| p.status = PostStatus::Canceled);
    repo.update_post(&edited, 1).await?;
    let listed = list_all(stores, &workspace, &unfiltered, 7).await?;
    assert_eq!(ids(&listed), ids(&everything));
    assert!(listed.contains(&edited));

    for garbage in ["not-a-cursor", "", "eyJ9"] {
        let result = repo.list_posts(&workspace, &unfiltered, 10, Some(garbage)).await;
        assert!(
            matches!(result, Err(StoreError::InvalidCursor)),
            "cursor {garbage:?}: {result:?}"
        );
    }
    Ok(())
}

async fn due_ids(stores: &Stores, until: DateTime<Utc>, limit: usize) -> anyhow::Result<Vec<(PostId, DateTime<Utc>)>> {
    Ok(stores
        .posts
        .due_posts(until, None, limit)
        .await?
        .into_iter()
        .map(|entry| (entry.post_id, entry.due_at))
        .collect())
}

/// The dispatch watermark: absent in a new store, then whatever was set last, to the millisecond.
pub async fn dispatch_watermark_contract(stores: &Stores) -> anyhow::Result<()> {
    assert_eq!(stores.posts.dispatch_watermark().await?, None, "a new store has none");
    let first = fixtures::fixed_instant() + Duration::milliseconds(120_250);
    stores.posts.set_dispatch_watermark(first).await?;
    assert_eq!(stores.posts.dispatch_watermark().await?, Some(first));
    let later = first + Duration::seconds(60);
    stores.posts.set_dispatch_watermark(later).await?;
    assert_eq!(
        stores.posts.dispatch_watermark().await?,
        Some(later),
        "the last one set"
    );
    Ok(())
}

/// The due index holds exactly the posts whose `due_at()` is set, at that instant, and follows every update.
pub async fn due_index_contract(stores: &Stores) -> anyhow::Result<()> {
    let repo = &stores.posts;
    let workspace = WorkspaceId::new();
    let account = AccountId::new();
    let t = now_ms();
    let at = |seconds: i64| t + Duration::seconds(seconds);

    let soon = scheduled(fixtures::post(&workspace, &account, t), at(10));
    let later = scheduled(fixtures::post(&workspace, &account, t), at(20));
    let mut draft_with_time = fixtures::post(&workspace, &account, t);
    draft_with_time.scheduled_at = Some(at(5));
    let mut canceled = scheduled(fixtures::post(&workspace, &account, t), at(6));
    canceled.status = PostStatus::Canceled;
    let mut publishing = fixtures::post(&workspace, &account, t);
    publishing.status = PostStatus::Publishing;
    publishing.publish.lease_until = Some(at(15));
    let mut tracking = fixtures::post(&workspace, &account, t);
    tracking.status = PostStatus::Published;
    tracking.publish.next_poll_at = Some(at(30));
    for post in [&soon, &later, &draft_with_time, &canceled, &publishing, &tracking] {
        repo.create_post(post, None).await?;
    }

    assert_eq!(
        due_ids(stores, at(100), 100).await?,
        vec![
            (soon.id.clone(), at(10)),
            (publishing.id.clone(), at(15)),
            (later.id.clone(), at(20)),
            (tracking.id.clone(), at(30))
        ],
        "scheduled at their time, publishing at lease end, published at next poll; drafts and canceled never"
    );
    assert!(
        repo.due_posts(at(100), None, 100)
            .await?
            .iter()
            .all(|entry| entry.workspace_id == workspace),
        "each entry names its post's workspace, for the events the dispatcher emits"
    );
    assert_eq!(
        due_ids(stores, at(10), 100).await?,
        vec![(soon.id.clone(), at(10))],
        "due exactly at `until` counts"
    );
    assert_eq!(due_ids(stores, at(9), 100).await?, vec![]);
    assert_eq!(
        due_ids(stores, at(100), 2).await?.len(),
        2,
        "bounded by limit, earliest first"
    );
    assert_eq!(due_ids(stores, at(100), 0).await?, vec![]);

    // Claimed: scheduled -> publishing with a lease moves the entry to the lease's end.
    let claimed = next_version(soon.clone(), |p| {
        p.status = PostStatus::Publishing;
        p.publish.lease_until = Some(at(60));
    });
    repo.update_post(&claimed, 1).await?;
    assert_eq!(due_ids(stores, at(12), 100).await?, vec![]);
    assert!(due_ids(stores, at(100), 100)
        .await?
        .contains(&(soon.id.clone(), at(60))));

    // Terminal and draft statuses leave the index.
    let failed = next_version(later.clone(), |p| p.status = PostStatus::Failed);
    repo.update_post(&failed, 1).await?;
    let completed = next_version(tracking.clone(), |p| {
        p.status = PostStatus::Completed;
        p.publish.next_poll_at = None;
    });
    repo.update_post(&completed, 1).await?;
    assert_eq!(
        due_ids(stores, at(100), 100).await?,
        vec![(publishing.id.clone(), at(15)), (soon.id.clone(), at(60))]
    );

    // The exact instant survives, and `until` is exact too, not rounded to the index's millisecond.
    let precise = at(70) + Duration::microseconds(500);
    repo.create_post(&scheduled(fixtures::post(&workspace, &account, t), precise), None)
        .await?;
    assert!(!due_ids(stores, at(70) + Duration::microseconds(100), 100)
        .await?
        .iter()
        .any(|(_, due)| *due == precise));
    assert!(due_ids(stores, at(71), 100)
        .await?
        .iter()
        .any(|(_, due)| *due == precise));

    // Many posts land on every shard; the merge is still ordered and bounded.
    let mut many = Vec::new();
    for n in 0..40 {
        let post = scheduled(fixtures::post(&workspace, &account, t), at(1_000 + n));
        repo.create_post(&post, None).await?;
        many.push((post.id, at(1_000 + n)));
    }
    let window = due_ids(stores, at(1_000 + 39), 15).await?;
    let everything = due_ids(stores, at(5_000), 1_000).await?;
    assert_eq!(everything.len(), 2 + 1 + 40);
    assert!(
        everything.windows(2).all(|pair| pair[0].1 <= pair[1].1),
        "earliest first"
    );
    assert_eq!(window, everything[..15].to_vec(), "the limit keeps the earliest");
    assert_eq!(everything[3..].to_vec(), many, "all forty, in time order");

    // Paged by 7 from the last entry of each page: every entry once, in the same order, however the shards split.
    let mut paged = Vec::new();
    let mut after = None;
    loop {
        let page = repo.due_posts(at(5_000), after.as_ref(), 7).await?;
        assert!(page.len() <= 7, "a page holds at most its limit");
        let Some(last) = page.last().cloned() else { break };
        paged.extend(page.into_iter().map(|entry| (entry.post_id, entry.due_at)));
        after = Some(last);
    }
    assert_eq!(
        paged, everything,
        "pages join into the whole, nothing twice, nothing skipped"
    );
    Ok(())
}

/// The duplicate rule's memory: which post sent a file to an account, and since when.
pub async fn fingerprint_contract(stores: &Stores) -> anyhow::Result<()> {
    let repo = &stores.posts;
    let (account, other_account) = (AccountId::new(), AccountId::new());
    let (first, second) = (PostId::new(), PostId::new());
    let t = now_ms();
    let month_before = t - Duration::days(30);

    assert_eq!(repo.fingerprint_published(&account, "sha-a", month_before).await?, None);
    repo.record_fingerprint(&account, "sha-a", &first, t).await?;
    repo.record_fingerprint(&account, "sha-a", &first, t)
        .await
        .context("recording twice is harmless")?;
    assert_eq!(
        repo.fingerprint_published(&account, "sha-a", month_before).await?,
        Some(first.clone())
    );
    assert_eq!(
        repo.fingerprint_published(&account, "sha-a", t).await?,
        Some(first.clone()),
        "`since` is inclusive"
    );
    assert_eq!(
        repo.fingerprint_published(&account, "sha-a", t + Duration::seconds(1))
            .await?,
        None
    );
    assert_eq!(
        repo.fingerprint_published(&other_account, "sha-a", month_before)
            .await?,
        None,
        "per account"
    );
    assert_eq!(
        repo.fingerprint_published(&account, "sha-b", month_before).await?,
        None,
        "per fingerprint"
    );

    repo.record_fingerprint(&account, "sha-a", &second, t + Duration::seconds(10))
        .await?;
    let found = repo.fingerprint_published(&account, "sha-a", month_before).await?;
    assert!(
        found == Some(first.clone()) || found == Some(second.clone()),
        "{found:?}"
    );
    assert_eq!(
        repo.fingerprint_published(&account, "sha-a", t + Duration::seconds(5))
            .await?,
        Some(second)
    );
    Ok(())
}

/// Media: create once, compare-and-set updates.
pub async fn media_repo_contract(stores: &Stores) -> anyhow::Result<()> {
    let repo = &stores.media;
    let workspace = WorkspaceId::new();
    let media = fixtures::media(&workspace, now_ms());

    assert_eq!(repo.get_media(&media.id).await?, None);
    repo.create_media(&media).await?;
    assert_eq!(repo.get_media(&media.id).await?, Some(media.clone()));
    assert_already_exists(repo.create_media(&media).await, "creating the same media id again");

    let mut validating = media.clone();
    validating.status = MediaStatus::Validating;
    validating.version = 2;
    repo.update_media(&validating, 1).await?;
    assert_eq!(repo.get_media(&media.id).await?, Some(validating.clone()));

    let mut stale = media.clone();
    stale.status = MediaStatus::Invalid;
    stale.version = 2;
    assert_conflict(repo.update_media(&stale, 1).await, "a media update from a stale read");
    assert_conflict(
        repo.update_media(&validating, 2).await,
        "a media update that does not bump the version",
    );
    assert_eq!(repo.get_media(&media.id).await?, Some(validating));

    let mut ghost = fixtures::media(&workspace, now_ms());
    ghost.version = 2;
    assert_conflict(
        repo.update_media(&ghost, 1).await,
        "an update of media that does not exist",
    );
    assert_eq!(repo.get_media(&ghost.id).await?, None);

    repo.delete_media(&media.id).await?;
    assert_eq!(repo.get_media(&media.id).await?, None, "a deleted media record is gone");
    repo.delete_media(&media.id).await?;
    repo.delete_media(&ghost.id).await?;
    Ok(())
}

/// Accounts: per-workspace listing oldest first, lookup by TikTok open_id, compare-and-set.
/// Media read in batches: past DynamoDB's 100 keys per call, absent and repeated ids included, each record once.
pub async fn media_batch_read_contract(stores: &Stores) -> anyhow::Result<()> {
    let repo = &stores.media;
    let workspace = WorkspaceId::new();
    assert!(repo.get_media_many(&[]).await?.is_empty());

    let mut stored = Vec::new();
    for _ in 0..130 {
        let media = fixtures::media(&workspace, now_ms());
        repo.create_media(&media).await?;
        stored.push(media);
    }
    let mut ids: Vec<MediaId> = stored.iter().map(|m| m.id.clone()).collect();
    ids.extend((0..120).map(|_| fixtures::media(&workspace, now_ms()).id));
    ids.push(stored[0].id.clone());
    ids.push(stored[129].id.clone());

    let mut found = repo.get_media_many(&ids).await?;
    found.sort_by(|a, b| a.id.cmp(&b.id));
    stored.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(found, stored, "every stored record once, none of the absent ids");
    Ok(())
}

pub async fn account_repo_contract(stores: &Stores) -> anyhow::Result<()> {
    let repo = &stores.accounts;
    let (workspace, neighbour) = (WorkspaceId::new(), WorkspaceId::new());
    let t = now_ms();
    let oldest = fixtures::account(&workspace, "open-1", t - Duration::minutes(3));
    let middle = fixtures::account(&workspace, "open-2", t - Duration::minutes(2));
    let newest = fixtures::account(&workspace, "open-3", t - Duration::minutes(1));
    let neighbours = fixtures::account(&neighbour, "open-1", t);
    for account in [&newest, &oldest, &neighbours, &middle] {
        repo.create_account(account).await?;
    }

    assert_eq!(repo.get_account(&middle.id).await?, Some(middle.clone()));
    assert_eq!(repo.get_account(&AccountId::new()).await?, None);
    assert_already_exists(repo.create_account(&middle).await, "creating the same account id again");
    assert_eq!(
        repo.list_accounts(&workspace).await?,
        vec![oldest.clone(), middle.clone(), newest.clone()]
    );
    assert_eq!(repo.list_accounts(&neighbour).await?, vec![neighbours.clone()]);
    assert_eq!(repo.list_accounts(&WorkspaceId::new()).await?, vec![]);

    assert_eq!(
        repo.find_account_by_open_id(&workspace, "open-1").await?,
        Some(oldest.clone())
    );
    assert_eq!(
        repo.find_account_by_open_id(&neighbour, "open-1").await?,
        Some(neighbours),
        "per workspace"
    );
    assert_eq!(repo.find_account_by_open_id(&neighbour, "open-2").await?, None);
    assert_eq!(repo.find_account_by_open_id(&workspace, "open-9").await?, None);

    let mut reauth = middle.clone();
    reauth.status = AccountStatus::ReauthRequired;
    reauth.version = 2;
    repo.update_account(&reauth, 1).await?;
    let mut stale = middle.clone();
    stale.display_name = "stale".to_owned();
    stale.version = 2;
    assert_conflict(
        repo.update_account(&stale, 1).await,
        "an account update from a stale read",
    );
    assert_conflict(
        repo.update_account(&reauth, 2).await,
        "an account update that does not bump the version",
    );
    assert_eq!(repo.get_account(&middle.id).await?, Some(reauth.clone()));
    assert_eq!(
        repo.list_accounts(&workspace).await?,
        vec![oldest, reauth.clone()]
            .into_iter()
            .chain([newest])
            .collect::<Vec<_>>()
    );
    assert_eq!(repo.find_account_by_open_id(&workspace, "open-2").await?, Some(reauth));
    Ok(())
}

/// A TikTok user's accounts across workspaces (webhooks name only the user), oldest first, always the latest version.
pub async fn account_user_lookup_contract(stores: &Stores) -> anyhow::Result<()> {
    let repo = &stores.accounts;
    let user = format!("open-{}", ulid::Ulid::new());
    let t = now_ms();
    let first = fixtures::account(&WorkspaceId::new(), &user, t - Duration::minutes(2));
    let second = fixtures::account(&WorkspaceId::new(), &user, t - Duration::minutes(1));
    let someone_else = fixtures::account(&first.workspace_id, &format!("other-{}", ulid::Ulid::new()), t);
    for account in [&second, &someone_else, &first] {
        repo.create_account(account).await?;
    }

    assert_eq!(
        repo.find_accounts_by_open_id(&user).await?,
        vec![first.clone(), second.clone()],
        "every workspace's account of the user, oldest first"
    );
    assert_eq!(repo.find_accounts_by_open_id("nobody").await?, vec![]);

    let mut disconnected = second.clone();
    disconnected.status = AccountStatus::Disconnected;
    disconnected.version = 2;
    repo.update_account(&disconnected, 1).await?;
    assert_eq!(
        repo.find_accounts_by_open_id(&user).await?,
        vec![first, disconnected],
        "updates show at once"
    );
    Ok(())
}

/// Posts by TikTok's publish id, for webhooks: only once the id is saved, following every update.
pub async fn publish_id_lookup_contract(stores: &Stores) -> anyhow::Result<()> {
    let repo = &stores.posts;
    let (workspace, account) = (WorkspaceId::new(), AccountId::new());
    let t = now_ms();
    let publish_id = format!("v_pub_file~v2-1.{}", ulid::Ulid::new());

    let post = scheduled(fixtures::post(&workspace, &account, t), t);
    let other = scheduled(fixtures::post(&workspace, &account, t), t);
    repo.create_post(&post, None).await?;
    repo.create_post(&other, None).await?;
    assert_eq!(
        repo.find_post_by_publish_id(&publish_id).await?,
        None,
        "no post carries the id before the publisher saves it"
    );

    let accepted = next_version(post.clone(), |p| {
        p.status = PostStatus::Publishing;
        p.publish.publish_id = Some(publish_id.clone());
    });
    repo.update_post(&accepted, 1).await?;
    assert_eq!(repo.find_post_by_publish_id(&publish_id).await?, Some(accepted.clone()));

    let completed = next_version(accepted, |p| p.status = PostStatus::Completed);
    repo.update_post(&completed, 2).await?;
    assert_eq!(
        repo.find_post_by_publish_id(&publish_id).await?,
        Some(completed),
        "the latest version, not the one that saved the id"
    );
    assert_eq!(repo.find_post_by_publish_id("v_pub_file~v2-1.unknown").await?, None);

    let mut created_with_id = fixtures::post(&workspace, &account, t);
    created_with_id.publish.publish_id = Some(format!("{publish_id}-b"));
    repo.create_post(&created_with_id, None).await?;
    assert_eq!(
        repo.find_post_by_publish_id(&format!("{publish_id}-b")).await?,
        Some(created_with_id),
        "a post created with an id is found too"
    );
    Ok(())
}

/// Workspaces with unique names, and API keys by hash.
pub async fn workspace_repo_contract(stores: &Stores) -> anyhow::Result<()> {
    let repo = &stores.workspaces;
    let t = now_ms();
    let name = format!("acme-{}", ulid::Ulid::new());
    let acme = fixtures::workspace(&name, t);

    repo.create_workspace(&acme).await?;
    assert_eq!(repo.get_workspace(&acme.id).await?, Some(acme.clone()));
    assert_eq!(repo.find_workspace_by_name(&name).await?, Some(acme.clone()));
    assert_eq!(repo.find_workspace_by_name("nobody").await?, None);
    assert_eq!(repo.get_workspace(&WorkspaceId::new()).await?, None);

    let same_name = fixtures::workspace(&name, t);
    assert_already_exists(
        repo.create_workspace(&same_name).await,
        "a second workspace with a taken name",
    );
    assert_eq!(
        repo.get_workspace(&same_name.id).await?,
        None,
        "the refused workspace is not created"
    );

    let mut same_id = acme.clone();
    same_id.name = format!("{name}-renamed");
    assert_already_exists(repo.create_workspace(&same_id).await, "a workspace id already taken");
    assert_eq!(
        repo.find_workspace_by_name(&same_id.name).await?,
        None,
        "the refused name is not claimed"
    );

    let other = fixtures::workspace(&format!("{name}-other"), t);
    repo.create_workspace(&other).await?;
    assert_eq!(repo.find_workspace_by_name(&other.name).await?, Some(other.clone()));

    let key = fixtures::api_key(&acme.id, t);
    assert_eq!(repo.find_api_key(&key.hash).await?, None);
    repo.put_api_key(&key).await?;
    assert_eq!(repo.find_api_key(&key.hash).await?, Some(key.clone()));
    let revoked = shared::domain::ApiKey {
        revoked: true,
        ..key.clone()
    };
    repo.put_api_key(&revoked)
        .await
        .context("putting a key again replaces it (revocation)")?;
    assert_eq!(repo.find_api_key(&key.hash).await?, Some(revoked));
    assert_eq!(repo.find_api_key(&fixtures::api_key(&other.id, t).hash).await?, None);
    Ok(())
}

/// OAuth states: single use, and dead once expired.
pub async fn oauth_state_repo_contract(stores: &Stores) -> anyhow::Result<()> {
    let repo = &stores.oauth_states;
    let t = now_ms();
    let state = |value: &str, expires_at| OAuthState {
        state: value.to_owned(),
        workspace_id: WorkspaceId::new(),
        expires_at,
        connection: None,
    };
    let fresh = state(&format!("state-{}", ulid::Ulid::new()), t + Duration::minutes(10));

    repo.put_oauth_state(&fresh).await?;
    assert_already_exists(repo.put_oauth_state(&fresh).await, "the same state twice");
    assert_eq!(repo.take_oauth_state(&fresh.state, t).await?, Some(fresh.clone()));
    assert_eq!(
        repo.take_oauth_state(&fresh.state, t).await?,
        None,
        "a state is single-use"
    );

    let expiring = state(&format!("state-{}", ulid::Ulid::new()), t + Duration::minutes(10));
    repo.put_oauth_state(&expiring).await?;
    assert_eq!(
        repo.take_oauth_state(&expiring.state, expiring.expires_at).await?,
        None,
        "expired states are refused"
    );
    assert_eq!(
        repo.take_oauth_state(&expiring.state, t).await?,
        None,
        "and consumed all the same"
    );
    assert_eq!(repo.take_oauth_state("never-issued", t).await?, None);

    // A connection TikTok authorized travels whole, sealed tokens and all, and is single-use too.
    let pending = OAuthState {
        connection: Some(PendingConnection {
            account_id: AccountId::new(),
            open_id: "open-pending".into(),
            scopes: vec!["video.publish".into()],
            tokens: SealedTokens {
                access_token: "sealed-access".into(),
                access_expires_at: t + Duration::hours(24),
                refresh_token: "sealed-refresh".into(),
                refresh_expires_at: t + Duration::days(365),
            },
            display_name: "Creator".into(),
            avatar_url: None,
            username: Some("creator".into()),
        }),
        ..state(&format!("state-{}", ulid::Ulid::new()), t + Duration::minutes(10))
    };
    repo.put_oauth_state(&pending).await?;
    assert_eq!(repo.take_oauth_state(&pending.state, t).await?, Some(pending.clone()));
    assert_eq!(repo.take_oauth_state(&pending.state, t).await?, None);

    let distinct: HashSet<String> = (0..5).map(|_| format!("state-{}", ulid::Ulid::new())).collect();
    for value in &distinct {
        repo.put_oauth_state(&state(value, t + Duration::minutes(10))).await?;
    }
    for value in &distinct {
        assert!(repo.take_oauth_state(value, t).await?.is_some());
    }
    Ok(())
}

/// TikTok webhook delivery keys: claimed by the first caller only, held while applied and for the retention once
/// recorded, free again after a release or a lapsed lease; expiry judged by the caller's clock (a fixed date).
pub async fn webhook_delivery_contract(stores: &Stores) -> anyhow::Result<()> {
    let repo = &stores.webhook_deliveries;
    let now = fixtures::fixed_instant();
    let lease = now + Duration::seconds(60);
    let key = || format!("delivery-{}", ulid::Ulid::new());

    let first = key();
    assert_eq!(repo.claim_delivery(&first, now, lease).await?, DeliveryClaim::Claimed);
    assert_eq!(
        repo.claim_delivery(&first, now + Duration::seconds(1), lease).await?,
        DeliveryClaim::InProgress,
        "a copy arriving while the first is applied"
    );
    repo.release_delivery(&first).await?;
    assert_eq!(
        repo.claim_delivery(&first, now, lease).await?,
        DeliveryClaim::Claimed,
        "a released claim (applying failed) lets the redelivery apply"
    );
    let retained = now + Duration::hours(73);
    repo.finish_delivery(&first, retained).await?;
    let after_the_lease = lease + Duration::seconds(1);
    assert_eq!(
        repo.claim_delivery(&first, after_the_lease, after_the_lease + Duration::seconds(60))
            .await?,
        DeliveryClaim::AlreadyApplied,
        "an applied delivery holds its key past the lease"
    );
    repo.release_delivery(&first).await?;
    assert_eq!(
        repo.claim_delivery(&first, retained - Duration::seconds(1), retained)
            .await?,
        DeliveryClaim::AlreadyApplied,
        "a release never frees an applied delivery's key, up to its expiry"
    );
    assert_eq!(
        repo.claim_delivery(&first, retained, retained + Duration::seconds(60))
            .await?,
        DeliveryClaim::Claimed,
        "an expired key holds nothing, though the store may not have deleted it yet"
    );

    let abandoned = key();
    assert_eq!(
        repo.claim_delivery(&abandoned, now, lease).await?,
        DeliveryClaim::Claimed
    );
    assert_eq!(
        repo.claim_delivery(&abandoned, lease, lease + Duration::seconds(60))
            .await?,
        DeliveryClaim::Claimed,
        "the claim of a request that died lapses with its lease"
    );
    assert_eq!(
        repo.claim_delivery(&key(), now, lease).await?,
        DeliveryClaim::Claimed,
        "keys are independent"
    );

    let contested = key();
    let claims = futures::future::try_join_all((0..8).map(|_| repo.claim_delivery(&contested, now, lease))).await?;
    assert_eq!(
        claims.iter().filter(|claim| **claim == DeliveryClaim::Claimed).count(),
        1,
        "of copies arriving together, the first caller wins: {claims:?}"
    );
    Ok(())
}
