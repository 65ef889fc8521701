//! Composition root of the intake Lambda: telemetry, configuration, AWS adapters, then the router.

use std::sync::Arc;

use intake_api::{config::IntakeConfig, AppState, Deps};
use shared::{adapters::aws::AwsAdapters, config::EnvVars, SystemClock};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_http::tracing::init_default_subscriber();
    let env = EnvVars::from_process();
    let config = IntakeConfig::from_env(&env)?;
    let aws = AwsAdapters::connect(&config.resources, &env).await;
    let state = AppState::new(Deps {
        stores: aws.stores,
        blobs: aws.blobs,
        events: aws.events,
        clock: Arc::new(SystemClock),
        settings: config.settings,
    });
    lambda_http::run(intake_api::router(state)).await
}
