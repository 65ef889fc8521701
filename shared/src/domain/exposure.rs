//! What TikTok may pull, and for how long. Uploads and renditions are never reachable from outside: CloudFront (and
//! the local runner's media route) serve only keys under [`PUBLIC_PREFIX`]. A post sent by PULL_FROM_URL gets copies
//! of its media there, under a folder named by 128 random bits (nobody can guess a URL TikTok was not given), made
//! when it is claimed and recorded on the post by the claim itself; they are removed once TikTok has the bytes or
//! the post ended ([`super::Post::exposure_to_withdraw`]), and the bucket's lifecycle rule removes anything left
//! under the prefix a day later whatever happened.

use super::Media;

/// The only prefix served publicly.
pub const PUBLIC_PREFIX: &str = "public/";

/// Whether `key` may be served publicly.
pub fn is_public_key(key: &str) -> bool {
    key.strip_prefix(PUBLIC_PREFIX).is_some_and(|rest| !rest.is_empty())
}

/// One object to expose: the stored media object and the public key its copy gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExposedCopy {
    pub from: String,
    pub to: String,
}

/// The public copies one publish needs, in the post's media order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exposure {
    pub copies: Vec<ExposedCopy>,
}

impl Exposure {
    /// Fresh public keys for `media`: `public/<32 hex digits>/<n>.<ext>`, the extension being the one TikTok may
    /// expect from the URL (the rendition's when there is one).
    pub fn plan(media: &[Media]) -> Self {
        let folder = hex::encode(rand::random::<[u8; 16]>());
        let copies = media
            .iter()
            .enumerate()
            .map(|(n, media)| ExposedCopy {
                from: media.publishable_key().to_owned(),
                to: format!("{PUBLIC_PREFIX}{folder}/{n}.{}", media.publishable_extension()),
            })
            .collect();
        Self { copies }
    }

    pub fn keys(&self) -> Vec<String> {
        self.copies.iter().map(|copy| copy.to.clone()).collect()
    }

    /// The URLs TikTok pulls from, under `base_url` (the prefix serving the bucket).
    pub fn urls(&self, base_url: &str) -> Vec<String> {
        let base = base_url.trim_end_matches('/');
        self.copies.iter().map(|copy| format!("{base}/{}", copy.to)).collect()
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::{
        domain::{MediaKind, MediaStatus},
        ids::{MediaId, WorkspaceId},
    };

    fn media(content_type: &str) -> Media {
        let (workspace, id) = (WorkspaceId::new(), MediaId::new());
        Media {
            object_key: Media::object_key_for(&workspace, &id),
            id,
            workspace_id: workspace,
            kind: MediaKind::Image,
            content_type: content_type.to_owned(),
            declared_size: 10,
            file_name: "f".into(),
            status: MediaStatus::Valid,
            verdict: None,
            created_at: Utc::now(),
            updated_at: Utc::now(),
            version: 1,
            waiting_posts: Vec::new(),
        }
    }

    #[test]
    fn every_publish_gets_its_own_unguessable_public_folder() {
        let photos = [media("image/jpeg"), media("image/webp")];
        let first = Exposure::plan(&photos);
        let second = Exposure::plan(&photos);

        let keys = first.keys();
        assert_eq!(keys.len(), 2);
        let folder = keys[0]
            .strip_prefix(PUBLIC_PREFIX)
            .and_then(|rest| rest.split_once('/'))
            .map(|(folder, _)| folder)
            .unwrap();
        assert_eq!(folder.len(), 32, "128 random bits");
        assert!(keys[0].ends_with("/0.jpg") && keys[1].ends_with("/1.webp"), "{keys:?}");
        assert_eq!(first.copies[0].from, photos[0].object_key);
        assert_ne!(first.keys(), second.keys());
        assert!(keys.iter().all(|key| is_public_key(key)));
        assert_eq!(
            first.urls("https://media.example.com/")[0],
            format!("https://media.example.com/{}", keys[0])
        );
    }

    #[test]
    fn only_keys_under_the_public_prefix_are_public() {
        assert!(is_public_key("public/abc/0.jpg"));
        for private in [
            "uploads/ws_1/med_1",
            "renditions/ws_1/med_1.jpg",
            "public/",
            "publicity/x",
            "x/public/y",
        ] {
            assert!(!is_public_key(private), "{private}");
        }
    }
}
