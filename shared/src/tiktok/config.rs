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

/// TikTok's upload hosts (`open-upload.tiktokapis.com`, `upload.us.tiktokapis.com`, reference §3) all end in this.
pub const DEFAULT_UPLOAD_HOSTS: &str = "tiktokapis.com";

/// The hosts an upload URL from init may point at: a host is allowed when it equals an entry or ends in `.` and an
/// entry. The URL comes from an answer, and the chunks PUT to it are a creator's unpublished video: an answer that
/// could name any host would hand the video to whoever forged it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadHosts(Vec<String>);

impl UploadHosts {
    /// Comma-separated host suffixes; entries are trimmed, lowercased, and their leading dots dropped.
    pub fn parse(list: &str) -> Option<Self> {
        let hosts: Vec<String> = list
            .split(',')
            .map(|host| host.trim().trim_start_matches('.').to_ascii_lowercase())
            .filter(|host| !host.is_empty())
            .collect();
        (!hosts.is_empty()).then_some(Self(hosts))
    }

    /// Only the host of `base_url`: for a sandbox that serves uploads where it serves its API.
    pub fn host_of(base_url: &str) -> Option<Self> {
        let url = url::Url::parse(base_url).ok()?;
        Self::parse(url.host_str()?)
    }

    /// Only TikTok's own upload hosts.
    pub fn tiktok() -> Self {
        Self(vec![DEFAULT_UPLOAD_HOSTS.to_owned()])
    }

    /// Whether chunks may go to `url`: https on an allowed host, or plain http on an allowed loopback host (the
    /// sandbox), never credentials in the URL.
    pub fn allows(&self, url: &url::Url) -> bool {
        let Some(host) = url.host() else { return false };
        let loopback = match host {
            url::Host::Ipv4(ip) => ip.is_loopback(),
            url::Host::Ipv6(ip) => ip.is_loopback(),
            url::Host::Domain(name) => name.eq_ignore_ascii_case("localhost"),
        };
        let scheme_ok = url.scheme() == "https" || (url.scheme() == "http" && loopback);
        let name = url.host_str().unwrap_or_default().to_ascii_lowercase();
        // Addresses match whole; only names match by suffix (`0.0.1` must not admit `127.0.0.1`).
        let is_name = matches!(host, url::Host::Domain(_));
        let host_ok = self.0.iter().any(|allowed| {
            name == *allowed
                || (is_name
                    && name
                        .strip_suffix(allowed.as_str())
                        .is_some_and(|prefix| prefix.ends_with('.')))
        });
        scheme_ok && host_ok && url.username().is_empty() && url.password().is_none()
    }
}

impl std::fmt::Display for UploadHosts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.join(","))
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
    /// Where video chunks may be PUT: [`UploadHosts::tiktok`], or the sandbox's loopback host.
    pub upload_hosts: UploadHosts,
}

impl TikTokConfig {
    /// `TIKTOK_API_BASE_URL`, `TIKTOK_AUTH_BASE_URL`, `TIKTOK_CLIENT_KEY`, `TIKTOK_CLIENT_SECRET`,
    /// `TIKTOK_REDIRECT_URI`, `TIKTOK_APP_AUDITED` (default false), and the optional timeouts
    /// `TIKTOK_TIMEOUT_SECS` (default 20) and `TIKTOK_UPLOAD_TIMEOUT_SECS` (default 300), and `TIKTOK_UPLOAD_HOSTS`
    /// (default [`DEFAULT_UPLOAD_HOSTS`]).
    pub fn from_env(env: &EnvVars) -> Result<Self, ConfigError> {
        let defaults = TikTokTimeouts::default();
        let request = env.parsed_or("TIKTOK_TIMEOUT_SECS", defaults.request.as_secs())?;
        let upload_chunk = env.parsed_or("TIKTOK_UPLOAD_TIMEOUT_SECS", defaults.upload_chunk.as_secs())?;
        let redirect_uri = env.required("TIKTOK_REDIRECT_URI")?;
        url::Url::parse(&redirect_uri).map_err(|e| ConfigError::Invalid {
            name: "TIKTOK_REDIRECT_URI",
            reason: e.to_string(),
        })?;
        let upload_hosts = env.or_default("TIKTOK_UPLOAD_HOSTS", DEFAULT_UPLOAD_HOSTS);
        let upload_hosts = UploadHosts::parse(&upload_hosts).ok_or(ConfigError::Invalid {
            name: "TIKTOK_UPLOAD_HOSTS",
            reason: "name at least one host suffix".into(),
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
            upload_hosts,
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
    fn upload_urls_are_allowed_only_on_the_listed_hosts() {
        let allows = |hosts: &UploadHosts, url: &str| hosts.allows(&url::Url::parse(url).expect("a URL"));
        let tiktok = TikTokConfig::from_env(&EnvVars::from_pairs(complete_env()))
            .expect("complete")
            .upload_hosts;
        assert_eq!(tiktok, UploadHosts::tiktok());
        for documented in [
            "https://open-upload.tiktokapis.com/video/?upload_id=1&upload_token=x",
            "https://upload.us.tiktokapis.com/video/?upload_id=1",
        ] {
            assert!(allows(&tiktok, documented), "{documented}");
        }
        for hostile in [
            "https://attacker.example/video/",
            "https://tiktokapis.com.attacker.example/video/",
            "https://eviltiktokapis.com/video/",
            "http://open-upload.tiktokapis.com/video/",
            "https://user:pass@open-upload.tiktokapis.com/video/",
            "http://127.0.0.1:9/video/",
        ] {
            assert!(!allows(&tiktok, hostile), "{hostile}");
        }

        let sandbox = UploadHosts::parse(" 127.0.0.1 , .tiktokapis.com").expect("two entries");
        assert!(allows(&sandbox, "http://127.0.0.1:8081/upload/1"));
        assert!(allows(&sandbox, "https://open-upload.tiktokapis.com/video/"));
        assert!(!allows(&sandbox, "http://10.0.0.1/upload/1"));
        let partial_address = UploadHosts::parse("0.0.1").expect("one entry");
        assert!(!allows(&partial_address, "http://127.0.0.1/upload/1"));
        assert_eq!(UploadHosts::parse(" , "), None);

        let mut pairs = complete_env();
        pairs.push(("TIKTOK_UPLOAD_HOSTS", ","));
        assert!(matches!(
            TikTokConfig::from_env(&EnvVars::from_pairs(pairs)).err(),
            Some(ConfigError::Invalid {
                name: "TIKTOK_UPLOAD_HOSTS",
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
