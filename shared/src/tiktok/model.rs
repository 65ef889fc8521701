//! The requests and answers of TikTok's Content Posting API, typed. Request bodies are built field by field so
//! that what TikTok requires explicitly (the two brand toggles, `privacy_level`) is always sent.

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::{chunk::ChunkPlan, error::UploadedRange, fail_reason::FailReason, webhook::json_id_to_string};
use crate::domain::Privacy;

/// Video caption limit (`title`), counted in UTF-16 code units: the safe reading of TikTok's "UTF-16 runes".
pub const VIDEO_TITLE_MAX_UTF16: usize = 2200;
pub const PHOTO_TITLE_MAX_UTF16: usize = 90;
pub const PHOTO_DESCRIPTION_MAX_UTF16: usize = 4000;
pub const PHOTO_MAX_IMAGES: usize = 35;
/// An upload URL is valid for one hour after init.
pub const UPLOAD_URL_LIFETIME: chrono::Duration = chrono::Duration::hours(1);

/// Length as TikTok counts it (JavaScript's `str.length`).
pub fn utf16_len(text: &str) -> usize {
    text.encode_utf16().count()
}

/// A URL whose query may carry a credential: TikTok's upload URL (`upload_token=`), a signed media URL.
/// `Debug` shows scheme, host and path only.
#[derive(Clone)]
pub struct SecretUrl(SecretString);

impl SecretUrl {
    pub fn new(url: impl Into<String>) -> Self {
        Self(SecretString::from(url.into()))
    }

    /// The whole URL, for sending. Never log it.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// Scheme, host and path: safe to log.
    pub fn redacted(&self) -> String {
        let url = self.0.expose_secret();
        let without_query = url.split(['?', '#']).next().unwrap_or_default();
        if without_query.len() < url.len() {
            format!("{without_query}?[redacted]")
        } else {
            without_query.to_owned()
        }
    }
}

impl std::fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretUrl({})", self.redacted())
    }
}

impl PartialEq for SecretUrl {
    fn eq(&self, other: &Self) -> bool {
        self.expose() == other.expose()
    }
}

/// `GET /v2/user/info/`, the `user.info.basic` fields.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct UserInfo {
    pub open_id: String,
    #[serde(default)]
    pub union_id: Option<String>,
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub avatar_url: Option<String>,
}

/// The `user.info.basic` fields we ask for; others need scopes the product does not request.
pub(crate) const USER_INFO_FIELDS: &str = "open_id,union_id,avatar_url,display_name";

#[derive(Deserialize)]
pub(crate) struct UserInfoData {
    pub user: UserInfo,
}

/// `creator_info/query`: what this creator may post now (reference §2). Call it fresh before each post.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CreatorInfo {
    #[serde(default)]
    pub creator_avatar_url: Option<String>,
    #[serde(default)]
    pub creator_username: Option<String>,
    /// TikTok requires the composer to show it.
    #[serde(default)]
    pub creator_nickname: String,
    /// TikTok's levels, verbatim; see [`CreatorInfo::privacy_options`] for the product's words.
    #[serde(default)]
    pub privacy_level_options: Vec<String>,
    #[serde(default)]
    pub comment_disabled: bool,
    #[serde(default)]
    pub duet_disabled: bool,
    #[serde(default)]
    pub stitch_disabled: bool,
    #[serde(default)]
    pub max_video_post_duration_sec: u32,
}

impl CreatorInfo {
    /// The offered levels in the product's words (`public`, `friends`, `followersOnly`, `private`), in TikTok's order.
    /// A level the product has no word for is left out: it cannot be chosen anyway.
    pub fn privacy_options(&self) -> Vec<Privacy> {
        privacy_options(&self.privacy_level_options)
    }

    pub fn offers(&self, privacy: Privacy) -> bool {
        self.privacy_level_options
            .iter()
            .any(|level| level == privacy.tiktok_level())
    }
}

/// TikTok's `privacy_level_options` in the product's words, unknown levels left out.
pub fn privacy_options(levels: &[String]) -> Vec<Privacy> {
    levels
        .iter()
        .filter_map(|level| Privacy::from_tiktok_level(level))
        .collect()
}

/// `post_info` of a Direct Post video. Every field is the user's explicit choice; nothing is defaulted here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoPostInfo {
    /// The caption (≤ 2200 UTF-16 units); `None` posts without one.
    pub title: Option<String>,
    pub privacy: Privacy,
    pub disable_comment: bool,
    pub disable_duet: bool,
    pub disable_stitch: bool,
    /// The cover frame; TikTok uses the first frame when absent.
    pub video_cover_timestamp_ms: Option<u32>,
    /// Paid partnership / third-party brand.
    pub brand_content_toggle: bool,
    /// The creator's own business.
    pub brand_organic_toggle: bool,
    pub is_aigc: bool,
}

impl VideoPostInfo {
    pub(crate) fn to_json(&self) -> Value {
        let mut info = Map::new();
        info.insert("privacy_level".into(), json!(self.privacy.tiktok_level()));
        if let Some(title) = &self.title {
            info.insert("title".into(), json!(title));
        }
        info.insert("disable_comment".into(), json!(self.disable_comment));
        info.insert("disable_duet".into(), json!(self.disable_duet));
        info.insert("disable_stitch".into(), json!(self.disable_stitch));
        if let Some(timestamp) = self.video_cover_timestamp_ms {
            info.insert("video_cover_timestamp_ms".into(), json!(timestamp));
        }
        // Marked required in TikTok's table but absent from its examples: always sent (§3.1).
        info.insert("brand_content_toggle".into(), json!(self.brand_content_toggle));
        info.insert("brand_organic_toggle".into(), json!(self.brand_organic_toggle));
        info.insert("is_aigc".into(), json!(self.is_aigc));
        Value::Object(info)
    }
}

/// How TikTok gets the video.
#[derive(Debug, Clone, PartialEq)]
pub enum VideoSource {
    /// We PUT the bytes to the returned upload URL, chunked per the plan.
    FileUpload(ChunkPlan),
    /// TikTok downloads the URL, which must sit under a verified domain or prefix.
    PullFromUrl(SecretUrl),
}

impl VideoSource {
    pub(crate) fn to_json(&self) -> Value {
        match self {
            Self::FileUpload(plan) => json!({
                "source": "FILE_UPLOAD",
                "video_size": plan.video_size,
                "chunk_size": plan.chunk_size,
                "total_chunk_count": plan.total_chunk_count,
            }),
            Self::PullFromUrl(url) => json!({ "source": "PULL_FROM_URL", "video_url": url.expose() }),
        }
    }
}

/// Photo posts go directly, or to the creator's inbox to finish in the app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PhotoPostMode {
    DirectPost {
        privacy: Privacy,
        disable_comment: bool,
        /// TikTok adds recommended music; the creator may change it later.
        auto_add_music: bool,
        brand_content_toggle: bool,
        brand_organic_toggle: bool,
    },
    /// Needs `video.upload` and TikTok app ≥ 31.8; TikTok documents no other `post_info` for it.
    MediaUpload,
}

/// A photo carousel (`content/init`). Photos travel only by PULL_FROM_URL.
#[derive(Debug, Clone, PartialEq)]
pub struct PhotoPost {
    pub mode: PhotoPostMode,
    /// ≤ 90 UTF-16 units.
    pub title: Option<String>,
    /// ≤ 4000 UTF-16 units; the product's caption travels here.
    pub description: Option<String>,
    /// 1–35 JPEG or WebP URLs under a verified prefix.
    pub images: Vec<SecretUrl>,
    /// 0-based index into `images`.
    pub cover_index: u32,
    /// Top-level in the current reference, not inside `post_info`.
    pub is_aigc: bool,
}

impl PhotoPost {
    pub(crate) fn to_json(&self) -> Value {
        let mut info = Map::new();
        if let Some(title) = &self.title {
            info.insert("title".into(), json!(title));
        }
        if let Some(description) = &self.description {
            info.insert("description".into(), json!(description));
        }
        let post_mode = match &self.mode {
            PhotoPostMode::DirectPost {
                privacy,
                disable_comment,
                auto_add_music,
                brand_content_toggle,
                brand_organic_toggle,
            } => {
                info.insert("privacy_level".into(), json!(privacy.tiktok_level()));
                info.insert("disable_comment".into(), json!(disable_comment));
                info.insert("auto_add_music".into(), json!(auto_add_music));
                info.insert("brand_content_toggle".into(), json!(brand_content_toggle));
                info.insert("brand_organic_toggle".into(), json!(brand_organic_toggle));
                "DIRECT_POST"
            }
            PhotoPostMode::MediaUpload => "MEDIA_UPLOAD",
        };
        json!({
            "media_type": "PHOTO",
            "post_mode": post_mode,
            "post_info": Value::Object(info),
            "source_info": {
                "source": "PULL_FROM_URL",
                "photo_images": self.images.iter().map(SecretUrl::expose).collect::<Vec<_>>(),
                "photo_cover_index": self.cover_index,
            },
            "is_aigc": self.is_aigc,
        })
    }
}

/// What an init returns. Persist `publish_id` the moment it arrives: it is the only handle on the post.
#[derive(Debug, Clone, PartialEq)]
pub struct InitOutcome {
    pub publish_id: String,
    /// FILE_UPLOAD only; valid for [`UPLOAD_URL_LIFETIME`].
    pub upload_url: Option<SecretUrl>,
    pub log_id: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct RawInitData {
    #[serde(default)]
    pub publish_id: Option<String>,
    #[serde(default)]
    pub upload_url: Option<String>,
}

/// The `Content-Type` of a chunk PUT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoContentType {
    Mp4,
    QuickTime,
    Webm,
}

impl VideoContentType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mp4 => "video/mp4",
            Self::QuickTime => "video/quicktime",
            Self::Webm => "video/webm",
        }
    }

    /// From a stored media content type; TikTok takes only these three.
    pub fn from_mime(mime: &str) -> Option<Self> {
        match mime.split(';').next().map(str::trim) {
            Some("video/mp4") => Some(Self::Mp4),
            Some("video/quicktime") => Some(Self::QuickTime),
            Some("video/webm") => Some(Self::Webm),
            _ => None,
        }
    }
}

/// TikTok's answer to one chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkAck {
    /// 206: accepted, more expected. `uploaded` is TikTok's own count, for resuming.
    Partial { uploaded: Option<UploadedRange> },
    /// 201: every byte arrived and TikTok starts processing.
    Complete,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublishState {
    ProcessingUpload,
    ProcessingDownload,
    /// Inbox mode: the notification went out; the user finishes the post in the app.
    SendToUserInbox,
    PublishComplete,
    Failed,
    Other(String),
}

impl PublishState {
    pub fn parse(value: &str) -> Self {
        match value {
            "PROCESSING_UPLOAD" => Self::ProcessingUpload,
            "PROCESSING_DOWNLOAD" => Self::ProcessingDownload,
            "SEND_TO_USER_INBOX" => Self::SendToUserInbox,
            "PUBLISH_COMPLETE" => Self::PublishComplete,
            "FAILED" => Self::Failed,
            other => Self::Other(other.to_owned()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::ProcessingUpload => "PROCESSING_UPLOAD",
            Self::ProcessingDownload => "PROCESSING_DOWNLOAD",
            Self::SendToUserInbox => "SEND_TO_USER_INBOX",
            Self::PublishComplete => "PUBLISH_COMPLETE",
            Self::Failed => "FAILED",
            Self::Other(other) => other,
        }
    }

    pub fn is_final(&self) -> bool {
        matches!(self, Self::PublishComplete | Self::Failed)
    }
}

/// `status/fetch`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishStatus {
    pub state: PublishState,
    pub fail_reason: Option<FailReason>,
    /// TikTok's `publicaly_available_post_id` (sic), as strings: the ids exceed 2^53. Empty for private posts and
    /// for public ones still in moderation.
    pub public_post_ids: Vec<String>,
    pub uploaded_bytes: Option<u64>,
    pub downloaded_bytes: Option<u64>,
    pub log_id: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct RawStatusData {
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub fail_reason: Option<String>,
    /// The typo is TikTok's. Documented as `list<int64>`, reported as "sometimes an array".
    #[serde(default)]
    pub publicaly_available_post_id: Option<Value>,
    #[serde(default)]
    pub uploaded_bytes: Option<u64>,
    #[serde(default)]
    pub downloaded_bytes: Option<u64>,
}

impl RawStatusData {
    pub(crate) fn into_status(self, log_id: Option<String>) -> Option<PublishStatus> {
        let public_post_ids = match self.publicaly_available_post_id {
            Some(Value::Array(ids)) => ids.iter().filter_map(json_id_to_string).collect(),
            Some(single) => json_id_to_string(&single).into_iter().collect(),
            None => Vec::new(),
        };
        Some(PublishStatus {
            state: PublishState::parse(&self.status?),
            fail_reason: self
                .fail_reason
                .filter(|r| !r.is_empty())
                .map(|r| FailReason::parse(&r)),
            public_post_ids,
            uploaded_bytes: self.uploaded_bytes,
            downloaded_bytes: self.downloaded_bytes,
            log_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn video_post_info_always_carries_privacy_and_both_brand_toggles() {
        let info = VideoPostInfo {
            title: None,
            privacy: Privacy::FollowersOnly,
            disable_comment: true,
            disable_duet: false,
            disable_stitch: false,
            video_cover_timestamp_ms: None,
            brand_content_toggle: false,
            brand_organic_toggle: false,
            is_aigc: false,
        };
        let body = info.to_json();
        assert_eq!(body["privacy_level"], "FOLLOWER_OF_CREATOR");
        assert_eq!(body["brand_content_toggle"], false);
        assert_eq!(body["brand_organic_toggle"], false);
        assert!(body.get("title").is_none() && body.get("video_cover_timestamp_ms").is_none());
    }

    #[test]
    fn photo_posts_put_is_aigc_at_top_level_and_mode_specific_fields_only_in_direct_post() {
        let mut post = PhotoPost {
            mode: PhotoPostMode::DirectPost {
                privacy: Privacy::Public,
                disable_comment: false,
                auto_add_music: true,
                brand_content_toggle: true,
                brand_organic_toggle: false,
            },
            title: Some("t".into()),
            description: Some("d".into()),
            images: vec![SecretUrl::new("https://m.example.com/1.jpg?sig=abc")],
            cover_index: 0,
            is_aigc: true,
        };
        let body = post.to_json();
        assert_eq!(body["post_mode"], "DIRECT_POST");
        assert_eq!(body["is_aigc"], true);
        assert!(body["post_info"].get("is_aigc").is_none());
        assert_eq!(body["post_info"]["auto_add_music"], true);
        assert_eq!(
            body["source_info"]["photo_images"][0],
            "https://m.example.com/1.jpg?sig=abc"
        );
        post.mode = PhotoPostMode::MediaUpload;
        let body = post.to_json();
        assert_eq!(body["post_mode"], "MEDIA_UPLOAD");
        assert!(body["post_info"].get("privacy_level").is_none());
        assert!(!format!("{post:?}").contains("sig=abc"));
    }

    #[test]
    fn status_keeps_19_digit_post_ids_exact_in_any_shape() {
        let parse = |json: &str| {
            serde_json::from_str::<RawStatusData>(json)
                .ok()
                .and_then(|raw| raw.into_status(None))
                .expect("parses")
        };
        let status = parse(r#"{"status":"PUBLISH_COMPLETE","publicaly_available_post_id":[7300000000000000123]}"#);
        assert_eq!(status.public_post_ids, ["7300000000000000123"]);
        assert_eq!(status.state, PublishState::PublishComplete);
        let single = parse(r#"{"status":"PUBLISH_COMPLETE","publicaly_available_post_id":"7300000000000000124"}"#);
        assert_eq!(single.public_post_ids, ["7300000000000000124"]);
        let failed = parse(r#"{"status":"FAILED","fail_reason":"spam_risk","publicaly_available_post_id":[]}"#);
        assert_eq!(failed.fail_reason, Some(FailReason::SpamRisk));
        assert!(failed.public_post_ids.is_empty());
    }

    #[test]
    fn creator_options_map_to_the_product_words() {
        let info: CreatorInfo = serde_json::from_value(json!({
            "creator_nickname": "n",
            "privacy_level_options": ["FOLLOWER_OF_CREATOR", "MUTUAL_FOLLOW_FRIENDS", "SELF_ONLY", "NEW_LEVEL"],
            "max_video_post_duration_sec": 300
        }))
        .expect("parses");
        assert_eq!(
            info.privacy_options(),
            [Privacy::FollowersOnly, Privacy::Friends, Privacy::Private]
        );
        assert!(info.offers(Privacy::Friends));
        assert!(!info.offers(Privacy::Public));
        assert_eq!(utf16_len("a😀"), 3);
    }
}
