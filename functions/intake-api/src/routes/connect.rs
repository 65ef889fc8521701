//! Connecting a TikTok account with OAuth (reference §1). `connect` (API key) hands out TikTok's authorize URL with
//! a single-use `state` bound to the workspace; TikTok sends the user's browser back to `callback`, which takes no
//! API key and trusts nothing but that state. The callback cannot tell whose browser completed the authorization
//! (anyone with an API key can send a creator an authorize link), so it attaches nothing: it keeps the connection
//! under a new single-use id that only that browser receives, and the workspace that started the connection claims
//! it with its API key (`claim_connection`). Codes and tokens are never logged or answered.

use axum::{
    extract::{RawQuery, State},
    http::{header, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use chrono::{DateTime, Utc};
use shared::{
    domain::{Account, AccountStatus, SealedTokens},
    ids::{AccountId, WorkspaceId},
    ports::{OAuthState, PendingConnection},
    tiktok::{
        oauth::{generate_state, is_state_shaped, parse_callback, CallbackOutcome, SecretCode, STATE_LIFETIME},
        ErrorClass, Scopes, TikTokError, TokenBinding, TokenGrant, UserInfo, REQUIRED_SCOPES,
    },
};

use crate::{
    error::{ApiError, ErrorBody},
    extract::{Caller, PathParam},
    routes::accounts::update_account,
    schemas::CallbackParams,
    views::{AccountView, ConnectView, PendingConnectionView},
    AppState,
};

/// TikTok's error texts come from the query string, which anyone can write: only this much is echoed.
const ECHOED_TEXT_MAX: usize = 200;

#[utoipa::path(
    post, path = "/v1/accounts/tiktok/connect", tag = "accounts",
    responses(
        (status = 200, description = "Send the user's browser to `authorizeUrl`; TikTok brings it back to the \
                                      callback, which connects the account", body = ConnectView),
        (status = 401, body = ErrorBody),
    ),
    security(("apiKey" = []))
)]
pub async fn connect(State(state): State<AppState>, caller: Caller) -> Result<Json<ConnectView>, ApiError> {
    let now = state.clock.now();
    let oauth_state = OAuthState {
        state: generate_state(),
        workspace_id: caller.workspace_id.clone(),
        expires_at: now + STATE_LIFETIME,
        connection: None,
    };
    state.stores.oauth_states.put_oauth_state(&oauth_state).await?;
    // Always TikTok's consent page: without it TikTok silently authorizes whoever is logged in in that browser, so
    // a link sent to a creator could attach their account without them seeing what they grant (and the user could
    // not pick another account).
    let url = state
        .tokens
        .client()
        .authorize_url(&REQUIRED_SCOPES, &oauth_state.state, true)
        .map_err(ApiError::internal)?;
    Ok(Json(ConnectView {
        authorize_url: url.into(),
        expires_at: oauth_state.expires_at,
    }))
}

#[utoipa::path(
    get, path = "/v1/accounts/tiktok/callback", tag = "accounts",
    params(CallbackParams),
    responses(
        (status = 200, description = "Authorized, not yet attached (JSON when CONNECT_SUCCESS_URL is unset): the \
                                      workspace that started the connection claims `connectionId` within 10 \
                                      minutes with POST /v1/accounts/tiktok/connections/{id}",
            body = PendingConnectionView),
        (status = 303, description = "CONNECT_SUCCESS_URL is set: back to it with `connection` (the id to claim), or \
                                      with `error` and `errorDescription`"),
        (status = 400, description = "TikTok refused, the state is unknown, expired or used, or a required scope was \
                                      not granted; nothing is connected", body = ErrorBody),
        (status = 503, description = "TikTok is unavailable; connect again shortly", body = ErrorBody),
    )
)]
pub async fn callback(State(state): State<AppState>, RawQuery(query): RawQuery) -> Response {
    let outcome = complete_connect(&state, query.as_deref().unwrap_or_default()).await;
    let success_url = state.settings.connect_success_url.as_deref();
    match (outcome, success_url) {
        (Ok(pending), Some(url)) => redirect(url, &[("connection", pending.state.as_str())]),
        (Ok(pending), None) => Json(PendingConnectionView::from(&pending)).into_response(),
        // Our own faults stay 500s in the log and the error shape; everything else goes back to the product's page.
        (Err(error), Some(url)) if !error.status().is_server_error() || matches!(error, ApiError::Unavailable(_)) => {
            tracing::info!(
                code = error.code(),
                "connect failed; back to the success URL with the reason"
            );
            redirect(
                url,
                &[("error", error.code()), ("errorDescription", &error.public_message())],
            )
        }
        (Err(error), _) => error.into_response(),
    }
}

/// How long an authorized connection waits for its workspace to claim it.
const CLAIM_LIFETIME: chrono::Duration = chrono::Duration::minutes(10);

#[utoipa::path(
    post, path = "/v1/accounts/tiktok/connections/{id}", tag = "accounts",
    params(("id" = String, Path, description = "The `connection` the callback handed to the browser that completed \
                                                TikTok's authorization")),
    responses(
        (status = 201, description = "Connected", body = AccountView),
        (status = 200, description = "Reconnected: the account of this TikTok user in the workspace is updated",
            body = AccountView),
        (status = 400, description = "Unreadable path or query: not UTF-8, a repeated parameter", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, description = "Unknown, expired (10 minutes), already claimed, or started by another \
                                      workspace (a claim by another workspace also ends it)",
            body = ErrorBody),
    ),
    security(("apiKey" = []))
)]
pub async fn claim_connection(
    State(state): State<AppState>,
    caller: Caller,
    PathParam(id): PathParam<String>,
) -> Result<Response, ApiError> {
    let now = state.clock.now();
    let taken = if is_state_shaped(&id) {
        state.stores.oauth_states.take_oauth_state(&id, now).await?
    } else {
        None
    };
    let Some((pending, connection)) = taken.and_then(|taken| Some((taken.clone(), taken.connection?))) else {
        return Err(connection_not_found());
    };
    if pending.workspace_id != caller.workspace_id {
        // Someone else's link completed in someone's browser: the id reached the wrong workspace, which must not
        // get the account; the creator connects again from the right one.
        tracing::warn!(workspace_id = %caller.workspace_id, "a connection claimed by a workspace that did not start it");
        return Err(connection_not_found());
    }
    let connected = match attach(&state, &pending.workspace_id, &connection, now).await {
        Ok(connected) => connected,
        Err(error) => {
            // Our failure, not the caller's: the connection stays claimable (until it expires) for a retry.
            if let Err(put_back) = state.stores.oauth_states.put_oauth_state(&pending).await {
                tracing::warn!(error = %put_back, "a connection whose claim failed could not be kept for a retry");
            }
            return Err(error);
        }
    };
    let status = if connected.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(AccountView::from(&connected.account))).into_response())
}

fn connection_not_found() -> ApiError {
    ApiError::NotFound(
        "this connection (claimable once, within 10 minutes of TikTok's consent, by the workspace that started it; \
         else start again with POST /v1/accounts/tiktok/connect)"
            .into(),
    )
}

struct Connected {
    account: Account,
    created: bool,
}

async fn complete_connect(state: &AppState, query: &str) -> Result<OAuthState, ApiError> {
    let params: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes()).into_owned().collect();
    let outcome =
        parse_callback(params.iter().map(|(k, v)| (k.as_str(), v.as_str()))).map_err(|_| ApiError::BadRequest {
            code: "invalid_callback",
            message: "this address is where TikTok sends the browser back, with `code` and `state` (or `error`); \
                      start a connection with POST /v1/accounts/tiktok/connect"
                .into(),
        })?;
    let now = state.clock.now();
    match outcome {
        CallbackOutcome::Refused {
            state: oauth_state,
            error,
            description,
        } => {
            // The attempt is over: its state must not serve again.
            if let Some(oauth_state) = oauth_state.filter(|s| is_state_shaped(s)) {
                state.stores.oauth_states.take_oauth_state(&oauth_state, now).await?;
            }
            Err(ApiError::BadRequest {
                code: "authorization_refused",
                message: format!(
                    "TikTok did not authorize the connection ({}: {}); start again with POST \
                     /v1/accounts/tiktok/connect",
                    echoed(&error),
                    echoed(&description)
                ),
            })
        }
        CallbackOutcome::Approved {
            code,
            state: oauth_state,
            granted,
        } => {
            // Only a state this service could have issued is looked up: anything else (an unbounded string would
            // become a storage key past DynamoDB's limit) is unknown without touching the store.
            let started = if is_state_shaped(&oauth_state) {
                state.stores.oauth_states.take_oauth_state(&oauth_state, now).await?
            } else {
                None
            };
            // A connection's id is no state: it was issued after a consent, not before one.
            let started = started.filter(|started| started.connection.is_none());
            let started = started.ok_or_else(|| ApiError::BadRequest {
                code: "invalid_state",
                message: "this connection's state is unknown, expired (after 10 minutes) or already used; start \
                              again with POST /v1/accounts/tiktok/connect"
                    .into(),
            })?;
            // The callback lists what the user ticked: a missing scope is refused before the code is even spent.
            if !granted.as_slice().is_empty() {
                require_scopes(&granted)?;
            }
            let grant = exchange(state, &code).await?;
            let connection = authorized(state, &started.workspace_id, grant, granted).await?;
            let pending = OAuthState {
                state: generate_state(),
                workspace_id: started.workspace_id,
                expires_at: now + CLAIM_LIFETIME,
                connection: Some(connection),
            };
            state.stores.oauth_states.put_oauth_state(&pending).await?;
            tracing::info!(workspace_id = %pending.workspace_id, "TikTok authorized a connection; waiting for its claim");
            Ok(pending)
        }
    }
}

/// How long the profile calls after the code exchange may take together: the exchange may take TikTok's request
/// timeout (20 s), and the whole callback must answer within API Gateway's 29 s.
const PROFILE_BUDGET: std::time::Duration = std::time::Duration::from_secs(5);

async fn exchange(state: &AppState, code: &SecretCode) -> Result<TokenGrant, ApiError> {
    state
        .tokens
        .client()
        .exchange_code(&code.0)
        .await
        .map_err(connect_refused)
}

/// What the authorization grants, with the tokens sealed. The grant's scopes (TikTok's own word on what the tokens
/// carry) decide; the callback's list stands in when the grant names none.
async fn authorized(
    state: &AppState,
    workspace: &WorkspaceId,
    grant: TokenGrant,
    callback_scopes: Scopes,
) -> Result<PendingConnection, ApiError> {
    let client = state.tokens.client();
    let scopes = if grant.scopes.as_slice().is_empty() {
        callback_scopes
    } else {
        grant.scopes.clone()
    };
    if let Err(refusal) = require_scopes(&scopes) {
        // Nothing will use these tokens: hand the authorization back rather than leave it dangling at TikTok.
        if let Err(error) = client.revoke(&grant.access_token).await {
            tracing::warn!(%error, "a refused connection's authorization was not revoked at TikTok");
        }
        return Err(refusal);
    }
    // The code is spent: from here on the tokens must be saved. The profile calls run together within a short
    // budget (the exchange may already have used most of the API's 29 s), and a slow or failed one only costs the
    // account its display name or handle for now, never the connection.
    let (user, creator) = tokio::join!(
        tokio::time::timeout(PROFILE_BUDGET, client.user_info(&grant.access_token)),
        tokio::time::timeout(PROFILE_BUDGET, client.creator_info(&grant.access_token)),
    );
    let user = match user {
        Ok(Ok(user)) => user,
        outcome => {
            tracing::warn!(
                timed_out = outcome.is_err(),
                "user info unavailable while connecting; saved without it"
            );
            UserInfo {
                open_id: grant.open_id.clone(),
                union_id: None,
                display_name: String::new(),
                avatar_url: None,
            }
        }
    };
    // The handle (for post URLs) is not among the basic user fields; creator_info has it.
    let username = match creator {
        Ok(Ok(creator)) => creator.creator_username.filter(|name| !name.is_empty()),
        outcome => {
            tracing::warn!(
                timed_out = outcome.is_err(),
                "creator_info unavailable while connecting; no username for now"
            );
            None
        }
    };
    // The tokens are sealed bound to the account they go into, so its id is settled now: the workspace's account
    // of this TikTok user, or the id a new one will have.
    let account_id = state
        .stores
        .accounts
        .find_account_by_open_id(workspace, &grant.open_id)
        .await?
        .map_or_else(AccountId::new, |account| account.id);
    let tokens = state
        .tokens
        .cipher()
        .seal_grant(&grant, &account_id)
        .map_err(ApiError::internal)?;
    Ok(PendingConnection {
        account_id,
        open_id: grant.open_id,
        scopes: scopes.into_vec(),
        tokens,
        display_name: user.display_name,
        avatar_url: user.avatar_url,
        username,
    })
}

/// The claimed connection becomes the workspace's account of that TikTok user: a new one under the id its tokens
/// are bound to, or the one it had.
async fn attach(
    state: &AppState,
    workspace: &WorkspaceId,
    connection: &PendingConnection,
    now: DateTime<Utc>,
) -> Result<Connected, ApiError> {
    let existing = state
        .stores
        .accounts
        .find_account_by_open_id(workspace, &connection.open_id)
        .await?;
    let connected = match existing {
        Some(account) => {
            // Another connection of the same creator was claimed since this one was authorized.
            let tokens = if account.id == connection.account_id {
                connection.tokens.clone()
            } else {
                rebound(state, &connection.tokens, &connection.account_id, &account.id)?
            };
            Connected {
                account: update_account(state, account, |account, now| {
                    apply(connection, tokens.clone(), account, now);
                    true
                })
                .await?
                .account,
                created: false,
            }
        }
        None => {
            let mut account = Account {
                id: connection.account_id.clone(),
                ..Account::new_connected(workspace.clone(), connection.open_id.clone(), now)
            };
            apply(connection, connection.tokens.clone(), &mut account, now);
            state.stores.accounts.create_account(&account).await?;
            Connected { account, created: true }
        }
    };
    tracing::info!(
        account_id = %connected.account.id,
        workspace_id = %workspace,
        reconnected = !connected.created,
        "TikTok account connected"
    );
    Ok(connected)
}

/// Tokens sealed for `from` sealed again for `to`.
fn rebound(
    state: &AppState,
    tokens: &SealedTokens,
    from: &AccountId,
    to: &AccountId,
) -> Result<SealedTokens, ApiError> {
    let cipher = state.tokens.cipher();
    let reseal = |sealed: &str, from: TokenBinding<'_>, to: TokenBinding<'_>| {
        cipher
            .open(sealed, &from)
            .and_then(|plain| cipher.seal(&plain, &to))
            .map_err(ApiError::internal)
    };
    Ok(SealedTokens {
        access_token: reseal(
            &tokens.access_token,
            TokenBinding::access(from),
            TokenBinding::access(to),
        )?,
        refresh_token: reseal(
            &tokens.refresh_token,
            TokenBinding::refresh(from),
            TokenBinding::refresh(to),
        )?,
        ..tokens.clone()
    })
}

/// A reconnect replaces the tokens with this grant's, which always holds a refresh token: the client refuses token
/// answers with an empty one, so a stored refresh token is never overwritten by nothing.
fn apply(connection: &PendingConnection, tokens: SealedTokens, account: &mut Account, now: DateTime<Utc>) {
    account.status = AccountStatus::Connected;
    account.scopes.clone_from(&connection.scopes);
    account.tokens = Some(tokens);
    account.refresh_lock_until = None;
    if !connection.display_name.is_empty() {
        account.display_name.clone_from(&connection.display_name);
    }
    if let Some(avatar) = connection.avatar_url.as_ref().filter(|url| !url.is_empty()) {
        account.avatar_url = Some(avatar.clone());
    }
    if connection.username.is_some() {
        account.username.clone_from(&connection.username);
    }
    // TikTok's consent page for this connection carries its Content Posting API terms: accepting them is what
    // authorizing means, so the time is recorded with each connection.
    account.terms_accepted_at = Some(now);
    account.connected_at = now;
    account.updated_at = now;
}

fn require_scopes(granted: &Scopes) -> Result<(), ApiError> {
    let missing = granted.missing(&REQUIRED_SCOPES);
    if missing.is_empty() {
        return Ok(());
    }
    Err(ApiError::BadRequest {
        code: "missing_scopes",
        message: format!(
            "the TikTok user did not grant {}; Postato needs {} to post, so nothing was connected. Connect again and \
             keep every permission ticked",
            missing.join(", "),
            REQUIRED_SCOPES.join(", ")
        ),
    })
}

/// TikTok refusing the code or the new token is the connection's end (the code is single-use): a 400 saying so.
/// Its outages and rate limits keep their usual meaning.
fn connect_refused(error: TikTokError) -> ApiError {
    match error.class() {
        ErrorClass::Reauthorize | ErrorClass::Permanent => ApiError::BadRequest {
            code: "tiktok_refused",
            message: format!(
                "TikTok refused to complete the connection ({}); start again with POST /v1/accounts/tiktok/connect",
                error.code()
            ),
        },
        _ => error.into(),
    }
}

fn echoed(text: &str) -> String {
    text.chars().take(ECHOED_TEXT_MAX).collect()
}

/// `303 See Other` to `base` with `params` added to its query.
fn redirect(base: &str, params: &[(&str, &str)]) -> Response {
    let mut url = match url::Url::parse(base) {
        Ok(url) => url,
        // CONNECT_SUCCESS_URL is checked at start, so this is a bug, not bad input.
        Err(error) => return ApiError::internal(error).into_response(),
    };
    url.query_pairs_mut().extend_pairs(params);
    (StatusCode::SEE_OTHER, [(header::LOCATION, url.to_string())]).into_response()
}
