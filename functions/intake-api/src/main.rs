//! Composition root of the intake Lambda: telemetry, configuration, AWS adapters, then the router.

use std::sync::Arc;

use intake_api::{config::IntakeConfig, AppState, Deps};
use shared::{adapters::aws::AwsAdapters, config::EnvVars, SystemClock};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let started = std::time::Instant::now();
    lambda_http::tracing::init_default_subscriber();
    let env = shared::secrets::overlay_from_secrets_manager(EnvVars::from_process()).await?;
    let config = IntakeConfig::from_env(&env)?;
    let aws = AwsAdapters::connect(&config.resources, &env).await;
    let state = AppState::new(Deps {
        stores: aws.stores,
        blobs: aws.blobs,
        events: aws.events,
        clock: Arc::new(SystemClock),
        settings: config.settings,
    });
    tracing::info!(init_ms = started.elapsed().as_millis() as u64, "initialised");
    lambda_http::run(intake_api::router(state)).await
}
