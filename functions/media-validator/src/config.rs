//! The configuration of the validator and media worker Lambdas (the same code, the same variables), read once at
//! start; a missing variable stops the start naming it.

use std::sync::Arc;

use shared::{
    adapters::aws::{AwsAdapters, AwsResources},
    config::{ConfigError, EnvVars},
    SystemClock,
};

use crate::{
    handler::{ValidatorDeps, LAMBDA_REMUX_MAX_BYTES},
    probe::Budget,
};

#[derive(Debug, Clone)]
pub struct ValidatorConfig {
    pub resources: AwsResources,
    /// `TIMER_QUEUE_URL`: the publisher's timer queue, to wake the posts that wait for a verdict.
    pub timer_queue_url: String,
    /// `MEDIA_JOBS_QUEUE_URL`: the media worker's queue, for remuxes too large for the validator's invocation.
    pub media_jobs_queue_url: String,
}

impl ValidatorConfig {
    /// The handler's dependencies from the process environment: what both Lambdas' `main` start with.
    pub async fn deps_from_process() -> Result<ValidatorDeps, ConfigError> {
        let env = EnvVars::from_process();
        Ok(Self::from_env(&env)?.connect(&env).await)
    }

    /// The handler's dependencies on the stack's AWS resources (`remux_max_bytes`: the validator Lambda's bound, which
    /// the worker keeps too, so that an imported file too large to remux gets its own 15-minute job).
    pub async fn connect(&self, env: &EnvVars) -> ValidatorDeps {
        let aws = AwsAdapters::connect(&self.resources, env).await;
        ValidatorDeps {
            timer: aws.timer(&self.timer_queue_url),
            jobs: aws.media_jobs(&self.media_jobs_queue_url),
            media: aws.stores.media,
            blobs: aws.blobs,
            events: aws.events,
            clock: Arc::new(SystemClock),
            budget: Budget::default(),
            remux_max_bytes: LAMBDA_REMUX_MAX_BYTES,
        }
    }

    pub fn from_env(env: &EnvVars) -> Result<Self, ConfigError> {
        Ok(Self {
            resources: AwsResources::from_env(env)?,
            timer_queue_url: env.required("TIMER_QUEUE_URL")?,
            media_jobs_queue_url: env.required("MEDIA_JOBS_QUEUE_URL")?,
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
            ("MEDIA_JOBS_QUEUE_URL", "j"),
        ];
        let config = ValidatorConfig::from_env(&EnvVars::from_pairs(full)).expect("complete environment");
        assert_eq!(config.resources.media_bucket, "b");
        for missing in [
            "TABLE_NAME",
            "MEDIA_BUCKET",
            "EVENT_BUS_NAME",
            "TIMER_QUEUE_URL",
            "MEDIA_JOBS_QUEUE_URL",
        ] {
            let env = EnvVars::from_pairs(full.iter().filter(|(name, _)| *name != missing).copied());
            assert_eq!(
                ValidatorConfig::from_env(&env).err(),
                Some(ConfigError::Missing(missing))
            );
        }
    }
}
