//! A TikTok account connected to a workspace.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::ids::{AccountId, WorkspaceId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AccountStatus {
    Connected,
    /// TikTok refused the refresh token (or it expired); the user must connect again.
    ReauthRequired,
    /// Revoked by the user, by TikTok, or deleted through the API; tokens are forgotten.
    Disconnected,
}

/// Tokens as stored: each sealed with AES-256-GCM by the token cipher; expiries in clear so that refreshes can be
/// scheduled without decrypting.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SealedTokens {
    pub access_token: String,
    pub access_expires_at: DateTime<Utc>,
    pub refresh_token: String,
    pub refresh_expires_at: DateTime<Utc>,
}

impl std::fmt::Debug for SealedTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedTokens")
            .field("access_token", &"[sealed]")
            .field("access_expires_at", &self.access_expires_at)
            .field("refresh_token", &"[sealed]")
            .field("refresh_expires_at", &self.refresh_expires_at)
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Account {
    pub id: AccountId,
    pub workspace_id: WorkspaceId,
    /// TikTok's per-app user id.
    pub open_id: String,
    pub display_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avatar_url: Option<String>,
    /// Scopes the user granted (TikTok lets them deny some).
    pub scopes: Vec<String>,
    pub status: AccountStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<SealedTokens>,
    /// When the user accepted TikTok's Content Posting API terms (during this connection).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terms_accepted_at: Option<DateTime<Utc>>,
    /// Held by the one caller refreshing the tokens; others wait for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_lock_until: Option<DateTime<Utc>>,
    pub connected_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: u64,
}

impl Account {
    pub fn is_connected(&self) -> bool {
        self.status == AccountStatus::Connected
    }
}
