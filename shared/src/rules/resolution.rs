//! Reading a `POST /v1/posts/{id}/resolve` body: what a person found on TikTok for a post in `needs_review`.

use serde_json::Value;
use url::Url;

use super::Violation;
use crate::domain::Resolution;

const FIELDS: &[&str] = &["outcome", "postUrl"];

/// `{"outcome": "published", "postUrl": "https://www.tiktok.com/@user/video/123"}` (the URL optional) or
/// `{"outcome": "not_published"}`; every problem comes back together.
pub fn read_resolution(body: &Value) -> Result<Resolution, Vec<Violation>> {
    let Some(fields) = body.as_object() else {
        return Err(vec![Violation::new("", "wrong_type", "the body must be a JSON object")]);
    };
    let mut violations: Vec<Violation> = fields
        .keys()
        .filter(|name| !FIELDS.contains(&name.as_str()))
        .map(|name| {
            Violation::new(
                name.as_str(),
                "unknown_field",
                format!("{name} is not a field of a resolution"),
            )
        })
        .collect();
    let post_url = match fields.get("postUrl").filter(|v| !v.is_null()) {
        None => None,
        Some(Value::String(raw)) => match tiktok_post_url(raw) {
            Ok(url) => Some(url),
            Err(message) => {
                violations.push(Violation::new("postUrl", "invalid_url", message));
                None
            }
        },
        Some(_) => {
            violations.push(Violation::new("postUrl", "wrong_type", "postUrl must be a string"));
            None
        }
    };
    let resolution = match fields.get("outcome").and_then(Value::as_str) {
        Some("published") => Some(Resolution::Published {
            tiktok_post_id: post_url.as_ref().and_then(tiktok_post_id),
            post_url: post_url.map(String::from),
        }),
        Some("not_published") if post_url.is_some() => {
            violations.push(Violation::new(
                "postUrl",
                "not_allowed",
                "postUrl goes with outcome published only",
            ));
            None
        }
        Some("not_published") => Some(Resolution::NotPublished),
        _ => {
            violations.push(Violation::new(
                "outcome",
                "invalid_value",
                "outcome must be \"published\" (it is on TikTok; add postUrl) or \"not_published\" (it is not: the \
                 post can then be retried)",
            ));
            None
        }
    };
    match resolution {
        Some(resolution) if violations.is_empty() => Ok(resolution),
        _ => Err(violations),
    }
}

/// An https URL on tiktok.com (any subdomain).
fn tiktok_post_url(raw: &str) -> Result<Url, String> {
    let url = Url::parse(raw).map_err(|_| "postUrl must be an absolute URL of the post on tiktok.com".to_owned())?;
    let on_tiktok = url
        .host_str()
        .is_some_and(|host| host == "tiktok.com" || host.ends_with(".tiktok.com"));
    if url.scheme() != "https" || !on_tiktok {
        return Err("postUrl must be an https URL on tiktok.com, e.g. https://www.tiktok.com/@user/video/123".into());
    }
    Ok(url)
}

/// TikTok's post id from `/@user/video/{id}` or `/@user/photo/{id}`.
fn tiktok_post_id(url: &Url) -> Option<String> {
    let segments: Vec<&str> = url.path_segments()?.filter(|s| !s.is_empty()).collect();
    match segments.as_slice() {
        [user, "video" | "photo", id]
            if user.starts_with('@') && !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) =>
        {
            Some((*id).to_owned())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn fields(result: Result<Resolution, Vec<Violation>>) -> Vec<String> {
        result.unwrap_err().into_iter().map(|v| v.field).collect()
    }

    #[test]
    fn a_tiktok_video_url_gives_the_post_id() {
        let read = read_resolution(
            &json!({"outcome": "published", "postUrl": "https://www.tiktok.com/@user/video/7312345?lang=en"}),
        );
        assert_eq!(
            read.unwrap(),
            Resolution::Published {
                post_url: Some("https://www.tiktok.com/@user/video/7312345?lang=en".into()),
                tiktok_post_id: Some("7312345".into()),
            }
        );
    }

    #[test]
    fn a_tiktok_url_that_is_not_a_post_is_kept_without_an_id() {
        let read = read_resolution(&json!({"outcome": "published", "postUrl": "https://vm.tiktok.com/ZMabc/"}));
        assert!(matches!(
            read,
            Ok(Resolution::Published {
                tiktok_post_id: None,
                post_url: Some(_)
            })
        ));
        assert!(matches!(
            read_resolution(&json!({"outcome": "published"})),
            Ok(Resolution::Published { post_url: None, .. })
        ));
    }

    #[test]
    fn urls_off_tiktok_or_without_https_name_post_url() {
        for url in [
            "http://www.tiktok.com/@user/video/1",
            "https://tiktok.com.evil.example/@user/video/1",
            "https://nottiktok.com/@user/video/1",
            "not a url",
        ] {
            let read = read_resolution(&json!({"outcome": "published", "postUrl": url}));
            assert_eq!(fields(read), ["postUrl"], "{url}");
        }
    }

    #[test]
    fn outcomes_other_than_the_two_name_outcome() {
        for body in [json!({}), json!({"outcome": "maybe"}), json!({"outcome": true})] {
            assert_eq!(fields(read_resolution(&body)), ["outcome"], "{body}");
        }
        assert_eq!(
            read_resolution(&json!({"outcome": "not_published"})),
            Ok(Resolution::NotPublished)
        );
        assert_eq!(
            fields(read_resolution(&json!({"outcome": "not_published", "extra": 1}))),
            ["extra"]
        );
    }
}
