//! Reading a post request (create or patch) and checking it against the guide's rules.
//!
//! Requests are read from raw JSON rather than through serde's derive so that every violation of one request is
//! reported together, each with the path of the offending value, instead of stopping at the first.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use serde_json::{Map, Value};

use super::{
    creator::{creator_conflicts, CreatorConflict, Interaction, INTERACTION_DISABLED_BY_CREATOR},
    tiktok_text_length, Violation,
};
use crate::{
    domain::{Account, Finding, Media, MediaKind, MediaStatus, Post, PostOptions, PostStatus, PostType, Privacy},
    ids::{AccountId, MediaId, PostId, WorkspaceId},
    tiktok::CreatorInfo,
};

pub const CAPTION_MAX_UNITS: usize = 2200;
pub const PHOTO_TITLE_MAX_UNITS: usize = 90;
pub const PHOTO_MIN_IMAGES: usize = 2;
pub const PHOTO_MAX_IMAGES: usize = 35;
/// Clocks disagree; a post scheduled a few seconds "ago" by the caller's clock is meant as now.
pub const SCHEDULE_SKEW_SECONDS: i64 = 60;
pub const SCHEDULE_HORIZON_DAYS: i64 = 365;
/// TikTok's duplicate detection is aggressive: the same file to the same account within this window is refused by
/// the publisher (unless the post allows duplicates). Older records of what was sent serve no rule and may be forgotten.
pub const DUPLICATE_WINDOW_DAYS: i64 = 30;
/// A warning: the creator's settings could not be read at create or edit, so the post is checked at pre-flight only.
pub const CREATOR_CHECK_DEFERRED: &str = "creator_check_deferred";

const CREATE_FIELDS: &[&str] = &[
    "platform",
    "accountId",
    "status",
    "postType",
    "content",
    "media",
    "options",
    "scheduledAt",
];
const PATCH_FIELDS: &[&str] = &["content", "media", "options", "scheduledAt", "status"];
const RETRY_FIELDS: &[&str] = &["scheduledAt"];
const FIXED_AFTER_CREATE: &[&str] = &["platform", "accountId", "postType"];
const OPTION_FIELDS: &[&str] = &[
    "privacy",
    "allowComments",
    "allowDuet",
    "allowStitch",
    "coverTimestampMs",
    "brandContent",
    "brandOrganic",
    "aiGenerated",
    "title",
    "autoAddMusic",
    "allowDuplicate",
];
const COVER_FIELDS: &[&str] = &[
    "cover",
    "coverImage",
    "coverImageUrl",
    "coverUrl",
    "thumbnail",
    "thumbnailUrl",
];
const MUSIC_FIELDS: &[&str] = &["music", "musicId", "musicUrl", "sound", "soundId", "backgroundMusic"];
const COVER_ADVICE: &str = "TikTok's API does not accept a custom cover image: burn your thumbnail into the first \
frame of the video before uploading, or pick a frame with options.coverTimestampMs";
const MUSIC_ADVICE: &str = "TikTok's API cannot attach licensed music (that is app-only): mix the music into the \
video file before uploading; photo posts can use options.autoAddMusic";

/// What the caller asked for: publish (now or at `scheduledAt`) or keep as a Postato-only draft.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    Publish,
    Draft,
}

/// A post request as far as it could be read. Values that could not be read are absent; their violations were
/// collected by the reader.
#[derive(Debug, Clone, PartialEq)]
pub struct PostDraft {
    pub account_id: Option<AccountId>,
    pub intent: Intent,
    pub post_type: Option<PostType>,
    pub content: String,
    /// In request order; `None` where the id was unreadable (so later positions keep their paths).
    pub media: Vec<Option<MediaId>>,
    pub options: PostOptions,
    pub scheduled_at: Option<DateTime<Utc>>,
    /// Whether the schedule must be checked against the clock now (set, or changed, or a draft being published).
    pub schedule_changed: bool,
    /// Video-only interaction flags the caller set on a photo post; answered with a warning, never sent.
    video_only_flags_given: Vec<&'static str>,
    /// The interactions this request set itself: a creator setting that disables one of these is the caller's
    /// conflict to resolve, while one left at its default is turned off for them (see [`fit_to_creator`]).
    interactions_given: Vec<Interaction>,
}

/// What the rules need to know beyond the request: the clock, the app's audit state, and the caller's workspace's
/// records that the request names (absent when not found in that workspace).
pub struct RuleContext<'a> {
    pub now: DateTime<Utc>,
    pub app_audited: bool,
    pub account: Option<&'a Account>,
    pub media: &'a HashMap<MediaId, Media>,
}

/// Reads a `POST /v1/posts` body.
pub fn read_new_post(body: &Value) -> (PostDraft, Vec<Violation>) {
    let mut reader = Reader::default();
    let mut draft = PostDraft {
        account_id: None,
        intent: Intent::Publish,
        post_type: None,
        content: String::new(),
        media: Vec::new(),
        options: PostOptions::default(),
        scheduled_at: None,
        schedule_changed: true,
        video_only_flags_given: Vec::new(),
        interactions_given: Vec::new(),
    };
    let Some(fields) = reader.object(body, "") else {
        return (draft, reader.violations);
    };
    reader.refuse_unsupported_and_unknown(fields, "", CREATE_FIELDS);

    match fields.get("platform").filter(|v| !v.is_null()) {
        None => reader.required("platform", "set platform to \"tiktok\""),
        Some(Value::String(p)) if p == "tiktok" => {}
        Some(Value::String(p)) => reader.violation(
            "platform",
            "unsupported_platform",
            format!(
                "this service publishes to TikTok only; platform must be \"tiktok\", not \"{}\"",
                clip(p)
            ),
        ),
        Some(_) => reader.wrong_type("platform", "the string \"tiktok\""),
    }
    match fields.get("accountId").filter(|v| !v.is_null()) {
        None => reader.required("accountId", "name the connected TikTok account (acc_...) to post from"),
        Some(value) => draft.account_id = reader.id::<AccountId>(value, "accountId"),
    }
    if let Some(intent) = fields.get("status").filter(|v| !v.is_null()) {
        draft.intent = reader.intent(intent).unwrap_or(Intent::Publish);
    }
    match fields.get("postType").filter(|v| !v.is_null()) {
        None => reader.required("postType", "use \"video\" or \"photo\""),
        Some(value) => draft.post_type = reader.post_type(value),
    }
    if let Some(content) = fields.get("content").filter(|v| !v.is_null()) {
        draft.content = reader.caption(content).unwrap_or_default();
    }
    match fields.get("media").filter(|v| !v.is_null()) {
        None => reader.required("media", "list the uploaded media as [{\"id\": \"med_...\"}]"),
        Some(value) => draft.media = reader.media(value),
    }
    if let Some(options) = fields.get("options").filter(|v| !v.is_null()) {
        reader.options(options, &mut draft);
    }
    if let Some(at) = fields.get("scheduledAt").filter(|v| !v.is_null()) {
        draft.scheduled_at = reader.timestamp(at, "scheduledAt");
    }
    (draft, reader.violations)
}

/// Reads a `PATCH /v1/posts/{id}` body over the stored post: fields given replace the stored ones (options key by
/// key); the merged result is then checked by [`check_draft`] exactly like a new post.
pub fn read_patch(existing: &Post, body: &Value) -> (PostDraft, Vec<Violation>) {
    let mut reader = Reader::default();
    let was_draft = existing.status == PostStatus::Draft;
    let mut draft = stored_draft(existing, if was_draft { Intent::Draft } else { Intent::Publish });
    let Some(fields) = reader.object(body, "") else {
        return (draft, reader.violations);
    };
    for name in FIXED_AFTER_CREATE {
        if fields.contains_key(*name) {
            reader.violation(
                name,
                "immutable",
                format!("{name} cannot change after creation; create a new post"),
            );
        }
    }
    let mut allowed: Vec<&str> = PATCH_FIELDS.to_vec();
    allowed.extend_from_slice(FIXED_AFTER_CREATE);
    reader.refuse_unsupported_and_unknown(fields, "", &allowed);

    if let Some(content) = fields.get("content") {
        draft.content = match content {
            Value::Null => String::new(),
            value => reader.caption(value).unwrap_or(draft.content),
        };
    }
    if let Some(value) = fields.get("media") {
        draft.media = reader.media(value);
    }
    if let Some(options) = fields.get("options").filter(|v| !v.is_null()) {
        reader.options(options, &mut draft);
    }
    if let Some(at) = fields.get("scheduledAt") {
        draft.scheduled_at = if at.is_null() {
            None
        } else {
            reader.timestamp(at, "scheduledAt")
        };
        draft.schedule_changed = true;
    }
    if let Some(intent) = fields.get("status").filter(|v| !v.is_null()) {
        if let Some(intent) = reader.intent(intent) {
            if was_draft && intent == Intent::Publish {
                draft.schedule_changed = true;
            }
            draft.intent = intent;
        }
    }
    (draft, reader.violations)
}

/// Reads a `POST /v1/posts/{id}/retry` body (`{}`, `null` or `{"scheduledAt": ...}`; absent means now): the stored
/// post, to publish at that time, checked by [`check_draft`] exactly like a new post.
pub fn read_retry(existing: &Post, body: &Value) -> (PostDraft, Vec<Violation>) {
    let mut reader = Reader::default();
    let mut draft = PostDraft {
        scheduled_at: None,
        schedule_changed: true,
        ..stored_draft(existing, Intent::Publish)
    };
    if body.is_null() {
        return (draft, reader.violations);
    }
    let Some(fields) = reader.object(body, "") else {
        return (draft, reader.violations);
    };
    reader.refuse_unsupported_and_unknown(fields, "", RETRY_FIELDS);
    if let Some(at) = fields.get("scheduledAt").filter(|v| !v.is_null()) {
        draft.scheduled_at = reader.timestamp(at, "scheduledAt");
    }
    (draft, reader.violations)
}

/// The stored post as a draft, unchanged.
fn stored_draft(existing: &Post, intent: Intent) -> PostDraft {
    PostDraft {
        account_id: Some(existing.account_id.clone()),
        intent,
        post_type: Some(existing.post_type),
        content: existing.content.clone(),
        media: existing.media.iter().cloned().map(Some).collect(),
        options: existing.options.clone(),
        scheduled_at: existing.scheduled_at,
        schedule_changed: false,
        video_only_flags_given: Vec::new(),
        interactions_given: Vec::new(),
    }
}

/// The rule on how many media a post names, which needs no record: checked before any is read, so that a request
/// naming thousands of ids costs nothing. Without a post type, no post takes more than a photo post's maximum.
pub fn media_count_violation(draft: &PostDraft) -> Option<Violation> {
    let count = draft.media.len();
    let message = match draft.post_type {
        Some(PostType::Video) if count != 1 => {
            format!("a video post takes exactly 1 media item (a video); {count} given")
        }
        Some(PostType::Photo) if !(PHOTO_MIN_IMAGES..=PHOTO_MAX_IMAGES).contains(&count) => {
            format!("a photo post takes {PHOTO_MIN_IMAGES} to {PHOTO_MAX_IMAGES} images; {count} given")
        }
        None if count > PHOTO_MAX_IMAGES => {
            format!("a post takes at most {PHOTO_MAX_IMAGES} media items; {count} given")
        }
        _ => return None,
    };
    Some(Violation::new("media", "wrong_count", message))
}

/// Checks the rules that need the clock, the app's audit state and the records the request names, adding their
/// violations to those found while reading (a field already reported unreadable is not reported again), and returns
/// the warnings to show with the post.
pub fn check_draft(draft: &PostDraft, ctx: &RuleContext<'_>, reported: &mut Vec<Violation>) -> Vec<Finding> {
    let (violations, warnings) = rule_violations(draft, ctx);
    for violation in violations {
        report(reported, violation);
    }
    warnings
}

/// Fits a post that passed every other rule to the creator's TikTok settings (`creator_info`), as pre-flight will
/// judge it: an interaction the creator disabled is turned off with a warning when the caller left it at its
/// default, and is a violation when the caller asked for it; a privacy TikTok does not offer and a video longer than
/// the creator may post are violations. Nothing is sent anywhere; the caller decides.
pub fn fit_to_creator(
    draft: &mut PostDraft,
    media: &HashMap<MediaId, Media>,
    creator: &CreatorInfo,
) -> (Vec<Violation>, Vec<Finding>) {
    let Some(post_type) = draft.post_type else {
        return (Vec::new(), Vec::new());
    };
    let duration_ms = draft
        .media
        .first()
        .and_then(|id| id.as_ref())
        .and_then(|id| media.get(id))
        .and_then(|m| m.verdict.as_ref())
        .and_then(|v| v.facts.duration_ms);
    let mut violations = Vec::new();
    let mut warnings = Vec::new();
    for conflict in creator_conflicts(post_type, &draft.options, duration_ms, creator) {
        match conflict {
            CreatorConflict::InteractionDisabled(interaction) if !draft.interactions_given.contains(&interaction) => {
                interaction.disallow(&mut draft.options);
                warnings.push(Finding::new(
                    INTERACTION_DISABLED_BY_CREATOR,
                    format!(
                        "the creator turned {} off in TikTok, so options.{} is sent as false",
                        interaction.noun(),
                        interaction.option()
                    ),
                ));
            }
            conflict => violations.push(Violation::new(conflict.field(), conflict.code(), conflict.message())),
        }
    }
    (violations, warnings)
}

/// Adds a rule's violation unless its field was already reported unreadable.
pub fn report(reported: &mut Vec<Violation>, violation: Violation) {
    if !reported.iter().any(|v| v.field == violation.field) {
        reported.push(violation);
    }
}

fn rule_violations(draft: &PostDraft, ctx: &RuleContext<'_>) -> (Vec<Violation>, Vec<Finding>) {
    let mut violations = Vec::new();
    let mut warnings = Vec::new();
    let mut violate = |field: &str, code: &str, message: String| violations.push(Violation::new(field, code, message));

    if let Some(id) = &draft.account_id {
        match ctx.account {
            None => violate(
                "accountId",
                "not_found",
                format!("no TikTok account {id} in this workspace"),
            ),
            Some(account) if !account.is_connected() => violate(
                "accountId",
                "account_not_connected",
                format!(
                    "account {id} is {}; reconnect it (POST /v1/accounts/tiktok/connect) before posting",
                    match account.status {
                        crate::domain::AccountStatus::ReauthRequired => "waiting to be reconnected",
                        _ => "disconnected",
                    }
                ),
            ),
            Some(_) => {}
        }
    }

    if let Some(count) = media_count_violation(draft) {
        violate(&count.field, &count.code, count.message);
    }
    if let Some(post_type) = draft.post_type {
        let expected_kind = match post_type {
            PostType::Video => MediaKind::Video,
            PostType::Photo => MediaKind::Image,
        };
        let mut seen = HashSet::new();
        for (index, id) in draft.media.iter().enumerate() {
            let Some(id) = id else { continue };
            let field = format!("media[{index}].id");
            if !seen.insert(id) {
                violate(
                    &field,
                    "duplicate",
                    format!("{id} is listed twice; each image may appear once"),
                );
                continue;
            }
            let Some(media) = ctx.media.get(id) else {
                violate(&field, "not_found", format!("no media {id} in this workspace"));
                continue;
            };
            if media.kind != expected_kind {
                violate(
                    &field,
                    "wrong_media_kind",
                    format!(
                        "{id} is {} but a {} post needs {}",
                        article(media.kind),
                        post_type.as_str(),
                        article(expected_kind)
                    ),
                );
            }
            match media.status {
                MediaStatus::Invalid => {
                    let reasons = media.rejection_reasons();
                    violate(
                        &field,
                        "media_rejected",
                        format!("{id} was rejected by validation: {reasons}"),
                    );
                }
                MediaStatus::PendingUpload | MediaStatus::Importing | MediaStatus::Validating => {
                    warnings.push(Finding::new(
                        "media_not_validated_yet",
                        format!("{id} is not validated yet; the post waits for it and fails if it is rejected"),
                    ))
                }
                MediaStatus::Valid => {
                    // Caught now, not at fire time months later: TikTok can never take this file as it stands.
                    if let Some(fix) = media.unpublishable_container().filter(|_| post_type == PostType::Video) {
                        violate(&field, "container_not_publishable", fix);
                    }
                    if let (PostType::Video, Some(cover_ms), Some(duration_ms)) = (
                        post_type,
                        draft.options.cover_timestamp_ms,
                        media.verdict.as_ref().and_then(|v| v.facts.duration_ms),
                    ) {
                        if u64::from(cover_ms) > duration_ms {
                            violate(
                                "options.coverTimestampMs",
                                "out_of_range",
                                format!("the video is {duration_ms} ms long; pick a cover frame within it"),
                            );
                        }
                    }
                }
            }
        }
        match post_type {
            PostType::Photo => {
                if draft.options.cover_timestamp_ms.is_some() {
                    violate(
                        "options.coverTimestampMs",
                        "not_applicable",
                        "coverTimestampMs picks a video frame; a photo post's cover is its first image".into(),
                    );
                }
                for field in &draft.video_only_flags_given {
                    warnings.push(Finding::new(
                        "not_sent_for_photo",
                        format!("{field} does not apply to photo posts on TikTok and is not sent"),
                    ));
                }
            }
            PostType::Video => {
                if draft.options.title.is_some() {
                    violate(
                        "options.title",
                        "not_applicable",
                        "title is for photo posts; a video's caption is content".into(),
                    );
                }
                if draft.options.auto_add_music {
                    violate(
                        "options.autoAddMusic",
                        "not_applicable",
                        "autoAddMusic is for photo posts; mix music into the video file instead".into(),
                    );
                }
            }
        }
    }

    match draft.options.privacy {
        None if draft.intent == Intent::Publish => violate(
            "options.privacy",
            "required",
            "choose who sees the post: public, followersOnly, friends or private (TikTok forbids a default)".into(),
        ),
        Some(privacy) if !ctx.app_audited && privacy != Privacy::Private => violate(
            "options.privacy",
            "unaudited_app_private_only",
            "this TikTok app has not passed TikTok's audit yet, so TikTok only accepts private posts (only the \
             creator sees them) from private accounts; use \"private\" until the app is audited"
                .into(),
        ),
        _ => {}
    }
    if draft.options.brand_content && draft.options.privacy == Some(Privacy::Private) {
        violate(
            "options.brandContent",
            "branded_content_private",
            "TikTok does not allow branded content to be private; choose another privacy or unset brandContent".into(),
        );
    }

    if draft.schedule_changed {
        if let Some(at) = draft.scheduled_at {
            if at < ctx.now - Duration::seconds(SCHEDULE_SKEW_SECONDS) {
                violate(
                    "scheduledAt",
                    "in_the_past",
                    "scheduledAt is in the past; omit it to publish now".into(),
                );
            } else if at > ctx.now + Duration::days(SCHEDULE_HORIZON_DAYS) {
                violate(
                    "scheduledAt",
                    "too_far_ahead",
                    format!("posts can be scheduled at most {SCHEDULE_HORIZON_DAYS} days ahead"),
                );
            }
        }
    }
    (violations, warnings)
}

/// The post a checked draft describes. "Publish" without a time means now: the post is due at once.
pub fn build_post(
    draft: PostDraft,
    id: PostId,
    workspace_id: WorkspaceId,
    account_id: AccountId,
    post_type: PostType,
    warnings: Vec<Finding>,
    now: DateTime<Utc>,
) -> Post {
    let (status, scheduled_at) = settle_schedule(&draft, now);
    Post {
        id,
        workspace_id,
        account_id,
        status,
        post_type,
        content: draft.content,
        media: draft.media.into_iter().flatten().collect(),
        options: draft.options,
        scheduled_at,
        warnings,
        publish: Default::default(),
        failure: None,
        outbox: Vec::new(),
        audit: Vec::new(),
        created_at: now,
        updated_at: now,
        version: 1,
    }
}

/// Applies a checked patch to the stored post, returning the next version.
pub fn apply_patch(existing: &Post, draft: PostDraft, warnings: Vec<Finding>, now: DateTime<Utc>) -> Post {
    let (status, scheduled_at) = settle_schedule(&draft, now);
    Post {
        status,
        content: draft.content,
        media: draft.media.into_iter().flatten().collect(),
        options: draft.options,
        scheduled_at,
        warnings,
        updated_at: now,
        version: existing.version + 1,
        ..existing.clone()
    }
}

fn settle_schedule(draft: &PostDraft, now: DateTime<Utc>) -> (PostStatus, Option<DateTime<Utc>>) {
    match draft.intent {
        Intent::Draft => (PostStatus::Draft, draft.scheduled_at),
        Intent::Publish => (PostStatus::Scheduled, Some(draft.scheduled_at.unwrap_or(now))),
    }
}

fn article(kind: MediaKind) -> &'static str {
    match kind {
        MediaKind::Video => "a video",
        MediaKind::Image => "an image",
    }
}

/// Echoing caller input into messages is useful, but not unbounded.
fn clip(value: &str) -> String {
    value.chars().take(40).collect()
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}.{name}")
    }
}

#[derive(Default)]
struct Reader {
    violations: Vec<Violation>,
}

impl Reader {
    fn violation(&mut self, field: &str, code: &str, message: impl Into<String>) {
        self.violations.push(Violation::new(field, code, message));
    }

    fn required(&mut self, field: &str, hint: &str) {
        self.violation(field, "required", format!("{field} is required: {hint}"));
    }

    fn wrong_type(&mut self, field: &str, expected: &str) {
        let field_name = if field.is_empty() { "the body" } else { field };
        self.violation(field, "invalid_type", format!("{field_name} must be {expected}"));
    }

    fn object<'v>(&mut self, value: &'v Value, path: &str) -> Option<&'v Map<String, Value>> {
        match value {
            Value::Object(map) => Some(map),
            _ => {
                self.wrong_type(path, "a JSON object");
                None
            }
        }
    }

    /// Cover and music fields get the guide's advice; anything else unknown is named.
    fn refuse_unsupported_and_unknown(&mut self, fields: &Map<String, Value>, path: &str, known: &[&str]) {
        for name in fields.keys() {
            let field = join(path, name);
            if COVER_FIELDS.contains(&name.as_str()) {
                self.violation(&field, "cover_not_supported", COVER_ADVICE);
            } else if MUSIC_FIELDS.contains(&name.as_str()) {
                self.violation(&field, "music_not_supported", MUSIC_ADVICE);
            } else if !known.contains(&name.as_str()) {
                self.violation(
                    &field,
                    "unknown_field",
                    format!("{field} is not a field of a TikTok post"),
                );
            }
        }
    }

    fn id<T: std::str::FromStr<Err = crate::ids::InvalidId>>(&mut self, value: &Value, field: &str) -> Option<T> {
        match value {
            Value::String(raw) => match raw.parse::<T>() {
                Ok(id) => Some(id),
                Err(e) => {
                    self.violation(field, "invalid_id", e.to_string());
                    None
                }
            },
            _ => {
                self.wrong_type(field, "an id string");
                None
            }
        }
    }

    fn intent(&mut self, value: &Value) -> Option<Intent> {
        match value.as_str() {
            Some("publish") => Some(Intent::Publish),
            Some("draft") => Some(Intent::Draft),
            Some(other) => {
                self.violation(
                    "status",
                    "invalid_value",
                    format!("status must be \"publish\" or \"draft\", not \"{}\"", clip(other)),
                );
                None
            }
            None => {
                self.wrong_type("status", "\"publish\" or \"draft\"");
                None
            }
        }
    }

    fn post_type(&mut self, value: &Value) -> Option<PostType> {
        match value.as_str() {
            Some("video") => Some(PostType::Video),
            Some("photo") => Some(PostType::Photo),
            Some(other) => {
                self.violation(
                    "postType",
                    "unsupported_post_type",
                    format!(
                        "TikTok's API cannot create \"{}\" posts (live streams, duets, stitches and stories are \
                         app-only); use \"video\" or \"photo\"",
                        clip(other)
                    ),
                );
                None
            }
            None => {
                self.wrong_type("postType", "\"video\" or \"photo\"");
                None
            }
        }
    }

    fn caption(&mut self, value: &Value) -> Option<String> {
        let text = self.text(value, "content", CAPTION_MAX_UNITS, "hashtags and mentions count too")?;
        Some(text)
    }

    fn text(&mut self, value: &Value, field: &str, max_units: usize, note: &str) -> Option<String> {
        let Some(text) = value.as_str() else {
            self.wrong_type(field, "a string");
            return None;
        };
        let length = tiktok_text_length(text);
        if length > max_units {
            self.violation(
                field,
                "too_long",
                format!("{field} is {length} characters as TikTok counts them (UTF-16 units; {note}); the limit is {max_units}"),
            );
        }
        Some(text.to_owned())
    }

    fn media(&mut self, value: &Value) -> Vec<Option<MediaId>> {
        let Some(items) = value.as_array() else {
            self.wrong_type("media", "an array of {\"id\": \"med_...\"} objects");
            return Vec::new();
        };
        items
            .iter()
            .enumerate()
            .map(|(index, item)| {
                let path = format!("media[{index}]");
                let fields = self.object(item, &path)?;
                self.refuse_unsupported_and_unknown(fields, &path, &["id"]);
                match fields.get("id").filter(|v| !v.is_null()) {
                    None => {
                        self.required(&format!("{path}.id"), "the id returned by POST /v1/media");
                        None
                    }
                    Some(id) => self.id::<MediaId>(id, &format!("{path}.id")),
                }
            })
            .collect()
    }

    fn options(&mut self, value: &Value, draft: &mut PostDraft) {
        let Some(fields) = self.object(value, "options") else {
            return;
        };
        self.refuse_unsupported_and_unknown(fields, "options", OPTION_FIELDS);
        let options = &mut draft.options;
        for (name, value) in fields {
            let field = join("options", name);
            match name.as_str() {
                "privacy" => {
                    options.privacy = match value {
                        Value::Null => None,
                        Value::String(raw) => match Privacy::parse(raw) {
                            Some(privacy) => Some(privacy),
                            None => {
                                self.violation(
                                    &field,
                                    "invalid_value",
                                    format!(
                                        "privacy must be public, followersOnly, friends or private, not \"{}\"",
                                        clip(raw)
                                    ),
                                );
                                None
                            }
                        },
                        _ => {
                            self.wrong_type(&field, "one of public, followersOnly, friends, private");
                            None
                        }
                    }
                }
                "allowComments" => {
                    self.flag(value, &field, &mut options.allow_comments);
                    draft.interactions_given.push(Interaction::Comments);
                }
                "allowDuet" => {
                    self.flag(value, &field, &mut options.allow_duet);
                    draft.video_only_flags_given.push("options.allowDuet");
                    draft.interactions_given.push(Interaction::Duets);
                }
                "allowStitch" => {
                    self.flag(value, &field, &mut options.allow_stitch);
                    draft.video_only_flags_given.push("options.allowStitch");
                    draft.interactions_given.push(Interaction::Stitches);
                }
                "brandContent" => self.flag(value, &field, &mut options.brand_content),
                "brandOrganic" => self.flag(value, &field, &mut options.brand_organic),
                "aiGenerated" => self.flag(value, &field, &mut options.ai_generated),
                "autoAddMusic" => self.flag(value, &field, &mut options.auto_add_music),
                "allowDuplicate" => self.flag(value, &field, &mut options.allow_duplicate),
                "coverTimestampMs" => {
                    options.cover_timestamp_ms = match value {
                        Value::Null => None,
                        // TikTok's field is an int32 of milliseconds.
                        Value::Number(n) => match n.as_u64().and_then(|ms| u32::try_from(ms).ok()) {
                            Some(ms) if ms <= i32::MAX as u32 => Some(ms),
                            _ => {
                                self.wrong_type(&field, "a whole number of milliseconds ≥ 0");
                                None
                            }
                        },
                        _ => {
                            self.wrong_type(&field, "a whole number of milliseconds ≥ 0");
                            None
                        }
                    }
                }
                "title" => {
                    options.title = match value {
                        Value::Null => None,
                        value => self.text(value, &field, PHOTO_TITLE_MAX_UNITS, "TikTok's photo title limit"),
                    }
                }
                _ => {}
            }
        }
    }

    fn flag(&mut self, value: &Value, field: &str, target: &mut bool) {
        match value {
            Value::Bool(b) => *target = *b,
            // null means "not given": the default stays.
            Value::Null => {}
            _ => self.wrong_type(field, "true or false"),
        }
    }

    fn timestamp(&mut self, value: &Value, field: &str) -> Option<DateTime<Utc>> {
        let Some(raw) = value.as_str() else {
            self.wrong_type(field, "an RFC 3339 timestamp string");
            return None;
        };
        match DateTime::parse_from_rfc3339(raw) {
            Ok(at) => Some(at.with_timezone(&Utc)),
            Err(_) => {
                self.violation(
                    field,
                    "invalid_format",
                    format!("{field} must be an RFC 3339 timestamp with an offset, e.g. 2026-12-01T09:30:00+01:00"),
                );
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use serde_json::json;

    use super::*;
    use crate::domain::{AccountStatus, MediaVerdict};

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap()
    }

    struct Fixture {
        account: Account,
        media: HashMap<MediaId, Media>,
        video: MediaId,
        images: Vec<MediaId>,
    }

    fn media(ws: &WorkspaceId, kind: MediaKind, status: MediaStatus) -> Media {
        let id = MediaId::new();
        Media {
            object_key: Media::object_key_for(ws, &id),
            id,
            workspace_id: ws.clone(),
            kind,
            content_type: "video/mp4".into(),
            declared_size: 10,
            file_name: "f".into(),
            status,
            verdict: None,
            created_at: now(),
            updated_at: now(),
            version: 1,
            waiting_posts: Vec::new(),
        }
    }

    fn fixture() -> Fixture {
        let ws = WorkspaceId::new();
        let account = Account {
            display_name: "Creator".into(),
            ..Account::new_connected(ws.clone(), "open", now())
        };
        let mut all = HashMap::new();
        let video = media(&ws, MediaKind::Video, MediaStatus::Valid);
        let video_id = video.id.clone();
        all.insert(video.id.clone(), video);
        let mut images = Vec::new();
        for _ in 0..36 {
            let image = media(&ws, MediaKind::Image, MediaStatus::Valid);
            images.push(image.id.clone());
            all.insert(image.id.clone(), image);
        }
        Fixture {
            account,
            media: all,
            video: video_id,
            images,
        }
    }

    fn video_body(f: &Fixture) -> Value {
        json!({
            "platform": "tiktok", "accountId": f.account.id, "status": "publish", "postType": "video",
            "content": "Behind the scenes", "media": [{"id": f.video}],
            "options": {"privacy": "private"}
        })
    }

    fn run(f: &Fixture, body: &Value, audited: bool) -> (Vec<Violation>, Vec<Finding>) {
        let (draft, mut violations) = read_new_post(body);
        let ctx = RuleContext {
            now: now(),
            app_audited: audited,
            account: Some(&f.account),
            media: &f.media,
        };
        let warnings = check_draft(&draft, &ctx, &mut violations);
        (violations, warnings)
    }

    fn fields(violations: &[Violation]) -> Vec<(&str, &str)> {
        violations.iter().map(|v| (v.field.as_str(), v.code.as_str())).collect()
    }

    #[test]
    fn a_valid_video_post_passes() {
        let f = fixture();
        let (violations, warnings) = run(&f, &video_body(&f), false);
        assert!(violations.is_empty(), "{violations:?}");
        assert!(warnings.is_empty());
    }

    #[test]
    fn every_violation_of_one_request_is_reported_together() {
        let f = fixture();
        let body = json!({
            "platform": "instagram", "accountId": "nope", "status": "later", "postType": "live",
            "content": "x".repeat(2201), "media": [{"id": "med_bad"}], "options": {"privacy": "everyone"},
            "scheduledAt": "tomorrow", "coverImage": "https://x", "extra": 1
        });
        let (violations, _) = run(&f, &body, true);
        let got = fields(&violations);
        for expected in [
            ("platform", "unsupported_platform"),
            ("accountId", "invalid_id"),
            ("status", "invalid_value"),
            ("postType", "unsupported_post_type"),
            ("content", "too_long"),
            ("media[0].id", "invalid_id"),
            ("options.privacy", "invalid_value"),
            ("scheduledAt", "invalid_format"),
            ("coverImage", "cover_not_supported"),
            ("extra", "unknown_field"),
        ] {
            assert!(got.contains(&expected), "missing {expected:?} in {got:?}");
        }
    }

    #[test]
    fn captions_count_utf16_units_like_tiktok() {
        let f = fixture();
        let mut body = video_body(&f);
        // 1,100 emoji outside the BMP are 2,200 UTF-16 units: exactly at the limit.
        body["content"] = json!("😀".repeat(1100));
        assert!(run(&f, &body, false).0.is_empty());
        body["content"] = json!(format!("{}a", "😀".repeat(1100)));
        assert_eq!(fields(&run(&f, &body, false).0), vec![("content", "too_long")]);
    }

    #[test]
    fn privacy_is_required_to_publish_but_not_for_drafts() {
        let f = fixture();
        let mut body = video_body(&f);
        body["options"] = json!({});
        assert_eq!(fields(&run(&f, &body, false).0), vec![("options.privacy", "required")]);
        body["status"] = json!("draft");
        assert!(run(&f, &body, false).0.is_empty());
    }

    #[test]
    fn unaudited_apps_accept_only_private_and_audited_apps_any() {
        let f = fixture();
        let mut body = video_body(&f);
        body["options"]["privacy"] = json!("public");
        assert_eq!(
            fields(&run(&f, &body, false).0),
            vec![("options.privacy", "unaudited_app_private_only")]
        );
        assert!(run(&f, &body, true).0.is_empty());
    }

    #[test]
    fn branded_content_cannot_be_private() {
        let f = fixture();
        let mut body = video_body(&f);
        body["options"]["brandContent"] = json!(true);
        assert_eq!(
            fields(&run(&f, &body, true).0),
            vec![("options.brandContent", "branded_content_private")]
        );
    }

    #[test]
    fn photo_posts_take_2_to_35_distinct_images() {
        let f = fixture();
        let mut body = video_body(&f);
        body["postType"] = json!("photo");
        body["media"] = json!([{"id": f.images[0]}]);
        assert_eq!(fields(&run(&f, &body, false).0), vec![("media", "wrong_count")]);
        body["media"] = Value::Array(f.images[..36].iter().map(|id| json!({"id": id})).collect());
        assert_eq!(fields(&run(&f, &body, false).0), vec![("media", "wrong_count")]);
        body["media"] = json!([{"id": f.images[0]}, {"id": f.images[1]}, {"id": f.images[0]}]);
        assert_eq!(fields(&run(&f, &body, false).0), vec![("media[2].id", "duplicate")]);
        body["media"] = json!([{"id": f.images[0]}, {"id": f.video}]);
        assert_eq!(
            fields(&run(&f, &body, false).0),
            vec![("media[1].id", "wrong_media_kind")]
        );
    }

    #[test]
    fn duet_and_stitch_on_photos_are_warnings_not_violations() {
        let f = fixture();
        let mut body = video_body(&f);
        body["postType"] = json!("photo");
        body["media"] = json!([{"id": f.images[0]}, {"id": f.images[1]}]);
        body["options"]["allowDuet"] = json!(false);
        body["options"]["allowStitch"] = json!(true);
        let (violations, warnings) = run(&f, &body, false);
        assert!(violations.is_empty(), "{violations:?}");
        assert_eq!(warnings.len(), 2);
        assert!(warnings.iter().all(|w| w.code == "not_sent_for_photo"));
    }

    #[test]
    fn schedule_must_be_within_skew_and_a_year() {
        let f = fixture();
        let mut body = video_body(&f);
        body["scheduledAt"] = json!("2026-11-25T11:59:30Z");
        assert!(run(&f, &body, false).0.is_empty(), "30 s ago is within the skew");
        body["scheduledAt"] = json!("2026-11-25T11:58:00Z");
        assert_eq!(fields(&run(&f, &body, false).0), vec![("scheduledAt", "in_the_past")]);
        body["scheduledAt"] = json!("2027-11-26T12:00:00+00:00");
        assert_eq!(fields(&run(&f, &body, false).0), vec![("scheduledAt", "too_far_ahead")]);
        body["scheduledAt"] = json!("2026-12-01T09:30:00");
        assert_eq!(
            fields(&run(&f, &body, false).0),
            vec![("scheduledAt", "invalid_format")]
        );
    }

    #[test]
    fn a_video_tiktok_can_never_take_is_refused_at_creation_until_it_has_an_mp4_rendition() {
        for container in ["mpegts", "mpegps"] {
            an_mpeg_stream_is_refused_until_it_has_an_mp4_rendition(container);
        }
    }

    fn an_mpeg_stream_is_refused_until_it_has_an_mp4_rendition(container: &str) {
        let mut f = fixture();
        let body = video_body(&f);
        let video = f.media.get_mut(&f.video).unwrap();
        video.verdict = Some(MediaVerdict {
            accepted: true,
            detected_kind: "video".into(),
            violations: vec![],
            warnings: vec![],
            facts: crate::domain::MediaFacts {
                container: Some(container.into()),
                ..Default::default()
            },
            fingerprint: None,
            rendition_key: None,
            rendition: None,
            info: Vec::new(),
            etag: None,
            validated_at: now(),
        });
        let (violations, _) = run(&f, &body, false);
        assert_eq!(fields(&violations), vec![("media[0].id", "container_not_publishable")]);
        assert!(
            violations[0].message.contains("ffmpeg -i input -c copy output.mp4"),
            "{}",
            violations[0].message
        );

        let video = f.media.get_mut(&f.video).unwrap();
        if let Some(verdict) = video.verdict.as_mut() {
            verdict.rendition = Some(crate::domain::Rendition {
                container: "mp4".into(),
                size_bytes: 1,
                status: crate::domain::RenditionStatus::Ready,
                etag: None,
            });
        }
        assert!(run(&f, &body, false).0.is_empty(), "its MP4 remux is published instead");
    }

    #[test]
    fn rejected_media_is_refused_and_pending_media_waits() {
        let mut f = fixture();
        let video = f.media.get_mut(&f.video).unwrap();
        video.status = MediaStatus::Invalid;
        video.verdict = Some(MediaVerdict {
            accepted: false,
            detected_kind: "video".into(),
            violations: vec![Finding::new("frame_rate_check_failed", "20 fps is below 23")],
            warnings: vec![],
            facts: Default::default(),
            fingerprint: None,
            rendition_key: None,
            rendition: None,
            info: Vec::new(),
            etag: None,
            validated_at: now(),
        });
        let body = video_body(&f);
        assert_eq!(
            fields(&run(&f, &body, false).0),
            vec![("media[0].id", "media_rejected")]
        );
        f.media.get_mut(&f.video).unwrap().status = MediaStatus::Validating;
        let (violations, warnings) = run(&f, &body, false);
        assert!(violations.is_empty());
        assert_eq!(warnings[0].code, "media_not_validated_yet");
    }

    #[test]
    fn disconnected_accounts_cannot_post() {
        let mut f = fixture();
        f.account.status = AccountStatus::ReauthRequired;
        assert_eq!(
            fields(&run(&f, &video_body(&f), false).0),
            vec![("accountId", "account_not_connected")]
        );
    }

    #[test]
    fn patch_merges_options_and_refuses_fixed_fields() {
        let f = fixture();
        let (draft, violations) = read_new_post(&video_body(&f));
        assert!(violations.is_empty());
        let post = build_post(
            draft,
            PostId::new(),
            f.account.workspace_id.clone(),
            f.account.id.clone(),
            PostType::Video,
            vec![],
            now(),
        );
        let (draft, violations) = read_patch(
            &post,
            &json!({"options": {"allowComments": false}, "postType": "photo"}),
        );
        assert_eq!(fields(&violations), vec![("postType", "immutable")]);
        assert_eq!(draft.options.privacy, Some(Privacy::Private));
        assert!(!draft.options.allow_comments);
        assert!(
            !draft.schedule_changed,
            "an untouched schedule is not re-checked against the clock"
        );
    }

    #[test]
    fn publish_without_a_time_is_due_now() {
        let f = fixture();
        let (draft, _) = read_new_post(&video_body(&f));
        let post = build_post(
            draft,
            PostId::new(),
            f.account.workspace_id.clone(),
            f.account.id.clone(),
            PostType::Video,
            vec![],
            now(),
        );
        assert_eq!(post.status, PostStatus::Scheduled);
        assert_eq!(post.scheduled_at, Some(now()));
        assert_eq!(post.due_at(), Some(now()));
    }
}
