//! `tiktok-sandbox`: the sandbox as a standalone server (default `127.0.0.1:8081`).
//!
//! Configuration, flags first, then the environment:
//!
//! | flag | variable | default |
//! |---|---|---|
//! | `--addr` | `SANDBOX_ADDR` | `127.0.0.1:8081` |
//! | `--client-key` | `SANDBOX_CLIENT_KEY` | `sandbox-client-key` |
//! | `--client-secret` | `SANDBOX_CLIENT_SECRET` | `sandbox-client-secret` |
//! | `--redirect-uri` (repeatable) | `SANDBOX_REDIRECT_URIS` (comma-separated) | any |
//! | `--verified-prefix` (repeatable) | `SANDBOX_VERIFIED_PREFIXES` (comma-separated) | none |
//! | `--webhook-url` | `SANDBOX_WEBHOOK_URL` | none |
//! | `--unaudited` | `SANDBOX_APP_AUDITED=false` | audited |
//! | `--processing-delay-ms` | `SANDBOX_PROCESSING_DELAY_MS` | 300 |
//! | `--accounts` | `SANDBOX_ACCOUNTS` | 1 public account |

use std::net::SocketAddr;

use anyhow::{bail, Context};
use tiktok_sandbox::{AccountSpec, SandboxConfig};

fn env_list(name: &str) -> Vec<String> {
    std::env::var(name)
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn config_from(args: Vec<String>) -> anyhow::Result<SandboxConfig> {
    let mut config = SandboxConfig {
        addr: SocketAddr::from(([127, 0, 0, 1], 8081)),
        ..SandboxConfig::default()
    };
    let settings = &mut config.settings;
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    if let Some(addr) = env("SANDBOX_ADDR") {
        config.addr = addr.parse().context("SANDBOX_ADDR must be host:port")?;
    }
    if let Some(key) = env("SANDBOX_CLIENT_KEY") {
        settings.client_key = key;
    }
    if let Some(secret) = env("SANDBOX_CLIENT_SECRET") {
        settings.client_secret = secret;
    }
    settings.redirect_uris = env_list("SANDBOX_REDIRECT_URIS");
    settings.verified_url_prefixes = env_list("SANDBOX_VERIFIED_PREFIXES");
    settings.webhook_url = env("SANDBOX_WEBHOOK_URL");
    if let Some(audited) = env("SANDBOX_APP_AUDITED") {
        settings.app_audited = audited.parse().context("SANDBOX_APP_AUDITED must be true or false")?;
    }
    if let Some(delay) = env("SANDBOX_PROCESSING_DELAY_MS") {
        settings.processing_delay_ms = delay.parse().context("SANDBOX_PROCESSING_DELAY_MS must be a number")?;
    }
    let mut accounts: usize = env("SANDBOX_ACCOUNTS")
        .map(|v| v.parse())
        .transpose()
        .context("SANDBOX_ACCOUNTS must be a number")?
        .unwrap_or(1);

    let mut args = args.into_iter();
    while let Some(flag) = args.next() {
        let mut value = || args.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--addr" => config.addr = value()?.parse().context("--addr must be host:port")?,
            "--client-key" => settings.client_key = value()?,
            "--client-secret" => settings.client_secret = value()?,
            "--redirect-uri" => settings.redirect_uris.push(value()?),
            "--verified-prefix" => settings.verified_url_prefixes.push(value()?),
            "--webhook-url" => settings.webhook_url = Some(value()?),
            "--unaudited" => settings.app_audited = false,
            "--processing-delay-ms" => {
                settings.processing_delay_ms = value()?.parse().context("--processing-delay-ms")?
            }
            "--accounts" => accounts = value()?.parse().context("--accounts must be a number")?,
            "--help" | "-h" => {
                println!("tiktok-sandbox: see the flags and variables in infra/tiktok-sandbox/README.md");
                std::process::exit(0);
            }
            other => bail!("unknown flag {other}"),
        }
    }
    config.accounts = (0..accounts).map(|_| AccountSpec::public()).collect();
    Ok(config)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let config = config_from(std::env::args().skip(1).collect())?;
    let handle = tiktok_sandbox::spawn(config)
        .await
        .context("binding the sandbox address")?;
    println!("TikTok sandbox on {}", handle.base_url());
    println!("  TIKTOK_API_BASE_URL={0} TIKTOK_AUTH_BASE_URL={0}", handle.base_url());
    let settings = handle.settings();
    println!(
        "  TIKTOK_CLIENT_KEY={} (secret: set TIKTOK_CLIENT_SECRET to the sandbox's)",
        settings.client_key
    );
    tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
    handle.shutdown().await;
    Ok(())
}
