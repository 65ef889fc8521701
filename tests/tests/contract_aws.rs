//! Every port contract against the AWS adapters, on moto server: DynamoDB, S3 and EventBridge (delivering to SQS).
//! Test names say `against_moto`, so the output shows these ran rather than being skipped.

use postato_tests::{
    contracts::{
        blobs::{blob_store_contract, HttpUploader},
        events::event_sink_contract,
        store,
    },
    moto::{dynamo_stores, event_bus_to_queue, moto_endpoint, moto_sdk_config, s3_blob_store},
};

macro_rules! dynamodb_contracts {
    ($($suite:ident => $test:ident),+ $(,)?) => {
        $(
            #[tokio::test]
            async fn $test() -> anyhow::Result<()> {
                let Some(endpoint) = moto_endpoint() else { return Ok(()) };
                let (stores, table) = dynamo_stores(&moto_sdk_config(&endpoint).await).await?;
                println!("DynamoDB table {table} on moto at {endpoint}");
                store::$suite(&stores).await
            }
        )+
    };
}

dynamodb_contracts!(
    post_crud_contract => dynamodb_against_moto_post_crud_contract,
    idempotency_contract => dynamodb_against_moto_idempotency_contract,
    post_listing_contract => dynamodb_against_moto_post_listing_contract,
    due_index_contract => dynamodb_against_moto_due_index_contract,
    fingerprint_contract => dynamodb_against_moto_fingerprint_contract,
    media_repo_contract => dynamodb_against_moto_media_repo_contract,
    account_repo_contract => dynamodb_against_moto_account_repo_contract,
    workspace_repo_contract => dynamodb_against_moto_workspace_repo_contract,
    oauth_state_repo_contract => dynamodb_against_moto_oauth_state_repo_contract,
    publish_id_lookup_contract => dynamodb_against_moto_publish_id_lookup_contract,
    account_user_lookup_contract => dynamodb_against_moto_account_user_lookup_contract,
);

#[tokio::test]
async fn dynamodb_against_moto_create_table_is_idempotent() -> anyhow::Result<()> {
    let Some(endpoint) = moto_endpoint() else { return Ok(()) };
    let conf = moto_sdk_config(&endpoint).await;
    let (_, table) = dynamo_stores(&conf).await?;
    shared::adapters::dynamo::create_table(&aws_sdk_dynamodb::Client::new(&conf), &table).await?;
    Ok(())
}

#[tokio::test]
async fn s3_against_moto_blob_store_contract() -> anyhow::Result<()> {
    let Some(endpoint) = moto_endpoint() else { return Ok(()) };
    let store = s3_blob_store(&moto_sdk_config(&endpoint).await).await?;
    blob_store_contract(&store, &HttpUploader(reqwest::Client::new())).await
}

#[tokio::test]
async fn eventbridge_against_moto_event_sink_contract() -> anyhow::Result<()> {
    let Some(endpoint) = moto_endpoint() else { return Ok(()) };
    let (sink, inbox) = event_bus_to_queue(&moto_sdk_config(&endpoint).await).await?;
    event_sink_contract(&sink, &inbox).await.map(|_| ())
}
