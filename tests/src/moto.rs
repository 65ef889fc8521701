//! Test support for the AWS adapters against moto server.
//!
//! The test command (`infra/test.sh`) starts `moto_server` and exports `POSTATO_MOTO_ENDPOINT`. Without it a test
//! that needs moto says it was skipped and passes, unless `POSTATO_FULL_TESTS=1`, where skipping is a failure.
//! moto's reset is global and tests run in parallel, so nothing here resets: every table, bucket, bus and queue gets
//! a unique name instead.

use std::{sync::Arc, time::Duration};

use anyhow::Context as _;
use async_trait::async_trait;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_sqs::types::QueueAttributeName;
use shared::{
    adapters::{dynamo, eventbridge::EventBridgeSink, s3::S3BlobStore},
    events::{Event, EVENT_SOURCE},
    ports::Stores,
};
use tokio::sync::Mutex;

use crate::contracts::events::EventInbox;

pub const ENDPOINT_VAR: &str = "POSTATO_MOTO_ENDPOINT";
pub const FULL_TESTS_VAR: &str = "POSTATO_FULL_TESTS";

pub(crate) fn full_tests() -> bool {
    std::env::var(FULL_TESTS_VAR).is_ok_and(|value| !matches!(value.trim(), "" | "0" | "false"))
}

/// moto's endpoint, or `None` after printing why the test is skipped. Panics (fails the test) when the full suite
/// was asked for and moto is missing, so a CI run can never pass by skipping.
pub fn moto_endpoint() -> Option<String> {
    match std::env::var(ENDPOINT_VAR) {
        Ok(endpoint) if !endpoint.trim().is_empty() => Some(endpoint.trim().to_owned()),
        _ if full_tests() => {
            panic!("{FULL_TESTS_VAR}=1 but {ENDPOINT_VAR} is not set: start moto (infra/test.sh does)")
        }
        _ => {
            announce(&format!("skipped: {ENDPOINT_VAR} not set (infra/test.sh sets it)\n"));
            None
        }
    }
}

/// Writes past the test harness's capture (which only takes `print!`), so a skip shows in a passing run.
pub(crate) fn announce(line: &str) {
    use std::io::Write as _;
    if std::io::stderr().write_all(line.as_bytes()).is_err() {
        print!("{line}");
    }
}

/// AWS configuration pointing every client at moto, with moto's dummy credentials.
pub async fn moto_sdk_config(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "testing", "testing", None, None, "moto",
        ))
        .load()
        .await
}

/// A name no other test uses (lower case: S3 bucket names must be).
pub fn unique_name() -> String {
    format!("postato-test-{}", ulid::Ulid::new().to_string().to_lowercase())
}

/// A fresh table with Postato's schema, and the store on it.
pub async fn dynamo_stores(conf: &SdkConfig) -> anyhow::Result<(Stores, String)> {
    let client = aws_sdk_dynamodb::Client::new(conf);
    let table = unique_name();
    dynamo::create_table(&client, &table)
        .await
        .context("creating the table in moto")?;
    Ok((
        Stores::from_adapter(Arc::new(dynamo::DynamoStore::new(client, table.clone()))),
        table,
    ))
}

/// A fresh bucket, and the blob store on it.
pub async fn s3_blob_store(conf: &SdkConfig) -> anyhow::Result<S3BlobStore> {
    let client = shared::adapters::s3::s3_client(conf, true);
    let bucket = unique_name();
    client
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .context("creating the bucket in moto")?;
    Ok(S3BlobStore::new(client, bucket))
}

/// A fresh event bus whose rule sends every `postato` event to a fresh SQS queue, where the inbox reads them.
pub async fn event_bus_to_queue(conf: &SdkConfig) -> anyhow::Result<(EventBridgeSink, SqsInbox)> {
    let events = aws_sdk_eventbridge::Client::new(conf);
    let sqs = aws_sdk_sqs::Client::new(conf);
    let bus = unique_name();
    events
        .create_event_bus()
        .name(&bus)
        .send()
        .await
        .context("creating the bus")?;
    let queue_url = sqs
        .create_queue()
        .queue_name(unique_name())
        .send()
        .await
        .context("creating the queue")?
        .queue_url()
        .context("the new queue's URL")?
        .to_owned();
    let queue_arn = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await?
        .attributes()
        .and_then(|attributes| attributes.get(&QueueAttributeName::QueueArn))
        .context("the new queue's ARN")?
        .to_owned();
    let rule = unique_name();
    events
        .put_rule()
        .name(&rule)
        .event_bus_name(&bus)
        .event_pattern(serde_json::json!({ "source": [EVENT_SOURCE] }).to_string())
        .send()
        .await
        .context("creating the rule")?;
    events
        .put_targets()
        .rule(&rule)
        .event_bus_name(&bus)
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("queue")
                .arn(queue_arn)
                .build()?,
        )
        .send()
        .await
        .context("targeting the queue")?;
    Ok((
        EventBridgeSink::new(events, bus),
        SqsInbox {
            sqs,
            queue_url,
            seen: Mutex::new(Vec::new()),
        },
    ))
}

/// Reads the events EventBridge delivered to a queue, checking the envelope Postato promises.
pub struct SqsInbox {
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    seen: Mutex<Vec<Event>>,
}

#[derive(serde::Deserialize)]
struct Envelope {
    source: String,
    #[serde(rename = "detail-type")]
    detail_type: String,
    detail: Event,
}

#[async_trait]
impl EventInbox for SqsInbox {
    async fn receive(&self, count: usize, within: Duration) -> anyhow::Result<Vec<Event>> {
        let deadline = tokio::time::Instant::now() + within;
        let mut seen = self.seen.lock().await;
        while seen.len() < count && tokio::time::Instant::now() < deadline {
            let output = self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .send()
                .await?;
            for message in output.messages() {
                let envelope: Envelope = serde_json::from_str(message.body().context("a message without a body")?)
                    .context("an EventBridge envelope")?;
                anyhow::ensure!(envelope.source == EVENT_SOURCE, "source {}", envelope.source);
                anyhow::ensure!(
                    envelope.detail_type == envelope.detail.event_type.as_str(),
                    "detail-type {}",
                    envelope.detail_type
                );
                seen.push(envelope.detail);
                if let Some(receipt) = message.receipt_handle() {
                    self.sqs
                        .delete_message()
                        .queue_url(&self.queue_url)
                        .receipt_handle(receipt)
                        .send()
                        .await?;
                }
            }
        }
        Ok(seen.clone())
    }
}

/// A fresh queue, as template.yaml's TimerQueue but with a one-second visibility timeout so that the contract sees
/// an unacknowledged delivery come again quickly; and the timer on it.
pub async fn sqs_timer(conf: &SdkConfig) -> anyhow::Result<shared::adapters::sqs::SqsTimer> {
    let (sqs, queue_url) = queue_redelivering_after_a_second(conf).await?;
    Ok(shared::adapters::sqs::SqsTimer::new(sqs, queue_url))
}

/// A fresh queue with a one-second visibility timeout, and a client for it.
async fn queue_redelivering_after_a_second(conf: &SdkConfig) -> anyhow::Result<(aws_sdk_sqs::Client, String)> {
    let sqs = aws_sdk_sqs::Client::new(conf);
    let queue_url = sqs
        .create_queue()
        .queue_name(unique_name())
        .attributes(QueueAttributeName::VisibilityTimeout, "1")
        .send()
        .await
        .context("creating the queue")?
        .queue_url()
        .context("the new queue's URL")?
        .to_owned();
    Ok((sqs, queue_url))
}

/// A fresh queue, as template.yaml's MediaJobsQueue but with a one-second visibility timeout so that the contract
/// sees an unacknowledged job come again quickly; and the job queue on it.
pub async fn sqs_media_jobs(conf: &SdkConfig) -> anyhow::Result<shared::adapters::sqs::SqsMediaJobs> {
    let (sqs, queue_url) = queue_redelivering_after_a_second(conf).await?;
    Ok(shared::adapters::sqs::SqsMediaJobs::new(sqs, queue_url))
}
