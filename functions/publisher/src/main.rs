//! Composition root of the publisher Lambda: telemetry, configuration, AWS adapters, TikTok client and token
//! service, the timer queue, then the event loop.

use std::sync::Arc;

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use publisher::{PublisherConfig, PublisherDeps};
use shared::{
    accounts::TokenService,
    adapters::aws::AwsAdapters,
    config::EnvVars,
    tiktok::{TikTokClient, TokenCipher},
    SystemClock,
};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let started = std::time::Instant::now();
    lambda_runtime::tracing::init_default_subscriber();
    let env = shared::secrets::overlay_from_secrets_manager(EnvVars::from_process()).await?;
    let config = PublisherConfig::from_env(&env)?;
    let cipher = Arc::new(TokenCipher::from_env(&env)?);
    let aws = AwsAdapters::connect(&config.resources, &env).await;
    let clock = Arc::new(SystemClock);
    let tokens = TokenService::new(
        &aws.stores,
        TikTokClient::new(config.tiktok)?,
        cipher,
        aws.events.clone(),
        clock.clone(),
    );
    let timer = aws.timer(&config.timer_queue_url);
    let deps = PublisherDeps::new(aws.stores, aws.blobs, aws.events, clock, tokens, config.settings, timer);
    let deps = &deps;
    tracing::info!(init_ms = started.elapsed().as_millis() as u64, "initialised");
    run(service_fn(move |event: LambdaEvent<serde_json::Value>| async move {
        // Lambda's deadline is a real instant; without one, no time is left: the worker starts nothing new.
        let deadline =
            chrono::DateTime::from_timestamp_millis(event.context.deadline as i64).unwrap_or_else(|| deps.clock.now());
        publisher::handle_event(deps, event.payload, deadline).await
    }))
    .await
}
