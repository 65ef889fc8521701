//! Connecting TikTok accounts end to end through the local runner and its sandbox: the runner's own dev account at
//! start, a second creator driven here as a browser would (connect, TikTok's authorize redirect, the callback), the
//! accounts listed with their scopes, and TikTok's signed `authorization.removed` webhook disconnecting one. Every
//! log line the system writes (at trace level), every answer of the API, the banner's settings, the event journal
//! and the database files are searched for the codes, tokens, client secret and token key of the flow: none may
//! appear (the database holds tokens only sealed).

use std::{
    io::Write,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use anyhow::{bail, Context};
use postato_dev::DevConfig;
use reqwest::{header, redirect, Method, StatusCode};
use serde_json::Value;
use shared::{
    config::EnvVars,
    domain::AccountStatus,
    ids::AccountId,
    tiktok::{ExposeSecret, SecretString, TokenBinding, TokenCipher},
};
use tiktok_sandbox::{AccountSpec, Endpoint};
use tracing_subscriber::{fmt::MakeWriter, EnvFilter};

const CLIENT_SECRET: &str = "sandbox-client-secret";

/// Every log line, kept in memory for the search.
#[derive(Clone, Default)]
struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl CapturedLogs {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(PoisonError::into_inner)).into_owned()
    }
}

impl Write for CapturedLogs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for CapturedLogs {
    type Writer = CapturedLogs;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// The API's answers of the flow, as a client received them (status, headers, body).
#[derive(Default)]
struct Transcript(Vec<String>);

impl Transcript {
    async fn record(&mut self, what: &str, response: reqwest::Response) -> anyhow::Result<(StatusCode, Value)> {
        let status = response.status();
        let headers = format!("{:?}", response.headers());
        let body = response.text().await?;
        self.0.push(format!("{what}: {status} {headers}\n{body}"));
        Ok((status, serde_json::from_str(&body).unwrap_or(Value::Null)))
    }
}

fn location(response: &reqwest::Response) -> anyhow::Result<String> {
    Ok(response
        .headers()
        .get(header::LOCATION)
        .context("a redirect")?
        .to_str()?
        .to_owned())
}

fn query_value(url: &str, name: &str) -> anyhow::Result<String> {
    url::Url::parse(url)?
        .query_pairs()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
        .with_context(|| format!("{name} in {url}"))
}

/// Tokens look like TikTok's: `act.` / `rft.` and hex. Any such string is a leak, whichever flow it came from.
fn token_like(text: &str) -> Option<String> {
    ["act.", "rft."].iter().find_map(|prefix| {
        text.match_indices(prefix).find_map(|(at, _)| {
            let rest = &text[at + prefix.len()..];
            let hex = rest.chars().take_while(char::is_ascii_hexdigit).count();
            (hex >= 16).then(|| text[at..at + prefix.len() + hex].to_owned())
        })
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_accounts_connect_through_the_runner_should_list_them_with_their_scopes_and_leak_no_secret(
) -> anyhow::Result<()> {
    let logs = CapturedLogs::default();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::new("trace"))
        .with_writer(logs.clone())
        .with_ansi(false)
        .try_init()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let data = tempfile::tempdir()?;
    let config = DevConfig::from_env(EnvVars::from_pairs([
        ("POSTATO_HTTP_ADDR", "127.0.0.1:0".to_owned()),
        ("POSTATO_SANDBOX_ADDR", "127.0.0.1:0".to_owned()),
        ("POSTATO_DATA_DIR", data.path().display().to_string()),
    ]))?;

    let system = postato_dev::start(config).await?;
    let sandbox = system.sandbox.as_ref().context("the runner starts the sandbox")?;
    let base = system.base_url.clone();
    let key = system.api_key.clone();
    let mut transcript = Transcript::default();
    let browser = reqwest::Client::builder().redirect(redirect::Policy::none()).build()?;
    let api = |method: Method, path: &str| browser.request(method, format!("{base}{path}")).bearer_auth(&key);

    // The runner connected its dev account through OAuth as it started.
    let dev_account = system.account_id.clone().context("the dev account is connected")?;
    let exchanges = sandbox.requests_to(Endpoint::Token);
    assert_eq!(exchanges.len(), 1, "the dev account's code exchange");
    assert_eq!(exchanges[0].body_str("grant_type"), Some("authorization_code"));
    assert_eq!(sandbox.requests_to(Endpoint::Authorize).len(), 1);

    // A second creator connects, with this test as the browser.
    let second = sandbox.create_account(AccountSpec {
        display_name: "Second Creator".into(),
        username: "second.creator".into(),
        ..AccountSpec::private()
    });
    sandbox.set_authorizer(Some(&second));
    let (status, started) = transcript
        .record(
            "connect",
            api(Method::POST, "/v1/accounts/tiktok/connect").send().await?,
        )
        .await?;
    assert_eq!(status, StatusCode::OK);
    let authorize_url = started["authorizeUrl"].as_str().context("authorizeUrl")?;
    assert_eq!(
        query_value(authorize_url, "disable_auto_auth")?,
        "1",
        "a further account"
    );
    let consent = browser.get(authorize_url).send().await?;
    assert_eq!(consent.status(), StatusCode::FOUND, "TikTok's redirect back");
    let callback = location(&consent)?;
    assert!(
        callback.starts_with(&format!("{base}/v1/accounts/tiktok/callback?")),
        "{callback}"
    );
    let code = query_value(&callback, "code")?;
    let (status, authorized) = transcript
        .record("callback", browser.get(&callback).send().await?)
        .await?;
    assert_eq!(status, StatusCode::OK, "{authorized}");
    let connection = authorized["connectionId"].as_str().context("a connection to claim")?;
    let (status, connected) = transcript
        .record(
            "claim",
            api(Method::POST, &format!("/v1/accounts/tiktok/connections/{connection}"))
                .send()
                .await?,
        )
        .await?;
    assert_eq!(status, StatusCode::CREATED, "{connected}");
    let second_account: AccountId = connected["id"].as_str().context("an account id")?.parse()?;

    let (status, listed) = transcript
        .record("list", api(Method::GET, "/v1/accounts").send().await?)
        .await?;
    assert_eq!(status, StatusCode::OK);
    let accounts = listed["data"].as_array().context("a list")?;
    assert_eq!(accounts.len(), 2);
    for account in accounts {
        assert_eq!(account["status"], "connected");
        assert_eq!(
            account["scopes"],
            serde_json::json!(["user.info.basic", "video.publish", "video.upload"]),
            "{account}"
        );
    }
    assert_eq!(accounts[0]["id"], dev_account.as_str());
    assert_eq!(accounts[1]["id"], second_account.as_str());
    assert_eq!(accounts[1]["username"], "second.creator");
    let (status, info) = transcript
        .record(
            "creator-info",
            api(Method::GET, &format!("/v1/accounts/{second_account}/creator-info"))
                .send()
                .await?,
        )
        .await?;
    assert_eq!(status, StatusCode::OK, "{info}");
    assert_eq!(
        info["privacyOptions"],
        serde_json::json!(["followersOnly", "friends", "private"])
    );

    // What the flow handed out, to look for: the tokens as stored (opened with the runner's key), before anything
    // below forgets them.
    let secrets: Value = serde_json::from_str(&std::fs::read_to_string(data.path().join("secrets.json"))?)?;
    let token_key = secrets["tokenKey"].as_str().context("the token key")?.to_owned();
    let cipher = TokenCipher::from_base64_key(&SecretString::from(token_key.clone()))?;
    let mut forbidden = vec![code, CLIENT_SECRET.to_owned(), token_key];
    for id in [&dev_account, &second_account] {
        let account = system.stores.accounts.get_account(id).await?.context("stored")?;
        let tokens = account.tokens.context("tokens are stored")?;
        for (sealed, binding) in [
            (&tokens.access_token, TokenBinding::access(id)),
            (&tokens.refresh_token, TokenBinding::refresh(id)),
        ] {
            forbidden.push(cipher.open(sealed, &binding)?.expose_secret().to_owned());
        }
    }

    // The user removes the app at TikTok: TikTok's signed webhook reaches the runner, which disconnects the account.
    sandbox.remove_authorization(&second, 1);
    let mut disconnected = false;
    for _ in 0..100 {
        let account = system.stores.accounts.get_account(&second_account).await?;
        if account.is_some_and(|a| a.status == AccountStatus::Disconnected && a.tokens.is_none()) {
            disconnected = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        disconnected,
        "the authorization.removed webhook disconnected the account"
    );
    let delivered = sandbox.webhook_deliveries();
    assert!(
        delivered
            .iter()
            .any(|hook| hook.event == "authorization.removed" && hook.status == Some(200)),
        "{delivered:?}"
    );
    let (status, shown) = transcript
        .record(
            "account",
            api(Method::GET, &format!("/v1/accounts/{second_account}"))
                .send()
                .await?,
        )
        .await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(shown["status"], "disconnected");

    let settings: Vec<String> = system
        .tiktok_settings
        .iter()
        .map(|(name, value)| format!("{name} {value}"))
        .collect();
    system.shutdown().await;

    let mut stored = Vec::new();
    for file in ["postato.sqlite3", "postato.sqlite3-wal"] {
        stored.extend(std::fs::read(data.path().join(file)).unwrap_or_default());
    }
    let searched = [
        ("the logs", logs.text()),
        ("the API's answers", transcript.0.join("\n")),
        ("the banner's settings", settings.join("\n")),
        (
            "the event journal",
            std::fs::read_to_string(data.path().join("events.jsonl")).unwrap_or_default(),
        ),
        ("the database", String::from_utf8_lossy(&stored).into_owned()),
    ];
    assert!(
        searched[0].1.contains("TikTok account connected"),
        "the logs were captured"
    );
    for (place, text) in &searched {
        for secret in &forbidden {
            if text.contains(secret.as_str()) {
                bail!(
                    "a secret of the flow ({}…) appears in {place}",
                    &secret[..4.min(secret.len())]
                );
            }
        }
        if let Some(token) = token_like(text) {
            bail!(
                "something shaped like a TikTok token ({}…) appears in {place}",
                &token[..8]
            );
        }
    }
    Ok(())
}
