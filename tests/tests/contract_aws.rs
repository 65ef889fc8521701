//! Every port contract against the AWS adapters, on moto server: DynamoDB, S3, EventBridge (delivering to SQS) and
//! the SQS timer and the SQS media job queue.
//! Test names say `against_moto`, so the output shows these ran rather than being skipped.

use postato_tests::{
    contracts::{
        blobs::{blob_store_contract, HttpUploader},
        events::event_sink_contract,
        media_jobs::media_jobs_contract,
        store,
        timer::timer_contract,
    },
    moto::{
        dynamo_stores, event_bus_to_queue, moto_endpoint, moto_sdk_config, s3_blob_store, sqs_media_jobs, sqs_timer,
    },
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
    dispatch_watermark_contract => dynamodb_against_moto_dispatch_watermark_contract,
    fingerprint_contract => dynamodb_against_moto_fingerprint_contract,
    media_repo_contract => dynamodb_against_moto_media_repo_contract,
    media_batch_read_contract => dynamodb_against_moto_media_batch_read_contract,
    account_repo_contract => dynamodb_against_moto_account_repo_contract,
    workspace_repo_contract => dynamodb_against_moto_workspace_repo_contract,
    oauth_state_repo_contract => dynamodb_against_moto_oauth_state_repo_contract,
    publish_id_lookup_contract => dynamodb_against_moto_publish_id_lookup_contract,
    account_user_lookup_contract => dynamodb_against_moto_account_user_lookup_contract,
    webhook_delivery_contract => dynamodb_against_moto_webhook_delivery_contract,
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

#[tokio::test]
async fn sqs_against_moto_timer_contract() -> anyhow::Result<()> {
    let Some(endpoint) = moto_endpoint() else { return Ok(()) };
    let timer = sqs_timer(&moto_sdk_config(&endpoint).await).await?;
    timer_contract(&timer, std::time::Duration::from_secs(1)).await
}

#[tokio::test]
async fn sqs_against_moto_media_jobs_contract() -> anyhow::Result<()> {
    let Some(endpoint) = moto_endpoint() else { return Ok(()) };
    let queue = sqs_media_jobs(&moto_sdk_config(&endpoint).await).await?;
    media_jobs_contract(&queue, std::time::Duration::from_secs(1)).await
}

/// The lifecycle rule that deletes abandoned uploads (template.yaml) relies on this: an upload through the presigned
/// target arrives tagged pending, and marking it kept re-tags it.
#[tokio::test]
async fn s3_against_moto_uploads_arrive_tagged_pending_and_marking_kept_retags_them() -> anyhow::Result<()> {
    use shared::{
        adapters::s3::{STATE_KEPT, STATE_PENDING, STATE_TAG},
        ports::BlobStore,
    };
    let Some(endpoint) = moto_endpoint() else { return Ok(()) };
    let conf = moto_sdk_config(&endpoint).await;
    let store = s3_blob_store(&conf).await?;
    let client = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&conf).force_path_style(true).build());
    let state = |key: &'static str| {
        let (client, bucket) = (client.clone(), store.bucket().to_owned());
        async move {
            let tags = client.get_object_tagging().bucket(bucket).key(key).send().await?;
            anyhow::Ok(
                tags.tag_set()
                    .iter()
                    .find(|tag| tag.key() == STATE_TAG)
                    .map(|tag| tag.value().to_owned()),
            )
        }
    };
    let key = "uploads/ws_1/med_tagged";
    let target = store
        .presign_upload(key, "image/jpeg", 4, chrono::Utc::now(), chrono::Duration::minutes(5))
        .await?;
    postato_tests::contracts::blobs::Uploader::upload(
        &HttpUploader(reqwest::Client::new()),
        &target,
        bytes::Bytes::from_static(b"jpeg"),
    )
    .await?;
    assert_eq!(state(key).await?.as_deref(), Some(STATE_PENDING));

    let public = "public/0123456789abcdef0123456789abcdef/0.jpg";
    store.copy(key, public).await?;
    assert_eq!(
        state(public).await?,
        None,
        "a public copy carries no upload tag (copying tags would need tagging grants)"
    );

    store.mark_kept(key).await?;
    assert_eq!(state(key).await?.as_deref(), Some(STATE_KEPT));
    assert!(matches!(
        store.mark_kept("uploads/ws_1/missing").await,
        Err(shared::ports::BlobError::NotFound(_))
    ));
    Ok(())
}

/// The duplicate rule's records would otherwise pile up, one per published media item: DynamoDB's TTL removes each a
/// day after it stops mattering.
#[tokio::test]
async fn dynamodb_against_moto_fingerprint_records_expire_after_the_duplicate_window() -> anyhow::Result<()> {
    use chrono::{Duration, TimeZone, Utc};
    use shared::{
        adapters::dynamo::TTL_ATTRIBUTE,
        ids::{AccountId, PostId},
        rules::post::DUPLICATE_WINDOW_DAYS,
    };
    let Some(endpoint) = moto_endpoint() else { return Ok(()) };
    let conf = moto_sdk_config(&endpoint).await;
    let (stores, table) = dynamo_stores(&conf).await?;
    let sent_at = Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap();
    stores
        .posts
        .record_fingerprint(&AccountId::new(), "sha-a", &PostId::new(), sent_at)
        .await?;

    let items = aws_sdk_dynamodb::Client::new(&conf)
        .scan()
        .table_name(&table)
        .send()
        .await?;
    let [item] = items.items() else {
        anyhow::bail!("expected one item, got {:?}", items.items())
    };
    let expires_at: i64 = item
        .get(TTL_ATTRIBUTE)
        .and_then(|value| value.as_n().ok())
        .ok_or_else(|| anyhow::anyhow!("no {TTL_ATTRIBUTE} on {item:?}"))?
        .parse()?;
    assert_eq!(
        expires_at,
        (sent_at + Duration::days(DUPLICATE_WINDOW_DAYS + 1)).timestamp()
    );
    Ok(())
}

/// What exposing media for PULL_FROM_URL adds to an init's lateness (the publisher copies a post's objects to public/
/// at once, after the claim): 35-photo carousels of 4 and 20 MiB JPEGs, and videos of 64 and 256 MiB. Against moto on this
/// machine, not S3: the README quotes the figures with that caveat. Run by hand:
/// `cargo test -p postato-tests --test contract_aws -- --ignored --nocapture s3_against_moto_public_copy_times`.
#[tokio::test]
#[ignore = "a measurement, minutes long"]
async fn s3_against_moto_public_copy_times() -> anyhow::Result<()> {
    use shared::ports::BlobStore;
    let Some(endpoint) = moto_endpoint() else { return Ok(()) };
    let store = s3_blob_store(&moto_sdk_config(&endpoint).await).await?;
    let sets: [(&str, usize, usize); 4] = [
        ("35 photos of 4 MiB", 35, 4 << 20),
        ("35 photos of 20 MiB (the guide's largest)", 35, 20 << 20),
        ("a 64 MiB video", 1, 64 << 20),
        ("a 256 MiB video", 1, 256 << 20),
    ];
    for (name, count, size) in sets {
        let sources: Vec<String> = (0..count).map(|n| format!("uploads/measure/{size}-{n}")).collect();
        for key in &sources {
            store
                .put(key, bytes::Bytes::from(vec![0x5a; size]), "image/jpeg")
                .await?;
        }
        let mut runs = Vec::new();
        for run in 0..3 {
            let started = std::time::Instant::now();
            let targets: Vec<String> = (0..count).map(|n| format!("public/measure{run}/{size}-{n}")).collect();
            futures::future::try_join_all(sources.iter().zip(&targets).map(|(from, to)| store.copy(from, to))).await?;
            runs.push(started.elapsed().as_millis());
        }
        println!("{name}: copies in {runs:?} ms");
    }
    Ok(())
}
