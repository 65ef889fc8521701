//! The product guide's rules, applied identically by every entry point: each violation names the request path of
//! the offending value so a composer can point at it.

pub mod creator;
pub mod post;
pub mod resolution;

use serde::Serialize;
use utoipa::ToSchema;

/// One broken rule: where (`media[2].id`), a stable code, and what to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Violation {
    pub field: String,
    pub code: String,
    pub message: String,
}

impl Violation {
    pub fn new(field: impl Into<String>, code: &str, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            code: code.to_owned(),
            message: message.into(),
        }
    }
}

/// TikTok counts caption limits in UTF-16 code units (JavaScript's `length`): an emoji outside the BMP counts 2.
/// Counting code units is safe whichever way TikTok counts, since it is never below the code-point count.
pub fn tiktok_text_length(text: &str) -> usize {
    text.encode_utf16().count()
}
