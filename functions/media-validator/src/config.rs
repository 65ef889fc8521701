//! The Lambda's configuration, read once at start; a missing variable stops the start naming it.

use shared::{
    adapters::aws::AwsResources,
    config::{ConfigError, EnvVars},
};

#[derive(Debug, Clone)]
pub struct ValidatorConfig {
    pub resources: AwsResources,
    /// `TIMER_QUEUE_URL`: the publisher's timer queue, to wake the posts that wait for a verdict.
    pub timer_queue_url: String,
}

impl ValidatorConfig {
    pub fn from_env(env: &EnvVars) -> Result<Self, ConfigError> {
        Ok(Self {
            resources: AwsResources::from_env(env)?,
            timer_queue_url: env.required("TIMER_QUEUE_URL")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variable_is_required_and_named_when_missing() {
        let full = [
            ("TABLE_NAME", "t"),
            ("MEDIA_BUCKET", "b"),
            ("EVENT_BUS_NAME", "e"),
            ("TIMER_QUEUE_URL", "q"),
        ];
        let config = ValidatorConfig::from_env(&EnvVars::from_pairs(full)).expect("complete environment");
        assert_eq!(config.resources.media_bucket, "b");
        for missing in ["TABLE_NAME", "MEDIA_BUCKET", "EVENT_BUS_NAME", "TIMER_QUEUE_URL"] {
            let env = EnvVars::from_pairs(full.iter().filter(|(name, _)| *name != missing).copied());
            assert_eq!(
                ValidatorConfig::from_env(&env).err(),
                Some(ConfigError::Missing(missing))
            );
        }
    }
}
