//! What the probe found: the container it recognised and the facts it read, or why the file is unreadable.

use std::fmt;

/// What the bytes are, whatever the file was called or declared as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaClass {
    Video,
    Image,
    Unknown,
}

impl MediaClass {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Video => "video",
            Self::Image => "image",
            Self::Unknown => "unknown",
        }
    }
}

/// Every format the probe recognises, including those the guide rejects, so that a rejection can name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    Mp4,
    Mov,
    MpegTs,
    MpegPs,
    Jpeg,
    Png,
    Webp,
    Gif,
    Heif,
    Avif,
    Webm,
    Matroska,
    Avi,
    /// Recognised, named, and not media we handle (an audio file, a document, an archive...).
    Other {
        code: &'static str,
        name: &'static str,
        class: MediaClass,
    },
}

impl Container {
    /// The stable short name stored in the facts.
    pub fn code(self) -> &'static str {
        match self {
            Self::Mp4 => "mp4",
            Self::Mov => "mov",
            Self::MpegTs => "mpegts",
            Self::MpegPs => "mpegps",
            Self::Jpeg => "jpeg",
            Self::Png => "png",
            Self::Webp => "webp",
            Self::Gif => "gif",
            Self::Heif => "heif",
            Self::Avif => "avif",
            Self::Webm => "webm",
            Self::Matroska => "matroska",
            Self::Avi => "avi",
            Self::Other { code, .. } => code,
        }
    }

    /// The name a person recognises, for messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Mp4 => "MP4",
            Self::Mov => "QuickTime MOV",
            Self::MpegTs => "MPEG transport stream",
            Self::MpegPs => "MPEG program stream",
            Self::Jpeg => "JPEG image",
            Self::Png => "PNG image",
            Self::Webp => "WebP image",
            Self::Gif => "GIF image",
            Self::Heif => "HEIF/HEIC image",
            Self::Avif => "AVIF image",
            Self::Webm => "WebM video",
            Self::Matroska => "Matroska (MKV) video",
            Self::Avi => "AVI video",
            Self::Other { name, .. } => name,
        }
    }

    pub fn class(self) -> MediaClass {
        match self {
            Self::Mp4 | Self::Mov | Self::MpegTs | Self::MpegPs | Self::Webm | Self::Matroska | Self::Avi => {
                MediaClass::Video
            }
            Self::Jpeg | Self::Png | Self::Webp | Self::Gif | Self::Heif | Self::Avif => MediaClass::Image,
            Self::Other { class, .. } => class,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct VideoStream {
    /// ffprobe's codec names: `h264`, `hevc`, `vp9`, `av1`, `mpeg2video`... (a sample entry's fourcc when unknown).
    pub codec: String,
    /// ffprobe's profile names (`High`, `Constrained Baseline`, `Main 10`...).
    pub profile: Option<String>,
    /// `4.0`, `3.1`, `1b`...
    pub level: Option<String>,
    /// Width and height as stored (coded size after cropping), before rotation; unknown for codecs whose headers
    /// the probe does not decode in that container (HEVC in MPEG-TS).
    pub dimensions: Option<(u32, u32)>,
    /// Degrees clockwise to turn the stored picture for display: 0, 90, 180 or 270.
    pub rotation: u32,
    /// Average frames per second (frames ÷ time), as ffprobe's `avg_frame_rate`.
    pub frame_rate: Option<f64>,
    /// Sample (pixel) aspect ratio when the stream declares a non-square one.
    pub pixel_aspect: Option<(u32, u32)>,
}

impl VideoStream {
    /// Width and height as shown: after rotation.
    pub fn display_size(&self) -> Option<(u32, u32)> {
        let (w, h) = self.dimensions?;
        Some(if self.rotation % 180 == 90 { (h, w) } else { (w, h) })
    }

    /// The shape the viewer sees: display size with the pixel aspect applied.
    pub fn display_aspect(&self) -> Option<f64> {
        let (w, h) = self.display_size()?;
        if w == 0 || h == 0 {
            return None;
        }
        let (num, den) = self.pixel_aspect.filter(|&(n, d)| n > 0 && d > 0).unwrap_or((1, 1));
        // Rotation turns the pixel's shape with the picture.
        let (num, den) = if self.rotation % 180 == 90 {
            (den, num)
        } else {
            (num, den)
        };
        Some(f64::from(w) * f64::from(num) / (f64::from(h) * f64::from(den)))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioStream {
    /// ffprobe's codec names: `aac`, `mp3`, `mp2`, `opus`, `ac3`... (a sample entry's fourcc when unknown).
    pub codec: String,
    pub sample_rate: Option<u32>,
    pub channels: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    /// As stored, before EXIF orientation.
    pub width: u32,
    pub height: u32,
    /// EXIF orientation (1–8) when the file carries one.
    pub orientation: Option<u8>,
}

impl ImageInfo {
    /// Orientations 5–8 turn the picture a quarter, so viewers show it with width and height swapped.
    pub fn display_size(&self) -> (u32, u32) {
        match self.orientation {
            Some(5..=8) => (self.height, self.width),
            _ => (self.width, self.height),
        }
    }
}

/// A recognised file whose structure says it is incomplete (its last box or packet runs past the end of the
/// object). The facts are still reported; the verdict rejects it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Truncation {
    /// How many bytes the structure claims.
    pub expected_size: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ProbeReport {
    pub container: Container,
    pub size_bytes: u64,
    pub duration_ms: Option<u64>,
    pub video: Option<VideoStream>,
    pub audio: Option<AudioStream>,
    pub image: Option<ImageInfo>,
    /// SHA-256 over the size and the movie metadata (video) or over the whole file (images).
    pub fingerprint: Option<[u8; 32]>,
    pub truncated: Option<Truncation>,
}

impl ProbeReport {
    pub(crate) fn new(container: Container, size_bytes: u64) -> Self {
        Self {
            container,
            size_bytes,
            duration_ms: None,
            video: None,
            audio: None,
            image: None,
            fingerprint: None,
            truncated: None,
        }
    }

    pub fn class(&self) -> MediaClass {
        self.container.class()
    }
}

/// Why no facts could be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnreadableReason {
    /// Zero bytes.
    Empty,
    /// Not a format the probe knows.
    Unrecognised,
    /// The file ends before a structure it needs.
    Truncated(String),
    /// A structure contradicts itself (sizes, counts, zero time scales...).
    Corrupt(String),
    /// An MP4/MOV without a movie header: an unfinished recording or a file cut before its end.
    MissingMovie,
    /// DRM-protected tracks (encv/enca) cannot be checked or published.
    Encrypted,
    /// The object needs more reads or bytes than one probe may spend.
    OverBudget { reads: u32, bytes: u64 },
    /// The object changed size between reads, or a read came back outside the object.
    InconsistentReads(String),
    /// The probe itself failed (a bug); the driver turns a panic into this.
    Internal,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    /// What the file was recognised as before it turned out unreadable, if anything.
    pub container: Option<Container>,
    pub reason: UnreadableReason,
}

impl Unreadable {
    pub(crate) fn new(container: Option<Container>, reason: UnreadableReason) -> Self {
        Self { container, reason }
    }

    pub fn class(&self) -> MediaClass {
        self.container.map_or(MediaClass::Unknown, Container::class)
    }
}

impl fmt::Display for Unreadable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = self.container.map_or("file", Container::name);
        match &self.reason {
            UnreadableReason::Empty => write!(f, "the file is empty"),
            UnreadableReason::Unrecognised => write!(f, "the file is not a video or image format we recognise"),
            UnreadableReason::Truncated(detail) => write!(f, "the {what} is cut short: {detail}"),
            UnreadableReason::Corrupt(detail) => write!(f, "the {what} is damaged: {detail}"),
            UnreadableReason::MissingMovie => write!(
                f,
                "the {what} has no movie header (moov): the recording was not finished or the file was cut"
            ),
            UnreadableReason::Encrypted => write!(f, "the {what} is DRM-protected"),
            UnreadableReason::OverBudget { reads, bytes } => write!(
                f,
                "the {what} needs more than {reads} reads or {} MiB of metadata to check",
                bytes / (1024 * 1024)
            ),
            UnreadableReason::InconsistentReads(detail) => write!(f, "the {what} changed while being read: {detail}"),
            UnreadableReason::Internal => write!(f, "the probe failed on this {what}"),
        }
    }
}
