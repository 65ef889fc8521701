//! The Lambda's configuration, read once at start; a missing variable stops the start naming it.

use shared::config::{ConfigError, EnvVars};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatorConfig {
    pub table_name: String,
    pub media_bucket: String,
    pub event_bus_name: String,
    /// Set when `AWS_ENDPOINT_URL` (or its S3 form) points the SDK elsewhere (moto, LocalStack): S3 then needs
    /// path-style addressing, which the Rust SDK does not infer.
    pub endpoint_overridden: bool,
}

impl ValidatorConfig {
    pub fn from_env(env: &EnvVars) -> Result<Self, ConfigError> {
        Ok(Self {
            table_name: env.required("TABLE_NAME")?,
            media_bucket: env.required("MEDIA_BUCKET")?,
            event_bus_name: env.required("EVENT_BUS_NAME")?,
            endpoint_overridden: env.optional("AWS_ENDPOINT_URL").is_some()
                || env.optional("AWS_ENDPOINT_URL_S3").is_some(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variable_is_required_and_named_when_missing() {
        let full = [("TABLE_NAME", "t"), ("MEDIA_BUCKET", "b"), ("EVENT_BUS_NAME", "e")];
        let config = ValidatorConfig::from_env(&EnvVars::from_pairs(full)).expect("complete environment");
        assert_eq!(config.media_bucket, "b");
        assert!(!config.endpoint_overridden);
        for missing in ["TABLE_NAME", "MEDIA_BUCKET", "EVENT_BUS_NAME"] {
            let env = EnvVars::from_pairs(full.iter().filter(|(name, _)| *name != missing).copied());
            assert_eq!(ValidatorConfig::from_env(&env), Err(ConfigError::Missing(missing)));
        }
        let moto = EnvVars::from_pairs(full.into_iter().chain([("AWS_ENDPOINT_URL", "http://127.0.0.1:5000")]));
        assert!(ValidatorConfig::from_env(&moto).is_ok_and(|c| c.endpoint_overridden));
    }
}
