//! Secrets at cold start. When `POSTATO_SECRET_ARN` names a Secrets Manager secret, the function reads it once,
//! before its typed config is built, and lays its values over the environment snapshot:
//!
//! | JSON field | variable it sets |
//! |---|---|
//! | `tiktokClientKey` | `TIKTOK_CLIENT_KEY` |
//! | `tiktokClientSecret` | `TIKTOK_CLIENT_SECRET` |
//! | `tokenEncryptionKey` | `TOKEN_ENCRYPTION_KEY` (base64 of 32 bytes) |
//!
//! Without the variable nothing is read, so the local runner and the tests keep using plain variables. Nothing is
//! cached beyond the process: a rotated value reaches a function at its next cold start. Errors name the secret and
//! the field, never a value.

use std::future::Future;

use aws_config::BehaviorVersion;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use crate::{config::EnvVars, ports::BoxError};

/// The variable naming the secret (its ARN, as the template passes it, or its name).
pub const SECRET_ARN_VARIABLE: &str = "POSTATO_SECRET_ARN";

/// Every field the secret must hold, and the variable each one becomes.
pub const SECRET_FIELDS: [(&str, &str); 3] = [
    ("tiktokClientKey", "TIKTOK_CLIENT_KEY"),
    ("tiktokClientSecret", "TIKTOK_CLIENT_SECRET"),
    ("tokenEncryptionKey", "TOKEN_ENCRYPTION_KEY"),
];

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("reading secret {secret} (named by {SECRET_ARN_VARIABLE}) failed")]
    Fetch {
        secret: String,
        #[source]
        source: BoxError,
    },
    #[error("secret {secret} (named by {SECRET_ARN_VARIABLE}) has no SecretString; a JSON object is expected")]
    NoString { secret: String },
    #[error(
        "secret {secret} (named by {SECRET_ARN_VARIABLE}) is not a JSON object (error at line {line}, column {column})"
    )]
    NotAnObject { secret: String, line: usize, column: usize },
    #[error(
        "secret {secret} (named by {SECRET_ARN_VARIABLE}) lacks the field {field}, or it is not a non-empty string"
    )]
    Field { secret: String, field: &'static str },
}

/// Reads the secret named by `POSTATO_SECRET_ARN` from Secrets Manager (endpoint, region and credentials from the
/// standard AWS configuration) and lays it over `env`; returns `env` unchanged when the variable is unset.
pub async fn overlay_from_secrets_manager(env: EnvVars) -> Result<EnvVars, SecretError> {
    overlay_secret(env, |secret_id| async move {
        let config = aws_config::defaults(BehaviorVersion::latest()).load().await;
        let output = aws_sdk_secretsmanager::Client::new(&config)
            .get_secret_value()
            .secret_id(secret_id)
            .send()
            .await
            .map_err(|e| Box::new(e) as BoxError)?;
        Ok(output.secret_string)
    })
    .await
}

/// [`overlay_from_secrets_manager`] with the read as an argument: `fetch` gets the secret id and returns its
/// `SecretString`, if it has one.
pub async fn overlay_secret<F, Fut>(env: EnvVars, fetch: F) -> Result<EnvVars, SecretError>
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = Result<Option<String>, BoxError>>,
{
    let Some(secret) = env.optional(SECRET_ARN_VARIABLE) else {
        return Ok(env);
    };
    let text = fetch(secret.clone())
        .await
        .map_err(|source| SecretError::Fetch {
            secret: secret.clone(),
            source,
        })?
        .map(SecretString::from)
        .ok_or_else(|| SecretError::NoString { secret: secret.clone() })?;
    let values = parse_secret(&secret, &text)?;
    Ok(values
        .into_iter()
        .fold(env, |env, (name, value)| env.with(name, value.expose_secret())))
}

/// The secret's JSON into `(variable, value)` pairs. Unknown fields are ignored, so that a field added for a later
/// version does not break an older function.
pub fn parse_secret(secret: &str, text: &SecretString) -> Result<Vec<(&'static str, SecretString)>, SecretError> {
    // Parse to a Value first: serde's type errors quote the offending value, its syntax errors only say where.
    let document: Value = serde_json::from_str(text.expose_secret()).map_err(|e| SecretError::NotAnObject {
        secret: secret.to_owned(),
        line: e.line(),
        column: e.column(),
    })?;
    let Value::Object(fields) = document else {
        return Err(SecretError::NotAnObject {
            secret: secret.to_owned(),
            line: 1,
            column: 1,
        });
    };
    SECRET_FIELDS
        .iter()
        .map(|&(field, variable)| match fields.get(field) {
            Some(Value::String(value)) if !value.trim().is_empty() => {
                Ok((variable, SecretString::from(value.trim().to_owned())))
            }
            _ => Err(SecretError::Field {
                secret: secret.to_owned(),
                field,
            }),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    const ARN: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:postato-prod-tiktok-AbCdEf";
    const DOCUMENT: &str =
        r#"{"tiktokClientKey":"aw_key","tiktokClientSecret":"super-secret-value","tokenEncryptionKey":"a2V5LWtleQ=="}"#;

    fn secret(text: &str) -> SecretString {
        SecretString::from(text.to_owned())
    }

    async fn overlay_with_document(env: EnvVars, document: Option<&str>) -> Result<EnvVars, SecretError> {
        let document = document.map(str::to_owned);
        overlay_secret(env, |id| async move {
            assert_eq!(id, ARN);
            Ok(document)
        })
        .await
    }

    #[tokio::test]
    async fn when_no_secret_is_named_the_environment_is_used_as_it_is_and_nothing_is_read() {
        let called = AtomicBool::new(false);
        let env = EnvVars::from_pairs([("TIKTOK_CLIENT_SECRET", "from-env")]);
        let env = overlay_secret(env, |_| async {
            called.store(true, Ordering::SeqCst);
            Ok(None)
        })
        .await
        .expect("nothing to read");
        assert!(!called.load(Ordering::SeqCst));
        assert_eq!(env.optional("TIKTOK_CLIENT_SECRET").as_deref(), Some("from-env"));
    }

    #[tokio::test]
    async fn when_a_secret_is_named_its_fields_replace_the_variables() {
        let env = EnvVars::from_pairs([
            (SECRET_ARN_VARIABLE, ARN),
            ("TIKTOK_CLIENT_KEY", "stale"),
            ("TABLE_NAME", "posts"),
        ]);
        let env = overlay_with_document(env, Some(DOCUMENT)).await.expect("valid secret");
        assert_eq!(env.optional("TIKTOK_CLIENT_KEY").as_deref(), Some("aw_key"));
        assert_eq!(
            env.optional("TIKTOK_CLIENT_SECRET").as_deref(),
            Some("super-secret-value")
        );
        assert_eq!(env.optional("TOKEN_ENCRYPTION_KEY").as_deref(), Some("a2V5LWtleQ=="));
        assert_eq!(env.optional("TABLE_NAME").as_deref(), Some("posts"));
    }

    #[tokio::test]
    async fn a_failed_read_names_the_secret() {
        let env = EnvVars::from_pairs([(SECRET_ARN_VARIABLE, ARN)]);
        let error = overlay_secret(env, |_| async {
            Err::<Option<String>, BoxError>("access denied".into())
        })
        .await
        .expect_err("read failed");
        assert!(matches!(error, SecretError::Fetch { .. }));
        assert!(error.to_string().contains(ARN), "{error}");

        let env = EnvVars::from_pairs([(SECRET_ARN_VARIABLE, ARN)]);
        let error = overlay_with_document(env, None).await.expect_err("binary secret");
        assert!(matches!(error, SecretError::NoString { .. }), "{error}");
    }

    #[test]
    fn every_field_is_required_and_named_when_missing_or_empty() {
        for (field, _) in SECRET_FIELDS {
            let mut document: serde_json::Map<String, Value> = serde_json::from_str(DOCUMENT).expect("json");
            document.remove(field);
            let missing = secret(&Value::Object(document.clone()).to_string());
            document.insert(field.to_owned(), Value::String("  ".into()));
            let empty = secret(&Value::Object(document.clone()).to_string());
            document.insert(field.to_owned(), Value::from(4242));
            let number = secret(&Value::Object(document).to_string());
            for text in [missing, empty, number] {
                let error = parse_secret(ARN, &text).expect_err("incomplete");
                let message = error.to_string();
                assert!(
                    matches!(error, SecretError::Field { field: f, .. } if f == field),
                    "{message}"
                );
                assert!(message.contains(field) && message.contains(ARN), "{message}");
                assert!(
                    !message.contains("super-secret-value") && !message.contains("4242"),
                    "{message}"
                );
            }
        }
    }

    #[test]
    fn a_secret_that_is_not_a_json_object_is_refused_without_echoing_it() {
        for text in [
            r#""super-secret-value""#,
            "super-secret-value",
            r#"["super-secret-value"]"#,
            "",
        ] {
            let error = parse_secret(ARN, &secret(text)).expect_err("not an object");
            let message = error.to_string();
            assert!(matches!(error, SecretError::NotAnObject { .. }), "{message}");
            assert!(!message.contains("super-secret"), "{message}");
        }
    }

    #[test]
    fn unknown_fields_are_ignored_and_values_trimmed() {
        let text = r#"{"tiktokClientKey":" k ","tiktokClientSecret":"s","tokenEncryptionKey":"e","later":1}"#;
        let values = parse_secret(ARN, &secret(text)).expect("valid");
        let shown: Vec<(&str, &str)> = values.iter().map(|(n, v)| (*n, v.expose_secret())).collect();
        assert_eq!(
            shown,
            [
                ("TIKTOK_CLIENT_KEY", "k"),
                ("TIKTOK_CLIENT_SECRET", "s"),
                ("TOKEN_ENCRYPTION_KEY", "e")
            ]
        );
    }
}
