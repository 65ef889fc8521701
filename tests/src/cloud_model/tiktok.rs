//! TikTok in the model: the sandbox (its checks, its 6 inits a minute per token, its processing), on the model's
//! virtual clock, answering each endpoint after a realistic latency. TikTok documents no latencies: each is an
//! assumption for a client in us-east-1, one TLS round trip (~50–100 ms) plus the server's own time.

use std::time::Duration;

use shared::tiktok::TikTokTimeouts;
use tiktok_sandbox::{Endpoint, FaultAction, FaultSpec, Sandbox};

/// creator_info: a read of the creator's settings.
pub const CREATOR_INFO: Duration = Duration::from_millis(150);
/// video/init and content/init: TikTok creates the publish (and for FILE_UPLOAD an upload URL).
pub const INIT: Duration = Duration::from_millis(300);
/// One chunk PUT: a 10 MB chunk at ~100 Mbit/s from a Lambda in the same continent.
pub const CHUNK_PUT: Duration = Duration::from_millis(800);
/// status/fetch: a read.
pub const STATUS_FETCH: Duration = Duration::from_millis(120);
/// oauth/token: a refresh.
pub const TOKEN: Duration = Duration::from_millis(200);
/// From the last chunk to PUBLISH_COMPLETE: TikTok's processing of a short video.
pub const PROCESSING: Duration = Duration::from_secs(20);

const LATENCIES: [(Endpoint, Duration); 6] = [
    (Endpoint::CreatorInfo, CREATOR_INFO),
    (Endpoint::VideoInit, INIT),
    (Endpoint::ContentInit, INIT),
    (Endpoint::Upload, CHUNK_PUT),
    (Endpoint::StatusFetch, STATUS_FETCH),
    (Endpoint::Token, TOKEN),
];

/// The client's timeouts in the model: far above every latency, so that a call never fails on a rare early jump of
/// the virtual clock; TikTok's failures are not what the model measures.
pub const CLIENT_TIMEOUTS: TikTokTimeouts = TikTokTimeouts {
    connect: Duration::from_secs(600),
    request: Duration::from_secs(600),
    upload_chunk: Duration::from_secs(600),
};

/// Every endpoint answers after its latency. The request is handled (and logged, rate windows counted) when it
/// arrives; the wait is the answer's way back, as the sandbox's "delay after" fault plays it.
pub fn install_latencies(sandbox: &Sandbox) {
    for (endpoint, latency) in LATENCIES {
        let ms = u64::try_from(latency.as_millis()).unwrap_or(u64::MAX);
        sandbox.inject_fault(FaultSpec {
            times: None,
            ..FaultSpec::new(endpoint, FaultAction::DelayAfter { ms })
        });
    }
}

pub fn sandbox_settings() -> tiktok_sandbox::Settings {
    tiktok_sandbox::Settings {
        processing_delay_ms: u64::try_from(PROCESSING.as_millis()).unwrap_or(u64::MAX),
        ..Default::default()
    }
}
