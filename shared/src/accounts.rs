//! Fresh access tokens for connected accounts, refreshed single-flight across every process: the one caller that
//! wins a conditional lock on the account refreshes, everyone else waits for the new token and reuses it. TikTok
//! rotates refresh tokens, so two refreshes with one token would lose the account.

use std::{sync::Arc, time::Duration as StdDuration};

use chrono::Duration;
use secrecy::SecretString;
use serde_json::json;

use crate::{
    domain::{Account, AccountStatus, PostStatus},
    events::{Event, EventType},
    ids::AccountId,
    outbox::deliver_account_outbox,
    ports::{AccountRepo, BoxError, EventSink, PostFilter, PostRepo, StoreError, Stores},
    tiktok::{oauth::needs_refresh, CipherError, ErrorClass, TikTokClient, TikTokError, TokenBinding, TokenCipher},
    Clock,
};

/// What the lock must cover beyond TikTok's refresh call: sealing and the saves with their retries (8 attempts with
/// up to 1.3 s of backoff each, plus the store calls). A second refresher taking over while the first still saves
/// would spend a refresh token TikTok has already rotated, and the account would be lost to a reconnect.
const LOCK_MARGIN: Duration = Duration::seconds(30);
/// How long a caller waits for someone else's refresh before giving up for now.
const MAX_WAIT: StdDuration = StdDuration::from_secs(35);
const WAIT_STEP: StdDuration = StdDuration::from_millis(50);
/// Saving a freshly rotated token is retried this often: losing it would lose the account.
const SAVE_ATTEMPTS: u32 = 8;

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("account {0} not found")]
    NotFound(AccountId),
    #[error("account {id} is {status:?}; the user must reconnect it")]
    NotConnected { id: AccountId, status: AccountStatus },
    #[error("TikTok no longer accepts the authorization of account {0}; the user must reconnect it")]
    ReauthRequired(AccountId),
    #[error("the stored tokens of account {0} cannot be opened")]
    Unreadable(AccountId, #[source] CipherError),
    #[error("no fresh token for now; retry shortly")]
    Transient(#[source] BoxError),
}

/// The stored token TikTok refused, so that marking the account can tell whether it is still the stored one.
pub enum Refused<'a> {
    Access(&'a AccessToken),
    /// The sealed refresh token, as stored.
    Refresh(&'a str),
}

impl Refused<'_> {
    fn is_stored_in(&self, account: &Account) -> bool {
        account.tokens.as_ref().is_some_and(|tokens| match self {
            Self::Access(token) => tokens.access_token == token.sealed,
            Self::Refresh(sealed) => tokens.refresh_token == *sealed,
        })
    }
}

fn replaced_since(id: &AccountId) -> TokenError {
    tracing::info!(account_id = %id, "a refused token was replaced since (a reconnect or a refresh); account left as it is");
    TokenError::Transient("the account's tokens were replaced since TikTok refused them; retry".into())
}

/// A usable access token, and which stored token it is (so a caller whose token TikTok refused can ask for a
/// refresh without refreshing again what someone else already refreshed).
pub struct AccessToken {
    pub token: SecretString,
    sealed: String,
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccessToken([redacted])")
    }
}

/// How many of an account's scheduled posts `account.reauth_required` names; `morePostsAtRisk` says when there are
/// more. One listing query, so that announcing a disconnect stays cheap for an account with a year of posts.
pub const POSTS_AT_RISK_LISTED: usize = 100;

/// The posts that fail at their time unless the user reconnects the account first: its scheduled posts, soonest
/// first. Told with `account.reauth_required` so the product can say what is at stake, not only that something is.
pub struct PostsAtRisk {
    posts: Vec<serde_json::Value>,
    more: bool,
}

impl PostsAtRisk {
    /// `None` when the posts could not be listed: the announcement goes out without them rather than not at all.
    pub async fn of(posts: &dyn PostRepo, account: &Account) -> Option<Self> {
        let filter = PostFilter {
            account_id: Some(account.id.clone()),
            status: Some(PostStatus::Scheduled),
        };
        match posts
            .list_posts(&account.workspace_id, &filter, POSTS_AT_RISK_LISTED, None)
            .await
        {
            Ok(mut page) => {
                page.items.sort_by_key(|post| post.publish_at());
                Some(Self {
                    posts: page
                        .items
                        .iter()
                        .map(|post| json!({ "postId": post.id, "scheduledAt": post.publish_at() }))
                        .collect(),
                    more: page.next_cursor.is_some(),
                })
            }
            Err(error) => {
                tracing::warn!(account_id = %account.id, %error, "posts at risk not listed in account.reauth_required");
                None
            }
        }
    }

    /// `account.reauth_required` for `account`: `data` says why, the posts at risk (when they could be listed) say
    /// what is at stake. The one place the event is made, for the token service and TikTok's webhook alike.
    pub fn announcement(
        at_risk: Option<&Self>,
        account: &Account,
        mut data: serde_json::Value,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Event {
        if let (Some(at_risk), Some(fields)) = (at_risk, data.as_object_mut()) {
            fields.insert("postsAtRisk".into(), serde_json::Value::Array(at_risk.posts.clone()));
            fields.insert("morePostsAtRisk".into(), serde_json::Value::Bool(at_risk.more));
        }
        Event::new(EventType::AccountReauthRequired, account.workspace_id.clone(), now)
            .account(&account.id)
            .data(data)
    }
}

#[derive(Clone)]
pub struct TokenService {
    accounts: Arc<dyn AccountRepo>,
    posts: Arc<dyn PostRepo>,
    client: TikTokClient,
    cipher: Arc<TokenCipher>,
    events: Arc<dyn EventSink>,
    clock: Arc<dyn Clock>,
}

impl TokenService {
    pub fn new(
        stores: &Stores,
        client: TikTokClient,
        cipher: Arc<TokenCipher>,
        events: Arc<dyn EventSink>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            accounts: stores.accounts.clone(),
            posts: stores.posts.clone(),
            client,
            cipher,
            events,
            clock,
        }
    }

    pub fn client(&self) -> &TikTokClient {
        &self.client
    }

    pub fn cipher(&self) -> &TokenCipher {
        &self.cipher
    }

    /// An access token that stays valid for a while, refreshing it first when it is close to expiry.
    pub async fn access_token(&self, id: &AccountId) -> Result<AccessToken, TokenError> {
        self.fresh_token(id, None).await
    }

    /// A token other than `rejected` (which TikTok answered `access_token_invalid` to): refreshes unless another
    /// caller already replaced it.
    pub async fn replace_rejected(&self, id: &AccountId, rejected: &AccessToken) -> Result<AccessToken, TokenError> {
        self.fresh_token(id, Some(&rejected.sealed)).await
    }

    async fn fresh_token(&self, id: &AccountId, rejected: Option<&str>) -> Result<AccessToken, TokenError> {
        let waiting_since = tokio::time::Instant::now();
        loop {
            let account = self.load(id).await?;
            let tokens = account.tokens.as_ref().ok_or(TokenError::NotConnected {
                id: id.clone(),
                status: account.status,
            })?;
            let now = self.clock.now();
            let was_rejected = rejected == Some(tokens.access_token.as_str());
            if !was_rejected && !needs_refresh(tokens.access_expires_at, now) {
                return self.open(&account);
            }
            if tokens.refresh_expires_at <= now {
                let refused = Refused::Refresh(&tokens.refresh_token);
                return Err(self.require_reauth(id, refused, "the refresh token expired").await);
            }
            if account.refresh_lock_until.is_some_and(|until| until > now) {
                if waiting_since.elapsed() > MAX_WAIT {
                    return Err(TokenError::Transient(
                        "waited too long for another caller's token refresh".into(),
                    ));
                }
                tokio::time::sleep(WAIT_STEP).await;
                continue;
            }
            let locked = Account {
                refresh_lock_until: Some(now + self.lock_ttl()),
                updated_at: now,
                version: account.version + 1,
                ..account.clone()
            };
            match self.accounts.update_account(&locked, account.version).await {
                Ok(()) => return self.refresh_holding_lock(locked).await,
                // Someone else wrote first (maybe took the lock): look again.
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(TokenError::Transient(Box::new(e))),
            }
        }
    }

    /// How long a refresher holds the lock before others may take over: longer than its worst case (TikTok's request
    /// timeout and the saves), and still bounded so that a crashed refresher does not block the account for long.
    fn lock_ttl(&self) -> Duration {
        Duration::from_std(self.client.config().timeouts.request).unwrap_or(Duration::seconds(60)) + LOCK_MARGIN
    }

    async fn refresh_holding_lock(&self, account: Account) -> Result<AccessToken, TokenError> {
        let sealed_refresh = account
            .tokens
            .as_ref()
            .map(|t| t.refresh_token.clone())
            .unwrap_or_default();
        let refresh_token = match self.cipher.open(&sealed_refresh, &TokenBinding::refresh(&account.id)) {
            Ok(token) => token,
            Err(e) => {
                self.release_lock(&account.id).await;
                return Err(TokenError::Unreadable(account.id, e));
            }
        };
        match self.client.refresh(&refresh_token).await {
            Ok(grant) => {
                let sealed = match self.cipher.seal_grant(&grant, &account.id) {
                    Ok(sealed) => sealed,
                    Err(e) => {
                        self.release_lock(&account.id).await;
                        return Err(TokenError::Unreadable(account.id.clone(), e));
                    }
                };
                let scopes = grant.scopes.as_slice().to_vec();
                let saved = self
                    .save(&account.id, |account, now| {
                        account.tokens = Some(sealed.clone());
                        if !scopes.is_empty() {
                            account.scopes = scopes.clone();
                        }
                        account.refresh_lock_until = None;
                        account.updated_at = now;
                    })
                    .await?;
                tracing::info!(account_id = %saved.id, "access token refreshed");
                self.open(&saved)
            }
            Err(error) if error.class() == ErrorClass::Reauthorize => {
                let reason = format!("TikTok refused the refresh: {}", error.code());
                Err(self
                    .require_reauth(&account.id, Refused::Refresh(&sealed_refresh), &reason)
                    .await)
            }
            Err(error) => {
                self.release_lock(&account.id).await;
                Err(TokenError::Transient(Box::new(error)))
            }
        }
    }

    /// Renews the refresh token (by a refresh, which rotates it) when it expires within `margin`; the instant the
    /// refresh token now expires. A refresh TikTok refuses marks the account for a reconnect and announces it now,
    /// long before a post would meet it.
    pub async fn keep_alive(
        &self,
        id: &AccountId,
        margin: Duration,
    ) -> Result<chrono::DateTime<chrono::Utc>, TokenError> {
        let token = self.access_token(id).await?;
        let account = self.load(id).await?;
        let expires_at = account.tokens.as_ref().map(|t| t.refresh_expires_at);
        match expires_at {
            Some(expires_at) if expires_at - margin > self.clock.now() => Ok(expires_at),
            _ => {
                self.replace_rejected(id, &token).await?;
                let renewed = self.load(id).await?;
                renewed
                    .tokens
                    .map(|t| t.refresh_expires_at)
                    .ok_or_else(|| TokenError::NotConnected {
                        id: id.clone(),
                        status: renewed.status,
                    })
            }
        }
    }

    /// Marks the account as needing a reconnect and announces it, unless the token TikTok refused is no longer the
    /// stored one: a reconnect (or another caller's refresh) since must not be undone by a refusal of what it
    /// replaced. Returns the error to give the caller.
    pub async fn require_reauth(&self, id: &AccountId, refused: Refused<'_>, reason: &str) -> TokenError {
        let account = match self.accounts.get_account(id).await {
            Ok(Some(account)) => account,
            Ok(None) => return TokenError::NotFound(id.clone()),
            Err(e) => return TokenError::Transient(Box::new(e)),
        };
        if !refused.is_stored_in(&account) {
            return replaced_since(id);
        }
        let at_risk = match account.status {
            AccountStatus::ReauthRequired => None,
            _ => PostsAtRisk::of(self.posts.as_ref(), &account).await,
        };
        let updated = self
            .save(id, |account, now| {
                // Judged again on the latest version: the compare-and-set may meet a reconnect.
                if !refused.is_stored_in(account) {
                    return;
                }
                // Announced once, by the write that makes the change, through the account's outbox.
                if account.status != AccountStatus::ReauthRequired {
                    let event = PostsAtRisk::announcement(at_risk.as_ref(), account, json!({ "reason": reason }), now);
                    account.outbox.push(event);
                }
                account.status = AccountStatus::ReauthRequired;
                account.refresh_lock_until = None;
                account.updated_at = now;
            })
            .await;
        let id = id.clone();
        match updated {
            Ok(account) if account.status != AccountStatus::ReauthRequired => replaced_since(&id),
            Ok(account) => {
                tracing::warn!(account_id = %id, reason, "account needs to be reconnected");
                self.deliver_outbox(account).await;
                TokenError::ReauthRequired(id)
            }
            Err(e) => e,
        }
    }

    /// Delivers the account's pending events; what the bus refuses stays for the next time the account's tokens are
    /// asked for (every due post of the account asks).
    async fn deliver_outbox(&self, account: Account) {
        let id = account.id.clone();
        if let Err(e) = deliver_account_outbox(self.accounts.as_ref(), self.events.as_ref(), account).await {
            tracing::warn!(account_id = %id, error = %e, "delivered account events not removed yet");
        }
    }

    async fn release_lock(&self, id: &AccountId) {
        let released = self
            .save(id, |account, now| {
                account.refresh_lock_until = None;
                account.updated_at = now;
            })
            .await;
        if let Err(e) = released {
            // The lock expires by itself (`lock_ttl`).
            tracing::warn!(account_id = %id, error = %e, "refresh lock not released");
        }
    }

    /// Applies `change` to the latest version of the account, retrying lost compare-and-sets and brief outages.
    async fn save(
        &self,
        id: &AccountId,
        change: impl Fn(&mut Account, chrono::DateTime<chrono::Utc>),
    ) -> Result<Account, TokenError> {
        let mut last_error: Option<StoreError> = None;
        for attempt in 0..SAVE_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(StdDuration::from_millis(20 << attempt.min(6))).await;
            }
            let current = match self.accounts.get_account(id).await {
                Ok(Some(account)) => account,
                Ok(None) => return Err(TokenError::NotFound(id.clone())),
                Err(e) => {
                    last_error = Some(e);
                    continue;
                }
            };
            let mut next = current.clone();
            change(&mut next, self.clock.now());
            next.version = current.version + 1;
            match self.accounts.update_account(&next, current.version).await {
                Ok(()) => return Ok(next),
                Err(e) => last_error = Some(e),
            }
        }
        tracing::error!(account_id = %id, "could not save the account after {SAVE_ATTEMPTS} attempts");
        Err(TokenError::Transient(
            last_error
                .map(|e| Box::new(e) as BoxError)
                .unwrap_or_else(|| "no attempt".into()),
        ))
    }

    async fn load(&self, id: &AccountId) -> Result<Account, TokenError> {
        let account = self
            .accounts
            .get_account(id)
            .await
            .map_err(|e| TokenError::Transient(Box::new(e)))?
            .ok_or_else(|| TokenError::NotFound(id.clone()))?;
        if !account.outbox.is_empty() {
            self.deliver_outbox(account.clone()).await;
        }
        if account.status != AccountStatus::Connected {
            return Err(TokenError::NotConnected {
                id: id.clone(),
                status: account.status,
            });
        }
        Ok(account)
    }

    fn open(&self, account: &Account) -> Result<AccessToken, TokenError> {
        let sealed = account
            .tokens
            .as_ref()
            .map(|t| t.access_token.clone())
            .unwrap_or_default();
        let token = self
            .cipher
            .open(&sealed, &TokenBinding::access(&account.id))
            .map_err(|e| TokenError::Unreadable(account.id.clone(), e))?;
        Ok(AccessToken { token, sealed })
    }
}

/// Whether a TikTok error means the access token itself was refused (worth one refresh and one retry).
pub fn is_token_refused(error: &TikTokError) -> bool {
    error.class() == ErrorClass::Reauthorize && error.code() == "access_token_invalid"
}
