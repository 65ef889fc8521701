//! Issue 11 §4: validating the largest PNG the guide allows (probe, verdict, JPEG rendition) peaks under 256 MiB,
//! measured in a child process, this test binary run again on one file, so that each file's resident set is its own.
//! The child validates through the handler on the fakes, as the Lambda and the runner do; the fake blob store holds
//! the 20 MB upload in memory besides, which S3 would not, so the figure errs on the high side.

mod support;

use std::{path::Path, process::Command};

use media_validator::handle_s3_event;
use shared::domain::{Media, MediaKind, MediaStatus};
use support::{
    media::{largest_allowed_pngs, rgba16_gradient, GUIDE_MAX_IMAGE_BYTES},
    process::{measure, report_to_parent},
    s3_event, Harness,
};

/// The goal of issue 11 §4; the validator Lambda has 512 MB.
const LIMIT_KIB: u64 = 256 * 1024;
/// Set in the child: the PNG it validates.
const CHILD_INPUT: &str = "POSTATO_PNG_MEMORY_CHILD_INPUT";
const THIS_TEST: &str = "validating_the_largest_png_the_guide_allows_stays_under_256_mib";

#[test]
fn validating_the_largest_png_the_guide_allows_stays_under_256_mib() {
    if let Some(path) = std::env::var_os(CHILD_INPUT) {
        return validate_in_this_process(Path::new(&path));
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let mut failures = Vec::new();
    for (label, spec) in largest_allowed_pngs() {
        let png = spec.encode(rgba16_gradient);
        assert_eq!(png.len(), GUIDE_MAX_IMAGE_BYTES, "{label}: at the guide's limit");
        let path = dir.path().join(format!("largest-{}x{}.png", spec.width, spec.height));
        std::fs::write(&path, &png).expect("writing the PNG");
        drop(png);

        let child = measure(
            Command::new(std::env::current_exe().expect("this test binary"))
                .args([THIS_TEST, "--exact", "--nocapture", "--test-threads=1"])
                .env(CHILD_INPUT, &path),
        );

        let expected = media_validator::rendition::rendition_size(spec.width, spec.height);
        println!(
            "{label}: peak RSS {} MiB, CPU {:.2} s, {}",
            child.peak_rss_kib / 1024,
            child.cpu_seconds,
            child.report
        );
        if child.report != format!("valid jpeg={}x{}", expected.0, expected.1) {
            failures.push(format!("{label}: {}", child.report));
        }
        if child.peak_rss_kib > LIMIT_KIB {
            failures.push(format!("{label}: peak RSS {} KiB", child.peak_rss_kib));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// The child: one upload through the handler on a multi-threaded runtime (as the Lambda's and the runner's).
fn validate_in_this_process(path: &Path) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .expect("a runtime");
    let report = runtime.block_on(async {
        let h = Harness::new();
        let media = h.pending_media(MediaKind::Image).await;
        let png = std::fs::read(path).expect("the PNG");
        let size = png.len() as u64;
        let etag = h.blobs.insert(&media.object_key, png);
        handle_s3_event(&h.deps, s3_event(&media.object_key, &etag, size))
            .await
            .expect("handled");
        let stored = h.repo.get(&media.id).expect("media");
        let rendition = Media::rendition_key_for(&media.workspace_id, &media.id);
        match (stored.status, h.blobs.object(&rendition)) {
            (MediaStatus::Valid, Some(jpeg)) => {
                // The header only: decoding the copy here would add to the peak being measured.
                let (width, height) =
                    image::ImageReader::with_format(std::io::Cursor::new(jpeg), image::ImageFormat::Jpeg)
                        .into_dimensions()
                        .expect("a JPEG");
                format!("valid jpeg={width}x{height}")
            }
            (status, _) => format!("{status:?} {:?}", stored.verdict.map(|v| v.violations)),
        }
    });
    report_to_parent(&report);
}
