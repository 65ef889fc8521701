//! OAuth v2 pieces that need no network: the authorize URL, `state`, scopes, and what a token answer means.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use chrono::{DateTime, Duration, Utc};
use secrecy::SecretString;
use serde::Deserialize;

pub const SCOPE_USER_INFO_BASIC: &str = "user.info.basic";
pub const SCOPE_VIDEO_PUBLISH: &str = "video.publish";
pub const SCOPE_VIDEO_UPLOAD: &str = "video.upload";

/// What the product asks for: the guide's scopes plus `video.publish`, which Direct Post and creator_info need.
pub const REQUIRED_SCOPES: [&str; 3] = [SCOPE_USER_INFO_BASIC, SCOPE_VIDEO_PUBLISH, SCOPE_VIDEO_UPLOAD];

/// How long a connect's `state` stays valid (the product's rule).
pub const STATE_LIFETIME: Duration = Duration::minutes(10);

/// A single-use CSRF `state`: 32 random bytes, URL-safe, so it needs no escaping in the callback.
pub fn generate_state() -> String {
    let bytes: [u8; 32] = rand::random();
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Length of [`generate_state`]'s output: 32 bytes in unpadded base64.
const STATE_CHARS: usize = 43;

/// Whether `state` could be one [`generate_state`] made; anything else is unknown without a lookup.
pub fn is_state_shaped(state: &str) -> bool {
    state.len() == STATE_CHARS
        && state
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A set of scopes, as TikTok writes them: comma-separated (a callback's `scopes`, a token answer's `scope`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scopes(Vec<String>);

impl Scopes {
    /// Tolerates spaces and empty items; keeps the first occurrence of each scope, in order.
    pub fn parse(list: &str) -> Self {
        let mut scopes: Vec<String> = Vec::new();
        for scope in list.split([',', ' ']).map(str::trim).filter(|s| !s.is_empty()) {
            if !scopes.iter().any(|known| known == scope) {
                scopes.push(scope.to_owned());
            }
        }
        Self(scopes)
    }

    pub fn contains(&self, scope: &str) -> bool {
        self.0.iter().any(|s| s == scope)
    }

    /// The required scopes the user did not grant (TikTok lets them untick some).
    pub fn missing<'a>(&self, required: &[&'a str]) -> Vec<&'a str> {
        required.iter().copied().filter(|scope| !self.contains(scope)).collect()
    }

    pub fn as_slice(&self) -> &[String] {
        &self.0
    }

    pub fn into_vec(self) -> Vec<String> {
        self.0
    }

    /// TikTok's comma-separated form.
    pub fn to_comma_separated(&self) -> String {
        self.0.join(",")
    }
}

impl<S: Into<String>> FromIterator<S> for Scopes {
    fn from_iter<I: IntoIterator<Item = S>>(iter: I) -> Self {
        Self::parse(&iter.into_iter().map(Into::into).collect::<Vec<_>>().join(","))
    }
}

/// The authorize redirect (reference §1.1). `disable_auto_auth` forces TikTok's consent page, so a user adding a
/// further account can switch TikTok accounts instead of silently reconnecting the first one.
pub fn authorize_url(
    auth_base_url: &str,
    client_key: &str,
    redirect_uri: &str,
    scopes: &[&str],
    state: &str,
    disable_auto_auth: bool,
) -> Result<url::Url, url::ParseError> {
    let mut url = url::Url::parse(&format!("{}/v2/auth/authorize/", auth_base_url.trim_end_matches('/')))?;
    url.query_pairs_mut()
        .append_pair("client_key", client_key)
        .append_pair("response_type", "code")
        .append_pair("scope", &scopes.join(","))
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("state", state)
        .append_pair("disable_auto_auth", if disable_auto_auth { "1" } else { "0" });
    Ok(url)
}

/// What TikTok's callback brought back: `code`, `scopes` and `state`, or `error` and `error_description`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallbackOutcome {
    Approved {
        code: SecretCode,
        state: String,
        granted: Scopes,
    },
    Refused {
        state: Option<String>,
        error: String,
        description: String,
    },
}

/// An authorization code: single-use, exchanged once; `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretCode(pub String);

impl std::fmt::Debug for SecretCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretCode([redacted])")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the TikTok callback carries neither a code nor an error")]
pub struct MalformedCallback;

/// Reads the callback's query parameters (already decoded by the web framework).
pub fn parse_callback<'a>(
    params: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<CallbackOutcome, MalformedCallback> {
    let (mut code, mut state, mut scopes, mut error, mut description) = (None, None, None, None, None);
    for (name, value) in params {
        match name {
            "code" => code = Some(value),
            "state" => state = Some(value),
            "scopes" => scopes = Some(value),
            "error" => error = Some(value),
            "error_description" => description = Some(value),
            _ => {}
        }
    }
    match (error, code, state) {
        (Some(error), _, state) => Ok(CallbackOutcome::Refused {
            state: state.map(str::to_owned),
            error: error.to_owned(),
            description: description.unwrap_or_default().to_owned(),
        }),
        (None, Some(code), Some(state)) if !code.is_empty() => Ok(CallbackOutcome::Approved {
            code: SecretCode(code.to_owned()),
            state: state.to_owned(),
            granted: Scopes::parse(scopes.unwrap_or_default()),
        }),
        _ => Err(MalformedCallback),
    }
}

/// A successful token answer as TikTok sends it (no `data` wrapper, reference §1.2).
#[derive(Deserialize)]
pub(crate) struct RawTokenAnswer {
    #[serde(default)]
    pub access_token: Option<String>,
    #[serde(default)]
    pub expires_in: Option<i64>,
    #[serde(default)]
    pub open_id: Option<String>,
    #[serde(default)]
    pub refresh_expires_in: Option<i64>,
    #[serde(default)]
    pub refresh_token: Option<String>,
    #[serde(default)]
    pub scope: Option<String>,
}

/// The tokens from a code exchange or a refresh, with absolute expiries computed from that answer's own lifetimes
/// (the docs disagree on them, §1.4, so none is assumed). A refresh rotates the refresh token: persist this whole
/// grant before anything else uses the account.
#[derive(Debug, Clone)]
pub struct TokenGrant {
    pub open_id: String,
    pub scopes: Scopes,
    pub access_token: SecretString,
    pub access_expires_at: DateTime<Utc>,
    pub refresh_token: SecretString,
    pub refresh_expires_at: DateTime<Utc>,
}

/// Which field made a token answer unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the token answer lacks a usable `{0}`")]
pub struct IncompleteTokenAnswer(pub &'static str);

impl TokenGrant {
    pub(crate) fn from_answer(answer: RawTokenAnswer, now: DateTime<Utc>) -> Result<Self, IncompleteTokenAnswer> {
        // An empty token must never replace a stored one (a peer's reconnect loop came from exactly that).
        fn non_empty(value: Option<String>, field: &'static str) -> Result<String, IncompleteTokenAnswer> {
            value
                .filter(|v| !v.trim().is_empty())
                .ok_or(IncompleteTokenAnswer(field))
        }
        fn lifetime(seconds: Option<i64>, field: &'static str) -> Result<Duration, IncompleteTokenAnswer> {
            seconds
                .filter(|s| *s > 0)
                .and_then(Duration::try_seconds)
                .ok_or(IncompleteTokenAnswer(field))
        }
        Ok(Self {
            open_id: non_empty(answer.open_id, "open_id")?,
            scopes: Scopes::parse(answer.scope.as_deref().unwrap_or_default()),
            access_token: SecretString::from(non_empty(answer.access_token, "access_token")?),
            access_expires_at: now + lifetime(answer.expires_in, "expires_in")?,
            refresh_token: SecretString::from(non_empty(answer.refresh_token, "refresh_token")?),
            refresh_expires_at: now + lifetime(answer.refresh_expires_in, "refresh_expires_in")?,
        })
    }
}

/// Refresh ahead of expiry: access tokens may live only 2 hours (§1.4), and an upload started with a token about to
/// expire would fail half-way.
pub const REFRESH_MARGIN: Duration = Duration::minutes(30);

/// Whether an access token expiring at `access_expires_at` should be refreshed before use at `now`.
pub fn needs_refresh(access_expires_at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    access_expires_at - REFRESH_MARGIN <= now
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn only_what_generate_state_makes_is_state_shaped() {
        assert!(is_state_shaped(&generate_state()));
        for foreign in [
            "",
            "abc",
            &"a".repeat(44),
            &"a".repeat(5_000),
            &format!("{}=", "a".repeat(42)),
        ] {
            assert!(!is_state_shaped(foreign), "{foreign:.20}");
        }
    }

    #[test]
    fn authorize_url_carries_every_parameter_tiktok_expects() {
        let url = authorize_url(
            "https://www.tiktok.com/",
            "aw_key",
            "https://app.example.com/cb",
            &REQUIRED_SCOPES,
            "st ate/+",
            true,
        )
        .expect("valid base");
        assert_eq!(url.path(), "/v2/auth/authorize/");
        let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        let get = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        assert_eq!(get("client_key"), Some("aw_key"));
        assert_eq!(get("response_type"), Some("code"));
        assert_eq!(get("scope"), Some("user.info.basic,video.publish,video.upload"));
        assert_eq!(get("redirect_uri"), Some("https://app.example.com/cb"));
        assert_eq!(get("state"), Some("st ate/+"));
        assert_eq!(get("disable_auto_auth"), Some("1"));
        assert!(url
            .as_str()
            .contains("scope=user.info.basic%2Cvideo.publish%2Cvideo.upload"));
    }

    #[test]
    fn states_are_unique_and_url_safe() {
        let (a, b) = (generate_state(), generate_state());
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
    }

    #[test]
    fn missing_scopes_are_named() {
        let granted = Scopes::parse("user.info.basic, video.upload,,user.info.basic");
        assert_eq!(granted.as_slice(), ["user.info.basic", "video.upload"]);
        assert_eq!(granted.missing(&REQUIRED_SCOPES), vec!["video.publish"]);
        assert!(Scopes::from_iter(REQUIRED_SCOPES).missing(&REQUIRED_SCOPES).is_empty());
    }

    #[test]
    fn callbacks_are_read_as_approved_or_refused() {
        let approved = parse_callback([("code", "c0de"), ("state", "s"), ("scopes", "user.info.basic")]);
        assert!(matches!(approved, Ok(CallbackOutcome::Approved { ref state, .. }) if state == "s"));
        assert!(!format!("{approved:?}").contains("c0de"));
        let refused = parse_callback([("error", "access_denied"), ("error_description", "no"), ("state", "s")]);
        assert!(matches!(refused, Ok(CallbackOutcome::Refused { ref error, .. }) if error == "access_denied"));
        assert_eq!(parse_callback([("state", "s")]), Err(MalformedCallback));
    }

    #[test]
    fn grants_take_their_lifetimes_from_the_answer_and_refuse_empty_tokens() {
        let now = Utc::now();
        let answer = |refresh: &str| RawTokenAnswer {
            access_token: Some("act.a".into()),
            expires_in: Some(7200),
            open_id: Some("open-1".into()),
            refresh_expires_in: Some(15_552_000),
            refresh_token: Some(refresh.into()),
            scope: Some("user.info.basic,video.publish".into()),
        };
        let grant = TokenGrant::from_answer(answer("rft.b"), now).expect("complete");
        assert_eq!(grant.access_expires_at, now + Duration::hours(2));
        assert_eq!(grant.refresh_expires_at, now + Duration::days(180));
        assert_eq!(grant.refresh_token.expose_secret(), "rft.b");
        assert!(!format!("{grant:?}").contains("act.a"));
        assert_eq!(
            TokenGrant::from_answer(answer(" "), now).err(),
            Some(IncompleteTokenAnswer("refresh_token"))
        );
        let mut no_expiry = answer("rft.b");
        no_expiry.expires_in = None;
        assert_eq!(
            TokenGrant::from_answer(no_expiry, now).err(),
            Some(IncompleteTokenAnswer("expires_in"))
        );
    }

    #[test]
    fn tokens_are_refreshed_half_an_hour_ahead() {
        let now = Utc::now();
        assert!(!needs_refresh(now + Duration::hours(2), now));
        assert!(needs_refresh(now + Duration::minutes(29), now));
        assert!(needs_refresh(now - Duration::minutes(1), now));
    }
}
