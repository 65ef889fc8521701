//! Keys the runner generates once and keeps in its data dir, so that upload URLs, the dev API key and sealed
//! tokens stay valid across restarts.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LocalSecrets {
    /// Hex; signs the local upload URLs.
    pub upload_signing_key: String,
    /// Base64 AES-256 key sealing TikTok tokens at rest (`TOKEN_ENCRYPTION_KEY` in AWS, KMS-protected).
    pub token_key: String,
    /// The dev workspace's API key, unless `POSTATO_DEV_API_KEY` sets one.
    pub dev_api_key: String,
}

impl std::fmt::Debug for LocalSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LocalSecrets([redacted])")
    }
}

impl LocalSecrets {
    pub fn load_or_create(data_dir: &Path) -> anyhow::Result<Self> {
        let path = Self::path(data_dir);
        if let Ok(text) = std::fs::read_to_string(&path) {
            return serde_json::from_str(&text).with_context(|| format!("{} is not readable JSON", path.display()));
        }
        let secrets = Self {
            upload_signing_key: hex::encode(rand::random::<[u8; 32]>()),
            token_key: {
                use base64::Engine;
                base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>())
            },
            dev_api_key: shared::domain::ApiKey::generate_secret(),
        };
        write_private(&path, &serde_json::to_vec_pretty(&secrets)?)?;
        Ok(secrets)
    }

    pub fn upload_signing_key(&self) -> anyhow::Result<[u8; 32]> {
        hex::decode(&self.upload_signing_key)
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .context("uploadSigningKey in secrets.json must be 64 hex characters")
    }

    fn path(data_dir: &Path) -> PathBuf {
        data_dir.join("secrets.json")
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(bytes)?;
    Ok(())
}
