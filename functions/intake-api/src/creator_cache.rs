//! The creators' TikTok settings (`creator_info`) as last read, per account, for a short time: a create or edit is
//! checked against them without asking TikTok each time (TikTok allows 20 reads a minute per account, shared with the
//! publisher's pre-flight), and the composer's own read (`GET /v1/accounts/{id}/creator-info`) fills it.

use std::{collections::HashMap, sync::Mutex};

use chrono::{DateTime, Duration, Utc};
use shared::{ids::AccountId, tiktok::CreatorInfo};

/// Settings change rarely and pre-flight checks them again at fire time; a minute keeps one Lambda environment at
/// one read a minute per account.
pub const FRESH_FOR: Duration = Duration::seconds(60);
/// Entries beyond this are dropped (expired ones first): the cache never grows with the number of accounts.
const CAPACITY: usize = 10_000;

#[derive(Default)]
pub struct CreatorCache {
    entries: Mutex<HashMap<AccountId, (DateTime<Utc>, CreatorInfo)>>,
}

impl CreatorCache {
    /// The settings read for `account` within [`FRESH_FOR`] of `now`.
    pub fn fresh(&self, account: &AccountId, now: DateTime<Utc>) -> Option<CreatorInfo> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(account)
            .filter(|(read_at, _)| now - *read_at < FRESH_FOR && *read_at <= now)
            .map(|(_, info)| info.clone())
    }

    pub fn remember(&self, account: &AccountId, info: &CreatorInfo, now: DateTime<Utc>) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= CAPACITY && !entries.contains_key(account) {
            entries.retain(|_, (read_at, _)| now - *read_at < FRESH_FOR);
            if entries.len() >= CAPACITY {
                entries.clear();
            }
        }
        entries.insert(account.clone(), (now, info.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> CreatorInfo {
        serde_json::from_value(serde_json::json!({"creator_nickname": "n"})).expect("creator info")
    }

    #[test]
    fn an_entry_is_fresh_for_a_minute_by_the_clock_it_is_given() {
        let cache = CreatorCache::default();
        let account = AccountId::new();
        let read_at = DateTime::<Utc>::UNIX_EPOCH + Duration::days(20_000);
        cache.remember(&account, &info(), read_at);
        assert!(cache.fresh(&account, read_at + Duration::seconds(59)).is_some());
        assert!(cache.fresh(&account, read_at + FRESH_FOR).is_none());
        assert!(cache.fresh(&AccountId::new(), read_at).is_none());
    }
}
