//! Peak memory of FILE_UPLOAD: a 1 GiB and a 2 GiB video sent to TikTok's sandbox chunk by chunk.
//!
//! `cargo bench -p postato-tests --bench upload_memory`
//!
//! This process hosts the sandbox; each upload runs in a child process of this same binary, which reports its own
//! peak resident set (VmHWM) so the sandbox's memory is not counted. The videos are sparse files: no disk is used.

use std::{process::Command, sync::Arc, time::Instant};

use anyhow::Context;
use bytes::Bytes;
use chrono::{Duration, Utc};
use publisher::{PublisherDeps, PublisherSettings};
use shared::{
    accounts::TokenService,
    adapters::{local_blobs::LocalBlobStore, memory::RecordingEventSink, sqlite::SqliteStore},
    domain::{
        Account, Media, MediaFacts, MediaKind, MediaStatus, MediaVerdict, Post, PostOptions, PostStatus, PostType,
        Privacy, SealedTokens,
    },
    ids::{MediaId, PostId, WorkspaceId},
    ports::{BlobStore, Stores},
    tiktok::{SecretString, TikTokClient, TikTokConfig, TokenBinding, TokenCipher},
    SystemClock,
};
use tiktok_sandbox::{AccountSpec, SandboxConfig};

const GIB: u64 = 1024 * 1024 * 1024;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if let Some(size) = args.iter().position(|a| a == "--child").and_then(|i| args.get(i + 1)) {
        return tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(child(size.parse()?));
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(parent())
}

async fn parent() -> anyhow::Result<()> {
    let sandbox = tiktok_sandbox::spawn(SandboxConfig::default()).await?;
    println!("| video | chunks | chunk size | baseline RSS | peak RSS | time |");
    println!("|---|---|---|---|---|---|");
    for size in [GIB, 2 * GIB] {
        let open_id = sandbox.create_account(AccountSpec::public());
        let tokens = sandbox.issue_tokens(&open_id, None).context("tokens")?;
        let output = Command::new(std::env::current_exe()?)
            .args(["--child", &size.to_string()])
            .env("SANDBOX_URL", sandbox.base_url())
            .env("SANDBOX_ACCESS", &tokens.access_token)
            .env("SANDBOX_REFRESH", &tokens.refresh_token)
            .env("SANDBOX_OPEN_ID", &open_id)
            .output()?;
        anyhow::ensure!(
            output.status.success(),
            "child failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        print!("{}", String::from_utf8_lossy(&output.stdout));
    }
    sandbox.shutdown().await;
    Ok(())
}

async fn child(size: u64) -> anyhow::Result<()> {
    let env = |name: &str| std::env::var(name).with_context(|| format!("{name} not set"));
    let dir = tempfile::tempdir()?;
    let stores = Stores::from_adapter(Arc::new(SqliteStore::in_memory()?));
    let blobs = Arc::new(LocalBlobStore::new(
        dir.path().join("media"),
        "http://unused".into(),
        [1; 32],
    ));
    let cipher = Arc::new(TokenCipher::new(&[2; 32]));
    let events = Arc::new(RecordingEventSink::new());
    let clock = Arc::new(SystemClock);
    let sandbox_url = env("SANDBOX_URL")?;
    let tiktok = TikTokConfig {
        api_base_url: sandbox_url.clone(),
        auth_base_url: env("SANDBOX_URL")?,
        client_key: "sandbox-client-key".into(),
        client_secret: SecretString::from("sandbox-client-secret"),
        redirect_uri: "http://127.0.0.1/callback".into(),
        app_audited: true,
        timeouts: Default::default(),
        upload_hosts: shared::tiktok::UploadHosts::host_of(&sandbox_url).context("SANDBOX_URL has no host")?,
    };
    let tokens = TokenService::new(
        &stores,
        TikTokClient::new(tiktok)?,
        cipher.clone(),
        events.clone(),
        clock.clone(),
    );
    let deps = PublisherDeps::new(
        stores.clone(),
        blobs.clone(),
        events,
        clock,
        tokens,
        PublisherSettings::default(),
        Arc::new(shared::adapters::memory::RecordingTimer::default()),
    );

    let now = Utc::now();
    let workspace = WorkspaceId::new();
    let blank = Account::new_connected(workspace.clone(), env("SANDBOX_OPEN_ID")?, now);
    let account = Account {
        display_name: "Bench".into(),
        scopes: vec!["video.publish".into()],
        tokens: Some(SealedTokens {
            access_token: cipher.seal(
                &SecretString::from(env("SANDBOX_ACCESS")?),
                &TokenBinding::access(&blank.id),
            )?,
            access_expires_at: now + Duration::hours(2),
            refresh_token: cipher.seal(
                &SecretString::from(env("SANDBOX_REFRESH")?),
                &TokenBinding::refresh(&blank.id),
            )?,
            refresh_expires_at: now + Duration::days(30),
        }),
        terms_accepted_at: Some(now),
        ..blank
    };
    stores.accounts.create_account(&account).await?;

    // A sparse file: an ISO-BMFF header (TikTok checks the format) followed by zeros that take no disk.
    let media_id = MediaId::new();
    let key = Media::object_key_for(&workspace, &media_id);
    blobs
        .put(
            &key,
            Bytes::from_static(b"\0\0\0\x18ftypisom\0\0\x02\0isomiso2"),
            "video/mp4",
        )
        .await?;
    std::fs::OpenOptions::new()
        .write(true)
        .open(blobs.object_path(&key)?)?
        .set_len(size)?;
    let etag = blobs.head(&key).await?.etag;
    let media = Media {
        id: media_id.clone(),
        workspace_id: workspace.clone(),
        kind: MediaKind::Video,
        content_type: "video/mp4".into(),
        declared_size: size,
        file_name: "big.mp4".into(),
        object_key: key,
        status: MediaStatus::Valid,
        verdict: Some(MediaVerdict {
            accepted: true,
            detected_kind: "video".into(),
            violations: vec![],
            warnings: vec![],
            facts: MediaFacts {
                container: Some("mp4".into()),
                size_bytes: size,
                duration_ms: Some(60_000),
                ..Default::default()
            },
            fingerprint: Some(format!("bench-{media_id}")),
            rendition_key: None,
            rendition: None,
            info: Vec::new(),
            etag: Some(etag),
            validated_at: now,
        }),
        created_at: now,
        updated_at: now,
        version: 1,
        waiting_posts: Vec::new(),
    };
    stores.media.create_media(&media).await?;
    let post = Post {
        id: PostId::new(),
        workspace_id: workspace,
        account_id: account.id,
        status: PostStatus::Scheduled,
        post_type: PostType::Video,
        content: "memory".into(),
        media: vec![media_id],
        options: PostOptions {
            privacy: Some(Privacy::Private),
            ..PostOptions::default()
        },
        scheduled_at: Some(now),
        warnings: vec![],
        publish: Default::default(),
        failure: None,
        outbox: vec![],
        audit: vec![],
        created_at: now,
        updated_at: now,
        version: 1,
    };
    stores.posts.create_post(&post, None).await?;

    let baseline = peak_rss_kib()?;
    let started = Instant::now();
    let handled =
        postato_tests::publishing::handle_through_upload(&deps, &post.id, Utc::now() + Duration::minutes(15)).await?;
    anyhow::ensure!(
        matches!(handled, publisher::Handled::Published { .. }),
        "upload ended as {handled:?}"
    );
    let stored = stores.posts.get_post(&post.id).await?.context("post")?;
    let (chunks, chunk_size) = match stored.publish.transfer {
        Some(shared::domain::Transfer::FileUpload {
            total_chunks,
            chunk_size,
            ..
        }) => (total_chunks, chunk_size),
        _ => (0, 0),
    };
    println!(
        "| {} GiB | {chunks} | {} MiB | {} MiB | {} MiB | {:.1} s |",
        size / GIB,
        chunk_size / (1024 * 1024),
        baseline / 1024,
        peak_rss_kib()? / 1024,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The process's peak resident set so far (VmHWM), in KiB.
fn peak_rss_kib() -> anyhow::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("VmHWM not found")
}
