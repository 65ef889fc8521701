//! External tools some end-to-end tests need (ffmpeg makes real media), under the same policy as moto: missing means
//! skipped, unless `POSTATO_FULL_TESTS=1`, where it is a failure.

use std::{path::Path, process::Command};

use crate::moto::{announce, full_tests, FULL_TESTS_VAR};

/// Whether ffmpeg can be run; prints why the test is skipped when it cannot, and fails a full run.
pub fn ffmpeg_or_skip() -> bool {
    let present = Command::new("ffmpeg")
        .arg("-version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !present {
        assert!(
            !full_tests(),
            "{FULL_TESTS_VAR}=1 but ffmpeg is not installed (infra/test.sh installs it)"
        );
        announce("skipped: ffmpeg not installed (infra/test.sh installs it)\n");
    }
    present
}

/// Runs ffmpeg quietly with `args`, writing `output`.
pub fn ffmpeg(args: &[&str], output: &Path) -> anyhow::Result<()> {
    let status = Command::new("ffmpeg")
        .args(["-loglevel", "error", "-y"])
        .args(args)
        .arg(output)
        .status()?;
    anyhow::ensure!(status.success(), "ffmpeg failed making {}", output.display());
    Ok(())
}
