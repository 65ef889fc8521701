//! The product guide's media rules, applied to what the probe found. Every violation and warning has a stable code
//! (TikTok's `fail_reason` where the two overlap) and a message that says what to do. The rule table in the
//! crate's README is this module in prose; keep them together.

use shared::domain::{Finding, MediaFacts, MediaKind};

use crate::{
    facts::{media_facts, unreadable_facts},
    probe::{Container, MediaClass, ProbeReport, Unreadable, UnreadableReason, VideoStream},
};

/// Stable codes. Clients match on these; never rename one.
pub mod codes {
    // Violations.
    pub const FILE_EMPTY: &str = "file_empty";
    pub const FILE_UNREADABLE: &str = "file_unreadable";
    pub const FILE_FORMAT: &str = "file_format_check_failed";
    pub const KIND_MISMATCH: &str = "media_kind_mismatch";
    pub const FILE_SIZE: &str = "file_size_check_failed";
    pub const DURATION: &str = "duration_check_failed";
    pub const FRAME_RATE: &str = "frame_rate_check_failed";
    pub const PICTURE_SIZE: &str = "picture_size_check_failed";
    pub const ASPECT_RATIO: &str = "aspect_ratio_check_failed";
    pub const VIDEO_CODEC: &str = "video_codec_unsupported";
    pub const AUDIO_CODEC: &str = "audio_codec_unsupported";
    pub const NO_VIDEO_TRACK: &str = "video_track_missing";
    pub const RENDITION_FAILED: &str = "png_conversion_failed";
    /// An accepted MPEG-TS or MPEG-PS whose streams could not be copied into an MP4 (lost packets, a splice).
    pub const REMUX_FAILED: &str = "remux_failed";
    // Warnings.
    pub const NO_AUDIO_TRACK: &str = "no_audio_track";
    pub const BELOW_RECOMMENDED_RESOLUTION: &str = "below_recommended_resolution";
    pub const WILL_BE_CROPPED: &str = "will_be_cropped";
    pub const CONTAINER_NEEDS_REMUX: &str = "container_needs_remux";
    pub const SENT_AS_JPEG: &str = "sent_as_jpeg";
    // Info (what was done; not a problem).
    pub const SENT_AS_MP4: &str = "sent_as_mp4";
}

/// The guide's limits (sizes are MediaKind's: 4 GB, 20 MB).
pub const MAX_DURATION_MS: u64 = 600_000;
/// A 10:00 export whose audio runs a few milliseconds past the last frame still reads as ten minutes.
pub const DURATION_TOLERANCE_MS: u64 = 500;
/// 23–60 fps on the average rate, tolerating rounding: 23.976 and 60.5 pass, 22.9 and 61 fail.
pub const MIN_FRAME_RATE: f64 = 22.995;
pub const MAX_FRAME_RATE: f64 = 60.5;
pub const MIN_SHORT_SIDE: u32 = 720;
pub const RECOMMENDED_SHORT_SIDE: u32 = 1080;
/// TikTok's own per-side maximum: anything larger fails there with `picture_size_check_failed`.
pub const MAX_SIDE: u32 = 4096;
/// Aspect ratios match within ±2 %.
pub const ASPECT_TOLERANCE: f64 = 0.02;
/// The most pixels a PNG may have, decided from its header before anything is decoded: a PNG is decoded to make
/// its JPEG copy for TikTok, and 4096 × 4096 (16.8 MP) decodes to 64 MiB of RGBA plus 48 MiB of RGB, well inside
/// the validator's memory. A 261 KB PNG can claim 16384 × 16384 (1 GiB decoded): a decompression bomb (issue 11 §4).
pub const PNG_MAX_PIXELS: u64 = 4096 * 4096;

/// The one re-encode everybody can run: H.264 High, yuv420p, AAC, moov first.
pub const REENCODE_COMMAND: &str = "ffmpeg -i INPUT -c:v libx264 -preset medium -crf 18 -pix_fmt yuv420p \
                                    -c:a aac -b:a 128k -movflags +faststart OUTPUT.mp4";

#[derive(Debug, Clone, PartialEq)]
pub struct Judgement {
    pub accepted: bool,
    pub kind: MediaClass,
    pub container: Option<Container>,
    pub violations: Vec<Finding>,
    pub warnings: Vec<Finding>,
    pub facts: MediaFacts,
}

impl Judgement {
    fn new(kind: MediaClass, container: Option<Container>, facts: MediaFacts) -> Self {
        Self {
            accepted: true,
            kind,
            container,
            violations: Vec::new(),
            warnings: Vec::new(),
            facts,
        }
    }

    pub fn violation(&mut self, code: &str, message: impl Into<String>) {
        self.accepted = false;
        self.violations.push(Finding::new(code, message));
    }

    pub fn warning(&mut self, code: &str, message: impl Into<String>) {
        self.warnings.push(Finding::new(code, message));
    }
}

/// Judges a probe's outcome; `declared` is the kind the media was created as (unknown to the CLI).
pub fn judge(outcome: &Result<ProbeReport, Unreadable>, size_bytes: u64, declared: Option<MediaKind>) -> Judgement {
    match outcome {
        Err(unreadable) => judge_unreadable(unreadable, size_bytes),
        Ok(report) => {
            let mut judgement = Judgement::new(report.class(), Some(report.container), media_facts(report));
            check_declared_kind(&mut judgement, report, declared);
            match report.class() {
                MediaClass::Video => judge_video(&mut judgement, report),
                MediaClass::Image => judge_image(&mut judgement, report),
                MediaClass::Unknown => judgement.violation(
                    codes::FILE_FORMAT,
                    format!(
                        "This is {}, not a video or an image. Upload an MP4 (H.264 video, AAC audio) or a JPEG, \
                         PNG or WebP image.",
                        with_article(report.container.name())
                    ),
                ),
            }
            judgement
        }
    }
}

fn judge_unreadable(unreadable: &Unreadable, size_bytes: u64) -> Judgement {
    let mut judgement = Judgement::new(
        unreadable.class(),
        unreadable.container,
        unreadable_facts(unreadable, size_bytes),
    );
    let (code, advice) = match unreadable.reason {
        UnreadableReason::Empty => (codes::FILE_EMPTY, "Upload the file again; nothing arrived."),
        UnreadableReason::Unrecognised => (
            codes::FILE_FORMAT,
            "Upload an MP4 (H.264 video, AAC audio) or a JPEG, PNG or WebP image.",
        ),
        UnreadableReason::Truncated(_) | UnreadableReason::MissingMovie => (
            codes::FILE_UNREADABLE,
            "The upload was probably interrupted: upload the complete file again.",
        ),
        UnreadableReason::Encrypted => (codes::FILE_UNREADABLE, "Upload a copy without DRM protection."),
        _ => (
            codes::FILE_UNREADABLE,
            "Re-export it from your editor as MP4 (H.264, AAC) and upload that.",
        ),
    };
    judgement.violation(code, format!("{}. {advice}", capitalise(&unreadable.to_string())));
    judgement
}

fn check_declared_kind(judgement: &mut Judgement, report: &ProbeReport, declared: Option<MediaKind>) {
    let detected = match report.class() {
        MediaClass::Video => MediaKind::Video,
        MediaClass::Image => MediaKind::Image,
        MediaClass::Unknown => return,
    };
    if let Some(declared) = declared.filter(|&d| d != detected) {
        judgement.violation(
            codes::KIND_MISMATCH,
            format!(
                "This media was created as {} but the file is {}. Create the media with kind \"{}\", or upload {}.",
                with_article(declared.as_str()),
                with_article(report.container.name()),
                detected.as_str(),
                with_article(declared.as_str()),
            ),
        );
    }
}

fn judge_video(j: &mut Judgement, report: &ProbeReport) {
    let container = report.container;
    if !matches!(
        container,
        Container::Mp4 | Container::Mov | Container::MpegTs | Container::MpegPs
    ) {
        j.violation(
            codes::FILE_FORMAT,
            format!(
                "This is {}; the guide accepts MP4, MOV and MPEG videos. Convert it: {REENCODE_COMMAND}",
                with_article(container.name())
            ),
        );
        return;
    }
    if let Some(truncation) = &report.truncated {
        j.violation(
            codes::FILE_UNREADABLE,
            format!(
                "The {} is cut short: its structure needs {} bytes but the file has {}. The upload was probably \
                 interrupted: upload the complete file again.",
                container.name(),
                truncation.expected_size,
                report.size_bytes
            ),
        );
    }
    check_file_size(j, report.size_bytes, MediaKind::Video);
    if matches!(container, Container::MpegTs | Container::MpegPs) {
        j.warning(
            codes::CONTAINER_NEEDS_REMUX,
            format!(
                "TikTok's posting API lists MP4, MOV and WebM, not {}s. For the safest upload, remux it without \
                 re-encoding: ffmpeg -i INPUT -c copy -movflags +faststart OUTPUT.mp4",
                container.name()
            ),
        );
    }
    let Some(video) = &report.video else {
        j.violation(
            codes::NO_VIDEO_TRACK,
            "The file has no video track. Upload a video with picture, not audio alone.",
        );
        return;
    };
    check_video_codec(j, video);
    check_audio(j, report);
    check_duration(j, report.duration_ms);
    check_picture_size(j, video);
    check_frame_rate(j, video.frame_rate);
    check_video_aspect(j, video);
}

fn check_file_size(j: &mut Judgement, size: u64, kind: MediaKind) {
    let limit = kind.max_size_bytes();
    if size > limit {
        let advice = match kind {
            MediaKind::Video => {
                "Re-encode it at a lower bitrate (ffmpeg -i INPUT -c:v libx264 -preset medium -crf 23 \
                                 -pix_fmt yuv420p -c:a aac -b:a 128k -movflags +faststart OUTPUT.mp4), or trim it."
            }
            MediaKind::Image => "Save it as JPEG at quality 90, or scale it down to 1080×1920.",
        };
        j.violation(
            codes::FILE_SIZE,
            format!(
                "The file is {}; the limit is {} per {}. {advice}",
                human_bytes(size),
                human_bytes(limit),
                kind.as_str()
            ),
        );
    }
}

fn check_video_codec(j: &mut Judgement, video: &VideoStream) {
    match video.codec.as_str() {
        "h264" => {}
        "hevc" => j.violation(
            codes::VIDEO_CODEC,
            format!(
                "The video is H.265/HEVC (the iPhone's \"High Efficiency\" format). TikTok itself accepts it, but this \
                 product requires H.264. Re-encode it: {REENCODE_COMMAND} (or on iPhone: Settings › Camera › \
                 Formats › Most Compatible)."
            ),
        ),
        other => j.violation(
            codes::VIDEO_CODEC,
            format!(
                "The video codec is {}; the guide requires H.264. Re-encode it: {REENCODE_COMMAND}",
                codec_name(other)
            ),
        ),
    }
}

fn check_audio(j: &mut Judgement, report: &ProbeReport) {
    match &report.audio {
        None => j.warning(
            codes::NO_AUDIO_TRACK,
            "The video has no audio track. It will post silently; TikTok cannot add licensed music through the API, \
             so mix any music into the file before uploading.",
        ),
        Some(audio) if audio.codec == "aac" => {}
        Some(audio) => j.violation(
            codes::AUDIO_CODEC,
            format!(
                "The audio is {}; the guide requires AAC. Re-encode the audio only: ffmpeg -i INPUT -c:v copy -c:a \
                 aac -b:a 128k -movflags +faststart OUTPUT.mp4",
                codec_name(&audio.codec)
            ),
        ),
    }
}

fn check_duration(j: &mut Judgement, duration_ms: Option<u64>) {
    match duration_ms {
        None => j.violation(
            codes::DURATION,
            format!("The video's duration could not be determined. Re-export it as MP4: {REENCODE_COMMAND}"),
        ),
        Some(ms) if ms > MAX_DURATION_MS + DURATION_TOLERANCE_MS => j.violation(
            codes::DURATION,
            format!(
                "The video lasts {}; the limit is 10:00. Trim it, for example: ffmpeg -i INPUT -t 600 -c copy \
                 OUTPUT.mp4",
                human_duration(ms)
            ),
        ),
        Some(0) => j.violation(codes::DURATION, "The video has no duration (no frames). Re-export it."),
        Some(_) => {}
    }
}

fn check_picture_size(j: &mut Judgement, video: &VideoStream) {
    let Some((width, height)) = video.display_size() else {
        j.violation(
            codes::PICTURE_SIZE,
            format!("The video's picture size could not be determined. Re-encode it: {REENCODE_COMMAND}"),
        );
        return;
    };
    let (short, long) = (width.min(height), width.max(height));
    if short < MIN_SHORT_SIDE {
        j.violation(
            codes::PICTURE_SIZE,
            format!(
                "The video is {width}×{height}: its short side is {short} px and the guide requires at least \
                 {MIN_SHORT_SIDE} (1080 recommended). Export it at 1080×1920 (or at least 720×1280)."
            ),
        );
    } else if long > MAX_SIDE {
        j.violation(
            codes::PICTURE_SIZE,
            format!(
                "The video is {width}×{height}; TikTok accepts at most {MAX_SIDE} px per side. Scale it down: \
                 ffmpeg -i INPUT -vf \"scale=1080:1920:force_original_aspect_ratio=decrease\" -c:v libx264 -crf 18 \
                 -c:a copy OUTPUT.mp4"
            ),
        );
    } else if short < RECOMMENDED_SHORT_SIDE {
        j.warning(
            codes::BELOW_RECOMMENDED_RESOLUTION,
            format!("The video is {width}×{height}; 1080×1920 is recommended for a sharp result on TikTok."),
        );
    }
}

fn check_frame_rate(j: &mut Judgement, frame_rate: Option<f64>) {
    match frame_rate {
        None => j.violation(
            codes::FRAME_RATE,
            format!("The video's frame rate could not be determined. Re-encode it at 30 fps: {REENCODE_COMMAND}"),
        ),
        Some(fps) if fps > MAX_FRAME_RATE => j.violation(
            codes::FRAME_RATE,
            format!(
                "The video runs at {fps:.2} fps (a high-frame-rate or slow-motion recording); TikTok accepts 23–60. \
                 Export it at 30 or 60 fps: ffmpeg -i INPUT -r 30 -c:v libx264 -crf 18 -pix_fmt yuv420p -c:a copy \
                 OUTPUT.mp4"
            ),
        ),
        Some(fps) if fps < MIN_FRAME_RATE => j.violation(
            codes::FRAME_RATE,
            format!(
                "The video averages {fps:.2} fps; TikTok accepts 23–60. Export it at 30 fps: ffmpeg -i INPUT -r 30 \
                 -c:v libx264 -crf 18 -pix_fmt yuv420p -c:a copy OUTPUT.mp4"
            ),
        ),
        Some(_) => {}
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Portrait9x16,
    Square,
    Landscape16x9,
    Other,
}

fn classify_aspect(aspect: f64) -> Shape {
    let near = |target: f64| (aspect / target - 1.0).abs() <= ASPECT_TOLERANCE;
    if near(9.0 / 16.0) {
        Shape::Portrait9x16
    } else if near(1.0) {
        Shape::Square
    } else if near(16.0 / 9.0) {
        Shape::Landscape16x9
    } else {
        Shape::Other
    }
}

fn check_video_aspect(j: &mut Judgement, video: &VideoStream) {
    let (Some(aspect), Some((width, height))) = (video.display_aspect(), video.display_size()) else {
        return;
    };
    match classify_aspect(aspect) {
        Shape::Portrait9x16 => {}
        Shape::Square | Shape::Landscape16x9 => j.warning(
            codes::WILL_BE_CROPPED,
            format!(
                "The video is {width}×{height} ({}). It is accepted, but TikTok shows 9:16 full screen and will crop \
                 it; export at 1080×1920 to control the framing.",
                ratio_name(aspect)
            ),
        ),
        Shape::Other => j.violation(
            codes::ASPECT_RATIO,
            format!(
                "The video is {width}×{height} ({}); the guide accepts 9:16, or 1:1 and 16:9 (which TikTok crops). \
                 Crop or pad it to 9:16: ffmpeg -i INPUT -vf \
                 \"scale=1080:1920:force_original_aspect_ratio=decrease,pad=1080:1920:(ow-iw)/2:(oh-ih)/2\" \
                 -c:v libx264 -crf 18 -c:a copy OUTPUT.mp4",
                ratio_name(aspect)
            ),
        ),
    }
}

fn judge_image(j: &mut Judgement, report: &ProbeReport) {
    let container = report.container;
    if !matches!(container, Container::Jpeg | Container::Png | Container::Webp) {
        let advice = match container {
            Container::Heif | Container::Avif => {
                " Export it as JPEG (on iPhone: Settings › Camera › Formats › Most Compatible)."
            }
            _ => " Convert it: ffmpeg -i INPUT -frames:v 1 -q:v 2 OUTPUT.jpg",
        };
        j.violation(
            codes::FILE_FORMAT,
            format!(
                "This is {}; photos must be JPEG, PNG or WebP.{advice}",
                with_article(container.name())
            ),
        );
        return;
    }
    check_file_size(j, report.size_bytes, MediaKind::Image);
    let Some(image) = &report.image else {
        j.violation(
            codes::FILE_UNREADABLE,
            "The image's dimensions could not be read. Save it again as JPEG.",
        );
        return;
    };
    let (width, height) = image.display_size();
    if container == Container::Png && u64::from(width) * u64::from(height) > PNG_MAX_PIXELS {
        j.violation(
            codes::PICTURE_SIZE,
            format!(
                "This PNG is {width}×{height} ({:.1} megapixels); a PNG is converted to JPEG for TikTok and may have at \
                 most {:.1} megapixels. Scale it down (1080×1920 shows best), or save it as JPEG.",
                (u64::from(width) * u64::from(height)) as f64 / 1e6,
                PNG_MAX_PIXELS as f64 / 1e6
            ),
        );
        return;
    }
    if classify_aspect(f64::from(width) / f64::from(height.max(1))) != Shape::Portrait9x16 {
        j.warning(
            codes::WILL_BE_CROPPED,
            format!(
                "The image shows as {width}×{height} ({}); TikTok crops photos that are not 9:16. Crop it to \
                 1080×1920 to control the framing.",
                ratio_name(f64::from(width) / f64::from(height.max(1)))
            ),
        );
    }
    if container == Container::Png {
        j.warning(
            codes::SENT_AS_JPEG,
            "TikTok accepts only JPEG and WebP photos; a JPEG copy of this PNG is made and sent instead.",
        );
    }
}

fn ratio_name(aspect: f64) -> String {
    match classify_aspect(aspect) {
        Shape::Portrait9x16 => "9:16".into(),
        Shape::Square => "1:1".into(),
        Shape::Landscape16x9 => "16:9".into(),
        Shape::Other => {
            // Name common ratios; otherwise the decimal.
            let known = [
                (4.0, 3.0),
                (3.0, 4.0),
                (3.0, 2.0),
                (2.0, 3.0),
                (4.0, 5.0),
                (5.0, 4.0),
                (21.0, 9.0),
            ];
            known
                .iter()
                .find(|(w, h)| (aspect / (w / h) - 1.0).abs() <= ASPECT_TOLERANCE)
                .map(|(w, h)| format!("{w}:{h}"))
                .unwrap_or_else(|| format!("{aspect:.2}:1"))
        }
    }
}

fn codec_name(codec: &str) -> String {
    match codec {
        "vp9" => "VP9".into(),
        "vp8" => "VP8".into(),
        "av1" => "AV1".into(),
        "mpeg2video" => "MPEG-2".into(),
        "mpeg1video" => "MPEG-1".into(),
        "mpeg4" => "MPEG-4 Part 2".into(),
        "prores" => "ProRes".into(),
        "mjpeg" => "Motion JPEG".into(),
        "mp3" => "MP3".into(),
        "mp2" => "MPEG audio layer II".into(),
        "opus" => "Opus".into(),
        "ac3" => "AC-3 (Dolby Digital)".into(),
        "eac3" => "E-AC-3 (Dolby Digital Plus)".into(),
        other => other.to_owned(),
    }
}

fn with_article(name: &str) -> String {
    let vowel_sound = name.starts_with(['A', 'E', 'I', 'O', 'a', 'e', 'i', 'o', 'u'])
        // Initialisms read letter by letter: "an MP4", "an MKV".
        || ["MP", "MOV", "MKV"].iter().any(|p| name.starts_with(p));
    format!("{} {name}", if vowel_sound { "an" } else { "a" })
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// Decimal units, as the guide and TikTok write their limits ("4 GB", "20 MB").
fn human_bytes(bytes: u64) -> String {
    let (value, unit) = if bytes >= 1_000_000_000 {
        (bytes as f64 / 1e9, "GB")
    } else {
        (bytes as f64 / 1e6, "MB")
    };
    if value.fract() == 0.0 {
        format!("{value:.0} {unit}")
    } else {
        format!("{value:.2} {unit}")
    }
}

fn human_duration(ms: u64) -> String {
    let seconds = ms / 1000;
    format!("{}:{:02}.{:03}", seconds / 60, seconds % 60, ms % 1000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::{AudioStream, ImageInfo, ProbeReport};

    fn video(width: u32, height: u32, fps: f64) -> ProbeReport {
        let mut report = ProbeReport::new(Container::Mp4, 1_000_000);
        report.duration_ms = Some(10_000);
        report.video = Some(VideoStream {
            codec: "h264".into(),
            profile: None,
            level: None,
            dimensions: Some((width, height)),
            rotation: 0,
            frame_rate: Some(fps),
            pixel_aspect: None,
        });
        report.audio = Some(AudioStream {
            codec: "aac".into(),
            sample_rate: Some(48000),
            channels: Some(2),
        });
        report
    }

    fn codes_of(findings: &[Finding]) -> Vec<&str> {
        findings.iter().map(|f| f.code.as_str()).collect()
    }

    #[test]
    fn frame_rate_rule_tolerates_rounding_only() {
        for (fps, passes) in [
            (23.976, true),
            (23.0, true),
            (60.0, true),
            (60.5, true),
            (22.9, false),
            (61.0, false),
        ] {
            let j = judge(&Ok(video(1080, 1920, fps)), 1_000_000, None);
            assert_eq!(j.accepted, passes, "{fps} fps: {:?}", j.violations);
        }
    }

    #[test]
    fn aspect_rule_accepts_9x16_warns_on_square_and_landscape_rejects_the_rest() {
        let j = judge(&Ok(video(1080, 1920, 30.0)), 1, None);
        assert!(j.accepted && j.warnings.is_empty(), "{j:?}");
        let j = judge(&Ok(video(1080, 1080, 30.0)), 1, None);
        assert!(j.accepted && codes_of(&j.warnings) == [codes::WILL_BE_CROPPED]);
        let j = judge(&Ok(video(1920, 1080, 30.0)), 1, None);
        assert!(j.accepted && codes_of(&j.warnings) == [codes::WILL_BE_CROPPED]);
        let j = judge(&Ok(video(1440, 1080, 30.0)), 1, None);
        assert_eq!(codes_of(&j.violations), [codes::ASPECT_RATIO]);
        // ±2 %: 1080×1900 is 9:15.8, within tolerance.
        assert!(judge(&Ok(video(1080, 1900, 30.0)), 1, None).accepted);
    }

    #[test]
    fn short_side_rule_after_rotation() {
        let mut report = video(1920, 1080, 30.0);
        if let Some(v) = report.video.as_mut() {
            v.rotation = 90;
        }
        let j = judge(&Ok(report), 1, None);
        assert!(j.accepted, "{j:?}");
        assert_eq!(j.facts.display_width, Some(1080));
        let j = judge(&Ok(video(720, 1280, 30.0)), 1, None);
        assert!(j.accepted && codes_of(&j.warnings) == [codes::BELOW_RECOMMENDED_RESOLUTION]);
        let j = judge(&Ok(video(360, 640, 30.0)), 1, None);
        assert_eq!(codes_of(&j.violations), [codes::PICTURE_SIZE]);
    }

    #[test]
    fn hevc_message_carries_the_reencode_line() {
        let mut report = video(1080, 1920, 30.0);
        if let Some(v) = report.video.as_mut() {
            v.codec = "hevc".into();
        }
        let j = judge(&Ok(report), 1, None);
        assert_eq!(codes_of(&j.violations), [codes::VIDEO_CODEC]);
        assert!(j.violations[0].message.contains("-c:v libx264"));
    }

    #[test]
    fn duration_limit_is_ten_minutes_with_half_a_second_of_slack() {
        let mut report = video(1080, 1920, 30.0);
        report.duration_ms = Some(600_400);
        assert!(judge(&Ok(report.clone()), 1, None).accepted);
        report.duration_ms = Some(660_000);
        assert_eq!(codes_of(&judge(&Ok(report), 1, None).violations), [codes::DURATION]);
    }

    #[test]
    fn images_warn_on_crop_and_png_and_reject_oversize_and_gif() {
        let mut png = ProbeReport::new(Container::Png, 500_000);
        png.image = Some(ImageInfo {
            width: 1920,
            height: 1080,
            orientation: None,
        });
        let j = judge(&Ok(png.clone()), 1, Some(MediaKind::Image));
        assert!(j.accepted);
        assert_eq!(codes_of(&j.warnings), [codes::WILL_BE_CROPPED, codes::SENT_AS_JPEG]);
        png.size_bytes = 21_000_000;
        assert_eq!(
            codes_of(&judge(&Ok(png.clone()), 1, None).violations),
            [codes::FILE_SIZE]
        );
        // A decompression bomb is refused from its header: nothing is decoded.
        png.size_bytes = 261_000;
        png.image = Some(ImageInfo {
            width: 16_384,
            height: 16_384,
            orientation: None,
        });
        let bomb = judge(&Ok(png.clone()), 1, Some(MediaKind::Image));
        assert_eq!(codes_of(&bomb.violations), [codes::PICTURE_SIZE]);
        assert!(
            bomb.violations[0].message.contains("268.4 megapixels"),
            "{}",
            bomb.violations[0].message
        );
        png.image = Some(ImageInfo {
            width: 4096,
            height: 4096,
            orientation: None,
        });
        assert!(
            judge(&Ok(png), 1, Some(MediaKind::Image)).accepted,
            "the budget itself is allowed"
        );
        let mut gif = ProbeReport::new(Container::Gif, 1000);
        gif.image = Some(ImageInfo {
            width: 1080,
            height: 1920,
            orientation: None,
        });
        assert_eq!(codes_of(&judge(&Ok(gif), 1, None).violations), [codes::FILE_FORMAT]);
        // EXIF orientation 6 turns a landscape JPEG upright: no crop warning.
        let mut jpeg = ProbeReport::new(Container::Jpeg, 1000);
        jpeg.image = Some(ImageInfo {
            width: 1920,
            height: 1080,
            orientation: Some(6),
        });
        assert!(judge(&Ok(jpeg), 1, None).warnings.is_empty());
    }

    #[test]
    fn declared_kind_must_match_the_bytes() {
        let j = judge(&Ok(video(1080, 1920, 30.0)), 1, Some(MediaKind::Image));
        assert_eq!(codes_of(&j.violations), [codes::KIND_MISMATCH]);
        assert!(
            j.violations[0].message.contains("created as an image"),
            "{}",
            j.violations[0].message
        );
    }

    #[test]
    fn unreadable_files_are_verdicts_with_advice() {
        let empty = Unreadable {
            container: None,
            reason: UnreadableReason::Empty,
        };
        let j = judge(&Err(empty), 0, None);
        assert_eq!(
            (j.kind, codes_of(&j.violations)),
            (MediaClass::Unknown, vec![codes::FILE_EMPTY])
        );
        let garbage = Unreadable {
            container: None,
            reason: UnreadableReason::Unrecognised,
        };
        assert_eq!(
            codes_of(&judge(&Err(garbage), 9, None).violations),
            [codes::FILE_FORMAT]
        );
        let cut = Unreadable {
            container: Some(Container::Mp4),
            reason: UnreadableReason::MissingMovie,
        };
        let j = judge(&Err(cut), 9, None);
        assert_eq!(
            (j.kind, codes_of(&j.violations)),
            (MediaClass::Video, vec![codes::FILE_UNREADABLE])
        );
        assert!(
            j.violations[0].message.starts_with("The MP4 has no movie header"),
            "{}",
            j.violations[0].message
        );
    }
}
