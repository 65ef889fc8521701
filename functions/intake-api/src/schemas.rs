//! Request bodies as the OpenAPI document describes them. The handlers read bodies as raw JSON (to report every
//! violation at once), so these types exist for the document only and mirror `shared::rules::post`.
#![allow(dead_code)]

use serde::Deserialize;
use shared::domain::{MediaKind, Privacy};
use utoipa::{IntoParams, ToSchema};

#[derive(Deserialize, ToSchema)]
pub struct MediaItem {
    /// A media id from `POST /v1/media` (med_...).
    id: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    Tiktok,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Intent {
    /// Publish at `scheduledAt`, or now without it.
    Publish,
    /// Keep in Postato only; nothing reaches TikTok.
    Draft,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PostTypeName {
    Video,
    Photo,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OptionsRequest {
    /// Required unless `status` is `draft`. An unaudited TikTok app accepts only `private`.
    privacy: Option<Privacy>,
    /// Default true.
    allow_comments: Option<bool>,
    /// Video only (default true); on a photo post it is not sent and a warning says so.
    allow_duet: Option<bool>,
    /// Video only (default true); on a photo post it is not sent and a warning says so.
    allow_stitch: Option<bool>,
    /// Video only: the frame TikTok uses as cover, in ms from the start.
    #[schema(minimum = 0, maximum = 2147483647)]
    cover_timestamp_ms: Option<u32>,
    /// Paid partnership (default false); cannot be private.
    brand_content: Option<bool>,
    /// Promotes the creator's own business (default false).
    brand_organic: Option<bool>,
    /// Labels the post as AI-generated (default false).
    ai_generated: Option<bool>,
    /// Photo only, ≤ 90 UTF-16 units.
    #[schema(max_length = 90)]
    title: Option<String>,
    /// Photo only: TikTok adds recommended music (default false).
    auto_add_music: Option<bool>,
    /// Publish even if this file went to the same account in the last 30 days (default false).
    allow_duplicate: Option<bool>,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreatePostRequest {
    platform: Platform,
    /// A connected account of this workspace (acc_...).
    account_id: String,
    /// Default `publish`.
    status: Option<Intent>,
    post_type: PostTypeName,
    /// The caption: ≤ 2,200 characters as TikTok counts them (UTF-16 units; hashtags count).
    #[schema(max_length = 2200)]
    content: Option<String>,
    /// Video: exactly 1 video. Photo: 2–35 distinct images.
    #[schema(min_items = 1, max_items = 35)]
    media: Vec<MediaItem>,
    options: Option<OptionsRequest>,
    /// RFC 3339 with an offset; not in the past (60 s of skew allowed), at most 365 days ahead.
    scheduled_at: Option<chrono::DateTime<chrono::FixedOffset>>,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PatchPostRequest {
    #[schema(max_length = 2200)]
    content: Option<String>,
    media: Option<Vec<MediaItem>>,
    /// Keys given replace the stored ones; others stay.
    options: Option<OptionsRequest>,
    /// `null` publishes now (when `status` is publish).
    scheduled_at: Option<chrono::DateTime<chrono::FixedOffset>>,
    /// `publish` turns a draft into a scheduled post; `draft` takes a scheduled post back.
    status: Option<Intent>,
}

/// The body of `POST /v1/posts/{id}/retry`; it may be left out entirely.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetryPostRequest {
    /// When to publish; absent (or `null`) means now. The same limits as at creation (not in the past, at most a
    /// year ahead).
    scheduled_at: Option<chrono::DateTime<chrono::FixedOffset>>,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ResolveOutcome {
    /// The post is on TikTok: the post becomes `completed`.
    Published,
    /// The post is not on TikTok: the post becomes `failed` with `not_published_confirmed`, which `retry` accepts.
    NotPublished,
}

/// The body of `POST /v1/posts/{id}/resolve`: what a person found on TikTok.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResolvePostRequest {
    outcome: ResolveOutcome,
    /// With `published` only, optional: the post's https URL on tiktok.com. TikTok's post id is taken from a
    /// `https://www.tiktok.com/@user/video/{id}` (or `/photo/{id}`) URL.
    #[schema(max_length = 2048)]
    post_url: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateMediaRequest {
    kind: MediaKind,
    /// video/mp4, video/quicktime, video/mpeg, video/mp2t; image/jpeg, image/png, image/webp. Required for an
    /// upload; optional with `sourceUrl` (the file's content decides its type).
    content_type: Option<String>,
    /// Exact size; the upload URL accepts only this length. ≤ 4 GB (video), ≤ 20 MB (image). Required for an
    /// upload; ignored with `sourceUrl` (the limits apply while fetching).
    #[schema(minimum = 1)]
    size_bytes: Option<u64>,
    #[schema(max_length = 255)]
    file_name: Option<String>,
    /// Instead of uploading: a public `https` URL the service fetches the file from (no upload URL is returned;
    /// the media is `importing`, then validated like an upload). Private, loopback, link-local and metadata
    /// addresses are refused, at most 3 redirects are followed; failures end the media `invalid` with
    /// `source_unreachable`, `source_too_large`, `source_forbidden_address`, `source_scheme_refused`,
    /// `source_too_many_redirects` or `source_timeout`. The fetch runs in the media worker (SQS-triggered in AWS);
    /// when the import cannot be queued the answer is 503 and nothing is fetched.
    #[schema(max_length = 2048)]
    source_url: Option<String>,
}

/// What TikTok adds when it sends the browser back (the callback reads the raw query so that any value is answered in
/// the API's error shape).
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CallbackParams {
    /// The authorization code (single use, exchanged at once).
    code: Option<String>,
    /// The `state` from `POST /v1/accounts/tiktok/connect`: single use, valid 10 minutes.
    state: Option<String>,
    /// The scopes the user granted, comma-separated.
    scopes: Option<String>,
    /// Set instead of `code` when the user or TikTok refused.
    error: Option<String>,
    error_description: Option<String>,
}
