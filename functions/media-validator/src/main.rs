//! The media validator Lambda: the composition root only. Everything it runs is in the library
//! (`media_validator::handle_s3_event`), which the local runner and the tests call with other adapters.

use aws_config::BehaviorVersion;
use media_validator::config::ValidatorConfig;
use shared::config::EnvVars;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = ValidatorConfig::from_env(&EnvVars::from_process())?;
    let sdk = aws_config::defaults(BehaviorVersion::latest()).load().await;

    // WIRING: enable at merge, once shared::adapters::{dynamo, s3, eventbridge} exist on the branch. Replace
    // everything from here to the end of main with:
    //
    // use std::sync::Arc;
    // use aws_lambda_events::event::s3::S3Event;
    // use lambda_runtime::{service_fn, LambdaEvent};
    // use media_validator::{handle_s3_event, probe::Budget, ValidatorDeps};
    // use shared::{
    //     adapters::{dynamo::DynamoStore, eventbridge::EventBridgeSink, s3::{s3_client, S3BlobStore}},
    //     SystemClock,
    // };
    //
    // let deps = ValidatorDeps {
    //     media: Arc::new(DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), config.table_name)),
    //     blobs: Arc::new(S3BlobStore::new(s3_client(&sdk, config.endpoint_overridden), config.media_bucket)),
    //     events: Arc::new(EventBridgeSink::new(aws_sdk_eventbridge::Client::new(&sdk), config.event_bus_name)),
    //     clock: Arc::new(SystemClock),
    //     budget: Budget::default(),
    // };
    // let deps = &deps;
    // lambda_runtime::run(service_fn(move |event: LambdaEvent<S3Event>| async move {
    //     handle_s3_event(deps, event.payload).await
    // }))
    // .await
    //
    // (and add aws-sdk-dynamodb / aws-sdk-eventbridge to this crate's dependencies if the adapters' constructors
    // take the SDK clients.)
    let _ = (config, sdk);
    Err("media-validator: the AWS adapters are not wired yet (see the WIRING block in src/main.rs)".into())
}
