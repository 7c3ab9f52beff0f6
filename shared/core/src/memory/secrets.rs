//! The in-memory [`SecretStore`] of VM logins.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use vmapi_models::{LoginSecret, SecretPath};

use crate::credentials::{Created, SecretLabels, SecretStore};
use crate::error::{Error, Result};

/// An in-memory [`SecretStore`] for unit tests, with a switch that makes every call fail as
/// an unreachable store would.
#[derive(Default)]
pub struct MemorySecretStore {
    secrets: Mutex<BTreeMap<SecretPath, LoginSecret>>,
    /// The deployment tag of each secret that has one.
    tags: Mutex<BTreeMap<SecretPath, String>>,
    /// The deployment new secrets are tagged with (`local` unless set).
    deployment: Option<vmapi_models::DeploymentId>,
    down: std::sync::atomic::AtomicBool,
}

impl MemorySecretStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
    /// An empty store whose secrets carry `deployment`'s tag.
    pub fn for_deployment(deployment: vmapi_models::DeploymentId) -> Self {
        MemorySecretStore {
            deployment: Some(deployment),
            ..Self::default()
        }
    }
    fn own_tag(&self) -> String {
        self.deployment
            .as_ref()
            .map_or(vmapi_models::DeploymentId::LOCAL, |d| d.as_str())
            .to_string()
    }
    /// Makes every later call fail with `Unavailable` (or work again).
    pub fn set_down(&self, down: bool) {
        self.down.store(down, std::sync::atomic::Ordering::SeqCst);
    }
    /// The stored paths.
    pub fn paths(&self) -> Vec<SecretPath> {
        self.secrets.lock().unwrap().keys().cloned().collect()
    }
    fn check(&self) -> Result<()> {
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(Error::Unavailable {
                message: "the secret store is unavailable; retry shortly".into(),
                retry_after_secs: 2,
                source: None,
            });
        }
        Ok(())
    }
}

#[async_trait]
impl SecretStore for MemorySecretStore {
    async fn read(&self, path: &SecretPath) -> Result<Option<LoginSecret>> {
        self.check()?;
        Ok(self.secrets.lock().unwrap().get(path).cloned())
    }

    async fn create(
        &self,
        path: &SecretPath,
        secret: &LoginSecret,
        _labels: SecretLabels,
    ) -> Result<Created> {
        self.check()?;
        let mut secrets = self.secrets.lock().unwrap();
        if secrets.contains_key(path) {
            return Ok(Created::AlreadyExists);
        }
        secrets.insert(path.clone(), secret.clone());
        self.tags
            .lock()
            .unwrap()
            .insert(path.clone(), self.own_tag());
        Ok(Created::Created)
    }

    async fn delete(&self, path: &SecretPath) -> Result<()> {
        self.check()?;
        self.secrets.lock().unwrap().remove(path);
        self.tags.lock().unwrap().remove(path);
        Ok(())
    }

    async fn read_document(&self, path: &SecretPath) -> Result<Option<vmapi_models::Sensitive>> {
        self.check()?;
        let secrets = self.secrets.lock().unwrap();
        Ok(secrets
            .get(path)
            .map(|s| vmapi_models::Sensitive::new(serde_json::to_string(s).unwrap_or_default())))
    }

    async fn list_managed(&self) -> Result<Vec<crate::credentials::ManagedSecret>> {
        self.check()?;
        let secrets = self.secrets.lock().unwrap();
        let tags = self.tags.lock().unwrap();
        Ok(secrets
            .keys()
            .map(|path| crate::credentials::ManagedSecret {
                path: path.clone(),
                created_at: None,
                deployment: tags.get(path).cloned(),
            })
            .collect())
    }

    async fn adopt(&self, path: &SecretPath) -> Result<()> {
        self.check()?;
        if self.secrets.lock().unwrap().contains_key(path) {
            self.tags
                .lock()
                .unwrap()
                .insert(path.clone(), self.own_tag());
        }
        Ok(())
    }

    fn backend(&self) -> &'static str {
        "memory"
    }
}
