//! TikTok for the runner: its sandbox by default (started here, with the runner's callback registered and its
//! webhooks pointed back at the runner), or a real TikTok app when `TIKTOK_API_BASE_URL` is set. The dev account is
//! connected through the real OAuth flow against the sandbox at every start: the sandbox forgets its tokens when it
//! stops, so each start reconnects the same TikTok user, which updates the same account record.

use anyhow::{bail, Context};
use reqwest::{header, redirect, StatusCode};
use serde_json::Value;
use shared::{
    config::EnvVars,
    ids::AccountId,
    tiktok::{SecretString, TikTokConfig, TikTokTimeouts, UploadHosts, TOKEN_KEY_VARIABLE},
};
use tiktok_sandbox::{AccountSpec, SandboxConfig, SandboxHandle};

use crate::config::DevConfig;

/// The dev creator's TikTok user id in the sandbox. Fixed, so that every start's connection is a reconnect of the
/// same account (the seeded record of earlier runner versions carried this id too, and is upgraded in place).
pub const DEV_OPEN_ID: &str = "sandbox-dev-creator";

/// The TikTok side of a running system.
pub struct TikTok {
    pub config: TikTokConfig,
    /// Present unless a real TikTok app is configured.
    pub sandbox: Option<SandboxHandle>,
    /// What the banner prints: each TikTok setting with its value and where it came from (never a secret's value).
    pub shown: Vec<(&'static str, String)>,
}

/// The real TikTok app from `TIKTOK_*` when `TIKTOK_API_BASE_URL` is set, else the sandbox on `sandbox_addr`.
pub async fn start(config: &DevConfig, base_url: &str) -> anyhow::Result<TikTok> {
    let env = &config.env;
    let token_key_origin = match env.optional(TOKEN_KEY_VARIABLE) {
        Some(_) => format!("from {TOKEN_KEY_VARIABLE}"),
        None => format!(
            "generated once, kept in {}",
            config.data_dir.join("secrets.json").display()
        ),
    };
    if env.optional("TIKTOK_API_BASE_URL").is_some() {
        let tiktok = TikTokConfig::from_env(env).context("a real TikTok app needs TIKTOK_* (see the README)")?;
        let shown = vec![
            (
                "TikTok",
                format!("{} (a real app: TIKTOK_API_BASE_URL is set)", tiktok.api_base_url),
            ),
            ("TIKTOK_AUTH_BASE_URL", tiktok.auth_base_url.clone()),
            ("TIKTOK_REDIRECT_URI", tiktok.redirect_uri.clone()),
            ("TIKTOK_CLIENT_KEY", tiktok.client_key.clone()),
            ("TIKTOK_CLIENT_SECRET", "from the environment (not shown)".into()),
            ("TIKTOK_APP_AUDITED", tiktok.app_audited.to_string()),
            ("TIKTOK_UPLOAD_HOSTS", tiktok.upload_hosts.to_string()),
            (TOKEN_KEY_VARIABLE, token_key_origin),
        ];
        return Ok(TikTok {
            config: tiktok,
            sandbox: None,
            shown,
        });
    }

    let defaults = tiktok_sandbox::Settings::default();
    let callback = format!("{base_url}/v1/accounts/tiktok/callback");
    let (client_key, key_origin) = setting(env, "TIKTOK_CLIENT_KEY", &defaults.client_key, "the sandbox's");
    let (client_secret, secret_origin) = setting(env, "TIKTOK_CLIENT_SECRET", &defaults.client_secret, "the sandbox's");
    let (redirect_uri, redirect_origin) = setting(env, "TIKTOK_REDIRECT_URI", &callback, "this runner's callback");
    let settings = tiktok_sandbox::Settings {
        client_key: client_key.clone(),
        client_secret: client_secret.clone(),
        redirect_uris: vec![redirect_uri.clone()],
        // An unaudited app may only post privately from private accounts: the sandbox enforces what TikTok would.
        app_audited: config.app_audited,
        webhook_url: Some(format!("{base_url}/v1/webhooks/tiktok")),
        // The runner serves media here; TikTok pulls only from verified prefixes.
        verified_url_prefixes: vec![format!("{base_url}/local/media/")],
        ..defaults
    };
    let sandbox = tiktok_sandbox::spawn(SandboxConfig {
        addr: config.sandbox_addr,
        settings,
        ..SandboxConfig::default()
    })
    .await
    .with_context(|| {
        format!(
            "cannot start the TikTok sandbox on {} (set POSTATO_SANDBOX_ADDR, or TIKTOK_API_BASE_URL for a real app)",
            config.sandbox_addr
        )
    })?;
    let tiktok = TikTokConfig {
        api_base_url: sandbox.base_url().to_owned(),
        auth_base_url: sandbox.base_url().to_owned(),
        client_key: client_key.clone(),
        client_secret: SecretString::from(client_secret),
        redirect_uri: redirect_uri.clone(),
        app_audited: config.app_audited,
        timeouts: TikTokTimeouts::default(),
        upload_hosts: UploadHosts::host_of(sandbox.base_url()).context("the sandbox's base URL has no host")?,
    };
    let shown = vec![
        (
            "TikTok",
            format!(
                "sandbox at {} (set TIKTOK_API_BASE_URL for a real app)",
                sandbox.base_url()
            ),
        ),
        ("TIKTOK_REDIRECT_URI", format!("{redirect_uri} ({redirect_origin})")),
        ("TIKTOK_CLIENT_KEY", format!("{client_key} ({key_origin})")),
        ("TIKTOK_CLIENT_SECRET", format!("{secret_origin} (not shown)")),
        ("TIKTOK_APP_AUDITED", config.app_audited.to_string()),
        (TOKEN_KEY_VARIABLE, token_key_origin),
    ];
    Ok(TikTok {
        config: tiktok,
        sandbox: Some(sandbox),
        shown,
    })
}

/// A variable's value, or the default, with where it came from.
fn setting(env: &EnvVars, name: &'static str, default: &str, default_origin: &str) -> (String, String) {
    match env.optional(name) {
        Some(value) => (value, format!("from {name}")),
        None => (default.to_owned(), format!("default: {default_origin}")),
    }
}

/// The dev creator: public with TikTok's usual 10-minute limit, except that an unaudited app can only post from a
/// private account, so the creator follows the app's audit and private posts work end to end.
pub fn dev_creator(app_audited: bool) -> AccountSpec {
    AccountSpec {
        open_id: DEV_OPEN_ID.into(),
        display_name: "Sandbox Creator".into(),
        username: "sandbox.creator".into(),
        private: !app_audited,
        max_video_post_duration_sec: 600,
        ..AccountSpec::public()
    }
}

/// Connects the dev creator to the dev workspace as a user would: `POST /v1/accounts/tiktok/connect`, TikTok's
/// authorize page (the sandbox approves as the dev creator), the callback, then the workspace's claim of the
/// connection. Returns the account's id.
pub async fn connect_dev_account(sandbox: &SandboxHandle, base_url: &str, api_key: &str) -> anyhow::Result<AccountId> {
    sandbox.set_authorizer(Some(DEV_OPEN_ID));
    // Like a browser that shows each redirect: the callback must be reached through TikTok's redirect.
    let browser = reqwest::Client::builder()
        .redirect(redirect::Policy::none())
        .build()
        .context("cannot build an HTTP client")?;
    let started = browser
        .post(format!("{base_url}/v1/accounts/tiktok/connect"))
        .bearer_auth(api_key)
        .send()
        .await
        .context("POST /v1/accounts/tiktok/connect failed")?;
    let started = json_of(started, "POST /v1/accounts/tiktok/connect").await?;
    let authorize_url = started["authorizeUrl"]
        .as_str()
        .context("the connect answer has no authorizeUrl")?;
    let consent = browser
        .get(authorize_url)
        .send()
        .await
        .context("the sandbox's authorize page did not answer")?;
    let callback = location(&consent).context("the sandbox did not redirect back to the callback")?;
    let authorized = browser
        .get(callback)
        .send()
        .await
        .context("the callback did not answer")?;
    let connection = if authorized.status() == StatusCode::SEE_OTHER {
        // CONNECT_SUCCESS_URL is set: the connection to claim travels in the redirect.
        let target = location(&authorized).context("the callback redirected nowhere")?;
        let url = reqwest::Url::parse(&target).context("the callback redirected to no URL")?;
        let connection = url
            .query_pairs()
            .find(|(name, _)| name == "connection")
            .map(|(_, id)| id.into_owned());
        match connection {
            Some(connection) => connection,
            None => bail!("the connection failed: {}", url.query().unwrap_or_default()),
        }
    } else {
        let pending = json_of(authorized, "the callback").await?;
        pending["connectionId"]
            .as_str()
            .context("the callback answered no connection id")?
            .to_owned()
    };
    // The workspace that started the connection claims it, as the composer does.
    let claimed = browser
        .post(format!("{base_url}/v1/accounts/tiktok/connections/{connection}"))
        .bearer_auth(api_key)
        .send()
        .await
        .context("the claim of the connection did not answer")?;
    let account = json_of(claimed, "POST /v1/accounts/tiktok/connections/{id}").await?;
    account["id"]
        .as_str()
        .context("the claim answered no account id")?
        .parse()
        .context("the claim answered an invalid account id")
}

fn location(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get(header::LOCATION)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}

/// The body of a successful answer; otherwise an error with the API's error message.
async fn json_of(response: reqwest::Response, what: &str) -> anyhow::Result<Value> {
    let status = response.status();
    let body: Value = response.json().await.unwrap_or_default();
    if !status.is_success() {
        bail!("{what} answered {status}: {}", body["error"]["message"]);
    }
    Ok(body)
}
