//! The publisher's configuration.

use chrono::{DateTime, Duration, Utc};
use shared::{
    adapters::aws::AwsResources,
    config::{ConfigError, EnvVars},
    tiktok::TikTokConfig,
};

/// A wakeup may come this much before its instant: timer delays count whole seconds.
const TIMER_ROUNDING: Duration = Duration::seconds(1);

/// See [`PublisherSettings::pull_video_max_bytes`]: S3 copies within a bucket at some hundreds of MB/s (an assumption,
/// not measured; moto's figure is in the README), so a copy this large adds well under a second.
pub const PULL_VIDEO_MAX_BYTES: u64 = 64 * 1024 * 1024;

/// Timing and transfer choices, shared by the Lambda and the local runner.
#[derive(Debug, Clone)]
pub struct PublisherSettings {
    /// `MEDIA_PUBLIC_BASE_URL`: a TikTok-verified URL prefix serving the bucket's `public/` copies. When set, videos
    /// up to `pull_video_max_bytes` go by PULL_FROM_URL (TikTok's guidance for media already on our servers); photos
    /// always need it.
    pub media_public_base_url: Option<String>,
    /// The largest video sent by PULL_FROM_URL. TikTok pulls a public copy made at the claim (see
    /// `shared::domain::exposure`), so the copy's time is added to the init's lateness; a larger video goes by
    /// FILE_UPLOAD, whose init leaves on time and whose bytes follow it.
    pub pull_video_max_bytes: u64,
    /// How early a wakeup arrives before the instant it is for: the worker runs pre-flight in this time and sleeps
    /// the rest, so that the init leaves on time. Timer delays count whole seconds, so a wakeup may come up to one
    /// second earlier still.
    pub lead: Duration,
    /// How far ahead the schedule tick arms wakeups: two ticks, so that a tick that fires late (or not at all) still
    /// finds every post armed by the one before. A post armed twice is harmless: workers claim with a
    /// compare-and-set.
    pub dispatch_window: Duration,
    /// How long a claim holds a post before an init answer; another worker may resume it only after the lease
    /// expires. Longer than the init call and one token refresh (20 s each at most), or a slow answer would be taken
    /// for a dead worker.
    pub lease: Duration,
    /// The lease of a running upload, renewed every third of it while a chunk is in flight, so that an upload whose
    /// worker died resumes within this time rather than after a long claim lease.
    pub upload_lease: Duration,
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
            pull_video_max_bytes: PULL_VIDEO_MAX_BYTES,
            lead: shared::timer::DEFAULT_LEAD,
            dispatch_window: shared::timer::DISPATCH_WINDOW,
            lease: Duration::seconds(60),
            upload_lease: Duration::seconds(30),
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
    /// Whether `due` is still too far off to act on now: more than the lead (and the timer's rounding) away, or too
    /// close to the invocation's end to finish.
    pub(crate) fn too_early(&self, due: DateTime<Utc>, now: DateTime<Utc>, deadline: DateTime<Utc>) -> bool {
        due > now + self.lead + TIMER_ROUNDING || due > deadline - self.min_time_left
    }

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
    /// `TIMER_QUEUE_URL`: the SQS queue that delivers wakeups (template.yaml's TimerQueue).
    pub timer_queue_url: String,
    pub tiktok: TikTokConfig,
    pub settings: PublisherSettings,
}

impl PublisherConfig {
    pub fn from_env(env: &EnvVars) -> Result<Self, ConfigError> {
        Ok(Self {
            resources: AwsResources::from_env(env)?,
            timer_queue_url: env.required("TIMER_QUEUE_URL")?,
            tiktok: TikTokConfig::from_env(env)?,
            settings: PublisherSettings::from_env(env)?,
        })
    }
}
