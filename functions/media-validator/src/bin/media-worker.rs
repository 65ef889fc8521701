//! The media worker Lambda: the composition root only. It runs the validator's code (`media_validator::worker`) on
//! the jobs of its SQS queue, one a batch, within 15 minutes: URL imports and remuxes too large for the validator.

use lambda_runtime::{service_fn, LambdaEvent};
use media_validator::{config::ValidatorConfig, import::ImportPolicy, worker::handle_job_batch};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let started = std::time::Instant::now();
    lambda_runtime::tracing::init_default_subscriber();
    let deps = ValidatorConfig::deps_from_process().await?;
    // Public https sources only; the fetch's own limit (10 min) leaves the rest of the 15 for validating.
    let policy = ImportPolicy::default();
    let (deps, policy) = (&deps, &policy);
    tracing::info!(init_ms = started.elapsed().as_millis() as u64, "initialised");
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| async move {
        Ok::<_, lambda_runtime::Error>(handle_job_batch(deps, policy, &event.payload).await)
    }))
    .await
}
