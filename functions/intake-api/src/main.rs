//! Composition root of the intake Lambda: telemetry, configuration, AWS adapters, the TikTok client and token
//! service, then the router.

use std::sync::Arc;

use intake_api::{
    config::{IntakeConfig, MediaJobs},
    AppState, Deps,
};
use shared::{accounts::TokenService, adapters::aws::AwsAdapters, config::EnvVars, tiktok::TikTokClient, SystemClock};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let started = std::time::Instant::now();
    lambda_http::tracing::init_default_subscriber();
    let env = shared::secrets::overlay_from_secrets_manager(EnvVars::from_process()).await?;
    let config = IntakeConfig::from_env(&env)?;
    let aws = AwsAdapters::connect(&config.resources, &env).await;
    let clock = Arc::new(SystemClock);
    let tokens = TokenService::new(
        &aws.stores,
        TikTokClient::with_clock(config.tiktok, clock.clone())?,
        Arc::new(config.token_cipher),
        aws.events.clone(),
        clock.clone(),
    );
    let timer = aws.timer(&config.timer_queue_url);
    let mut settings = config.settings;
    settings.media_jobs = Some(MediaJobs(aws.media_jobs(&config.media_jobs_queue_url)));
    let state = AppState::new(Deps {
        stores: aws.stores,
        blobs: aws.blobs,
        events: aws.events,
        timer,
        clock,
        tokens,
        settings,
    });
    tracing::info!(init_ms = started.elapsed().as_millis() as u64, "initialised");
    lambda_http::run(intake_api::router(state)).await
}
