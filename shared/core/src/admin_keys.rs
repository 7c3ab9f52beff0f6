//! Admin keys: made, listed and revoked by an operator (`vmctl admin-key`), checked on every
//! admin request. Only a key's SHA-256 is stored (docs/admin-api.md).

use std::sync::Arc;

use sha2::{Digest, Sha256};
use vmapi_models::{AdminKeyName, AdminKeyRecord};

use crate::error::{Error, Result};
use crate::ports::{AdminKeyStore, Clock};

/// Prefix of generated keys (so a leaked one is recognisable in a scan).
pub const KEY_PREFIX: &str = "vmak_";
/// Shortest key accepted when an operator brings their own (`ADMIN_API_KEY`).
pub const MIN_KEY_LEN: usize = 32;

/// The admin keys over their store.
#[derive(Clone)]
pub struct AdminKeys {
    store: Arc<dyn AdminKeyStore>,
    clock: Arc<dyn Clock>,
}

impl AdminKeys {
    /// Wires the keys over a store and a clock.
    pub fn new(store: Arc<dyn AdminKeyStore>, clock: Arc<dyn Clock>) -> Self {
        AdminKeys { store, clock }
    }

    /// The stored form of a key: lowercase hex SHA-256 of its text. Keys are 256 random bits,
    /// so a fast hash is enough (nothing to brute-force).
    pub fn hash(key: &str) -> String {
        hex(&Sha256::digest(key.as_bytes()))
    }

    /// A new random key: [`KEY_PREFIX`] and 64 hex digits (256 bits).
    pub fn generate() -> Result<String> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)
            .map_err(|e| Error::internal("generating an admin key", e.to_string()))?;
        Ok(format!("{KEY_PREFIX}{}", hex(&bytes)))
    }

    /// Stores a key named `name`: `key` when given (at least [`MIN_KEY_LEN`] visible ASCII
    /// characters), else a new random one. Returns the record and the key's text, which is
    /// never stored and cannot be shown again. A taken name is a 400.
    pub async fn create(
        &self,
        name: AdminKeyName,
        key: Option<String>,
    ) -> Result<(AdminKeyRecord, String)> {
        let key = match key {
            Some(k) => {
                if k.len() < MIN_KEY_LEN || !k.bytes().all(|b| b.is_ascii_graphic()) {
                    return Err(Error::invalid_field(
                        "key",
                        format!("must be at least {MIN_KEY_LEN} visible ASCII characters"),
                    ));
                }
                k
            }
            None => Self::generate()?,
        };
        let record = AdminKeyRecord {
            name,
            key_hash: Self::hash(&key),
            created_at: self.clock.now(),
            revoked_at: None,
        };
        self.store.insert_admin_key(&record).await?;
        tracing::info!(name = %record.name, "admin key created");
        Ok((record, key))
    }

    /// Every key, revoked ones too, by name.
    pub async fn list(&self) -> Result<Vec<AdminKeyRecord>> {
        self.store.admin_keys().await
    }

    /// Revokes the named key; whether it was there and working.
    pub async fn revoke(&self, name: &AdminKeyName) -> Result<bool> {
        let done = self.store.revoke_admin_key(name, self.clock.now()).await?;
        if done {
            tracing::info!(name = %name, "admin key revoked");
        }
        Ok(done)
    }

    /// The name of the working key `presented` (an `Api-Key` header's value); a missing,
    /// unknown or revoked key is a 401 that does not say which. One round trip.
    pub async fn verify(&self, presented: Option<&str>) -> Result<AdminKeyName> {
        let Some(key) = presented.map(str::trim).filter(|k| !k.is_empty()) else {
            return Err(Error::Unauthorized(
                "missing admin key: send 'Api-Key: <key>'".into(),
            ));
        };
        match self.store.admin_key_by_hash(&Self::hash(key)).await? {
            Some(record) if record.revoked_at.is_none() => Ok(record.name),
            _ => Err(Error::Unauthorized(
                "invalid admin key: unknown or revoked".into(),
            )),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemoryRepository;
    use crate::SystemClock;

    #[tokio::test]
    async fn keys_are_stored_as_hashes_and_stop_working_when_revoked() {
        let repo = Arc::new(MemoryRepository::new());
        let keys = AdminKeys::new(repo.clone(), Arc::new(SystemClock));
        let name = AdminKeyName::parse("ops").unwrap();
        let (record, key) = keys.create(name.clone(), None).await.unwrap();
        assert!(key.starts_with(KEY_PREFIX) && key.len() == KEY_PREFIX.len() + 64);
        assert_ne!(record.key_hash, key);
        assert!(!format!("{:?}", keys.list().await.unwrap()).contains(&key));
        assert_eq!(keys.verify(Some(&key)).await.unwrap(), name);
        for wrong in [
            None,
            Some(""),
            Some("vmak_0000"),
            Some(&key[..key.len() - 1]),
        ] {
            assert!(
                matches!(keys.verify(wrong).await, Err(Error::Unauthorized(_))),
                "{wrong:?}"
            );
        }
        // A second key of the same name is refused; a key of the operator's choice works.
        assert!(matches!(
            keys.create(name.clone(), None).await,
            Err(Error::Invalid { .. })
        ));
        assert!(matches!(
            keys.create(
                AdminKeyName::parse("short").unwrap(),
                Some("too-short".into())
            )
            .await,
            Err(Error::Invalid { .. })
        ));
        let own = "x".repeat(MIN_KEY_LEN);
        let other = AdminKeyName::parse("own").unwrap();
        keys.create(other.clone(), Some(own.clone())).await.unwrap();
        assert_eq!(keys.verify(Some(&own)).await.unwrap(), other);

        assert!(keys.revoke(&name).await.unwrap());
        assert!(!keys.revoke(&name).await.unwrap(), "revoked once");
        assert!(matches!(
            keys.verify(Some(&key)).await,
            Err(Error::Unauthorized(_))
        ));
        assert_eq!(keys.verify(Some(&own)).await.unwrap(), other);
    }
}
