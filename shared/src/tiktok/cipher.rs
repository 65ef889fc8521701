//! Tokens at rest: AES-256-GCM with a fresh random 96-bit nonce per seal, stored as
//! `base64(nonce ‖ ciphertext ‖ tag)`. GCM's tag makes any change to a stored value fail to open instead of
//! yielding a wrong token.

use aes_gcm::{
    aead::{Aead, KeyInit},
    Aes256Gcm, Nonce,
};
use base64::{engine::general_purpose::STANDARD, Engine};
use secrecy::{ExposeSecret, SecretString};

use super::oauth::TokenGrant;
use crate::{
    config::{ConfigError, EnvVars},
    domain::SealedTokens,
};

/// The variable holding the key: standard base64 of 32 bytes (in AWS from a KMS-protected secret).
pub const TOKEN_KEY_VARIABLE: &str = "TOKEN_ENCRYPTION_KEY";

const NONCE_LEN: usize = 12;
/// GCM's authentication tag.
const TAG_LEN: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CipherError {
    #[error("the token encryption key must be 32 bytes, got {0}")]
    KeyLength(usize),
    #[error("the token encryption key is not valid base64")]
    KeyEncoding,
    #[error("a sealed token is not valid base64 or is too short")]
    Malformed,
    /// Wrong key, or the stored value was altered.
    #[error("a sealed token failed authentication (wrong key or altered value)")]
    Tampered,
    #[error("a sealed token does not hold UTF-8 text")]
    NotText,
    #[error("encryption failed")]
    Seal,
}

/// Seals and opens tokens with one 32-byte key. `Debug` never shows the key.
#[derive(Clone)]
pub struct TokenCipher {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for TokenCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenCipher([key redacted])")
    }
}

impl TokenCipher {
    pub fn new(key: &[u8; 32]) -> Self {
        Self {
            cipher: Aes256Gcm::new(key.into()),
        }
    }

    pub fn from_slice(key: &[u8]) -> Result<Self, CipherError> {
        let key: &[u8; 32] = key.try_into().map_err(|_| CipherError::KeyLength(key.len()))?;
        Ok(Self::new(key))
    }

    /// A key as configuration carries it: standard base64 of 32 bytes.
    pub fn from_base64_key(encoded: &SecretString) -> Result<Self, CipherError> {
        let bytes = STANDARD
            .decode(encoded.expose_secret().trim())
            .map_err(|_| CipherError::KeyEncoding)?;
        Self::from_slice(&bytes)
    }

    /// The key from [`TOKEN_KEY_VARIABLE`]; a missing or malformed key fails start-up naming the variable (never its
    /// value).
    pub fn from_env(env: &EnvVars) -> Result<Self, ConfigError> {
        let key = SecretString::from(env.required(TOKEN_KEY_VARIABLE)?);
        Self::from_base64_key(&key).map_err(|e| ConfigError::Invalid {
            name: TOKEN_KEY_VARIABLE,
            reason: e.to_string(),
        })
    }

    /// A fresh random key in the form [`Self::from_base64_key`] reads (for the local runner's first start).
    pub fn generate_base64_key() -> SecretString {
        let key: [u8; 32] = rand::random();
        SecretString::from(STANDARD.encode(key))
    }

    pub fn seal(&self, plaintext: &SecretString) -> Result<String, CipherError> {
        let nonce_bytes: [u8; NONCE_LEN] = rand::random();
        let ciphertext = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce_bytes), plaintext.expose_secret().as_bytes())
            .map_err(|_| CipherError::Seal)?;
        let mut sealed = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        sealed.extend_from_slice(&nonce_bytes);
        sealed.extend_from_slice(&ciphertext);
        Ok(STANDARD.encode(sealed))
    }

    pub fn open(&self, sealed: &str) -> Result<SecretString, CipherError> {
        let bytes = STANDARD.decode(sealed.trim()).map_err(|_| CipherError::Malformed)?;
        if bytes.len() < NONCE_LEN + TAG_LEN {
            return Err(CipherError::Malformed);
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let plaintext = self
            .cipher
            .decrypt(Nonce::from_slice(nonce), ciphertext)
            .map_err(|_| CipherError::Tampered)?;
        String::from_utf8(plaintext)
            .map(SecretString::from)
            .map_err(|_| CipherError::NotText)
    }

    /// A grant as an account stores it: both tokens sealed, expiries in clear so refreshes can be scheduled.
    pub fn seal_grant(&self, grant: &TokenGrant) -> Result<SealedTokens, CipherError> {
        Ok(SealedTokens {
            access_token: self.seal(&grant.access_token)?,
            access_expires_at: grant.access_expires_at,
            refresh_token: self.seal(&grant.refresh_token)?,
            refresh_expires_at: grant.refresh_expires_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cipher() -> TokenCipher {
        TokenCipher::new(&[7u8; 32])
    }

    #[test]
    fn sealed_tokens_open_to_the_original_and_never_repeat() {
        let token = SecretString::from("act.1234567890abcdef");
        let first = cipher().seal(&token).expect("seals");
        let second = cipher().seal(&token).expect("seals");
        assert_ne!(first, second, "a fresh nonce per seal");
        assert!(!first.contains("act."));
        assert_eq!(
            cipher().open(&first).expect("opens").expose_secret(),
            "act.1234567890abcdef"
        );
    }

    #[test]
    fn any_altered_byte_or_another_key_is_detected() {
        let sealed = cipher().seal(&SecretString::from("rft.secret")).expect("seals");
        let mut bytes = STANDARD.decode(&sealed).expect("base64");
        for index in [0, NONCE_LEN, bytes.len() - 1] {
            bytes[index] ^= 0x01;
            assert_eq!(
                cipher().open(&STANDARD.encode(&bytes)).err(),
                Some(CipherError::Tampered),
                "byte {index}"
            );
            bytes[index] ^= 0x01;
        }
        assert_eq!(
            TokenCipher::new(&[8u8; 32]).open(&sealed).err(),
            Some(CipherError::Tampered)
        );
        assert_eq!(cipher().open("not base64!").err(), Some(CipherError::Malformed));
        assert_eq!(
            cipher().open(&STANDARD.encode([0u8; 20])).err(),
            Some(CipherError::Malformed)
        );
    }

    #[test]
    fn a_sealed_grant_opens_to_its_tokens() {
        let now = chrono::Utc::now();
        let grant = TokenGrant {
            open_id: "open".into(),
            scopes: Default::default(),
            access_token: SecretString::from("act.x"),
            access_expires_at: now,
            refresh_token: SecretString::from("rft.y"),
            refresh_expires_at: now,
        };
        let sealed = cipher().seal_grant(&grant).expect("seals");
        assert_eq!(
            cipher().open(&sealed.access_token).expect("opens").expose_secret(),
            "act.x"
        );
        assert_eq!(
            cipher().open(&sealed.refresh_token).expect("opens").expose_secret(),
            "rft.y"
        );
        assert_eq!(sealed.refresh_expires_at, now);
    }

    #[test]
    fn the_key_comes_from_the_environment_and_a_bad_one_is_named() {
        let key = TokenCipher::generate_base64_key();
        let env = EnvVars::from_pairs([(TOKEN_KEY_VARIABLE, key.expose_secret())]);
        assert!(TokenCipher::from_env(&env).is_ok());
        assert_eq!(
            TokenCipher::from_env(&EnvVars::default()).err(),
            Some(ConfigError::Missing(TOKEN_KEY_VARIABLE))
        );
        let short = EnvVars::from_pairs([(TOKEN_KEY_VARIABLE, "c2hvcnQ=")]);
        let error = TokenCipher::from_env(&short)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            error.contains(TOKEN_KEY_VARIABLE) && !error.contains("c2hvcnQ"),
            "{error}"
        );
    }

    #[test]
    fn keys_must_be_32_bytes_and_never_show() {
        assert_eq!(
            TokenCipher::from_slice(&[1u8; 16]).err(),
            Some(CipherError::KeyLength(16))
        );
        let key = TokenCipher::generate_base64_key();
        let cipher = TokenCipher::from_base64_key(&key).expect("generated keys are valid");
        assert!(!format!("{cipher:?}").contains(key.expose_secret()));
        assert_eq!(
            TokenCipher::from_base64_key(&SecretString::from("%%")).err(),
            Some(CipherError::KeyEncoding)
        );
    }

    /// The operators' re-encryption script (infra/scripts/postato_ops.py, `rekey-tokens`) seals in this format too:
    /// this vector comes from it (key 32 × 0x01, nonce 12 × 0x02).
    #[test]
    fn a_value_sealed_by_the_rekey_script_opens_here() {
        let key = SecretString::from("AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=");
        let cipher = TokenCipher::from_base64_key(&key).expect("32-byte key");
        let opened = cipher
            .open("AgICAgICAgICAgICZrW9Zy8voJCjoNnlKMip18wOFWf3BGVvT089+/kLWDyf")
            .expect("opens");
        assert_eq!(opened.expose_secret(), "act.example-token");
    }
}
