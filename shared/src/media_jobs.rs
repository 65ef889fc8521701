//! Long media jobs (issue 13): work that does not fit the request or the validator's 60 s, handed to the media
//! worker through a queue ([`crate::ports::MediaJobQueue`]): fetching a `sourceUrl`, and the MP4 remux of a transport
//! stream too large to remux while validating. Each message carries one job, as versioned JSON:
//! `{"v":1,"job":"import","mediaId":"med_…","url":"https://…"}` or `{"v":1,"job":"remux","mediaId":"med_…"}`.
//! Delivery is at least once; both jobs are safe to run twice (the worker re-reads the media and does only what
//! is still to do).

use serde::{Deserialize, Serialize};

use crate::ids::MediaId;

/// The body format; a consumer refuses any other, so a format change can never be half-understood.
pub const MEDIA_JOB_VERSION: u32 = 1;

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "job", rename_all = "snake_case", rename_all_fields = "camelCase")]
pub enum MediaJob {
    /// Fetch the media's file from `url` into its upload key, then validate it as an upload.
    Import { media_id: MediaId, url: String },
    /// Remux the media's accepted transport stream into the MP4 rendition its verdict says is pending.
    Remux { media_id: MediaId },
}

impl MediaJob {
    pub fn media_id(&self) -> &MediaId {
        match self {
            Self::Import { media_id, .. } | Self::Remux { media_id } => media_id,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Self::Import { .. } => "import",
            Self::Remux { .. } => "remux",
        }
    }
}

/// The caller's URL may carry a signature in its query: logs get the job's kind and media only.
impl std::fmt::Debug for MediaJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaJob")
            .field("job", &self.kind())
            .field("media_id", self.media_id())
            .finish_non_exhaustive()
    }
}

#[derive(Serialize, Deserialize)]
struct Body {
    v: u32,
    #[serde(flatten)]
    job: MediaJob,
}

pub fn encode_job(job: &MediaJob) -> String {
    serde_json::to_string(&Body {
        v: MEDIA_JOB_VERSION,
        job: job.clone(),
    })
    .unwrap_or_default()
}

#[derive(Debug, thiserror::Error)]
#[error("not a media job (version {MEDIA_JOB_VERSION}): {0}")]
pub struct BadMediaJob(String);

pub fn decode_job(body: &str) -> Result<MediaJob, BadMediaJob> {
    let body: Body = serde_json::from_str(body).map_err(|e| BadMediaJob(e.to_string()))?;
    if body.v != MEDIA_JOB_VERSION {
        return Err(BadMediaJob(format!("version {}", body.v)));
    }
    Ok(body.job)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_travel_as_versioned_tagged_json() {
        let media_id = MediaId::new();
        let import = MediaJob::Import {
            media_id: media_id.clone(),
            url: "https://cdn.example.com/a.ts?sig=secret".into(),
        };
        let body = encode_job(&import);
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&body).expect("json"),
            serde_json::json!({"v": 1, "job": "import", "mediaId": media_id.as_str(),
                "url": "https://cdn.example.com/a.ts?sig=secret"})
        );
        assert_eq!(decode_job(&body).expect("decodes"), import);
        let remux = MediaJob::Remux { media_id };
        assert_eq!(decode_job(&encode_job(&remux)).expect("decodes"), remux);
    }

    #[test]
    fn other_versions_and_foreign_bodies_are_refused() {
        let media_id = MediaId::new();
        assert!(decode_job(&format!(r#"{{"v":2,"job":"remux","mediaId":"{media_id}"}}"#)).is_err());
        assert!(decode_job(r#"{"wakeups":[]}"#).is_err());
        assert!(decode_job("not json").is_err());
    }

    #[test]
    fn the_debug_form_never_shows_the_url() {
        let job = MediaJob::Import {
            media_id: MediaId::new(),
            url: "https://cdn.example.com/a.ts?sig=secret".into(),
        };
        assert!(!format!("{job:?}").contains("secret"));
    }
}
