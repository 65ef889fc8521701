//! The media validator Lambda: the composition root only. Everything it runs is in the library
//! (`media_validator::handle_s3_event`), which the local runner and the tests call with other adapters.

use aws_lambda_events::event::s3::S3Event;
use lambda_runtime::{service_fn, LambdaEvent};
use media_validator::{config::ValidatorConfig, handle_s3_event};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let started = std::time::Instant::now();
    lambda_runtime::tracing::init_default_subscriber();
    let deps = ValidatorConfig::deps_from_process().await?;
    let deps = &deps;
    // No secret here: the validator needs none, so it neither reads one nor may.
    tracing::info!(init_ms = started.elapsed().as_millis() as u64, "initialised");
    lambda_runtime::run(service_fn(move |event: LambdaEvent<S3Event>| async move {
        handle_s3_event(deps, event.payload).await
    }))
    .await
}
