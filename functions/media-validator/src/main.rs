//! The media validator Lambda: the composition root only. Everything it runs is in the library
//! (`media_validator::handle_s3_event`), which the local runner and the tests call with other adapters.

use std::sync::Arc;

use aws_lambda_events::event::s3::S3Event;
use lambda_runtime::{service_fn, LambdaEvent};
use media_validator::{config::ValidatorConfig, handle_s3_event, probe::Budget, ValidatorDeps};
use shared::{adapters::aws::AwsAdapters, config::EnvVars, SystemClock};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let started = std::time::Instant::now();
    lambda_runtime::tracing::init_default_subscriber();
    let env = EnvVars::from_process();
    let config = ValidatorConfig::from_env(&env)?;
    let aws = AwsAdapters::connect(&config.resources, &env).await;
    let deps = ValidatorDeps {
        timer: aws.timer(&config.timer_queue_url),
        media: aws.stores.media,
        blobs: aws.blobs,
        events: aws.events,
        clock: Arc::new(SystemClock),
        budget: Budget::default(),
        remux_max_bytes: media_validator::handler::LAMBDA_REMUX_MAX_BYTES,
    };
    let deps = &deps;
    // No secret here: the validator needs none, so it neither reads one nor may.
    tracing::info!(init_ms = started.elapsed().as_millis() as u64, "initialised");
    lambda_runtime::run(service_fn(move |event: LambdaEvent<S3Event>| async move {
        handle_s3_event(deps, event.payload).await
    }))
    .await
}
