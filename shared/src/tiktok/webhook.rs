//! TikTok webhooks (reference §7.2): the `TikTok-Signature` header and the event envelope.
//!
//! The signature is `t={unix seconds},s={hex HMAC-SHA256(client_secret, "{t}.{raw body}")}`. Verification compares in
//! constant time and refuses timestamps outside a tolerance, so a captured delivery cannot be replayed later.

use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sha2::{Digest, Sha256};

pub const SIGNATURE_HEADER: &str = "TikTok-Signature";
/// What common clients use; TikTok leaves it to the receiver.
pub const DEFAULT_TOLERANCE: Duration = Duration::minutes(5);

type HmacSha256 = Hmac<Sha256>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the TikTok-Signature header is missing or malformed")]
    Malformed,
    #[error("the TikTok-Signature timestamp is {age_seconds} s away from now, beyond the tolerance")]
    Stale { age_seconds: i64 },
    #[error("the TikTok-Signature does not match the body")]
    Mismatch,
}

fn mac_for(client_secret: &SecretString, timestamp: i64, body: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length, so this constructor cannot fail; the fallback keeps it panic-free anyway.
    let mut mac = HmacSha256::new_from_slice(client_secret.expose_secret().as_bytes())
        .unwrap_or_else(|_| HmacSha256::new(&Default::default()));
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The header value TikTok would send for `body` at `timestamp` (used by tests and the sandbox's peers).
pub fn sign(client_secret: &SecretString, timestamp: i64, body: &[u8]) -> String {
    let signature = hex::encode(mac_for(client_secret, timestamp, body).finalize().into_bytes());
    format!("t={timestamp},s={signature}")
}

/// Checks a delivery's header against its raw body.
pub fn verify(
    client_secret: &SecretString,
    header: &str,
    body: &[u8],
    now: DateTime<Utc>,
    tolerance: Duration,
) -> Result<(), SignatureError> {
    let (mut timestamp, mut signature) = (None, None);
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => timestamp = value.trim().parse::<i64>().ok(),
            Some(("s", value)) => signature = hex::decode(value.trim()).ok(),
            _ => {}
        }
    }
    let (Some(timestamp), Some(signature)) = (timestamp, signature) else {
        return Err(SignatureError::Malformed);
    };
    // The timestamp is the sender's, before any proof: `i64::MIN` would overflow a plain subtraction or `abs`.
    let within_tolerance = now
        .timestamp()
        .checked_sub(timestamp)
        .and_then(i64::checked_abs)
        .is_some_and(|age| age <= tolerance.num_seconds());
    if !within_tolerance {
        return Err(SignatureError::Stale {
            age_seconds: now.timestamp().saturating_sub(timestamp),
        });
    }
    mac_for(client_secret, timestamp, body)
        .verify_slice(&signature)
        .map_err(|_| SignatureError::Mismatch)
}

/// The envelope of every delivery. `content` is a JSON **string** holding the event's fields.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct WebhookEnvelope {
    #[serde(default)]
    pub client_key: String,
    pub event: String,
    #[serde(default)]
    pub create_time: i64,
    #[serde(default)]
    pub user_openid: String,
    #[serde(default)]
    pub content: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookEvent {
    PublishComplete {
        publish_id: String,
    },
    PublishFailed {
        publish_id: String,
        reason: String,
    },
    PubliclyAvailable {
        publish_id: String,
        post_id: String,
    },
    NoLongerPubliclyAvailable {
        publish_id: String,
        post_id: String,
    },
    InboxDelivered {
        publish_id: String,
    },
    /// `reason`: 0 unknown, 1 user disconnected, 2 account deleted, 3 age changed, 4 banned, 5 developer revoked.
    AuthorizationRemoved {
        reason: i64,
    },
    /// Events this product does not act on; acknowledged and ignored.
    Other {
        event: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the webhook body is not a TikTok event envelope: {0}")]
pub struct MalformedWebhook(String);

#[derive(Deserialize)]
struct RawContent {
    #[serde(default)]
    publish_id: Option<String>,
    #[serde(default)]
    reason: Option<serde_json::Value>,
    #[serde(default)]
    post_id: Option<serde_json::Value>,
}

/// A parsed delivery: the envelope, its event, and a key that is the same for every redelivery of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookDelivery {
    pub envelope: WebhookEnvelope,
    pub event: WebhookEvent,
}

impl WebhookDelivery {
    /// Parse after [`verify`] succeeded. Ids are kept as strings (post ids exceed 2^53).
    pub fn parse(body: &[u8]) -> Result<Self, MalformedWebhook> {
        let envelope: WebhookEnvelope =
            serde_json::from_slice(body).map_err(|e| MalformedWebhook(format!("envelope: {e}")))?;
        let content: RawContent = if envelope.content.trim().is_empty() {
            RawContent {
                publish_id: None,
                reason: None,
                post_id: None,
            }
        } else {
            serde_json::from_str(&envelope.content).map_err(|e| MalformedWebhook(format!("content: {e}")))?
        };
        let publish_id = || {
            content
                .publish_id
                .clone()
                .ok_or_else(|| MalformedWebhook("no publish_id".into()))
        };
        let post_id = || {
            content
                .post_id
                .as_ref()
                .and_then(json_id_to_string)
                .ok_or_else(|| MalformedWebhook("no post_id".into()))
        };
        let event = match envelope.event.as_str() {
            "post.publish.complete" => WebhookEvent::PublishComplete {
                publish_id: publish_id()?,
            },
            "post.publish.failed" => WebhookEvent::PublishFailed {
                publish_id: publish_id()?,
                reason: content.reason.as_ref().and_then(json_id_to_string).unwrap_or_default(),
            },
            "post.publish.publicly_available" => WebhookEvent::PubliclyAvailable {
                publish_id: publish_id()?,
                post_id: post_id()?,
            },
            // The typo is TikTok's official event name.
            "post.publish.no_longer_publicaly_available" => WebhookEvent::NoLongerPubliclyAvailable {
                publish_id: publish_id()?,
                post_id: post_id()?,
            },
            "post.publish.inbox_delivered" => WebhookEvent::InboxDelivered {
                publish_id: publish_id()?,
            },
            "authorization.removed" => WebhookEvent::AuthorizationRemoved {
                reason: content.reason.as_ref().and_then(serde_json::Value::as_i64).unwrap_or(0),
            },
            other => WebhookEvent::Other {
                event: other.to_owned(),
            },
        };
        Ok(Self { envelope, event })
    }

    /// Deliveries are at-least-once; a redelivery repeats the event, the user, the time and the content.
    pub fn dedupe_key(&self) -> String {
        let e = &self.envelope;
        let mut hasher = Sha256::new();
        for part in [
            e.event.as_bytes(),
            e.user_openid.as_bytes(),
            e.create_time.to_string().as_bytes(),
            e.content.as_bytes(),
        ] {
            hasher.update((part.len() as u64).to_be_bytes());
            hasher.update(part);
        }
        hex::encode(hasher.finalize())
    }
}

/// Ids arrive as JSON numbers or strings; numbers beyond 2^53 must not pass through a float.
pub(crate) fn json_id_to_string(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
        serde_json::Value::Number(n) => n
            .as_u64()
            .map(|v| v.to_string())
            .or_else(|| n.as_i64().map(|v| v.to_string())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> SecretString {
        SecretString::from("client-secret")
    }

    const BODY: &[u8] = br#"{"client_key":"k","event":"post.publish.complete","create_time":1700000000,"user_openid":"u1","content":"{\"publish_id\":\"v_pub_file~v2-1.1\",\"publish_type\":\"DIRECT_PUBLISH\"}"}"#;

    #[test]
    fn a_signed_body_verifies_within_the_tolerance() {
        let now = Utc::now();
        let header = sign(&secret(), now.timestamp() - 60, BODY);
        assert_eq!(verify(&secret(), &header, BODY, now, DEFAULT_TOLERANCE), Ok(()));
    }

    #[test]
    fn bad_signatures_stale_timestamps_and_malformed_headers_are_refused() {
        let now = Utc::now();
        let header = sign(&secret(), now.timestamp(), BODY);
        let tampered = [BODY, b" "].concat();
        assert_eq!(
            verify(&secret(), &header, &tampered, now, DEFAULT_TOLERANCE),
            Err(SignatureError::Mismatch)
        );
        let other_secret = SecretString::from("other");
        assert_eq!(
            verify(&other_secret, &header, BODY, now, DEFAULT_TOLERANCE),
            Err(SignatureError::Mismatch)
        );

        let stale = sign(&secret(), now.timestamp() - 301, BODY);
        assert_eq!(
            verify(&secret(), &stale, BODY, now, DEFAULT_TOLERANCE),
            Err(SignatureError::Stale { age_seconds: 301 })
        );
        let future = sign(&secret(), now.timestamp() + 301, BODY);
        assert!(matches!(
            verify(&secret(), &future, BODY, now, DEFAULT_TOLERANCE),
            Err(SignatureError::Stale { .. })
        ));

        for malformed in ["", "t=1", "s=abcd", "t=x,s=abcd", "t=1,s=zz"] {
            assert_eq!(
                verify(&secret(), malformed, BODY, now, DEFAULT_TOLERANCE),
                Err(SignatureError::Malformed)
            );
        }
    }

    #[test]
    fn attack_webhook_timestamp_i64_min_is_refused_without_panic() {
        let now = Utc::now();
        for timestamp in [i64::MIN, i64::MIN + 1, i64::MAX] {
            let header = sign(&secret(), timestamp, BODY);
            assert!(matches!(
                verify(&secret(), &header, BODY, now, DEFAULT_TOLERANCE),
                Err(SignatureError::Stale { .. })
            ));
        }
        assert!(matches!(
            verify(&secret(), "t=-9223372036854775808,s=00", BODY, now, DEFAULT_TOLERANCE),
            Err(SignatureError::Stale { .. })
        ));
    }

    #[test]
    fn events_parse_from_the_string_content() {
        let delivery = WebhookDelivery::parse(BODY).expect("valid");
        assert_eq!(
            delivery.event,
            WebhookEvent::PublishComplete {
                publish_id: "v_pub_file~v2-1.1".into()
            }
        );
        assert_eq!(delivery.envelope.user_openid, "u1");
        assert_eq!(
            delivery.dedupe_key(),
            WebhookDelivery::parse(BODY).expect("valid").dedupe_key()
        );

        let public = br#"{"event":"post.publish.publicly_available","create_time":1,"user_openid":"u","content":"{\"publish_id\":\"p\",\"post_id\":7300000000000000001}"}"#;
        assert_eq!(
            WebhookDelivery::parse(public).expect("valid").event,
            WebhookEvent::PubliclyAvailable {
                publish_id: "p".into(),
                post_id: "7300000000000000001".into()
            }
        );
        let removed =
            br#"{"event":"authorization.removed","create_time":1,"user_openid":"u","content":"{\"reason\":1}"}"#;
        assert_eq!(
            WebhookDelivery::parse(removed).expect("valid").event,
            WebhookEvent::AuthorizationRemoved { reason: 1 }
        );
        let failed = br#"{"event":"post.publish.failed","content":"{\"publish_id\":\"p\",\"reason\":\"spam_risk\"}"}"#;
        assert_eq!(
            WebhookDelivery::parse(failed).expect("valid").event,
            WebhookEvent::PublishFailed {
                publish_id: "p".into(),
                reason: "spam_risk".into()
            }
        );
        assert!(WebhookDelivery::parse(b"{}").is_err());
        assert!(WebhookDelivery::parse(br#"{"event":"post.publish.complete","content":"{}"}"#).is_err());
    }
}
