//! URL import (issue 13 §2) against HTTP servers on loopback: allowed by the flag the local runner sets, refused
//! without it; redirects (followed up to 3, each target checked), size limits from Content-Length and while
//! streaming, the time limit, error statuses; and the imported files validated like uploads (the probe decides
//! the type, not the response's header).

mod support;

use std::time::Duration;

use media_validator::{
    import::{import_url, ImportError, ImportFailure, ImportPolicy},
    validate_object, Outcome,
};
use shared::domain::{MediaKind, MediaStatus};
use support::{media::jpeg, Harness, MemoryBlobStore};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};

/// A loopback HTTP/1.1 server with canned routes; returns its port.
async fn server(video: Vec<u8>, image: Vec<u8>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let (video, image) = (video.clone(), image.clone());
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let line = String::from_utf8_lossy(&request)
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                let path = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
                let ok = |body: &[u8], kind: &str| {
                    let mut r = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: {kind}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                        body.len()
                    )
                    .into_bytes();
                    r.extend_from_slice(body);
                    r
                };
                let redirect = |to: &str| {
                    format!("HTTP/1.1 302 Found\r\nlocation: {to}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                        .into_bytes()
                };
                let response = match path.as_str() {
                    // The header lies about the type: the probe decides.
                    "/video" => ok(&video, "text/plain"),
                    "/image" => ok(&image, "application/octet-stream"),
                    "/declared-too-large" => {
                        b"HTTP/1.1 200 OK\r\ncontent-length: 30000000\r\nconnection: close\r\n\r\n".to_vec()
                    }
                    "/streamed-too-large" => {
                        let head = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n";
                        if socket.write_all(head).await.is_err() {
                            return;
                        }
                        let chunk = vec![0u8; 1 << 20];
                        for _ in 0..25 {
                            let mut framed = format!("{:x}\r\n", chunk.len()).into_bytes();
                            framed.extend_from_slice(&chunk);
                            framed.extend_from_slice(b"\r\n");
                            if socket.write_all(&framed).await.is_err() {
                                return;
                            }
                        }
                        b"0\r\n\r\n".to_vec()
                    }
                    "/slow" => {
                        tokio::time::sleep(Duration::from_secs(30)).await;
                        return;
                    }
                    "/to-metadata" => redirect("http://169.254.169.254/latest/meta-data/"),
                    "/to-private" => redirect("http://10.0.0.1/x"),
                    "/to-file" => redirect("file:///etc/passwd"),
                    p if p.starts_with("/hops/") => {
                        let n: u32 = p.trim_start_matches("/hops/").parse().unwrap_or(0);
                        if n == 0 {
                            redirect("/image")
                        } else {
                            redirect(&format!("/hops/{}", n - 1))
                        }
                    }
                    _ => b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".to_vec(),
                };
                let _ = socket.write_all(&response).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    port
}

fn loopback() -> ImportPolicy {
    ImportPolicy {
        allow_loopback_http: true,
        total_timeout: Duration::from_secs(2),
        ..ImportPolicy::default()
    }
}

fn failure(result: Result<shared::ports::ObjectHead, ImportError>) -> ImportFailure {
    match result {
        Err(ImportError::Failure(f)) => f,
        other => panic!("expected an import failure, got {other:?}"),
    }
}

fn video_bytes() -> Vec<u8> {
    let path = support::corpus::corpus_dir()
        .map(|dir| dir.join("mp4-faststart-1080x1920.mp4"))
        .ok();
    path.and_then(|p| std::fs::read(p).ok()).unwrap_or_else(|| {
        support::media::mp4(&support::media::SyntheticMovie {
            mdat_bytes: 4096,
            ..Default::default()
        })
    })
}

#[tokio::test]
async fn imported_files_stream_into_the_store_and_validate_like_uploads() {
    let video = video_bytes();
    let image = jpeg(1080, 1920);
    let port = server(video.clone(), image.clone()).await;
    let h = Harness::new();
    for (kind, path, bytes) in [(MediaKind::Video, "video", &video), (MediaKind::Image, "image", &image)] {
        let media = h.pending_media(kind).await;
        // `localhost` goes through the guarded resolver (loopback allowed by the flag).
        let url = format!("http://localhost:{port}/{path}");
        let head = import_url(&loopback(), &url, kind, h.blobs.as_ref(), &media.object_key)
            .await
            .expect("imported");
        assert_eq!(head.size, bytes.len() as u64);
        assert_eq!(h.blobs.object(&media.object_key).as_deref(), Some(&bytes[..]));
        let outcome = validate_object(&h.deps, &media.object_key).await.expect("validated");
        assert_eq!(
            outcome,
            Outcome::Validated {
                media_id: media.id.clone(),
                status: MediaStatus::Valid
            },
            "{path}"
        );
    }
}

#[tokio::test]
async fn redirects_are_followed_up_to_three_and_each_target_is_checked() {
    let port = server(Vec::new(), jpeg(108, 192)).await;
    let store = MemoryBlobStore::new();
    let get = |path: &str| {
        let url = format!("http://127.0.0.1:{port}{path}");
        let store = &store;
        async move { import_url(&loopback(), &url, MediaKind::Image, store, "uploads/x").await }
    };
    assert!(get("/hops/2").await.is_ok(), "3 redirects are followed");
    assert_eq!(failure(get("/hops/3").await), ImportFailure::TooManyRedirects(3));
    assert!(matches!(
        failure(get("/to-metadata").await),
        ImportFailure::ForbiddenAddress(_)
    ));
    assert!(matches!(
        failure(get("/to-private").await),
        ImportFailure::ForbiddenAddress(_)
    ));
    assert!(matches!(
        failure(get("/to-file").await),
        ImportFailure::SchemeRefused(_)
    ));
}

#[tokio::test]
async fn size_time_and_status_limits_end_the_import_with_a_clear_code() {
    let port = server(Vec::new(), Vec::new()).await;
    let store = MemoryBlobStore::new();
    let get = |path: &str| {
        let url = format!("http://127.0.0.1:{port}{path}");
        let store = &store;
        async move { import_url(&loopback(), &url, MediaKind::Image, store, "uploads/y").await }
    };
    let declared = failure(get("/declared-too-large").await);
    assert_eq!(declared, ImportFailure::TooLarge { limit: 20_000_000 });
    assert_eq!(declared.code(), "source_too_large");
    assert_eq!(
        failure(get("/streamed-too-large").await),
        ImportFailure::TooLarge { limit: 20_000_000 }
    );
    let slow = failure(get("/slow").await);
    assert_eq!(slow.code(), "source_timeout", "{slow:?}");
    let missing = failure(get("/missing").await);
    assert_eq!(missing.code(), "source_unreachable", "{missing:?}");
    assert!(
        store.object("uploads/y").is_none(),
        "nothing is stored by a failed import"
    );
}

#[tokio::test]
async fn without_the_flag_loopback_and_plain_http_are_refused() {
    let port = server(Vec::new(), jpeg(108, 192)).await;
    let store = MemoryBlobStore::new();
    let strict = ImportPolicy::default();
    let plain = import_url(
        &strict,
        &format!("http://127.0.0.1:{port}/image"),
        MediaKind::Image,
        &store,
        "k",
    )
    .await;
    assert_eq!(failure(plain), ImportFailure::SchemeRefused("http".into()));
    // https to a name that resolves to loopback: refused by the resolver before any connection.
    let named = import_url(
        &strict,
        &format!("https://localhost:{port}/image"),
        MediaKind::Image,
        &store,
        "k",
    )
    .await;
    let named = failure(named);
    assert_eq!(named.code(), "source_forbidden_address", "{named:?}");
    let literal = import_url(&strict, "https://[::1]/image", MediaKind::Image, &store, "k").await;
    assert_eq!(failure(literal).code(), "source_forbidden_address");
    let metadata = import_url(&strict, "https://169.254.169.254/", MediaKind::Image, &store, "k").await;
    assert_eq!(failure(metadata).code(), "source_forbidden_address");
}

/// A failed import ends the media `invalid` with the failure's code, announced as `media.rejected`.
#[tokio::test]
async fn a_failed_import_ends_the_media_invalid_with_its_code() {
    let port = server(Vec::new(), Vec::new()).await;
    let h = Harness::new();
    let media = h.pending_media(MediaKind::Image).await;
    let url = format!("http://127.0.0.1:{port}/missing");
    let outcome = media_validator::import_media(&h.deps, &loopback(), &media.id, &url)
        .await
        .expect("handled");
    assert_eq!(
        outcome,
        Outcome::Validated {
            media_id: media.id.clone(),
            status: MediaStatus::Invalid
        }
    );
    let stored = h.repo.get(&media.id).expect("media");
    assert_eq!(stored.status, MediaStatus::Invalid);
    let verdict = stored.verdict.expect("verdict");
    assert_eq!(verdict.violations[0].code, "source_unreachable");
    let events = h.events.published();
    assert_eq!(events.last().map(|e| e.event_type.as_str()), Some("media.rejected"));

    // And a good URL through the same entry point: imported, then validated.
    let image_port = server(Vec::new(), jpeg(1080, 1920)).await;
    let good = h.pending_media(MediaKind::Image).await;
    let url = format!("http://localhost:{image_port}/image");
    let outcome = media_validator::import_media(&h.deps, &loopback(), &good.id, &url)
        .await
        .expect("handled");
    assert_eq!(
        outcome,
        Outcome::Validated {
            media_id: good.id.clone(),
            status: MediaStatus::Valid
        }
    );
}
