//! Uploaded files and the validator's verdict on them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::ids::{MediaId, PostId, WorkspaceId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MediaKind {
    Video,
    Image,
}

impl MediaKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Video => "video",
            Self::Image => "image",
        }
    }

    /// The guide's size limits: 4 GB per video, 20 MB per image (decimal units, as TikTok writes them).
    pub fn max_size_bytes(self) -> u64 {
        match self {
            Self::Video => 4_000_000_000,
            Self::Image => 20_000_000,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MediaStatus {
    /// Created; the bytes have not arrived yet.
    PendingUpload,
    /// Created with a `sourceUrl`: the file is being fetched from it, then validated like an upload.
    Importing,
    /// The bytes arrived and are being probed.
    Validating,
    /// Accepted by the validator; may carry warnings.
    Valid,
    /// Rejected by the validator; `verdict.violations` says why and what to do.
    Invalid,
}

impl MediaStatus {
    /// Whether a verdict is still to come (the bytes are on their way or being probed).
    pub fn awaits_verdict(self) -> bool {
        matches!(self, Self::PendingUpload | Self::Importing | Self::Validating)
    }
}

/// One rule outcome: a stable code and a message that says what to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Finding {
    pub code: String,
    pub message: String,
}

impl Finding {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
        }
    }
}

/// What the probe read from the file itself (never from its name or declared type).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MediaFacts {
    /// `mp4`, `mov`, `mpegts`, `mpegps`, `jpeg`, `png`, `webp`, or what else was recognised.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    pub size_bytes: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// As stored, before rotation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    /// Degrees clockwise, normalised to 0, 90, 180 or 270.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation: Option<u32>,
    /// After rotation (and EXIF orientation for images).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_width: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_height: Option<u32>,
    /// Average frames per second (frames ÷ duration), as ffprobe's avg_frame_rate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frame_rate: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video_codec: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video_profile: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video_level: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio_codec: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio_sample_rate: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio_channels: Option<u32>,
    /// Images: `jpeg`, `png`, `webp`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// Images: EXIF orientation (1–8) when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orientation: Option<u8>,
}

/// A copy of the upload made for TikTok, which takes neither PNG nor MPEG-TS/PS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Rendition {
    /// `mp4` (a remuxed transport or program stream) or `jpeg`.
    pub container: String,
    pub size_bytes: u64,
    pub status: RenditionStatus,
    /// The rendition object's version, which the publisher pins its reads to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RenditionStatus {
    /// To be made by the media worker (a transport stream too large to remux while validating); posts wait for it.
    Pending,
    /// Stored; the publisher sends it.
    Ready,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MediaVerdict {
    pub accepted: bool,
    /// `video`, `image` or `unknown`, from the bytes.
    pub detected_kind: String,
    pub violations: Vec<Finding>,
    pub warnings: Vec<Finding>,
    /// What was done about the file that the caller may want to know (the MP4 remux of an MPEG stream).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub info: Vec<Finding>,
    pub facts: MediaFacts,
    /// SHA-256 used by the publisher's duplicate rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// Object key of the rendition the publisher sends instead of the upload: the JPEG copy of a PNG, or the MP4
    /// remux of an MPEG transport or program stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rendition_key: Option<String>,
    /// What the rendition is, for the caller (set for the MP4 remux of an MPEG transport or program stream).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rendition: Option<Rendition>,
    /// The object version the verdict is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    pub validated_at: DateTime<Utc>,
}

impl MediaVerdict {
    /// A file refused before it could be judged (its import failed, or could not be started): one violation.
    pub fn refused(finding: Finding, at: DateTime<Utc>) -> Self {
        Self {
            accepted: false,
            detected_kind: "unknown".into(),
            violations: vec![finding],
            warnings: Vec::new(),
            info: Vec::new(),
            facts: MediaFacts::default(),
            fingerprint: None,
            rendition_key: None,
            rendition: None,
            etag: None,
            validated_at: at,
        }
    }

    /// Whether the rendition the publisher must send is still to be made.
    pub fn rendition_pending(&self) -> bool {
        self.rendition
            .as_ref()
            .is_some_and(|r| r.status == RenditionStatus::Pending)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Media {
    pub id: MediaId,
    pub workspace_id: WorkspaceId,
    pub kind: MediaKind,
    pub content_type: String,
    pub declared_size: u64,
    pub file_name: String,
    pub object_key: String,
    pub status: MediaStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<MediaVerdict>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: u64,
    /// Posts due while this media was not yet validated, woken the moment its verdict is stored (issue 10: a post
    /// sent "now" right after its upload goes out when the file is judged, not at its next look).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waiting_posts: Vec<PostId>,
}

impl Media {
    /// More waiting posts than this are not recorded: they look again on their own, a few seconds apart.
    pub const MAX_WAITING_POSTS: usize = 100;

    /// Whether something a post needs is still to come: the verdict, or the rendition an accepted verdict promised.
    /// Posts wait on either the same way, and are woken when it lands.
    pub fn awaits_verdict_or_rendition(&self) -> bool {
        self.status.awaits_verdict() || self.verdict.as_ref().is_some_and(MediaVerdict::rendition_pending)
    }

    /// Records `post` as waiting for this media's verdict (or pending rendition); false when it cannot be (nothing is
    /// pending, or the list is full), so the caller must look again by itself.
    pub fn add_waiting_post(&mut self, post: &PostId) -> bool {
        if !self.awaits_verdict_or_rendition() {
            return false;
        }
        if self.waiting_posts.contains(post) {
            return true;
        }
        if self.waiting_posts.len() >= Self::MAX_WAITING_POSTS {
            return false;
        }
        self.waiting_posts.push(post.clone());
        true
    }

    /// Uploads live under one prefix (the validator's S3 notification filter), keyed so that the object key alone
    /// names the media: `uploads/<workspace>/<media>`.
    pub const UPLOAD_PREFIX: &'static str = "uploads/";
    pub const RENDITION_PREFIX: &'static str = "renditions/";

    pub fn object_key_for(workspace: &WorkspaceId, media: &MediaId) -> String {
        format!("{}{workspace}/{media}", Self::UPLOAD_PREFIX)
    }

    pub fn rendition_key_for(workspace: &WorkspaceId, media: &MediaId) -> String {
        format!("{}{workspace}/{media}.jpg", Self::RENDITION_PREFIX)
    }

    /// Where the MP4 remux of an MPEG transport or program stream goes.
    pub fn mp4_rendition_key_for(workspace: &WorkspaceId, media: &MediaId) -> String {
        format!("{}{workspace}/{media}.mp4", Self::RENDITION_PREFIX)
    }

    /// The media id named by an upload's object key, if the key is one of ours.
    pub fn id_from_object_key(key: &str) -> Option<(WorkspaceId, MediaId)> {
        let rest = key.strip_prefix(Self::UPLOAD_PREFIX)?;
        let (workspace, media) = rest.split_once('/')?;
        Some((WorkspaceId::parse(workspace).ok()?, MediaId::parse(media).ok()?))
    }

    /// Why the validator rejected the file, its violations' messages in one line (empty when it did not).
    pub fn rejection_reasons(&self) -> String {
        self.verdict
            .as_ref()
            .map(|v| {
                v.violations
                    .iter()
                    .map(|f| f.message.as_str())
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .unwrap_or_default()
    }

    /// The object the publisher sends to TikTok: the rendition (JPEG of a PNG, MP4 of an MPEG stream), else the
    /// upload itself.
    pub fn publishable_key(&self) -> &str {
        self.verdict
            .as_ref()
            .and_then(|v| v.rendition_key.as_deref())
            .unwrap_or(&self.object_key)
    }

    /// Every object the media has in the blob store: the upload and, when the validator made one, its rendition.
    pub fn object_keys(&self) -> Vec<&str> {
        let rendition = self.verdict.as_ref().and_then(|v| v.rendition_key.as_deref());
        std::iter::once(self.object_key.as_str()).chain(rendition).collect()
    }

    /// The container, size and version of what [`Media::publishable_key`] names, when the verdict knows them: the
    /// MP4 rendition's for a remuxed MPEG stream, else the upload's.
    pub fn publishable_container(&self) -> Option<&str> {
        let verdict = self.verdict.as_ref()?;
        match &verdict.rendition {
            Some(rendition) => Some(rendition.container.as_str()),
            None => verdict.facts.container.as_deref(),
        }
    }

    /// Why TikTok's API can never take this video as it stands (it takes MP4 and MOV; an MPEG transport or
    /// program stream is published as its MP4 remux, so one the validator did not remux is not), with the fix; `None` when it can, or while that is not known yet.
    pub fn unpublishable_container(&self) -> Option<String> {
        match self.publishable_container()? {
            "mp4" | "mov" => None,
            other => Some(format!(
                "TikTok's API takes MP4 or MOV, not {other}: remux without re-encoding, e.g. \
                 `ffmpeg -i input -c copy output.mp4`, upload it and edit the post"
            )),
        }
    }

    /// The file extension of what [`Media::publishable_key`] names: the rendition's own, else the upload's type.
    pub fn publishable_extension(&self) -> &str {
        let rendition = self
            .verdict
            .as_ref()
            .and_then(|v| v.rendition_key.as_deref())
            .and_then(|key| key.rsplit('/').next())
            .and_then(|name| name.rsplit_once('.'))
            .map(|(_, extension)| extension);
        rendition.unwrap_or(match self.content_type.as_str() {
            "image/jpeg" => "jpg",
            "image/png" => "png",
            "image/webp" => "webp",
            "video/quicktime" => "mov",
            "video/mp4" => "mp4",
            _ => "bin",
        })
    }

    pub fn publishable_size(&self) -> u64 {
        match self.verdict.as_ref() {
            Some(MediaVerdict {
                rendition: Some(rendition),
                ..
            }) => rendition.size_bytes,
            Some(verdict) => verdict.facts.size_bytes,
            None => self.declared_size,
        }
    }

    pub fn publishable_etag(&self) -> Option<&str> {
        let verdict = self.verdict.as_ref()?;
        match &verdict.rendition {
            Some(rendition) => rendition.etag.as_deref(),
            None => verdict.etag.as_deref(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_keys_round_trip_to_ids() {
        let ws = WorkspaceId::new();
        let med = MediaId::new();
        let key = Media::object_key_for(&ws, &med);
        assert_eq!(Media::id_from_object_key(&key), Some((ws, med)));
        assert_eq!(Media::id_from_object_key("renditions/x/y.jpg"), None);
        assert_eq!(Media::id_from_object_key("uploads/nope"), None);
    }
}
