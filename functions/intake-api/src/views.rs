//! What the API shows: the stored records seen from outside (camelCase, no tokens, no upload URLs, no leases).

use chrono::{DateTime, Utc};
use serde::Serialize;
use shared::{
    domain::{
        Account, AccountStatus, AuditEntry, Failure, Finding, Media, MediaFacts, MediaKind, MediaStatus, Post,
        PostOptions, PostStatus, PostType, Privacy, RenditionStatus,
    },
    ids::{AccountId, MediaId, PostId},
    ports::UploadTarget,
    tiktok::CreatorInfo,
};
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct MediaRef {
    pub id: MediaId,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PostView {
    pub id: PostId,
    /// Always `tiktok`.
    pub platform: &'static str,
    pub account_id: AccountId,
    pub status: PostStatus,
    pub post_type: PostType,
    pub content: String,
    pub media: Vec<MediaRef>,
    pub options: PostOptions,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheduled_at: Option<DateTime<Utc>>,
    /// What the caller should know but need not fix: e.g. `interaction_disabled_by_creator` (an option left at its
    /// default is sent as false because the creator turned it off), `creator_check_deferred` (TikTok could not be
    /// asked for the creator's settings; they are checked before sending), `media_not_validated_yet`.
    pub warnings: Vec<Finding>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    /// TikTok's id for the publish request, once TikTok accepted the init.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub publish_id: Option<String>,
    /// TikTok's processing status as last seen (`PROCESSING_UPLOAD`, `PUBLISH_COMPLETE`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tiktok_status: Option<String>,
    /// TikTok's post id, once the post is public and has passed moderation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tiktok_post_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub post_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub published_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<DateTime<Utc>>,
    /// Retries, resolutions and cancels, oldest first, each with the id of the API key that asked.
    pub audit: Vec<AuditEntry>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<&Post> for PostView {
    fn from(post: &Post) -> Self {
        Self {
            id: post.id.clone(),
            platform: "tiktok",
            account_id: post.account_id.clone(),
            status: post.status,
            post_type: post.post_type,
            content: post.content.clone(),
            media: post.media.iter().map(|id| MediaRef { id: id.clone() }).collect(),
            options: post.options.clone(),
            scheduled_at: post.scheduled_at,
            warnings: post.warnings.clone(),
            failure: post.failure.clone(),
            publish_id: post.publish.publish_id.clone(),
            tiktok_status: post.publish.tiktok_status.clone(),
            tiktok_post_id: post.publish.tiktok_post_id.clone(),
            post_url: post.publish.post_url.clone(),
            published_at: post.publish.published_at,
            completed_at: post.publish.completed_at,
            audit: post.audit.clone(),
            created_at: post.created_at,
            updated_at: post.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PostList {
    pub data: Vec<PostView>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UploadView {
    pub url: String,
    /// Always `PUT`.
    pub method: &'static str,
    /// Send exactly these headers with the bytes.
    pub headers: std::collections::BTreeMap<String, String>,
    pub expires_at: DateTime<Utc>,
}

impl From<UploadTarget> for UploadView {
    fn from(target: UploadTarget) -> Self {
        Self {
            url: target.url,
            method: target.method,
            headers: target.headers.into_iter().collect(),
            expires_at: target.expires_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VerdictView {
    pub accepted: bool,
    /// What the bytes turned out to be: `video`, `image` or `unknown`.
    pub detected_kind: String,
    pub violations: Vec<Finding>,
    pub warnings: Vec<Finding>,
    /// What was done about the file, not a problem: `sent_as_mp4` when an MPEG transport or program stream was
    /// remuxed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub info: Vec<Finding>,
    pub facts: MediaFacts,
    /// The copy made for TikTok and published instead of the upload: the MP4 remux of an MPEG-TS or MPEG-PS (TikTok
    /// takes MP4, MOV and WebM only). Absent for files sent as uploaded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rendition: Option<RenditionView>,
    pub validated_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RenditionView {
    /// `mp4`.
    pub container: String,
    /// 0 while `pending`.
    pub size_bytes: u64,
    /// `ready`: stored, and what the publisher sends. `pending`: a transport stream too large to remux while
    /// validating (over 1 GB in AWS) is being remuxed by the media worker; posts due meanwhile wait for it, and the
    /// media ends `valid` with it `ready` (a second `media.validated`) or `invalid` with `remux_failed`.
    pub status: RenditionStatus,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MediaView {
    pub id: MediaId,
    pub kind: MediaKind,
    pub status: MediaStatus,
    pub content_type: String,
    pub size_bytes: u64,
    pub file_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdict: Option<VerdictView>,
    /// Present only in the response that created the media.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upload: Option<UploadView>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl MediaView {
    pub fn new(media: &Media, upload: Option<UploadTarget>) -> Self {
        Self {
            id: media.id.clone(),
            kind: media.kind,
            status: media.status,
            content_type: media.content_type.clone(),
            size_bytes: media.declared_size,
            file_name: media.file_name.clone(),
            verdict: media.verdict.as_ref().map(|v| VerdictView {
                accepted: v.accepted,
                detected_kind: v.detected_kind.clone(),
                violations: v.violations.clone(),
                warnings: v.warnings.clone(),
                info: v.info.clone(),
                facts: v.facts.clone(),
                rendition: v.rendition.as_ref().map(|r| RenditionView {
                    container: r.container.clone(),
                    size_bytes: r.size_bytes,
                    status: r.status,
                }),
                validated_at: v.validated_at,
            }),
            upload: upload.map(UploadView::from),
            created_at: media.created_at,
            updated_at: media.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccountView {
    pub id: AccountId,
    /// Always `tiktok`.
    pub platform: &'static str,
    pub display_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub avatar_url: Option<String>,
    pub status: AccountStatus,
    /// Scopes the user granted to this app.
    pub scopes: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub terms_accepted_at: Option<DateTime<Utc>>,
    pub connected_at: DateTime<Utc>,
}

impl From<&Account> for AccountView {
    fn from(account: &Account) -> Self {
        Self {
            id: account.id.clone(),
            platform: "tiktok",
            display_name: account.display_name.clone(),
            username: account.username.clone(),
            avatar_url: account.avatar_url.clone(),
            status: account.status,
            scopes: account.scopes.clone(),
            terms_accepted_at: account.terms_accepted_at,
            connected_at: account.connected_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccountList {
    pub data: Vec<AccountView>,
}

/// Where to send the user to connect a TikTok account.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectView {
    /// TikTok's authorize page; after consent TikTok sends the browser to this API's callback.
    pub authorize_url: String,
    /// The connection must finish before this (the `state` in the URL is single-use and valid 10 minutes).
    pub expires_at: DateTime<Utc>,
}

/// TikTok authorized the connection; it is not attached to any workspace until the one that started it claims it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PendingConnectionView {
    /// Claim it with `POST /v1/accounts/tiktok/connections/{connectionId}` and the API key of the workspace that
    /// called connect; single-use.
    pub connection_id: String,
    pub expires_at: DateTime<Utc>,
    /// The creator who authorized, to show before claiming.
    pub display_name: String,
    pub username: Option<String>,
}

impl From<&shared::ports::OAuthState> for PendingConnectionView {
    fn from(pending: &shared::ports::OAuthState) -> Self {
        let connection = pending.connection.as_ref();
        Self {
            connection_id: pending.state.clone(),
            expires_at: pending.expires_at,
            display_name: connection.map(|c| c.display_name.clone()).unwrap_or_default(),
            username: connection.and_then(|c| c.username.clone()),
        }
    }
}

/// What the creator may post right now, in the product's terms; fetch it fresh each time a composer is shown
/// (TikTok's UX rules): show `nickname`, build the privacy choice from `privacyOptions` only (no default), grey out
/// disabled interactions, refuse videos longer than `maxVideoDurationSec`, and stop with `cannotPostReason` when
/// `canPost` is false.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatorInfoView {
    /// TikTok requires showing it.
    pub nickname: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub avatar_url: Option<String>,
    /// The privacy levels TikTok offers this creator now (`followersOnly` only for private accounts); empty when the
    /// creator cannot post.
    pub privacy_options: Vec<Privacy>,
    pub comment_disabled: bool,
    pub duet_disabled: bool,
    pub stitch_disabled: bool,
    /// 0 when the creator cannot post.
    pub max_video_duration_sec: u32,
    pub can_post: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cannot_post_reason: Option<CannotPost>,
    /// False until this TikTok app passes TikTok's audit: TikTok then accepts only `private` posts, from private
    /// accounts, whatever `privacyOptions` lists (a composer says so next to its privacy choice).
    pub app_audited: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CannotPost {
    /// TikTok's code: `spam_risk_too_many_posts`, `spam_risk_user_banned_from_posting`, `reached_active_user_cap`.
    pub code: String,
    pub message: String,
}

impl CreatorInfoView {
    pub fn new(info: &CreatorInfo, app_audited: bool) -> Self {
        Self {
            nickname: info.creator_nickname.clone(),
            username: info.creator_username.clone().filter(|u| !u.is_empty()),
            avatar_url: info.creator_avatar_url.clone().filter(|u| !u.is_empty()),
            privacy_options: info.privacy_options(),
            comment_disabled: info.comment_disabled,
            duet_disabled: info.duet_disabled,
            stitch_disabled: info.stitch_disabled,
            max_video_duration_sec: info.max_video_post_duration_sec,
            can_post: true,
            cannot_post_reason: None,
            app_audited,
        }
    }

    /// TikTok answered that the creator cannot post now (with HTTP 200 and no data): nothing may be offered, and the
    /// account's stored names stand in for the creator's.
    pub fn cannot_post(account: &Account, code: &str, app_audited: bool) -> Self {
        let message = match code {
            "spam_risk_too_many_posts" => {
                "This creator reached TikTok's daily limit of posts made through apps; try again tomorrow."
            }
            "spam_risk_user_banned_from_posting" => {
                "TikTok has banned this creator from posting; the account owner must resolve it with TikTok."
            }
            "reached_active_user_cap" => {
                "This app reached TikTok's daily cap of creators posting through it; try again later."
            }
            _ => "TikTok says this creator cannot post right now; try again later.",
        };
        Self {
            nickname: account.display_name.clone(),
            username: account.username.clone(),
            avatar_url: account.avatar_url.clone(),
            privacy_options: Vec::new(),
            comment_disabled: true,
            duet_disabled: true,
            stitch_disabled: true,
            max_video_duration_sec: 0,
            can_post: false,
            cannot_post_reason: Some(CannotPost {
                code: code.to_owned(),
                message: message.to_owned(),
            }),
            app_audited,
        }
    }
}

/// What a webhook delivery did; TikTok only needs the 200.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WebhookOutcome {
    /// The post or account moved.
    Applied,
    /// Already in that state: a redelivery, or polling got there first.
    Unchanged,
    /// Not ours to act on: an unknown publish id, user or event.
    Ignored,
    /// A delivery with the same key (event, user, time and content) was handled before, within TikTok's 72 h of
    /// redeliveries: a redelivery or a replay, and nothing was done.
    Duplicate,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookAck {
    pub outcome: WebhookOutcome,
}
