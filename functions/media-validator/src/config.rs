//! The Lambda's configuration, read once at start; a missing variable stops the start naming it.

use shared::{
    adapters::aws::AwsResources,
    config::{ConfigError, EnvVars},
};

#[derive(Debug, Clone)]
pub struct ValidatorConfig {
    pub resources: AwsResources,
}

impl ValidatorConfig {
    pub fn from_env(env: &EnvVars) -> Result<Self, ConfigError> {
        Ok(Self {
            resources: AwsResources::from_env(env)?,
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
        assert_eq!(config.resources.media_bucket, "b");
        for missing in ["TABLE_NAME", "MEDIA_BUCKET", "EVENT_BUS_NAME"] {
            let env = EnvVars::from_pairs(full.iter().filter(|(name, _)| *name != missing).copied());
            assert_eq!(
                ValidatorConfig::from_env(&env).err(),
                Some(ConfigError::Missing(missing))
            );
        }
    }
}
