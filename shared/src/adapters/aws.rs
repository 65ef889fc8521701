//! Wiring the AWS adapters once, the same way for every function and for the local runner's `--backend aws`.
//! Endpoints move by configuration (`AWS_ENDPOINT_URL`, e.g. moto), never by `if local` branches.

use std::sync::Arc;

use aws_config::BehaviorVersion;

use super::{
    dynamo::DynamoStore,
    eventbridge::EventBridgeSink,
    s3::S3BlobStore,
    sqs::{SqsMediaJobs, SqsTimer},
};
use crate::{config::EnvVars, ports::Stores};

/// The names of the stack's resources, from the functions' environment.
#[derive(Debug, Clone)]
pub struct AwsResources {
    pub table_name: String,
    pub media_bucket: String,
    pub event_bus_name: String,
}

pub struct AwsAdapters {
    pub sdk_config: aws_config::SdkConfig,
    pub stores: Stores,
    pub dynamo: Arc<DynamoStore>,
    pub blobs: Arc<S3BlobStore>,
    pub events: Arc<EventBridgeSink>,
    sqs: aws_sdk_sqs::Client,
}

impl AwsAdapters {
    /// Loads the standard AWS configuration (credentials, region, endpoint overrides) and builds every adapter.
    /// No network call is made here, so a cold start stays cheap.
    pub async fn connect(resources: &AwsResources, env: &EnvVars) -> Self {
        let sdk_config = aws_config::defaults(BehaviorVersion::latest()).load().await;
        Self::from_sdk_config(sdk_config, resources, env)
    }

    pub fn from_sdk_config(sdk_config: aws_config::SdkConfig, resources: &AwsResources, env: &EnvVars) -> Self {
        // A local endpoint (moto, MinIO) cannot serve virtual-hosted bucket names.
        let endpoint_overridden =
            env.optional("AWS_ENDPOINT_URL").is_some() || env.optional("AWS_ENDPOINT_URL_S3").is_some();
        let dynamo = Arc::new(DynamoStore::new(
            aws_sdk_dynamodb::Client::new(&sdk_config),
            resources.table_name.clone(),
        ));
        let blobs = Arc::new(S3BlobStore::new(
            super::s3::s3_client(&sdk_config, endpoint_overridden),
            resources.media_bucket.clone(),
        ));
        let events = Arc::new(EventBridgeSink::new(
            aws_sdk_eventbridge::Client::new(&sdk_config),
            resources.event_bus_name.clone(),
        ));
        Self {
            stores: Stores::from_adapter(dynamo.clone()),
            sqs: aws_sdk_sqs::Client::new(&sdk_config),
            sdk_config,
            dynamo,
            blobs,
            events,
        }
    }
}

impl AwsAdapters {
    /// The publisher's timer queue (`TIMER_QUEUE_URL`), for the functions that arm wakeups.
    pub fn timer(&self, queue_url: &str) -> Arc<SqsTimer> {
        Arc::new(SqsTimer::new(self.sqs.clone(), queue_url))
    }

    /// The media worker's job queue (`MEDIA_JOBS_QUEUE_URL`), for the functions that hand it URL imports and remuxes.
    pub fn media_jobs(&self, queue_url: &str) -> Arc<SqsMediaJobs> {
        Arc::new(SqsMediaJobs::new(self.sqs.clone(), queue_url))
    }
}

impl AwsResources {
    pub fn from_env(env: &EnvVars) -> Result<Self, crate::config::ConfigError> {
        Ok(Self {
            table_name: env.required("TABLE_NAME")?,
            media_bucket: env.required("MEDIA_BUCKET")?,
            event_bus_name: env.required("EVENT_BUS_NAME")?,
        })
    }
}
