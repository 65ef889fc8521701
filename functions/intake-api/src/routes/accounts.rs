//! `/v1/accounts`: the workspace's connected TikTok accounts.

use axum::{extract::State, Json};

use crate::{
    error::{ApiError, ErrorBody},
    extract::Caller,
    views::{AccountList, AccountView},
    AppState,
};

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
