//! TikTok's `fail_reason` values (status fetch, `post.publish.failed` webhooks; reference §7.1) and what the user
//! should do about each.

use crate::domain::Failure;

/// Whether a post that failed for this reason may be sent again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailRetry {
    /// A TikTok-side or transfer problem: the same post may be retried.
    Retry,
    /// A daily cap: retry no sooner than 24 hours later.
    AfterCap,
    /// The media, the caption or the account must change first; sending the same again fails again.
    Never,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailReason {
    FileFormatCheckFailed,
    DurationCheckFailed,
    FrameRateCheckFailed,
    PictureSizeCheckFailed,
    Internal,
    VideoPullFailed,
    PhotoPullFailed,
    PublishCancelled,
    AuthRemoved,
    SpamRiskTooManyPosts,
    SpamRiskUserBannedFromPosting,
    SpamRiskText,
    SpamRisk,
    /// Seen in real clients, not in the docs.
    VideoBitrateCheckFailed,
    /// Seen in real clients, not in the docs.
    PrivacyLevelNotAuthorized,
    /// Anything else: logged and treated as final.
    Other(String),
}

impl FailReason {
    const KNOWN: [FailReason; 15] = [
        Self::FileFormatCheckFailed,
        Self::DurationCheckFailed,
        Self::FrameRateCheckFailed,
        Self::PictureSizeCheckFailed,
        Self::Internal,
        Self::VideoPullFailed,
        Self::PhotoPullFailed,
        Self::PublishCancelled,
        Self::AuthRemoved,
        Self::SpamRiskTooManyPosts,
        Self::SpamRiskUserBannedFromPosting,
        Self::SpamRiskText,
        Self::SpamRisk,
        Self::VideoBitrateCheckFailed,
        Self::PrivacyLevelNotAuthorized,
    ];

    pub fn parse(value: &str) -> Self {
        Self::KNOWN
            .into_iter()
            .find(|known| known.as_str() == value)
            .unwrap_or_else(|| Self::Other(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::FileFormatCheckFailed => "file_format_check_failed",
            Self::DurationCheckFailed => "duration_check_failed",
            Self::FrameRateCheckFailed => "frame_rate_check_failed",
            Self::PictureSizeCheckFailed => "picture_size_check_failed",
            Self::Internal => "internal",
            Self::VideoPullFailed => "video_pull_failed",
            Self::PhotoPullFailed => "photo_pull_failed",
            Self::PublishCancelled => "publish_cancelled",
            Self::AuthRemoved => "auth_removed",
            Self::SpamRiskTooManyPosts => "spam_risk_too_many_posts",
            Self::SpamRiskUserBannedFromPosting => "spam_risk_user_banned_from_posting",
            Self::SpamRiskText => "spam_risk_text",
            Self::SpamRisk => "spam_risk",
            Self::VideoBitrateCheckFailed => "video_bitrate_check_failed",
            Self::PrivacyLevelNotAuthorized => "privacy_level_not_authorized",
            Self::Other(value) => value,
        }
    }

    /// A post's failure for this reason: TikTok's code kept verbatim, the advice as the message.
    pub fn failure(&self, log_id: Option<String>) -> Failure {
        Failure {
            code: self.as_str().to_owned(),
            message: self.message().to_owned(),
            tiktok_fail_reason: Some(self.as_str().to_owned()),
            log_id,
        }
    }

    pub fn retry(&self) -> FailRetry {
        match self {
            Self::Internal | Self::VideoPullFailed | Self::PhotoPullFailed => FailRetry::Retry,
            Self::SpamRiskTooManyPosts => FailRetry::AfterCap,
            _ => FailRetry::Never,
        }
    }

    /// What happened, in words that name the fix (not TikTok's code).
    pub fn message(&self) -> &'static str {
        match self {
            Self::FileFormatCheckFailed => {
                "TikTok could not read the file's format. Re-encode it as MP4 (H.264 video, AAC audio) and post again."
            }
            Self::DurationCheckFailed => {
                "TikTok refused the video's length. Keep it within the creator's maximum duration (at most 10 minutes) \
                 and post again."
            }
            Self::FrameRateCheckFailed => {
                "TikTok refused the video's frame rate. Re-encode it at a constant 23–60 frames per second and post again."
            }
            Self::PictureSizeCheckFailed => {
                "TikTok refused the picture size. Use 360–4096 pixels per side for video, at most 1080p for photos, \
                 and an aspect ratio between 9:16 and 16:9."
            }
            Self::Internal => "TikTok had an internal problem while processing the post. Posting again later may work.",
            Self::VideoPullFailed => {
                "TikTok could not download the video (connection error or the 1-hour limit). Posting again may work."
            }
            Self::PhotoPullFailed => {
                "TikTok could not download one of the photos (connection error or the 1-hour limit). Posting again may \
                 work."
            }
            Self::PublishCancelled => "The post was cancelled before TikTok finished it.",
            Self::AuthRemoved => {
                "The TikTok account withdrew this app's access while the post was processing. Connect the account again."
            }
            Self::SpamRiskTooManyPosts => {
                "The account reached TikTok's daily limit for posts made through apps. Post again tomorrow, or from the \
                 TikTok app."
            }
            Self::SpamRiskUserBannedFromPosting => {
                "TikTok has banned this account from posting. The account owner must resolve it with TikTok."
            }
            Self::SpamRiskText => "TikTok judged the caption as spam or risky. Change the caption and post again.",
            Self::SpamRisk => {
                "TikTok judged the post as spam or risky, for example the same media posted twice. Do not repeat it \
                 unchanged."
            }
            Self::VideoBitrateCheckFailed => "TikTok refused the video's bitrate. Re-encode it at a lower bitrate.",
            Self::PrivacyLevelNotAuthorized => {
                "TikTok did not allow the chosen visibility for this account. Choose one TikTok offers for it now."
            }
            Self::Other(_) => "TikTok refused the post for a reason it did not explain. Check the post in the TikTok app.",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_reason_round_trips_and_has_advice() {
        for reason in FailReason::KNOWN {
            assert_eq!(FailReason::parse(reason.as_str()), reason);
            assert!(reason.message().ends_with('.'));
        }
        assert_eq!(FailReason::parse("brand_new").as_str(), "brand_new");
        assert_eq!(FailReason::parse("brand_new").retry(), FailRetry::Never);
        assert_eq!(FailReason::Internal.retry(), FailRetry::Retry);
        assert_eq!(FailReason::SpamRiskTooManyPosts.retry(), FailRetry::AfterCap);
        assert_eq!(FailReason::SpamRisk.retry(), FailRetry::Never);
    }
}
