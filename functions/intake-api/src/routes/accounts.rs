//! `/v1/accounts`: the workspace's TikTok accounts, one account, disconnecting it, and what its creator may post now.

use axum::{extract::State, Json};
use chrono::{DateTime, Utc};
use shared::{
    accounts::{is_token_refused, AccessToken, Refused},
    domain::{Account, AccountStatus},
    ids::{AccountId, WorkspaceId},
    ports::StoreError,
    tiktok::{CreatorInfo, ErrorClass, TikTokError, TokenBinding},
};

use crate::{
    error::{ApiError, ErrorBody},
    extract::{Caller, PathParam},
    views::{AccountList, AccountView, CreatorInfoView},
    AppState,
};

/// Lost compare-and-sets re-read and re-applied this often before giving up (the caller may then retry).
const WRITE_ATTEMPTS: u32 = 8;

#[utoipa::path(
    get, path = "/v1/accounts", tag = "accounts",
    responses(
        (status = 200, description = "The workspace's TikTok accounts; tokens are never shown", body = AccountList),
        (status = 401, body = ErrorBody),
    ),
    security(("apiKey" = []))
)]
pub async fn list_accounts(State(state): State<AppState>, caller: Caller) -> Result<Json<AccountList>, ApiError> {
    let accounts = state.stores.accounts.list_accounts(&caller.workspace_id).await?;
    Ok(Json(AccountList {
        data: accounts.iter().map(AccountView::from).collect(),
    }))
}

#[utoipa::path(
    get, path = "/v1/accounts/{id}", tag = "accounts",
    params(("id" = String, Path, description = "Account id (acc_...)")),
    responses(
        (status = 400, description = "Unreadable path or query: not UTF-8, a repeated parameter", body = ErrorBody),
        (status = 200, body = AccountView),
        (status = 401, body = ErrorBody),
        (status = 404, description = "No such account in this workspace", body = ErrorBody),
    ),
    security(("apiKey" = []))
)]
pub async fn get_account(
    State(state): State<AppState>,
    caller: Caller,
    PathParam(id): PathParam<String>,
) -> Result<Json<AccountView>, ApiError> {
    let account = load_account(&state, &caller.workspace_id, &id).await?;
    Ok(Json(AccountView::from(&account)))
}

#[utoipa::path(
    delete, path = "/v1/accounts/{id}", tag = "accounts",
    params(("id" = String, Path, description = "Account id (acc_...)")),
    responses(
        (status = 400, description = "Unreadable path or query: not UTF-8, a repeated parameter", body = ErrorBody),
        (status = 200, description = "Disconnected (also when it already was): the tokens are forgotten, and the \
                                      authorization is revoked at TikTok unless another workspace holds the same \
                                      creator; connect again to use the account", body = AccountView),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ),
    security(("apiKey" = []))
)]
pub async fn delete_account(
    State(state): State<AppState>,
    caller: Caller,
    PathParam(id): PathParam<String>,
) -> Result<Json<AccountView>, ApiError> {
    let account = load_account(&state, &caller.workspace_id, &id).await?;
    if let Some(sealed) = &account.tokens {
        // TikTok's revoke ends every token the app holds for this creator, so another workspace connected to the
        // same creator would break with it: then this workspace only forgets its own tokens.
        let others = state.stores.accounts.find_accounts_by_open_id(&account.open_id).await?;
        if others
            .iter()
            .any(|other| other.id != account.id && other.tokens.is_some())
        {
            tracing::info!(account_id = %account.id, "creator also connected elsewhere; tokens forgotten, not revoked");
        } else {
            revoke_at_tiktok(&state, &account.id, &sealed.access_token).await;
        }
    }
    let written = update_account(&state, account, |account, now| {
        if account.status == AccountStatus::Disconnected && account.tokens.is_none() {
            return false;
        }
        forget_tokens(account, now);
        true
    })
    .await?;
    if written.changed {
        tracing::info!(account_id = %written.account.id, "TikTok account disconnected");
    }
    Ok(Json(AccountView::from(&written.account)))
}

/// Best effort: the account is disconnected here whatever TikTok answers (an expired token cannot be revoked, and
/// TikTok may be down); the user can still remove the app in TikTok.
async fn revoke_at_tiktok(state: &AppState, id: &AccountId, sealed_access_token: &str) {
    let token = match state
        .tokens
        .cipher()
        .open(sealed_access_token, &TokenBinding::access(id))
    {
        Ok(token) => token,
        Err(error) => {
            tracing::warn!(account_id = %id, %error, "stored token unreadable; not revoked at TikTok");
            return;
        }
    };
    if let Err(error) = state.tokens.client().revoke(&token).await {
        tracing::warn!(account_id = %id, %error, "TikTok did not revoke the authorization; disconnecting anyway");
    }
}

/// The account no longer holds any TikTok authorization (disconnected here, or removed by the user at TikTok).
pub(crate) fn forget_tokens(account: &mut Account, now: DateTime<Utc>) {
    account.status = AccountStatus::Disconnected;
    account.tokens = None;
    account.refresh_lock_until = None;
    account.updated_at = now;
}

#[utoipa::path(
    get, path = "/v1/accounts/{id}/creator-info", tag = "accounts",
    params(("id" = String, Path, description = "Account id (acc_...)")),
    responses(
        (status = 400, description = "Unreadable path or query: not UTF-8, a repeated parameter", body = ErrorBody),
        (status = 200, description = "Fresh from TikTok. `canPost: false` (with the reason) when TikTok says the \
                                      creator cannot post now", body = CreatorInfoView),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "`reconnect_required`: the account must be connected again; \
                                      `token_unreadable`: its stored tokens belong to another account or field (or \
                                      predate the account binding the deployment now requires), so it must be \
                                      connected again too", body = ErrorBody),
        (status = 429, description = "TikTok's per-account limit (20 a minute) is reached", body = ErrorBody),
        (status = 503, description = "TikTok is unavailable; retry shortly", body = ErrorBody),
    ),
    security(("apiKey" = []))
)]
pub async fn creator_info(
    State(state): State<AppState>,
    caller: Caller,
    PathParam(id): PathParam<String>,
) -> Result<Json<CreatorInfoView>, ApiError> {
    let account = load_account(&state, &caller.workspace_id, &id).await?;
    let audited = state.settings.app_audited;
    match fresh_creator_info(&state, &account).await? {
        Ok(info) => {
            // The composer reads this before it creates the post: the create's check then needs no second read.
            state.creators().remember(&account.id, &info, state.clock.now());
            Ok(Json(CreatorInfoView::new(&info, audited)))
        }
        Err(code) => Ok(Json(CreatorInfoView::cannot_post(&account, &code, audited))),
    }
}

/// How long a create or edit waits for TikTok's creator_info before it is accepted with the check deferred to
/// pre-flight: a slow TikTok must not make creating a post slow, and a refresh plus one read fit well within it.
const CREATOR_CHECK_BUDGET: std::time::Duration = std::time::Duration::from_secs(3);

/// The creator's settings for checking a post at create or edit: cached ([`crate::creator_cache`]) or read now within
/// [`CREATOR_CHECK_BUDGET`]. `None` when TikTok could not tell us (unreachable, slow, refusing): the post is then
/// accepted and checked at pre-flight, as before, and the caller is told so.
pub(crate) async fn creator_settings(state: &AppState, account: &Account) -> Option<CreatorInfo> {
    let now = state.clock.now();
    if let Some(info) = state.creators().fresh(&account.id, now) {
        return Some(info);
    }
    match tokio::time::timeout(CREATOR_CHECK_BUDGET, fresh_creator_info(state, account)).await {
        Ok(Ok(Ok(info))) => {
            state.creators().remember(&account.id, &info, now);
            Some(info)
        }
        Ok(Ok(Err(code))) => {
            tracing::info!(account_id = %account.id, code, "TikTok says the creator cannot post now; checked at pre-flight");
            None
        }
        Ok(Err(error)) => {
            tracing::warn!(account_id = %account.id, error = %error, "creator_info unavailable; checked at pre-flight");
            None
        }
        Err(_elapsed) => {
            tracing::warn!(account_id = %account.id, "creator_info too slow; checked at pre-flight");
            None
        }
    }
}

/// TikTok's creator_info with a fresh token: refreshed single-flight when close to expiry, and replaced once when
/// TikTok refuses it. `Ok(Err(code))` when TikTok says the creator cannot post now (it says so with HTTP 200).
async fn fresh_creator_info(state: &AppState, account: &Account) -> Result<Result<CreatorInfo, String>, ApiError> {
    let tokens = &state.tokens;
    let mut token = tokens.access_token(&account.id).await?;
    let mut answer = tokens.client().creator_info(&token.token).await;
    if matches!(&answer, Err(error) if is_token_refused(error)) {
        token = tokens.replace_rejected(&account.id, &token).await?;
        answer = tokens.client().creator_info(&token.token).await;
    }
    match answer {
        Ok(info) => Ok(Ok(info)),
        Err(error) => match error.posting_blocked_code() {
            Some(code) => Ok(Err(code.to_owned())),
            None => Err(refused(state, account, &token, error).await),
        },
    }
}

/// A refused authorization (even after a fresh token) means the user must reconnect: the account says so, and
/// `account.reauth_required` tells the product.
async fn refused(state: &AppState, account: &Account, token: &AccessToken, error: TikTokError) -> ApiError {
    if error.class() != ErrorClass::Reauthorize {
        return error.into();
    }
    let reason = format!("TikTok refused creator_info: {}", error.code());
    state
        .tokens
        .require_reauth(&account.id, Refused::Access(token), &reason)
        .await
        .into()
}

/// The caller's account, or 404 (another workspace's account reads as absent).
pub(crate) async fn load_account(state: &AppState, workspace: &WorkspaceId, raw_id: &str) -> Result<Account, ApiError> {
    let not_found = || ApiError::NotFound(format!("account {}", raw_id.chars().take(64).collect::<String>()));
    let id: AccountId = raw_id.parse().map_err(|_| not_found())?;
    match state.stores.accounts.get_account(&id).await? {
        Some(account) if &account.workspace_id == workspace => Ok(account),
        _ => Err(not_found()),
    }
}

/// An account as stored after [`update_account`], and whether this call changed it.
pub(crate) struct AccountWrite {
    pub account: Account,
    pub changed: bool,
}

/// Compare-and-set: applies `change` to `account` (which returns false when there is nothing to do) and writes it,
/// re-reading and re-applying when someone else wrote first (a token refresh, a webhook).
pub(crate) async fn update_account(
    state: &AppState,
    account: Account,
    change: impl Fn(&mut Account, DateTime<Utc>) -> bool,
) -> Result<AccountWrite, ApiError> {
    let mut current = account;
    for _ in 0..WRITE_ATTEMPTS {
        let mut next = current.clone();
        if !change(&mut next, state.clock.now()) {
            return Ok(AccountWrite {
                account: current,
                changed: false,
            });
        }
        next.version = current.version + 1;
        match state.stores.accounts.update_account(&next, current.version).await {
            Ok(()) => {
                return Ok(AccountWrite {
                    account: next,
                    changed: true,
                })
            }
            Err(StoreError::Conflict(_)) => {
                current = state
                    .stores
                    .accounts
                    .get_account(&current.id)
                    .await?
                    .ok_or_else(|| ApiError::NotFound(format!("account {}", current.id)))?;
            }
            Err(error) => return Err(error.into()),
        }
    }
    Err(ApiError::Unavailable(
        format!("account {} kept changing during the update", current.id).into(),
    ))
}
