//! The runner's configuration: embedded defaults, every one overridable by environment or flag, and printed at
//! start.

use std::{net::SocketAddr, path::PathBuf};

use anyhow::{bail, Context};
use shared::config::EnvVars;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite file, media folder and JSON-lines events under the data dir.
    Embedded,
    /// DynamoDB, S3 and EventBridge from the standard AWS environment (moto or a real account).
    Aws,
}

#[derive(Debug, Clone)]
pub struct DevConfig {
    /// `POSTATO_HTTP_ADDR` (default 127.0.0.1:8080). Port 0 picks a free one.
    pub http_addr: SocketAddr,
    /// `POSTATO_DATA_DIR` (default `.postato`): SQLite, media, events, generated keys.
    pub data_dir: PathBuf,
    /// `POSTATO_DEV_API_KEY`: the dev workspace's key; generated once and kept in the data dir when unset.
    pub dev_api_key: Option<String>,
    /// `POSTATO_SANDBOX_ADDR` (default 127.0.0.1:8081): where the TikTok sandbox listens.
    pub sandbox_addr: SocketAddr,
    pub backend: Backend,
    /// `--create-resources` with `--backend aws`: create the table, bucket and bus when missing (for moto).
    pub create_aws_resources: bool,
    /// `TIKTOK_APP_AUDITED` (default false).
    pub app_audited: bool,
    /// How often the dispatcher looks for due posts (`POSTATO_DISPATCH_INTERVAL_MS`, default 1000).
    pub dispatch_interval: std::time::Duration,
    pub env: EnvVars,
}

impl DevConfig {
    pub fn from_env(env: EnvVars) -> anyhow::Result<Self> {
        Ok(Self {
            http_addr: env
                .or_default("POSTATO_HTTP_ADDR", "127.0.0.1:8080")
                .parse()
                .context("POSTATO_HTTP_ADDR must be host:port")?,
            data_dir: PathBuf::from(env.or_default("POSTATO_DATA_DIR", ".postato")),
            dev_api_key: env.optional("POSTATO_DEV_API_KEY"),
            sandbox_addr: env
                .or_default("POSTATO_SANDBOX_ADDR", "127.0.0.1:8081")
                .parse()
                .context("POSTATO_SANDBOX_ADDR must be host:port")?,
            backend: Backend::Embedded,
            create_aws_resources: false,
            app_audited: env.flag("TIKTOK_APP_AUDITED", false)?,
            dispatch_interval: std::time::Duration::from_millis(
                env.parsed_or::<u64>("POSTATO_DISPATCH_INTERVAL_MS", 1000)?.max(50),
            ),
            env,
        })
    }

    /// Applies `--backend embedded|aws` and `--create-resources`.
    pub fn with_flags(mut self, args: &[String]) -> anyhow::Result<Self> {
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--backend" => match args.next().map(String::as_str) {
                    Some("embedded") => self.backend = Backend::Embedded,
                    Some("aws") => self.backend = Backend::Aws,
                    other => bail!("--backend takes embedded or aws, not {}", other.unwrap_or("nothing")),
                },
                "--create-resources" => self.create_aws_resources = true,
                other => bail!("unknown argument {other}; see --help"),
            }
        }
        Ok(self)
    }
}
