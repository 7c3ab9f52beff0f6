//! Admin keys in memory.

use async_trait::async_trait;
use vmapi_models::{AdminKeyName, AdminKeyRecord, Timestamp};

use super::repository::MemoryRepository;
use crate::error::{Error, Result};
use crate::ports::AdminKeyStore;

#[async_trait]
impl AdminKeyStore for MemoryRepository {
    async fn insert_admin_key(&self, key: &AdminKeyRecord) -> Result<()> {
        let mut s = self.state.lock().unwrap();
        if s.admin_keys.values().any(|k| k.name == key.name)
            || s.admin_keys.contains_key(&key.key_hash)
        {
            return Err(Error::invalid_field(
                "name",
                format!(
                    "an admin key named '{}' (or with this key) exists",
                    key.name
                ),
            ));
        }
        s.admin_keys.insert(key.key_hash.clone(), key.clone());
        Ok(())
    }

    async fn admin_key_by_hash(&self, key_hash: &str) -> Result<Option<AdminKeyRecord>> {
        Ok(self.state.lock().unwrap().admin_keys.get(key_hash).cloned())
    }

    async fn admin_keys(&self) -> Result<Vec<AdminKeyRecord>> {
        let mut all: Vec<_> = self
            .state
            .lock()
            .unwrap()
            .admin_keys
            .values()
            .cloned()
            .collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(all)
    }

    async fn revoke_admin_key(&self, name: &AdminKeyName, at: Timestamp) -> Result<bool> {
        let mut s = self.state.lock().unwrap();
        match s.admin_keys.values_mut().find(|k| &k.name == name) {
            Some(k) if k.revoked_at.is_none() => {
                k.revoked_at = Some(at);
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}
