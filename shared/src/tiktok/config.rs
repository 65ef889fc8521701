//! Where TikTok is and who we are to it. Read once at start; a missing variable fails naming it.

use std::time::Duration;

use secrecy::SecretString;

use crate::config::{ConfigError, EnvVars};

pub const DEFAULT_API_BASE_URL: &str = "https://open.tiktokapis.com";
pub const DEFAULT_AUTH_BASE_URL: &str = "https://www.tiktok.com";

/// How long each kind of call may take before it counts as failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TikTokTimeouts {
    /// Establishing a connection: failing here proves the request never left, so it is always safe to retry.
    pub connect: Duration,
    /// Any API call (OAuth, creator_info, inits, status).
    pub request: Duration,
    /// One chunk PUT: up to 128 MB on the last chunk, so far longer than an API call.
    pub upload_chunk: Duration,
}

impl Default for TikTokTimeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(5),
            request: Duration::from_secs(20),
            upload_chunk: Duration::from_secs(300),
        }
    }
}

/// Everything the client needs. `Debug` shows no secret: the client secret is a [`SecretString`].
#[derive(Debug, Clone)]
pub struct TikTokConfig {
    /// `https://open.tiktokapis.com`, or the sandbox. No trailing slash.
    pub api_base_url: String,
    /// `https://www.tiktok.com` (the authorize page), or the sandbox. No trailing slash.
    pub auth_base_url: String,
    /// Public: it travels in the authorize URL.
    pub client_key: String,
    pub client_secret: SecretString,
    /// Must equal a URI registered for the app, byte for byte, in both the authorize call and the code exchange.
    pub redirect_uri: String,
    /// Unaudited apps may only post SELF_ONLY from private accounts (reference §10.1).
    pub app_audited: bool,
    pub timeouts: TikTokTimeouts,
}

impl TikTokConfig {
    /// `TIKTOK_API_BASE_URL`, `TIKTOK_AUTH_BASE_URL`, `TIKTOK_CLIENT_KEY`, `TIKTOK_CLIENT_SECRET`,
    /// `TIKTOK_REDIRECT_URI`, `TIKTOK_APP_AUDITED` (default false), and the optional timeouts
    /// `TIKTOK_TIMEOUT_SECS` (default 20) and `TIKTOK_UPLOAD_TIMEOUT_SECS` (default 300).
    pub fn from_env(env: &EnvVars) -> Result<Self, ConfigError> {
        let defaults = TikTokTimeouts::default();
        let request = env.parsed_or("TIKTOK_TIMEOUT_SECS", defaults.request.as_secs())?;
        let upload_chunk = env.parsed_or("TIKTOK_UPLOAD_TIMEOUT_SECS", defaults.upload_chunk.as_secs())?;
        let redirect_uri = env.required("TIKTOK_REDIRECT_URI")?;
        url::Url::parse(&redirect_uri).map_err(|e| ConfigError::Invalid {
            name: "TIKTOK_REDIRECT_URI",
            reason: e.to_string(),
        })?;
        Ok(Self {
            api_base_url: env.url_or("TIKTOK_API_BASE_URL", DEFAULT_API_BASE_URL)?,
            auth_base_url: env.url_or("TIKTOK_AUTH_BASE_URL", DEFAULT_AUTH_BASE_URL)?,
            client_key: env.required("TIKTOK_CLIENT_KEY")?,
            client_secret: SecretString::from(env.required("TIKTOK_CLIENT_SECRET")?),
            redirect_uri,
            app_audited: env.flag("TIKTOK_APP_AUDITED", false)?,
            timeouts: TikTokTimeouts {
                connect: defaults.connect,
                request: Duration::from_secs(request),
                upload_chunk: Duration::from_secs(upload_chunk),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complete_env() -> Vec<(&'static str, &'static str)> {
        vec![
            ("TIKTOK_CLIENT_KEY", "aw_client_key"),
            ("TIKTOK_CLIENT_SECRET", "super-secret-value"),
            (
                "TIKTOK_REDIRECT_URI",
                "https://app.example.com/v1/accounts/tiktok/callback",
            ),
        ]
    }

    #[test]
    fn defaults_point_at_tiktok_and_an_unaudited_app() {
        let config = TikTokConfig::from_env(&EnvVars::from_pairs(complete_env())).expect("complete");
        assert_eq!(config.api_base_url, "https://open.tiktokapis.com");
        assert_eq!(config.auth_base_url, "https://www.tiktok.com");
        assert!(!config.app_audited);
        assert_eq!(config.timeouts, TikTokTimeouts::default());
    }

    #[test]
    fn each_missing_required_variable_is_named() {
        for missing in ["TIKTOK_CLIENT_KEY", "TIKTOK_CLIENT_SECRET", "TIKTOK_REDIRECT_URI"] {
            let env = EnvVars::from_pairs(complete_env().into_iter().filter(|(name, _)| *name != missing));
            assert_eq!(TikTokConfig::from_env(&env).err(), Some(ConfigError::Missing(missing)));
        }
    }

    #[test]
    fn overrides_are_read_and_bad_values_named() {
        let mut pairs = complete_env();
        pairs.extend([
            ("TIKTOK_API_BASE_URL", "http://127.0.0.1:8081/"),
            ("TIKTOK_AUTH_BASE_URL", "http://127.0.0.1:8081"),
            ("TIKTOK_APP_AUDITED", "true"),
            ("TIKTOK_TIMEOUT_SECS", "3"),
        ]);
        let config = TikTokConfig::from_env(&EnvVars::from_pairs(pairs.clone())).expect("complete");
        assert_eq!(config.api_base_url, "http://127.0.0.1:8081");
        assert!(config.app_audited);
        assert_eq!(config.timeouts.request, Duration::from_secs(3));

        pairs.push(("TIKTOK_APP_AUDITED", "perhaps"));
        let error = TikTokConfig::from_env(&EnvVars::from_pairs(pairs)).err();
        assert!(matches!(
            error,
            Some(ConfigError::Invalid {
                name: "TIKTOK_APP_AUDITED",
                ..
            })
        ));
    }

    #[test]
    fn debug_never_shows_the_client_secret() {
        let config = TikTokConfig::from_env(&EnvVars::from_pairs(complete_env())).expect("complete");
        let shown = format!("{config:?}");
        assert!(!shown.contains("super-secret-value"), "{shown}");
        assert!(shown.contains("aw_client_key"));
    }
}
