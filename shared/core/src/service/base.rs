//! The `Service` itself: its ports and options, and the read of a VM every use case on one
//! VM starts with.

use std::sync::Arc;

use vmapi_models::{CredentialScope, UserId, VmId, VmRecord, VmStatus};

use crate::authz::{authorize, Need};
use crate::credentials::SecretStore;
use crate::error::{Error, NotFoundKind, Result};
use crate::ports::{Clock, Found, Lookup, Repository};
use crate::quota::QuotaLimits;

/// Where logins are stored and in which scope.
#[derive(Clone)]
pub struct Logins {
    /// The secret store.
    pub store: Arc<dyn SecretStore>,
    /// Team or VM scope for new logins.
    pub scope: CredentialScope,
}

/// The use cases over a repository, a clock and (for create, delete and credentials) a
/// secret store.
#[derive(Clone)]
pub struct Service {
    pub(crate) repo: Arc<dyn Repository>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(super) logins: Option<Logins>,
    pub(super) quotas: QuotaLimits,
    pub(super) admin_keys: Option<crate::AdminKeys>,
}

/// Puts the VM's team on the request's span, so every later log line of the request carries it
/// (the HTTP layer declares the field; elsewhere this does nothing).
pub(crate) fn note_team(vm: &VmRecord) {
    tracing::Span::current().record("team", tracing::field::display(vm.team));
}

impl Service {
    /// Wires the use cases that need no secret store.
    pub fn new(repo: Arc<dyn Repository>, clock: Arc<dyn Clock>) -> Self {
        Service {
            repo,
            clock,
            logins: None,
            quotas: QuotaLimits::default(),
            admin_keys: None,
        }
    }

    /// Adds the admin keys the admin API checks (without them every admin request is a 401).
    pub fn with_admin_keys(mut self, store: Arc<dyn crate::ports::AdminKeyStore>) -> Self {
        self.admin_keys = Some(crate::AdminKeys::new(store, self.clock.clone()));
        self
    }

    /// Sets the default quota limits (a team's record may set its own).
    pub fn with_quotas(mut self, quotas: QuotaLimits) -> Self {
        self.quotas = quotas;
        self
    }

    /// Adds the secret store that create, delete and credentials need.
    pub fn with_logins(mut self, store: Arc<dyn SecretStore>, scope: CredentialScope) -> Self {
        self.logins = Some(Logins { store, scope });
        self
    }

    pub(super) fn logins(&self) -> Result<&Logins> {
        self.logins.as_ref().ok_or_else(|| Error::Internal {
            context: "this function was built without a secret store".into(),
            source: None,
        })
    }

    /// The VM `id` unless it is deleted (then, as when it never was, a 404), with its team noted
    /// on the request's span. One round trip.
    pub(crate) async fn live_vm(&self, id: VmId) -> Result<VmRecord> {
        let vm = self
            .repo
            .get_vm(id)
            .await?
            .filter(|vm| vm.status != VmStatus::Deleted)
            .ok_or_else(|| Error::not_found(NotFoundKind::Vm, id))?;
        note_team(&vm);
        Ok(vm)
    }

    /// A live VM with its team and whatever else `more` adds to the lookup, once the caller is
    /// known to have `need` on the team (a VM the caller may not see is a 404, as if it did not
    /// exist). Two round trips.
    pub(crate) async fn load_for(
        &self,
        caller: &UserId,
        id: VmId,
        need: Need,
        more: impl FnOnce(&VmRecord, &mut Lookup),
    ) -> Result<(VmRecord, Found)> {
        let vm = self.live_vm(id).await?;
        let mut lookup = Lookup::default();
        lookup.teams.insert(vm.team);
        more(&vm, &mut lookup);
        let found = self.repo.lookup(&lookup).await?;
        authorize(found.teams.get(&vm.team), caller, need, || {
            Error::not_found(NotFoundKind::Vm, id)
        })?;
        Ok((vm, found))
    }

    /// Reads a VM and everything it refers to; hides VMs the caller may not see.
    pub(crate) async fn load_visible(
        &self,
        caller: &UserId,
        id: VmId,
        need: Need,
    ) -> Result<(VmRecord, Found)> {
        self.load_for(caller, id, need, |vm, lookup| lookup.add_vm(vm))
            .await
    }
}
