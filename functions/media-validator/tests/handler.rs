//! The Lambda handler over fake ports: verdicts, status transitions, events, retries and duplicates.

mod support;

use std::sync::atomic::Ordering;

use image::ImageFormat;
use media_validator::{handle_s3_event, validate_object, verdict::codes, Ignored, Outcome, ValidatorError};
use shared::{
    domain::{Media, MediaKind, MediaStatus, RenditionStatus},
    events::EventType,
    ids::PostId,
    ports::{ByteRange, MediaRepo},
};
use support::{
    media::{bx, jpeg, mp4, png, SyntheticMovie},
    s3_event, Harness, MemoryBlobStore,
};

fn violation_codes(media: &Media) -> Vec<String> {
    media
        .verdict
        .iter()
        .flat_map(|v| v.violations.iter().map(|f| f.code.clone()))
        .collect()
}

#[tokio::test]
async fn when_a_valid_image_arrives_the_media_becomes_valid_and_an_event_announces_it() {
    let h = Harness::new();
    let media = h.pending_media(MediaKind::Image).await;
    let etag = h.blobs.insert(&media.object_key, jpeg(1080, 1920));

    handle_s3_event(&h.deps, s3_event(&media.object_key, &etag, 0))
        .await
        .expect("handled");

    let stored = h.repo.get(&media.id).expect("media");
    assert_eq!(stored.status, MediaStatus::Valid);
    let verdict = stored.verdict.expect("verdict");
    assert!(verdict.accepted && verdict.warnings.is_empty(), "{verdict:?}");
    assert_eq!(verdict.detected_kind, "image");
    assert_eq!(verdict.etag.as_deref(), Some(etag.as_str()));
    assert_eq!(verdict.facts.format.as_deref(), Some("jpeg"));
    assert_eq!(verdict.fingerprint.as_ref().map(String::len), Some(64));
    // pending_upload → validating → valid: two compare-and-set writes.
    assert_eq!(h.repo.updates.load(Ordering::SeqCst), 2);
    let events = h.events.published();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event_type, EventType::MediaValidated);
    assert_eq!(events[0].media_id.as_ref(), Some(&media.id));
    assert_eq!(events[0].workspace_id, media.workspace_id);
    assert_eq!(events[0].data["accepted"], true);
    assert_eq!(*h.blobs.kept.lock().unwrap(), vec![media.object_key.clone()]);
}

/// Posts due while their media was on its way wait on it (the publisher put them on its list): the verdict wakes
/// them at once, accepted or not, and empties the list in the same write.
#[tokio::test]
async fn when_posts_wait_for_the_verdict_it_wakes_them_at_once_whatever_it_says() {
    for (bytes, status) in [
        (jpeg(1080, 1920), MediaStatus::Valid),
        (b"not an image".to_vec(), MediaStatus::Invalid),
    ] {
        let h = Harness::new();
        let mut media = h.pending_media(MediaKind::Image).await;
        let waiting = [PostId::new(), PostId::new()];
        let before = media.version;
        media.waiting_posts = waiting.to_vec();
        media.version += 1;
        h.repo
            .update_media(&media, before)
            .await
            .expect("waiting posts recorded");
        let etag = h.blobs.insert(&media.object_key, bytes);

        handle_s3_event(&h.deps, s3_event(&media.object_key, &etag, 0))
            .await
            .expect("handled");

        let stored = h.repo.get(&media.id).expect("media");
        assert_eq!(stored.status, status);
        assert!(stored.waiting_posts.is_empty(), "{:?}", stored.waiting_posts);
        let woken: Vec<_> = h.timer.wakeups().into_iter().map(|w| (w.post_id, w.at)).collect();
        let now = h.deps.clock.now();
        assert_eq!(woken, waiting.map(|post| (post, now)).to_vec());
    }
}

#[tokio::test]
async fn when_the_file_is_garbage_the_verdict_is_invalid_and_the_invocation_succeeds() {
    let h = Harness::new();
    let media = h.pending_media(MediaKind::Video).await;
    let etag = h.blobs.insert(
        &media.object_key,
        b"this is not a video at all, just some text".to_vec(),
    );

    handle_s3_event(&h.deps, s3_event(&media.object_key, &etag, 0))
        .await
        .expect("a verdict, not an error");

    let stored = h.repo.get(&media.id).expect("media");
    assert_eq!(stored.status, MediaStatus::Invalid);
    assert_eq!(violation_codes(&stored), [codes::FILE_FORMAT]);
    let events = h.events.published();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event_type, EventType::MediaRejected);
    assert_eq!(events[0].data["violations"][0], codes::FILE_FORMAT);
    // Left tagged pending: the bucket's lifecycle rule deletes the rejected file after a day.
    assert!(h.blobs.kept.lock().unwrap().is_empty());
}

#[tokio::test]
async fn when_an_accepted_upload_cannot_be_marked_kept_the_record_fails_before_any_verdict_and_a_retry_succeeds() {
    let h = Harness::new();
    let media = h.pending_media(MediaKind::Image).await;
    let etag = h.blobs.insert(&media.object_key, jpeg(1080, 1920));
    h.blobs.fail_keeps.store(1, Ordering::SeqCst);

    let error = handle_s3_event(&h.deps, s3_event(&media.object_key, &etag, 0))
        .await
        .expect_err("the keep failed");
    assert!(
        matches!(&error, ValidatorError::Records { first, .. } if matches!(**first, ValidatorError::Keep { .. })),
        "{error:?}"
    );
    assert!(h.repo.get(&media.id).expect("media").verdict.is_none());
    assert!(h.events.published().is_empty());

    handle_s3_event(&h.deps, s3_event(&media.object_key, &etag, 0))
        .await
        .expect("the retry succeeds");
    assert_eq!(h.repo.get(&media.id).expect("media").status, MediaStatus::Valid);
    assert_eq!(*h.blobs.kept.lock().unwrap(), vec![media.object_key.clone()]);
}

#[tokio::test]
async fn when_the_object_is_empty_the_verdict_says_so() {
    let h = Harness::new();
    let media = h.pending_media(MediaKind::Video).await;
    let etag = h.blobs.insert(&media.object_key, Vec::new());

    handle_s3_event(&h.deps, s3_event(&media.object_key, &etag, 0))
        .await
        .expect("handled");

    assert_eq!(
        violation_codes(&h.repo.get(&media.id).expect("media")),
        [codes::FILE_EMPTY]
    );
}

#[tokio::test]
async fn a_video_is_read_with_head_and_tail_in_parallel_pinned_to_the_event_etag() {
    let h = Harness::with_blobs(MemoryBlobStore::requiring_parallel_first_reads());
    let media = h.pending_media(MediaKind::Video).await;
    let movie = SyntheticMovie {
        moov_first: false,
        mdat_bytes: 3 * 1024 * 1024,
        ..SyntheticMovie::default()
    };
    let etag = h.blobs.insert(&media.object_key, mp4(&movie));

    handle_s3_event(&h.deps, s3_event(&media.object_key, &etag, 0))
        .await
        .expect("handled");

    let stored = h.repo.get(&media.id).expect("media");
    assert_eq!(stored.status, MediaStatus::Valid, "{:?}", stored.verdict);
    let facts = stored.verdict.expect("verdict").facts;
    assert_eq!(
        (facts.width, facts.height, facts.frame_rate),
        (Some(1080), Some(1920), Some(30.0))
    );
    assert_eq!(facts.duration_ms, Some(2000));
    let reads = h.blobs.read_log();
    assert_eq!(reads.len(), 2, "moov at the end fits the tail window: {reads:?}");
    assert_eq!(reads[0].range, ByteRange::Span(0..1024 * 1024));
    assert_eq!(reads[1].range, ByteRange::Suffix(1024 * 1024));
    assert!(
        reads.iter().all(|r| r.if_match.as_deref() == Some(etag.as_str())),
        "{reads:?}"
    );
}

#[tokio::test]
async fn a_duplicate_event_writes_nothing_and_re_announces_under_the_same_event_id() {
    let h = Harness::new();
    let media = h.pending_media(MediaKind::Image).await;
    let etag = h.blobs.insert(&media.object_key, jpeg(1080, 1920));
    handle_s3_event(&h.deps, s3_event(&media.object_key, &etag, 0))
        .await
        .expect("first");
    let after_first = h.repo.get(&media.id).expect("media");
    let reads_after_first = h.blobs.read_log().len();

    handle_s3_event(&h.deps, s3_event(&media.object_key, &etag, 0))
        .await
        .expect("duplicate");

    assert_eq!(h.repo.get(&media.id), Some(after_first), "the record is untouched");
    assert_eq!(
        h.blobs.read_log().len(),
        reads_after_first,
        "the object is not read again"
    );
    let events = h.events.published();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].id, events[1].id, "consumers dedupe on the event id");
}

#[tokio::test]
async fn a_stale_event_for_a_replaced_object_is_superseded_and_writes_nothing() {
    let h = Harness::new();
    let media = h.pending_media(MediaKind::Image).await;
    let old_etag = h.blobs.insert(&media.object_key, jpeg(1080, 1920));
    h.blobs.insert(&media.object_key, jpeg(1920, 1080));

    handle_s3_event(&h.deps, s3_event(&media.object_key, &old_etag, 0))
        .await
        .expect("harmless");

    let stored = h.repo.get(&media.id).expect("media");
    assert!(stored.verdict.is_none());
    assert!(h.events.published().is_empty());
    assert_eq!(
        media_validator::validate_object(&h.deps, &media.object_key)
            .await
            .expect("newer version"),
        Outcome::Validated {
            media_id: media.id.clone(),
            status: MediaStatus::Valid
        }
    );
    let verdict = h.repo.get(&media.id).and_then(|m| m.verdict).expect("verdict");
    assert_eq!(verdict.facts.width, Some(1920), "the verdict is about the newer object");
}

#[tokio::test]
async fn an_unknown_key_is_logged_and_ignored() {
    let h = Harness::new();
    assert_eq!(
        validate_object(&h.deps, "elsewhere/file.mp4").await.expect("ignored"),
        Outcome::Ignored(Ignored::UnknownKey("elsewhere/file.mp4".into()))
    );
    let stranger = Media::object_key_for(&shared::ids::WorkspaceId::new(), &shared::ids::MediaId::new());
    h.blobs.insert(&stranger, jpeg(10, 10));
    handle_s3_event(&h.deps, s3_event(&stranger, "abc", 0))
        .await
        .expect("ignored, not failed");
    assert!(h.events.published().is_empty());
}

#[tokio::test]
async fn a_transient_read_failure_fails_the_record_and_a_retry_succeeds() {
    let h = Harness::new();
    let media = h.pending_media(MediaKind::Image).await;
    let etag = h.blobs.insert(&media.object_key, jpeg(1080, 1920));
    h.blobs.fail_reads.store(1, Ordering::SeqCst);

    let error = handle_s3_event(&h.deps, s3_event(&media.object_key, &etag, 0))
        .await
        .expect_err("must fail");
    let ValidatorError::Records {
        failed: 1,
        total: 1,
        first,
    } = error
    else {
        panic!("{error:?}")
    };
    assert!(matches!(*first, ValidatorError::Read { .. }), "{first:?}");
    assert_eq!(h.repo.get(&media.id).map(|m| m.status), Some(MediaStatus::Validating));

    handle_s3_event(&h.deps, s3_event(&media.object_key, &etag, 0))
        .await
        .expect("the retry");
    assert_eq!(h.repo.get(&media.id).map(|m| m.status), Some(MediaStatus::Valid));
}

#[tokio::test]
async fn a_store_failure_fails_the_record() {
    let h = Harness::new();
    let media = h.pending_media(MediaKind::Image).await;
    let etag = h.blobs.insert(&media.object_key, jpeg(1080, 1920));
    h.repo.fail_gets.store(1, Ordering::SeqCst);

    let error = handle_s3_event(&h.deps, s3_event(&media.object_key, &etag, 0))
        .await
        .expect_err("must fail");
    assert!(
        matches!(error, ValidatorError::Records { ref first, .. } if matches!(**first, ValidatorError::Store { .. }))
    );
    assert!(h.events.published().is_empty());
}

#[tokio::test]
async fn an_event_bus_failure_fails_the_record_and_the_retry_announces_without_rewriting() {
    let h = Harness::new();
    let media = h.pending_media(MediaKind::Image).await;
    let etag = h.blobs.insert(&media.object_key, jpeg(1080, 1920));
    h.events.fail_publishes.store(1, Ordering::SeqCst);

    let error = handle_s3_event(&h.deps, s3_event(&media.object_key, &etag, 0))
        .await
        .expect_err("must fail");
    assert!(
        matches!(error, ValidatorError::Records { ref first, .. } if matches!(**first, ValidatorError::Publish { .. }))
    );
    let written = h.repo.get(&media.id).expect("media");
    assert_eq!(
        written.status,
        MediaStatus::Valid,
        "the verdict was stored before the publish failed"
    );

    handle_s3_event(&h.deps, s3_event(&media.object_key, &etag, 0))
        .await
        .expect("retry");
    assert_eq!(h.repo.get(&media.id), Some(written));
    assert_eq!(h.events.published().len(), 1);
}

#[tokio::test]
async fn one_failing_record_does_not_stop_the_others() {
    let h = Harness::new();
    let broken = h.pending_media(MediaKind::Image).await;
    let fine = h.pending_media(MediaKind::Image).await;
    let etag_fine = h.blobs.insert(&fine.object_key, jpeg(1080, 1920));
    // The broken record's object is missing from the store altogether: "gone", ignored; make it fail instead by
    // failing its record's store read.
    h.blobs.insert(&broken.object_key, jpeg(1080, 1920));
    h.repo.fail_gets.store(1, Ordering::SeqCst);
    let mut event = s3_event(&broken.object_key, "whatever", 0);
    event.records.extend(s3_event(&fine.object_key, &etag_fine, 0).records);

    let error = handle_s3_event(&h.deps, event).await.expect_err("one failed");
    assert!(
        matches!(
            error,
            ValidatorError::Records {
                failed: 1,
                total: 2,
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(h.repo.get(&fine.id).map(|m| m.status), Some(MediaStatus::Valid));
}

#[tokio::test]
async fn a_png_gets_a_jpeg_rendition_beside_it_and_the_verdict_names_it() {
    let h = Harness::new();
    let media = h.pending_media(MediaKind::Image).await;
    let etag = h.blobs.insert(&media.object_key, png(540, 960));

    handle_s3_event(&h.deps, s3_event(&media.object_key, &etag, 0))
        .await
        .expect("handled");

    let stored = h.repo.get(&media.id).expect("media");
    let verdict = stored.verdict.as_ref().expect("verdict");
    let expected_key = Media::rendition_key_for(&media.workspace_id, &media.id);
    assert_eq!(verdict.rendition_key.as_deref(), Some(expected_key.as_str()));
    assert_eq!(stored.publishable_key(), expected_key);
    assert!(verdict.warnings.iter().any(|w| w.code == codes::SENT_AS_JPEG));
    let jpeg = h.blobs.object(&expected_key).expect("the rendition is stored");
    let decoded = image::load_from_memory_with_format(&jpeg, ImageFormat::Jpeg).expect("a JPEG");
    assert_eq!((decoded.width(), decoded.height()), (540, 960));
    assert_eq!(
        h.blobs.puts.lock().map(|p| p[0].2.clone()).ok().as_deref(),
        Some("image/jpeg")
    );
}

#[tokio::test]
async fn a_rendition_that_cannot_be_stored_fails_the_record() {
    let h = Harness::new();
    let media = h.pending_media(MediaKind::Image).await;
    let etag = h.blobs.insert(&media.object_key, png(54, 96));
    h.blobs.fail_puts.store(1, Ordering::SeqCst);

    let error = handle_s3_event(&h.deps, s3_event(&media.object_key, &etag, 0))
        .await
        .expect_err("must fail");
    assert!(
        matches!(error, ValidatorError::Records { ref first, .. } if matches!(**first, ValidatorError::StoreRendition { .. }))
    );
}

#[tokio::test]
async fn an_image_uploaded_as_a_video_is_rejected_as_a_kind_mismatch() {
    let h = Harness::new();
    let media = h.pending_media(MediaKind::Video).await;
    let etag = h.blobs.insert(&media.object_key, jpeg(1080, 1920));

    handle_s3_event(&h.deps, s3_event(&media.object_key, &etag, 0))
        .await
        .expect("handled");

    let stored = h.repo.get(&media.id).expect("media");
    assert_eq!(violation_codes(&stored), [codes::KIND_MISMATCH]);
    assert!(stored.verdict.is_some_and(|v| v.rendition_key.is_none()));
}

#[tokio::test]
async fn validate_object_without_an_etag_pins_later_reads_to_the_first_response() {
    let h = Harness::new();
    let media = h.pending_media(MediaKind::Video).await;
    // mdat, moov, then 2 MiB of `free`: the moov lies between the windows, so a third read is needed.
    let movie = SyntheticMovie {
        moov_first: false,
        mdat_bytes: 3 * 1024 * 1024,
        ..SyntheticMovie::default()
    };
    let file = [mp4(&movie), bx(b"free", &[&vec![0; 2 * 1024 * 1024]])].concat();
    let etag = h.blobs.insert(&media.object_key, file);

    let outcome = validate_object(&h.deps, &media.object_key).await.expect("validated");

    assert_eq!(
        outcome,
        Outcome::Validated {
            media_id: media.id.clone(),
            status: MediaStatus::Valid
        }
    );
    let reads = h.blobs.read_log();
    assert_eq!(reads.len(), 3, "{reads:?}");
    assert!(reads[..2].iter().all(|r| r.if_match.is_none()));
    assert!(reads[2..]
        .iter()
        .all(|r| r.if_match.as_deref().map(|e| e.trim_matches('"')) == Some(etag.as_str())));
}

#[tokio::test]
async fn a_deleted_object_is_ignored() {
    let h = Harness::new();
    let media = h.pending_media(MediaKind::Image).await;
    let outcome = validate_object(&h.deps, &media.object_key).await.expect("ignored");
    assert_eq!(outcome, Outcome::Ignored(Ignored::ObjectGone(media.object_key.clone())));
}

/// The local runner calls `validate_object` right after an upload and promises the verdict within 2 s; the
/// heaviest common case is a full-size PNG, which is decoded and re-encoded as JPEG.
#[tokio::test]
async fn a_full_size_png_is_validated_and_rendered_well_within_two_seconds() {
    let h = Harness::new();
    let media = h.pending_media(MediaKind::Image).await;
    h.blobs.insert(&media.object_key, png(1080, 1920));

    let started = std::time::Instant::now();
    let outcome = validate_object(&h.deps, &media.object_key).await.expect("validated");
    let elapsed = started.elapsed();

    assert_eq!(
        outcome,
        Outcome::Validated {
            media_id: media.id.clone(),
            status: MediaStatus::Valid
        }
    );
    assert!(elapsed < std::time::Duration::from_secs(2), "took {elapsed:?}");
}

/// Issue 13 §3: a file no larger than the probe's two windows costs one read of exactly its size, whether its size
/// comes with the S3 event or, from `validate_object`, from a `head`.
#[tokio::test]
async fn a_small_file_is_read_once_whole() {
    let h = Harness::new();
    let media = h.pending_media(MediaKind::Image).await;
    let bytes = jpeg(720, 1280);
    let size = bytes.len() as u64;
    let etag = h.blobs.insert(&media.object_key, bytes);

    handle_s3_event(&h.deps, s3_event(&media.object_key, &etag, size))
        .await
        .expect("handled");
    let reads = h.blobs.read_log();
    assert_eq!(reads.len(), 1, "{reads:?}");
    assert_eq!(reads[0].range, ByteRange::Span(0..size));

    let other = h.pending_media(MediaKind::Image).await;
    h.blobs.insert(&other.object_key, jpeg(720, 1280));
    validate_object(&h.deps, &other.object_key).await.expect("validated");
    let reads = h.blobs.read_log();
    assert_eq!(reads.len(), 2, "{reads:?}");
    assert_eq!(reads[1].range, ByteRange::Span(0..size));
}

/// Issue 13 §1: an accepted MPEG-TS with H.264 and AAC gets an MP4 rendition (written in parts), the publisher's
/// key points at it, and the remux warning becomes an info. Uses the corpus TS (ffmpeg-made).
#[tokio::test]
async fn an_accepted_transport_stream_gets_an_mp4_rendition() {
    let Some(ts) = corpus_transport_stream() else { return };
    an_accepted_mpeg_stream_gets_an_mp4_rendition(ts, "MPEG transport stream").await;
}

/// The same for an MPEG-PS carrying H.264 and AAC: the corpus TS's streams in a program stream made by the test
/// muxer (ffmpeg writes no AAC into PS).
#[tokio::test]
async fn an_accepted_program_stream_gets_an_mp4_rendition() {
    let Some(ts) = corpus_transport_stream() else { return };
    let ps = support::program_stream::from_transport_stream(&ts);
    an_accepted_mpeg_stream_gets_an_mp4_rendition(ps, "MPEG program stream").await;
}

/// A program stream the probe accepts but the remuxer cannot copy (its pack structure breaks mid-file) is refused
/// with `remux_failed` and the re-encode line, and no rendition is left: TikTok could never take it.
#[tokio::test]
async fn a_program_stream_whose_remux_fails_is_refused() {
    let Some(ts) = corpus_transport_stream() else { return };
    let mut ps = support::program_stream::from_transport_stream(&ts);
    let middle = ps.len() / 2;
    let pack = ps[middle..]
        .windows(4)
        .position(|w| w == [0, 0, 1, 0xBA])
        .expect("a pack after the middle");
    ps.insert(middle + pack, 0xAB);
    let h = Harness::new();
    let media = h.pending_media(MediaKind::Video).await;
    let size = ps.len() as u64;
    let etag = h.blobs.insert(&media.object_key, ps);

    handle_s3_event(&h.deps, s3_event(&media.object_key, &etag, size))
        .await
        .expect("handled");

    let stored = h.repo.get(&media.id).expect("media");
    assert_eq!(stored.status, MediaStatus::Invalid);
    assert_eq!(violation_codes(&stored), [codes::REMUX_FAILED]);
    let message = &stored.verdict.as_ref().expect("verdict").violations[0].message;
    assert!(
        message.contains("MPEG program stream") && message.contains("ffmpeg -i INPUT"),
        "{message}"
    );
    let key = Media::mp4_rendition_key_for(&media.workspace_id, &media.id);
    assert!(h.blobs.object(&key).is_none(), "the aborted upload leaves no rendition");
}

/// The corpus's ffmpeg-made MPEG-TS with H.264 and AAC; `None` (the test skips) without a corpus.
fn corpus_transport_stream() -> Option<Vec<u8>> {
    let Ok(dir) = support::corpus::corpus_dir() else {
        println!("skipped: no media corpus");
        return None;
    };
    Some(std::fs::read(dir.join("mpegts-h264-aac.ts")).expect("corpus TS"))
}

async fn an_accepted_mpeg_stream_gets_an_mp4_rendition(upload: Vec<u8>, container: &str) {
    let h = Harness::new();
    let media = h.pending_media(MediaKind::Video).await;
    let size = upload.len() as u64;
    let etag = h.blobs.insert(&media.object_key, upload);

    handle_s3_event(&h.deps, s3_event(&media.object_key, &etag, size))
        .await
        .expect("handled");

    let stored = h.repo.get(&media.id).expect("media");
    let verdict = stored.verdict.clone().expect("verdict");
    assert!(verdict.accepted, "{verdict:?}");
    let codes_of = |f: &[shared::domain::Finding]| f.iter().map(|f| f.code.clone()).collect::<Vec<_>>();
    assert!(!codes_of(&verdict.warnings).contains(&codes::CONTAINER_NEEDS_REMUX.to_owned()));
    assert_eq!(codes_of(&verdict.info), [codes::SENT_AS_MP4]);
    assert!(verdict.info[0].message.contains(container), "{:?}", verdict.info);
    let key = Media::mp4_rendition_key_for(&media.workspace_id, &media.id);
    assert_eq!(stored.publishable_key(), key);
    let mp4 = h.blobs.object(&key).expect("the rendition is stored");
    let rendition = verdict.rendition.expect("rendition");
    assert_eq!(rendition.container, "mp4");
    assert_eq!(rendition.size_bytes, mp4.len() as u64);
    assert_eq!(rendition.status, RenditionStatus::Ready);
    match media_validator::probe::probe_bytes(&mp4, media_validator::probe::Budget::default()).0 {
        media_validator::probe::Step::Done(report) => {
            assert_eq!(report.container, media_validator::probe::Container::Mp4);
            assert_eq!(report.video.map(|v| v.codec), Some("h264".to_owned()));
            assert_eq!(report.audio.map(|a| a.codec), Some("aac".to_owned()));
        }
        other => panic!("the rendition does not probe: {other:?}"),
    }
}

/// Issue 11 §4: a 261 KB PNG can claim 16384 × 16384 pixels (1 GiB once decoded). It is judged from its header and
/// refused with what to do; nothing is decoded and no rendition is written.
#[tokio::test]
async fn a_png_decompression_bomb_is_refused_from_its_header_without_decoding() {
    let h = Harness::new();
    let media = h.pending_media(MediaKind::Image).await;
    let mut bomb = b"\x89PNG\r\n\x1a\n".to_vec();
    bomb.extend_from_slice(&13u32.to_be_bytes());
    bomb.extend_from_slice(b"IHDR");
    bomb.extend_from_slice(&16_384u32.to_be_bytes());
    bomb.extend_from_slice(&16_384u32.to_be_bytes());
    bomb.extend_from_slice(&[8, 6, 0, 0, 0, 0, 0, 0, 0]);
    // IDAT of zeros: a real bomb is a deflate stream that inflates to all of it; the header alone decides here.
    bomb.extend_from_slice(&[0u8; 261_000]);
    let etag = h.blobs.insert(&media.object_key, bomb);

    handle_s3_event(&h.deps, s3_event(&media.object_key, &etag, 0))
        .await
        .expect("a verdict");

    let stored = h.repo.get(&media.id).expect("media");
    assert_eq!(stored.status, MediaStatus::Invalid);
    assert_eq!(violation_codes(&stored), [codes::PICTURE_SIZE]);
    let rendition = Media::rendition_key_for(&media.workspace_id, &media.id);
    assert!(h.blobs.object(&rendition).is_none(), "nothing decoded, nothing written");
}
