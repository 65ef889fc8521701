//! The probe's findings in the shape the rest of the product stores and shows: `shared`'s [`MediaFacts`].

use shared::domain::MediaFacts;

use crate::probe::{ProbeReport, Unreadable};

/// Frame rates are kept to three decimals in the stored facts (23.976, 29.970); the rules judge the exact value.
fn round3(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

pub fn media_facts(report: &ProbeReport) -> MediaFacts {
    let mut facts = MediaFacts {
        container: Some(report.container.code().to_owned()),
        size_bytes: report.size_bytes,
        duration_ms: report.duration_ms,
        ..MediaFacts::default()
    };
    if let Some(video) = &report.video {
        facts.width = video.dimensions.map(|(w, _)| w);
        facts.height = video.dimensions.map(|(_, h)| h);
        facts.rotation = Some(video.rotation);
        facts.display_width = video.display_size().map(|(w, _)| w);
        facts.display_height = video.display_size().map(|(_, h)| h);
        facts.frame_rate = video.frame_rate.map(round3);
        facts.video_codec = Some(video.codec.clone());
        facts.video_profile = video.profile.clone();
        facts.video_level = video.level.clone();
    }
    if let Some(audio) = &report.audio {
        facts.audio_codec = Some(audio.codec.clone());
        facts.audio_sample_rate = audio.sample_rate;
        facts.audio_channels = audio.channels;
    }
    if let Some(image) = &report.image {
        let (display_width, display_height) = image.display_size();
        facts.format = Some(report.container.code().to_owned());
        facts.width = Some(image.width);
        facts.height = Some(image.height);
        facts.display_width = Some(display_width);
        facts.display_height = Some(display_height);
        facts.orientation = image.orientation;
    }
    facts
}

/// What is known of a file that could not be read: its size, and its container when recognised.
pub fn unreadable_facts(unreadable: &Unreadable, size_bytes: u64) -> MediaFacts {
    MediaFacts {
        container: unreadable.container.map(|c| c.code().to_owned()),
        size_bytes,
        ..MediaFacts::default()
    }
}
