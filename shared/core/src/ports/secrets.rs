//! The secret-store port: where VM logins are kept, and what a listing of them shows.

use async_trait::async_trait;
use vmapi_models::{LoginSecret, SecretPath, Sensitive, TeamId, Timestamp, VmId};

use crate::error::{Error, Result};

/// What a secret is about, for the store's tags or metadata.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SecretLabels {
    /// The team.
    pub team: TeamId,
    /// The VM, for a VM login.
    pub vm: Option<VmId>,
}

/// Outcome of [`SecretStore::create`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Created {
    /// Written now.
    Created,
    /// Something was stored at the path already; nothing was changed.
    AlreadyExists,
}

/// Where logins are kept (Vault KV v2 or AWS Secrets Manager).
///
/// Failures are `Error::Unavailable` (retry later) or `Error::Internal`; no error or log line
/// of an implementation may contain a secret value.
#[async_trait]
pub trait SecretStore: Send + Sync {
    /// The secret at `path`, or `None`.
    async fn read(&self, path: &SecretPath) -> Result<Option<LoginSecret>>;

    /// Stores `secret` at `path` unless something is there already.
    async fn create(
        &self,
        path: &SecretPath,
        secret: &LoginSecret,
        labels: SecretLabels,
    ) -> Result<Created>;

    /// Removes the secret with every version; removing an absent secret succeeds.
    async fn delete(&self, path: &SecretPath) -> Result<()>;

    /// Any JSON document stored at `path` (e.g. the service's own cloud credentials), as text.
    async fn read_document(&self, path: &SecretPath) -> Result<Option<Sensitive>>;

    /// Every login secret the service stored (below its mount or prefix), with its creation
    /// time where the store keeps one and its deployment tag. Used only by the cleanup job's
    /// reconciliation and `vmctl adopt`.
    async fn list_managed(&self) -> Result<Vec<ManagedSecret>>;

    /// Tags the secret at `path` with this store's deployment (`vmctl adopt`, for logins made
    /// before deployment ids). Safe to repeat. The default refuses.
    async fn adopt(&self, path: &SecretPath) -> Result<()> {
        Err(Error::Internal {
            context: format!("the {} store cannot tag the secret {path}", self.backend()),
            source: None,
        })
    }

    /// Short name of the backend for logs (`vault`, `secretsmanager`, `memory`).
    fn backend(&self) -> &'static str;
}

/// A stored login secret as a listing shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManagedSecret {
    /// Its path.
    pub path: SecretPath,
    /// When it was created, if the store says.
    pub created_at: Option<Timestamp>,
    /// The value of its [`vmapi_models::DeploymentId::TAG`] tag or metadata entry (`None`:
    /// made before deployment ids). Cleanup removes only its own deployment's.
    pub deployment: Option<String>,
}
