//! Prefixed ULIDs (`ws_`, `acc_`, `med_`, `post_`, `evt_`): sortable by creation time, and the prefix
//! tells a reader (and a support engineer) what an id names.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};
use ulid::Ulid;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is not a valid {kind} id (expected `{prefix}_` followed by a 26-character ULID)")]
pub struct InvalidId {
    pub kind: &'static str,
    pub prefix: &'static str,
    pub value: String,
}

macro_rules! prefixed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            #[allow(clippy::new_without_default)]
            pub fn new() -> Self {
                Self(format!("{}_{}", $prefix, Ulid::new()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn parse(value: &str) -> Result<Self, InvalidId> {
                let invalid = || InvalidId { kind: $kind, prefix: $prefix, value: value.chars().take(80).collect() };
                let rest = value
                    .strip_prefix($prefix)
                    .and_then(|r| r.strip_prefix('_'))
                    .ok_or_else(invalid)?;
                let ulid = Ulid::from_string(rest).map_err(|_| invalid())?;
                // Canonical upper-case form, so `acc_01h…` and `acc_01H…` are one account.
                Ok(Self(format!("{}_{}", $prefix, ulid)))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = InvalidId;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidId;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::parse(&value)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .pattern(Some(concat!("^", $prefix, "_[0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{26}$")))
                    .examples([serde_json::json!(concat!($prefix, "_01HZX3V8Q6Y2M4N5P7R9S1T3W5"))])
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}

prefixed_id!(
    /// A customer of the product: every key, post, media item and account belongs to exactly one.
    WorkspaceId, "ws", "workspace"
);
prefixed_id!(
    /// A TikTok account connected to a workspace.
    AccountId, "acc", "account"
);
prefixed_id!(
    /// An uploaded file (video or image).
    MediaId, "med", "media"
);
prefixed_id!(
    /// A post to TikTok.
    PostId, "post", "post"
);
prefixed_id!(
    /// An event on the bus; stable across redeliveries so consumers can dedupe.
    EventId, "evt", "event"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_ids_carry_their_prefix_and_parse_back() {
        let id = PostId::new();
        assert!(id.as_str().starts_with("post_"));
        assert_eq!(PostId::parse(id.as_str()).unwrap(), id);
    }

    #[test]
    fn parse_refuses_other_prefixes_and_garbage() {
        let media = MediaId::new();
        assert!(PostId::parse(media.as_str()).is_err());
        assert!(PostId::parse("post_").is_err());
        assert!(PostId::parse("post_not-a-ulid").is_err());
        assert!(PostId::parse("").is_err());
    }

    #[test]
    fn parse_canonicalises_case() {
        let id = AccountId::new();
        let lower = id.as_str().to_lowercase();
        assert_eq!(AccountId::parse(&lower).unwrap(), id);
    }

    #[test]
    fn serde_round_trips_as_plain_string() {
        let id = WorkspaceId::new();
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{id}\""));
        let back: WorkspaceId = serde_json::from_str(&json).unwrap();
        assert_eq!(back, id);
        assert!(serde_json::from_str::<WorkspaceId>("\"acc_01HZX3V8Q6Y2M4N5P7R9S1T3W5\"").is_err());
    }
}
