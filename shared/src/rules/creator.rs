//! A post's choices against the creator's TikTok settings (`creator_info`): the same rule at creation and edit (the
//! intake, where a default can still be turned off for the caller) and at pre-flight (the publisher, where nothing is
//! changed for the user any more and a conflict fails the post). Both report the same codes.

use crate::{
    domain::{PostOptions, PostType, Privacy},
    tiktok::CreatorInfo,
};

/// One way a post's choices do not fit the creator's settings now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreatorConflict {
    /// The chosen privacy is not among those TikTok offers this creator.
    PrivacyUnavailable { chosen: Privacy, offered: Vec<Privacy> },
    /// The post allows an interaction the creator turned off in TikTok.
    InteractionDisabled(Interaction),
    /// The video is longer than this creator may post.
    DurationOverLimit { duration_ms: u64, max_sec: u32 },
}

/// The interactions a creator can turn off, with the option that allows each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interaction {
    Comments,
    Duets,
    Stitches,
}

impl Interaction {
    /// The option's name in the API (`options.<name>`).
    pub fn option(self) -> &'static str {
        match self {
            Self::Comments => "allowComments",
            Self::Duets => "allowDuet",
            Self::Stitches => "allowStitch",
        }
    }

    pub fn noun(self) -> &'static str {
        match self {
            Self::Comments => "comments",
            Self::Duets => "duets",
            Self::Stitches => "stitches",
        }
    }

    fn allowed(self, options: &PostOptions) -> bool {
        match self {
            Self::Comments => options.allow_comments,
            Self::Duets => options.allow_duet,
            Self::Stitches => options.allow_stitch,
        }
    }

    /// Turns the interaction off in `options`.
    pub fn disallow(self, options: &mut PostOptions) {
        match self {
            Self::Comments => options.allow_comments = false,
            Self::Duets => options.allow_duet = false,
            Self::Stitches => options.allow_stitch = false,
        }
    }

    fn disabled_by(self, creator: &CreatorInfo) -> bool {
        match self {
            Self::Comments => creator.comment_disabled,
            Self::Duets => creator.duet_disabled,
            Self::Stitches => creator.stitch_disabled,
        }
    }
}

pub const PRIVACY_UNAVAILABLE: &str = "privacy_unavailable";
pub const INTERACTION_DISABLED: &str = "interaction_disabled";
/// A warning: an interaction left at its default was turned off because the creator disabled it.
pub const INTERACTION_DISABLED_BY_CREATOR: &str = "interaction_disabled_by_creator";
pub const DURATION_OVER_CREATOR_LIMIT: &str = "duration_over_creator_limit";

impl CreatorConflict {
    pub fn code(&self) -> &'static str {
        match self {
            Self::PrivacyUnavailable { .. } => PRIVACY_UNAVAILABLE,
            Self::InteractionDisabled(_) => INTERACTION_DISABLED,
            Self::DurationOverLimit { .. } => DURATION_OVER_CREATOR_LIMIT,
        }
    }

    /// The request path of the value to change.
    pub fn field(&self) -> String {
        match self {
            Self::PrivacyUnavailable { .. } => "options.privacy".to_owned(),
            Self::InteractionDisabled(interaction) => format!("options.{}", interaction.option()),
            Self::DurationOverLimit { .. } => "media[0].id".to_owned(),
        }
    }

    /// What is wrong and what to do.
    pub fn message(&self) -> String {
        match self {
            Self::PrivacyUnavailable { chosen, offered } => {
                let offered: Vec<&str> = offered.iter().map(|p| p.as_str()).collect();
                format!(
                    "TikTok does not offer \"{}\" to this creator now; it offers {}. Edit the post's privacy (it is \
                     never changed for you)",
                    chosen.as_str(),
                    if offered.is_empty() {
                        "nothing".to_owned()
                    } else {
                        offered.join(", ")
                    }
                )
            }
            Self::InteractionDisabled(interaction) => format!(
                "the creator turned {} off in TikTok, so the post cannot allow them: set options.{} to false, or \
                 change the setting in the TikTok app",
                interaction.noun(),
                interaction.option()
            ),
            Self::DurationOverLimit { duration_ms, max_sec } => format!(
                "the video is {:.1} s long; this creator may post at most {max_sec} s. Trim it and upload again",
                *duration_ms as f64 / 1000.0
            ),
        }
    }
}

/// Every conflict between the post's choices and the creator's settings, in a stable order (privacy, interactions,
/// duration). `duration_ms` is the video's, when known; a creator maximum of 0 means TikTok gave none.
pub fn creator_conflicts(
    post_type: PostType,
    options: &PostOptions,
    duration_ms: Option<u64>,
    creator: &CreatorInfo,
) -> Vec<CreatorConflict> {
    let mut conflicts = Vec::new();
    if let Some(chosen) = options.privacy.filter(|privacy| !creator.offers(*privacy)) {
        conflicts.push(CreatorConflict::PrivacyUnavailable {
            chosen,
            offered: creator.privacy_options(),
        });
    }
    let interactions: &[Interaction] = match post_type {
        PostType::Video => &[Interaction::Comments, Interaction::Duets, Interaction::Stitches],
        // Duets and stitches are not sent for photos.
        PostType::Photo => &[Interaction::Comments],
    };
    for interaction in interactions {
        if interaction.allowed(options) && interaction.disabled_by(creator) {
            conflicts.push(CreatorConflict::InteractionDisabled(*interaction));
        }
    }
    let max_sec = creator.max_video_post_duration_sec;
    if post_type == PostType::Video {
        if let Some(duration_ms) = duration_ms.filter(|ms| max_sec > 0 && *ms > u64::from(max_sec) * 1000) {
            conflicts.push(CreatorConflict::DurationOverLimit { duration_ms, max_sec });
        }
    }
    conflicts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creator(levels: &[&str], duet_disabled: bool, max_sec: u32) -> CreatorInfo {
        CreatorInfo {
            creator_avatar_url: None,
            creator_username: None,
            creator_nickname: "n".into(),
            privacy_level_options: levels.iter().map(|l| (*l).to_owned()).collect(),
            comment_disabled: false,
            duet_disabled,
            stitch_disabled: false,
            max_video_post_duration_sec: max_sec,
        }
    }

    #[test]
    fn a_post_that_fits_has_no_conflict() {
        let options = PostOptions {
            privacy: Some(Privacy::Private),
            ..PostOptions::default()
        };
        let creator = creator(&["SELF_ONLY", "PUBLIC_TO_EVERYONE"], false, 600);
        assert!(creator_conflicts(PostType::Video, &options, Some(600_000), &creator).is_empty());
    }

    #[test]
    fn every_conflict_is_reported_in_order_with_its_field() {
        let options = PostOptions {
            privacy: Some(Privacy::Public),
            ..PostOptions::default()
        };
        let creator = creator(&["SELF_ONLY"], true, 60);
        let conflicts = creator_conflicts(PostType::Video, &options, Some(60_001), &creator);
        let fields: Vec<(String, &str)> = conflicts.iter().map(|c| (c.field(), c.code())).collect();
        assert_eq!(
            fields,
            [
                ("options.privacy".to_owned(), PRIVACY_UNAVAILABLE),
                ("options.allowDuet".to_owned(), INTERACTION_DISABLED),
                ("media[0].id".to_owned(), DURATION_OVER_CREATOR_LIMIT),
            ]
        );
        assert!(
            conflicts[0].message().contains("it offers private"),
            "{}",
            conflicts[0].message()
        );
    }

    #[test]
    fn photos_are_not_judged_on_duets_stitches_or_duration() {
        let options = PostOptions {
            privacy: Some(Privacy::Private),
            ..PostOptions::default()
        };
        let creator = creator(&["SELF_ONLY"], true, 1);
        assert!(creator_conflicts(PostType::Photo, &options, Some(10_000), &creator).is_empty());
    }
}
