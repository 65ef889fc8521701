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

impl AccountStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connected => "connected",
            Self::ReauthRequired => "reauth_required",
            Self::Disconnected => "disconnected",
        }
    }
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
    /// Recent calls per TikTok rate limit, shared by every publisher through compare-and-set on the account.
    #[serde(default, skip_serializing_if = "RateWindows::is_empty")]
    pub rate_windows: RateWindows,
    /// Events written with a transition of the account (`account.reauth_required`), delivered after the write; what
    /// the bus refused waits here (see `shared::outbox`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outbox: Vec<crate::events::Event>,
    pub connected_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: u64,
}

impl Account {
    /// A first connection of `open_id` to the workspace, before its profile, scopes, tokens and terms are known:
    /// callers fill those in (struct update syntax) so the creation defaults live here once.
    pub fn new_connected(workspace_id: WorkspaceId, open_id: impl Into<String>, now: DateTime<Utc>) -> Self {
        Self {
            id: AccountId::new(),
            workspace_id,
            open_id: open_id.into(),
            display_name: String::new(),
            username: None,
            avatar_url: None,
            scopes: Vec::new(),
            status: AccountStatus::Connected,
            tokens: None,
            terms_accepted_at: None,
            refresh_lock_until: None,
            rate_windows: RateWindows::default(),
            outbox: Vec::new(),
            connected_at: now,
            created_at: now,
            updated_at: now,
            version: 1,
        }
    }

    pub fn is_connected(&self) -> bool {
        self.status == AccountStatus::Connected
    }
}

/// TikTok's per-token limits (1-minute sliding windows), as start times of the calls made in the last minute.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RateWindows {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub init: Vec<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub status: Vec<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub creator_info: Vec<DateTime<Utc>>,
}

/// The TikTok calls that have a per-token limit below the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateLimited {
    /// `/video/init/`, `/content/init/`, `/inbox/video/init/`: 6 per minute.
    Init,
    /// `/status/fetch/`: 30 per minute.
    Status,
    /// `/creator_info/query/`: 20 per minute.
    CreatorInfo,
}

impl RateLimited {
    pub fn per_minute(self) -> usize {
        match self {
            Self::Init => 6,
            Self::Status => 30,
            Self::CreatorInfo => 20,
        }
    }
}

impl RateWindows {
    /// TikTok's window is one sliding minute; a second of margin absorbs clock differences between us and TikTok.
    pub const WINDOW: chrono::Duration = chrono::Duration::seconds(61);

    pub fn is_empty(&self) -> bool {
        self.init.is_empty() && self.status.is_empty() && self.creator_info.is_empty()
    }

    fn calls_mut(&mut self, kind: RateLimited) -> &mut Vec<DateTime<Utc>> {
        match kind {
            RateLimited::Init => &mut self.init,
            RateLimited::Status => &mut self.status,
            RateLimited::CreatorInfo => &mut self.creator_info,
        }
    }

    /// When a call at `at` would have to wait until, or `None` when a slot is free then (nothing is taken).
    pub fn next_free(&self, kind: RateLimited, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut probe = self.clone();
        probe.try_take(kind, at).err()
    }

    /// Takes a slot for a call at `now`, or says when the next one frees up. Forgets calls older than the window.
    pub fn try_take(&mut self, kind: RateLimited, now: DateTime<Utc>) -> Result<(), DateTime<Utc>> {
        let calls = self.calls_mut(kind);
        calls.retain(|at| *at > now - Self::WINDOW);
        if calls.len() < kind.per_minute() {
            calls.push(now);
            return Ok(());
        }
        let oldest = calls.iter().min().copied().unwrap_or(now);
        Err(oldest + Self::WINDOW)
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};

    use super::*;

    #[test]
    fn a_window_gives_six_init_slots_a_minute_then_says_when_the_next_frees_up() {
        let start = Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap();
        let mut windows = RateWindows::default();
        for second in 0..6 {
            assert_eq!(
                windows.try_take(RateLimited::Init, start + Duration::seconds(second)),
                Ok(())
            );
        }
        let next = windows
            .try_take(RateLimited::Init, start + Duration::seconds(10))
            .unwrap_err();
        assert_eq!(next, start + RateWindows::WINDOW);
        assert_eq!(
            windows.try_take(RateLimited::Init, next + Duration::milliseconds(1)),
            Ok(())
        );
        assert_eq!(windows.init.len(), 6, "calls older than the window are forgotten");
        assert!(windows.status.is_empty(), "each limit has its own window");
    }
}
