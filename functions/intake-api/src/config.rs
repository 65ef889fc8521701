//! The intake function's configuration.

use chrono::Duration;
use shared::{
    adapters::aws::AwsResources,
    config::{ConfigError, EnvVars},
};

/// Behaviour settings shared by the Lambda and the local runner.
#[derive(Debug, Clone)]
pub struct IntakeSettings {
    /// `TIKTOK_APP_AUDITED`: until TikTok audits the app, only private posts are possible.
    pub app_audited: bool,
    /// How long an upload URL stays valid (S3 presigned PUTs: at most 15 min).
    pub upload_url_ttl: Duration,
}

impl Default for IntakeSettings {
    fn default() -> Self {
        Self {
            app_audited: false,
            upload_url_ttl: Duration::minutes(15),
        }
    }
}

impl IntakeSettings {
    pub fn from_env(env: &EnvVars) -> Result<Self, ConfigError> {
        let minutes = env.parsed_or::<i64>("UPLOAD_URL_TTL_MINUTES", 15)?;
        if !(1..=15).contains(&minutes) {
            return Err(ConfigError::Invalid {
                name: "UPLOAD_URL_TTL_MINUTES",
                reason: "must be 1 to 15".into(),
            });
        }
        Ok(Self {
            app_audited: env.flag("TIKTOK_APP_AUDITED", false)?,
            upload_url_ttl: Duration::minutes(minutes),
        })
    }
}

/// Everything the intake Lambda needs at start; a missing variable fails the cold start naming it.
#[derive(Debug, Clone)]
pub struct IntakeConfig {
    pub resources: AwsResources,
    pub settings: IntakeSettings,
}

impl IntakeConfig {
    pub fn from_env(env: &EnvVars) -> Result<Self, ConfigError> {
        Ok(Self {
            resources: AwsResources::from_env(env)?,
            settings: IntakeSettings::from_env(env)?,
        })
    }
}
