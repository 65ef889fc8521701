//! Typed configuration, read once at start. Each binary has one config struct built with [`EnvVars`]; a missing or
//! malformed variable fails start-up with a message naming it (and never echoing a secret's value).

use std::{collections::HashMap, fmt::Display, str::FromStr};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("missing required environment variable {0}")]
    Missing(&'static str),
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

/// A snapshot of the environment. Tests build one from pairs instead of mutating the process environment.
#[derive(Clone, Default)]
pub struct EnvVars(HashMap<String, String>);

/// Names only: the snapshot may hold secrets (from the environment or laid over it by [`crate::secrets`]).
impl std::fmt::Debug for EnvVars {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<&str> = self.0.keys().map(String::as_str).collect();
        names.sort_unstable();
        f.debug_tuple("EnvVars").field(&names).finish()
    }
}

impl EnvVars {
    pub fn from_process() -> Self {
        Self(std::env::vars().collect())
    }

    pub fn from_pairs<K: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (K, V)>) -> Self {
        Self(pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect())
    }

    /// The same snapshot with `name` set to `value`, replacing what the environment said: how values read at start
    /// from elsewhere (Secrets Manager) reach the typed configs without touching the process environment.
    pub fn with(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.0.insert(name.into(), value.into());
        self
    }

    /// The value, treating an empty string as unset (SAM passes empty parameters through as "").
    pub fn optional(&self, name: &str) -> Option<String> {
        self.0.get(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
    }

    pub fn required(&self, name: &'static str) -> Result<String, ConfigError> {
        self.optional(name).ok_or(ConfigError::Missing(name))
    }

    pub fn or_default(&self, name: &str, default: &str) -> String {
        self.optional(name).unwrap_or_else(|| default.to_owned())
    }

    /// Parses the value when set; the error names the variable and the expected form, not the value.
    pub fn parsed<T>(&self, name: &'static str) -> Result<Option<T>, ConfigError>
    where
        T: FromStr,
        T::Err: Display,
    {
        self.optional(name)
            .map(|raw| {
                raw.parse::<T>().map_err(|e| ConfigError::Invalid {
                    name,
                    reason: e.to_string(),
                })
            })
            .transpose()
    }

    pub fn parsed_or<T>(&self, name: &'static str, default: T) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: Display,
    {
        Ok(self.parsed(name)?.unwrap_or(default))
    }

    /// `true`/`false` (also `1`/`0`, `yes`/`no`), defaulting when unset.
    pub fn flag(&self, name: &'static str, default: bool) -> Result<bool, ConfigError> {
        match self.optional(name).map(|v| v.to_ascii_lowercase()) {
            None => Ok(default),
            Some(v) if matches!(v.as_str(), "true" | "1" | "yes") => Ok(true),
            Some(v) if matches!(v.as_str(), "false" | "0" | "no") => Ok(false),
            Some(_) => Err(ConfigError::Invalid {
                name,
                reason: "expected true or false".into(),
            }),
        }
    }

    /// An absolute http(s) URL without a trailing slash.
    pub fn url_or(&self, name: &'static str, default: &str) -> Result<String, ConfigError> {
        let value = self.or_default(name, default);
        parse_base_url(name, &value)
    }

    pub fn optional_url(&self, name: &'static str) -> Result<Option<String>, ConfigError> {
        self.optional(name)
            .map(|value| parse_base_url(name, &value))
            .transpose()
    }
}

fn parse_base_url(name: &'static str, value: &str) -> Result<String, ConfigError> {
    let url = url::Url::parse(value).map_err(|e| ConfigError::Invalid {
        name,
        reason: e.to_string(),
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ConfigError::Invalid {
            name,
            reason: "expected an http or https URL".into(),
        });
    }
    Ok(value.trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_required_variable_is_named() {
        let env = EnvVars::from_pairs([("OTHER", "x")]);
        assert_eq!(env.required("TABLE_NAME"), Err(ConfigError::Missing("TABLE_NAME")));
        assert_eq!(
            env.required("TABLE_NAME").unwrap_err().to_string(),
            "missing required environment variable TABLE_NAME"
        );
    }

    #[test]
    fn with_sets_or_replaces_one_variable() {
        let env = EnvVars::from_pairs([("A", "from-env"), ("B", "kept")])
            .with("A", "overlaid")
            .with("C", "new");
        assert_eq!(env.optional("A").as_deref(), Some("overlaid"));
        assert_eq!(env.optional("B").as_deref(), Some("kept"));
        assert_eq!(env.optional("C").as_deref(), Some("new"));
    }

    #[test]
    fn debug_shows_names_never_values() {
        let env = EnvVars::from_pairs([("TIKTOK_CLIENT_SECRET", "super-secret-value"), ("A", "1")]);
        let shown = format!("{env:?}");
        assert_eq!(shown, r#"EnvVars(["A", "TIKTOK_CLIENT_SECRET"])"#);
    }

    #[test]
    fn empty_values_count_as_unset() {
        let env = EnvVars::from_pairs([("MEDIA_PUBLIC_BASE_URL", " ")]);
        assert_eq!(env.optional_url("MEDIA_PUBLIC_BASE_URL"), Ok(None));
    }

    #[test]
    fn flags_and_numbers_parse_or_name_the_variable() {
        let env = EnvVars::from_pairs([("A", "TRUE"), ("B", "maybe"), ("N", "12"), ("M", "twelve")]);
        assert_eq!(env.flag("A", false), Ok(true));
        assert!(matches!(
            env.flag("B", false),
            Err(ConfigError::Invalid { name: "B", .. })
        ));
        assert_eq!(env.parsed_or::<u32>("N", 1), Ok(12));
        assert!(matches!(
            env.parsed_or::<u32>("M", 1),
            Err(ConfigError::Invalid { name: "M", .. })
        ));
        assert_eq!(env.parsed_or::<u32>("UNSET", 7), Ok(7));
    }

    #[test]
    fn urls_lose_their_trailing_slash_and_must_be_http() {
        let env = EnvVars::from_pairs([("U", "https://open.tiktokapis.com/"), ("F", "ftp://x")]);
        assert_eq!(
            env.url_or("U", "http://unused"),
            Ok("https://open.tiktokapis.com".into())
        );
        assert!(env.url_or("F", "http://unused").is_err());
    }
}
