//! Valid records to store, with only what a test cares about spelled out at the call site.

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use shared::{
    domain::{
        Account, ApiKey, Media, MediaKind, MediaStatus, Post, PostOptions, PostStatus, PostType, Privacy, Workspace,
    },
    ids::{AccountId, MediaId, PostId, WorkspaceId},
};

/// Now, cut to whole milliseconds so that times built from it compare exactly after a trip through any store.
pub fn now_ms() -> DateTime<Utc> {
    let now = Utc::now();
    now.duration_trunc(TimeDelta::milliseconds(1)).unwrap_or(now)
}

/// A fixed instant years away from any date the tests run on: what a contract uses where a store must take "now"
/// from its caller.
pub fn fixed_instant() -> DateTime<Utc> {
    DateTime::from_timestamp(1_740_819_600, 0).unwrap_or_default() // 2025-03-01T09:00:00Z
}

/// A draft video post, version 1.
pub fn post(workspace: &WorkspaceId, account: &AccountId, created_at: DateTime<Utc>) -> Post {
    Post {
        id: PostId::new(),
        workspace_id: workspace.clone(),
        account_id: account.clone(),
        status: PostStatus::Draft,
        post_type: PostType::Video,
        content: "Morning run #running".to_owned(),
        media: vec![MediaId::new()],
        options: PostOptions {
            privacy: Some(Privacy::Private),
            ..PostOptions::default()
        },
        scheduled_at: None,
        warnings: Vec::new(),
        publish: Default::default(),
        failure: None,
        outbox: Vec::new(),
        audit: Vec::new(),
        created_at,
        updated_at: created_at,
        version: 1,
    }
}

/// The post, scheduled for `at`.
pub fn scheduled(mut post: Post, at: DateTime<Utc>) -> Post {
    post.status = PostStatus::Scheduled;
    post.scheduled_at = Some(at);
    post
}

/// The next version of a record as a writer would produce it: the change applied and the version bumped.
pub fn next_version(mut post: Post, change: impl FnOnce(&mut Post)) -> Post {
    change(&mut post);
    post.version += 1;
    post
}

pub fn media(workspace: &WorkspaceId, created_at: DateTime<Utc>) -> Media {
    let id = MediaId::new();
    Media {
        object_key: Media::object_key_for(workspace, &id),
        id,
        workspace_id: workspace.clone(),
        kind: MediaKind::Video,
        content_type: "video/mp4".to_owned(),
        declared_size: 12_345_678,
        file_name: "run.mp4".to_owned(),
        status: MediaStatus::PendingUpload,
        verdict: None,
        created_at,
        updated_at: created_at,
        version: 1,
        waiting_posts: Vec::new(),
    }
}

pub fn account(workspace: &WorkspaceId, open_id: &str, created_at: DateTime<Utc>) -> Account {
    Account {
        display_name: format!("Creator {open_id}"),
        username: Some(format!("creator_{open_id}")),
        scopes: vec![
            "user.info.basic".to_owned(),
            "video.upload".to_owned(),
            "video.publish".to_owned(),
        ],
        terms_accepted_at: Some(created_at),
        ..Account::new_connected(workspace.clone(), open_id, created_at)
    }
}

pub fn workspace(name: &str, created_at: DateTime<Utc>) -> Workspace {
    Workspace {
        id: WorkspaceId::new(),
        name: name.to_owned(),
        created_at,
    }
}

pub fn api_key(workspace: &WorkspaceId, created_at: DateTime<Utc>) -> ApiKey {
    ApiKey {
        hash: ApiKey::hash_secret(&ApiKey::generate_secret()),
        workspace_id: workspace.clone(),
        created_at,
        revoked: false,
    }
}
