use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::ids::WorkspaceId;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Workspace {
    pub id: WorkspaceId,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

/// An API key as stored: only the SHA-256 of the secret, so a leaked table leaks no keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiKey {
    pub hash: String,
    pub workspace_id: WorkspaceId,
    pub created_at: DateTime<Utc>,
    pub revoked: bool,
}

impl ApiKey {
    /// Hex SHA-256 of a presented key; the lookup key of the stored record.
    pub fn hash_secret(secret: &str) -> String {
        hex::encode(Sha256::digest(secret.as_bytes()))
    }

    /// The key's public identifier, shown where an action is attributed to a key (a post's audit trail): `key_`
    /// and the first 16 hex digits of the stored hash. It names the key without revealing it.
    pub fn id(&self) -> String {
        format!("key_{}", self.hash.get(..16).unwrap_or(&self.hash))
    }

    /// A fresh random key, `pk_` plus 32 random bytes in base32-ish hex.
    pub fn generate_secret() -> String {
        let bytes: [u8; 32] = rand::random();
        format!("pk_{}", hex::encode(bytes))
    }
}
