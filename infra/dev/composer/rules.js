// The product's and TikTok's rules as the page applies them before anything is sent. The API applies the same
// rules again (shared/src/rules/post.rs); these only let the user see a problem before pressing Publish.

export const CAPTION_MAX = 2200;
export const PHOTO_TITLE_MAX = 90;
export const PHOTOS_MIN = 2;
export const PHOTOS_MAX = 35;

// TikTok's own words for its privacy levels, as its app shows them.
export const PRIVACY_LABELS = {
  public: "Everyone",
  followersOnly: "Followers",
  friends: "Friends",
  private: "Only me",
};

export const BRANDED_PRIVATE_TEXT = "Branded content visibility cannot be set to private.";
export const DISCLOSURE_INCOMPLETE_TEXT =
  "You need to indicate if your content promotes yourself, a third party, or both.";
export const MUSIC_URL = "https://www.tiktok.com/legal/page/global/music-usage-confirmation/en";
export const BRANDED_POLICY_URL = "https://www.tiktok.com/legal/page/global/bc-policy/en";

// TikTok counts caption and title length in UTF-16 code units, which is what a JavaScript string's length is: an
// emoji outside the Basic Multilingual Plane counts 2, as it does at TikTok.
export function utf16Length(text) {
  return text.length;
}

// The label TikTok will put on the post; "Paid partnership" wins when both are checked.
export function disclosureLabel({ disclose, brandOrganic, brandContent }) {
  if (!disclose) return "";
  if (brandContent) return "Your photo/video will be labeled as 'Paid partnership'";
  if (brandOrganic) return "Your photo/video will be labeled as 'Promotional content'";
  return "";
}

// The consent line before Publish: branded content adds TikTok's Branded Content Policy. Returns parts so that the
// page can link each policy.
export function declarationParts({ disclose, brandContent }) {
  if (disclose && brandContent) {
    return [
      { text: "By posting, you agree to TikTok's " },
      { text: "Branded Content Policy", href: BRANDED_POLICY_URL },
      { text: " and " },
      { text: "Music Usage Confirmation", href: MUSIC_URL },
      { text: "." },
    ];
  }
  return [
    { text: "By posting, you agree to TikTok's " },
    { text: "Music Usage Confirmation", href: MUSIC_URL },
    { text: "." },
  ];
}

// Every reason the post cannot be published yet, in the user's words; empty when it can. `form` is the composer's
// state, `creator` the fresh creator-info.
export function publishBlockers(form, creator) {
  const blockers = [];
  if (!creator) return ["Choose a connected account."];
  if (!creator.canPost) return ["TikTok says this creator cannot post right now."];
  if (form.uploading) blockers.push("Wait for the upload to finish.");
  if (form.postType === "video") {
    if (form.media.length !== 1) blockers.push("Add a video.");
  } else if (form.media.length < PHOTOS_MIN || form.media.length > PHOTOS_MAX) {
    blockers.push(`Add ${PHOTOS_MIN} to ${PHOTOS_MAX} photos (now ${form.media.length}).`);
  }
  for (const item of form.media) {
    if (item.status === "invalid") blockers.push(`Replace ${item.fileName}: it does not meet TikTok's specs.`);
  }
  const tooLong = tooLongForCreator(form, creator);
  if (tooLong) blockers.push(tooLong);
  if (utf16Length(form.caption) > CAPTION_MAX) {
    blockers.push(`Shorten the caption to ${CAPTION_MAX} characters.`);
  }
  if (form.postType === "photo" && utf16Length(form.title) > PHOTO_TITLE_MAX) {
    blockers.push(`Shorten the title to ${PHOTO_TITLE_MAX} characters.`);
  }
  if (!form.privacy) blockers.push("Choose who can view this post.");
  if (form.disclose && !form.brandOrganic && !form.brandContent) blockers.push(DISCLOSURE_INCOMPLETE_TEXT);
  if (form.disclose && form.brandContent && form.privacy === "private") blockers.push(BRANDED_PRIVATE_TEXT);
  if (form.when === "later" && !form.scheduleAt) blockers.push("Choose the date and time to publish.");
  return blockers;
}

// TikTok's per-creator limit (`max_video_post_duration_sec`), from the validator's facts.
export function tooLongForCreator(form, creator) {
  if (form.postType !== "video" || !creator?.canPost) return "";
  const duration = form.media[0]?.durationMs;
  const max = creator.maxVideoDurationSec;
  if (!duration || !max || duration <= max * 1000) return "";
  return `This video is ${formatSeconds(duration)} long; ${creator.nickname} can post videos up to ${max} s.`;
}

export function formatSeconds(ms) {
  return `${(ms / 1000).toFixed(ms % 1000 === 0 ? 0 : 1)} s`;
}

// "+01:00" for a date in the browser's time zone, as RFC 3339 writes offsets.
export function offsetOf(date) {
  const minutes = -date.getTimezoneOffset();
  const sign = minutes < 0 ? "-" : "+";
  const abs = Math.abs(minutes);
  return `${sign}${String(Math.floor(abs / 60)).padStart(2, "0")}:${String(abs % 60).padStart(2, "0")}`;
}

// A datetime-local value ("2026-12-03T21:30" or with seconds) in the browser's zone as RFC 3339 with its offset, so
// the API stores the instant the user meant and the post shows the user's own zone.
export function rfc3339Local(value) {
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) return null;
  const pad = (n) => String(n).padStart(2, "0");
  return (
    `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}` +
    `T${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}${offsetOf(date)}`
  );
}

// The datetime-local value for a Date in the browser's zone (to prefill and to edit).
export function localInputValue(date) {
  const pad = (n) => String(n).padStart(2, "0");
  return (
    `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}` +
    `T${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`
  );
}

export function timeZoneName() {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || "local time";
}

// What each post status means to the person waiting for it, and what they can do.
export const STATUS_TEXT = {
  draft: "Draft: kept by Postato, never sent to TikTok.",
  scheduled: "Scheduled: Postato sends it to TikTok at the time shown.",
  publishing: "Publishing: being sent to TikTok.",
  published: "Published: TikTok accepted it and is processing it (this can take a few minutes).",
  completed: "Completed: TikTok finished processing the post.",
  failed: "Failed: it was not posted.",
  needs_review: "Needs review: TikTok's answer was lost. Check the TikTok account before posting it again.",
  canceled: "Canceled.",
};

export const LIFECYCLE = ["scheduled", "publishing", "published", "completed"];

export function isSettled(status) {
  return ["draft", "completed", "failed", "needs_review", "canceled"].includes(status);
}
