//! The intake function's configuration.

use std::sync::Arc;

use chrono::Duration;
use shared::{
    adapters::aws::AwsResources,
    config::{ConfigError, EnvVars},
    ports::MediaJobQueue,
    tiktok::{TikTokConfig, TokenCipher},
};

/// Behaviour settings shared by the Lambda and the local runner.
#[derive(Debug, Clone)]
pub struct IntakeSettings {
    /// `TIKTOK_APP_AUDITED`: until TikTok audits the app, only private posts are possible.
    pub app_audited: bool,
    /// How long an upload URL stays valid (S3 presigned PUTs: at most 15 min).
    pub upload_url_ttl: Duration,
    /// `CONNECT_SUCCESS_URL`: where the OAuth callback sends the browser afterwards, with `?accountId=` (or `?error=`
    /// and `errorDescription=`). Unset, the callback answers JSON.
    pub connect_success_url: Option<String>,
    /// Where a media's `sourceUrl` import is handed to the media worker (issue 13 §2): the SQS queue in AWS
    /// (`MEDIA_JOBS_QUEUE_URL`), the in-process queue in the local runner. Without one `sourceUrl` is refused.
    pub media_jobs: Option<MediaJobs>,
}

/// The media worker's queue, as the settings hold it.
#[derive(Clone)]
pub struct MediaJobs(pub Arc<dyn MediaJobQueue>);

impl std::fmt::Debug for MediaJobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MediaJobs")
    }
}

impl Default for IntakeSettings {
    fn default() -> Self {
        Self {
            app_audited: false,
            upload_url_ttl: Duration::minutes(15),
            connect_success_url: None,
            media_jobs: None,
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
            connect_success_url: env.optional_url("CONNECT_SUCCESS_URL")?,
            media_jobs: None,
        })
    }
}

/// Everything the intake Lambda needs at start; a missing variable fails the cold start naming it.
#[derive(Debug, Clone)]
pub struct IntakeConfig {
    pub resources: AwsResources,
    /// `TIMER_QUEUE_URL`: the publisher's timer queue, to arm posts due before the next schedule tick.
    pub timer_queue_url: String,
    /// `MEDIA_JOBS_QUEUE_URL`: the media worker's queue, where `sourceUrl` imports go.
    pub media_jobs_queue_url: String,
    pub settings: IntakeSettings,
    /// `TIKTOK_*`: the app's credentials (the client secret also verifies webhooks) and its redirect URI.
    pub tiktok: TikTokConfig,
    /// `TOKEN_ENCRYPTION_KEY`: seals TikTok tokens at rest.
    pub token_cipher: TokenCipher,
}

impl IntakeConfig {
    pub fn from_env(env: &EnvVars) -> Result<Self, ConfigError> {
        Ok(Self {
            resources: AwsResources::from_env(env)?,
            timer_queue_url: env.required("TIMER_QUEUE_URL")?,
            media_jobs_queue_url: env.required("MEDIA_JOBS_QUEUE_URL")?,
            settings: IntakeSettings::from_env(env)?,
            tiktok: TikTokConfig::from_env(env)?,
            token_cipher: TokenCipher::from_env(env)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complete_env() -> Vec<(&'static str, String)> {
        vec![
            ("TABLE_NAME", "postato".into()),
            ("MEDIA_BUCKET", "media".into()),
            ("EVENT_BUS_NAME", "bus".into()),
            ("TIMER_QUEUE_URL", "http://sqs.local/timer".into()),
            ("MEDIA_JOBS_QUEUE_URL", "http://sqs.local/jobs".into()),
            ("TIKTOK_CLIENT_KEY", "client-key".into()),
            ("TIKTOK_CLIENT_SECRET", "client-secret-value".into()),
            (
                "TIKTOK_REDIRECT_URI",
                "https://api.example.com/v1/accounts/tiktok/callback".into(),
            ),
            (
                "TOKEN_ENCRYPTION_KEY",
                shared::tiktok::ExposeSecret::expose_secret(&TokenCipher::generate_base64_key()).to_owned(),
            ),
        ]
    }

    #[test]
    fn when_everything_is_set_should_read_tiktok_and_the_token_key_and_hide_the_secrets() {
        let mut pairs = complete_env();
        pairs.push(("CONNECT_SUCCESS_URL", "https://app.example.com/connected/".into()));
        let config = IntakeConfig::from_env(&EnvVars::from_pairs(pairs)).expect("complete");
        assert_eq!(
            config.settings.connect_success_url.as_deref(),
            Some("https://app.example.com/connected")
        );
        assert_eq!(config.tiktok.client_key, "client-key");
        let shown = format!("{config:?}");
        assert!(!shown.contains("client-secret-value"), "{shown}");
    }

    #[test]
    fn when_a_tiktok_variable_or_the_token_key_is_missing_should_name_it() {
        for missing in [
            "TIKTOK_CLIENT_SECRET",
            "TIKTOK_REDIRECT_URI",
            "TOKEN_ENCRYPTION_KEY",
            "MEDIA_JOBS_QUEUE_URL",
        ] {
            let env = EnvVars::from_pairs(complete_env().into_iter().filter(|(name, _)| *name != missing));
            assert_eq!(IntakeConfig::from_env(&env).err(), Some(ConfigError::Missing(missing)));
        }
        let mut pairs = complete_env();
        pairs.push(("CONNECT_SUCCESS_URL", "not a url".into()));
        assert!(matches!(
            IntakeConfig::from_env(&EnvVars::from_pairs(pairs)).err(),
            Some(ConfigError::Invalid {
                name: "CONNECT_SUCCESS_URL",
                ..
            })
        ));
    }
}
