//! The publisher's configuration.

use chrono::Duration;
use shared::{
    adapters::aws::AwsResources,
    config::{ConfigError, EnvVars},
    tiktok::TikTokConfig,
};

/// Timing and transfer choices, shared by the Lambda and the local runner.
#[derive(Debug, Clone)]
pub struct PublisherSettings {
    /// `MEDIA_PUBLIC_BASE_URL`: a TikTok-verified URL prefix serving the bucket. When set, videos go by
    /// PULL_FROM_URL (TikTok's guidance for media already on our servers); photos always need it.
    pub media_public_base_url: Option<String>,
    /// How far ahead the dispatcher looks: a post due within it is handed out now and waits in its worker. One
    /// tick interval plus margin: 60 s for EventBridge's once-a-minute schedule, a few seconds in process.
    pub lookahead: Duration,
    /// How long a claim holds a post; another worker may resume it only after the lease expires.
    pub lease: Duration,
    /// No new work starts with less than this left before the invocation's deadline.
    pub min_time_left: Duration,
    /// Media still validating this long after `scheduledAt` fails the post (`media_not_ready`).
    pub media_wait: Duration,
    /// TikTok unreachable (before any init was sent) this long after `scheduledAt` fails the post.
    pub give_up_after: Duration,
    /// After TikTok accepted a post, its status is tracked this long before `tracking_timeout`.
    pub tracking_deadline: Duration,
    pub first_poll_after: Duration,
    pub max_poll_interval: Duration,
    /// A 5xx on one chunk is retried this often before the upload yields to a later resume.
    pub chunk_retries: u32,
}

impl Default for PublisherSettings {
    fn default() -> Self {
        Self {
            media_public_base_url: None,
            lookahead: Duration::seconds(60),
            lease: Duration::minutes(15),
            min_time_left: Duration::seconds(60),
            media_wait: Duration::minutes(15),
            give_up_after: Duration::minutes(30),
            tracking_deadline: Duration::hours(24),
            first_poll_after: Duration::seconds(10),
            max_poll_interval: Duration::minutes(5),
            chunk_retries: 5,
        }
    }
}

impl PublisherSettings {
    pub fn from_env(env: &EnvVars) -> Result<Self, ConfigError> {
        Ok(Self {
            media_public_base_url: env.optional_url("MEDIA_PUBLIC_BASE_URL")?,
            ..Self::default()
        })
    }
}

/// Everything the publisher Lambda needs at start; a missing variable fails the cold start naming it.
#[derive(Debug, Clone)]
pub struct PublisherConfig {
    pub resources: AwsResources,
    pub tiktok: TikTokConfig,
    pub settings: PublisherSettings,
}

impl PublisherConfig {
    pub fn from_env(env: &EnvVars) -> Result<Self, ConfigError> {
        Ok(Self {
            resources: AwsResources::from_env(env)?,
            tiktok: TikTokConfig::from_env(env)?,
            settings: PublisherSettings::from_env(env)?,
        })
    }
}
