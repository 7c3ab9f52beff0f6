//! Create: one VM per host name, all in one atomic write, after their logins are stored.

use uuid::Uuid;
use vmapi_models::{
    Billing, CloudKind, CreateVmRequest, EventKind, OpKind, PendingOp, SecurityRule,
    SecurityRuleId, UserId, VirtualMachine, VmEvent, VmId, VmRecord, VmStatus,
};

use super::base::Service;
use super::checks::{check_catalog, check_expiry, check_request_shape};
use crate::authz::{authorize, Need};
use crate::credentials::remove_secrets;
use crate::error::{Error, NotFoundKind, Result};
use crate::ports::Lookup;
use crate::quota::Usage;

impl Service {
    /// Creates one VM per host name, all in one atomic write, after their logins are stored.
    /// Two database round trips plus the secret store's.
    pub async fn create(
        &self,
        caller: &UserId,
        req: CreateVmRequest,
    ) -> Result<Vec<VirtualMachine>> {
        self.create_with_ids(caller, req, &[]).await
    }

    /// [`Service::create`] with given ids, one `(VM, default rule)` pair per host name (the
    /// local run's demo VMs, which the events in `events/` name); `ids` empty: new ids.
    pub async fn create_with_ids(
        &self,
        caller: &UserId,
        req: CreateVmRequest,
        ids: &[(VmId, SecurityRuleId)],
    ) -> Result<Vec<VirtualMachine>> {
        check_request_shape(&req)?;
        if !ids.is_empty() && ids.len() != req.host_names.len() {
            return Err(Error::internal(
                "create with given ids",
                format!(
                    "{} id pairs for {} host names",
                    ids.len(),
                    req.host_names.len()
                ),
            ));
        }

        let mut lookup = Lookup::default();
        lookup.teams.insert(req.team);
        lookup.projects.insert(req.project);
        lookup.cloud_providers.insert(req.cloud_provider);
        lookup.providers.insert(req.provider);
        lookup.sizes.insert(req.size);
        lookup.prices.insert(req.price);
        let found = self.repo.lookup(&lookup).await?;

        authorize(found.teams.get(&req.team), caller, Need::Write, || {
            Error::not_found(NotFoundKind::Team, req.team)
        })?;
        match found.projects.get(&req.project) {
            Some(p) if p.team == req.team => {}
            _ => return Err(Error::not_found(NotFoundKind::Project, req.project)),
        }
        check_catalog(&req, &found)?;
        // Each VM counts its size's vCPUs against the team's quota while it is active.
        let vcpus = found.sizes.get(&req.size).map(|s| s.vcpus);
        let limits = found
            .teams
            .get(&req.team)
            .map_or(self.quotas, |t| self.quotas.for_team(t));
        let asked = Usage {
            active_vms: req.host_names.len() as u64,
            vcpus: u64::from(vcpus.unwrap_or(0)) * req.host_names.len() as u64,
        };
        if limits.room_before(asked).is_none() {
            // More than the whole quota: no need to ask the database (or store logins).
            return Err(limits.refusal(req.team, None, asked));
        }
        if let Some(at) = req.expires_at {
            check_expiry(at, self.clock.now())?;
        }
        let logins = self.logins()?;
        let cloud_kind = found
            .cloud_providers
            .get(&req.cloud_provider)
            .and_then(CloudKind::of);
        let username = CloudKind::login_user(cloud_kind);

        let now = self.clock.now();
        let billing = found.prices.get(&req.price).map(|p| Billing::new(p, now));
        let mut records: Vec<VmRecord> = req
            .host_names
            .iter()
            .enumerate()
            .map(|(i, name)| VmRecord {
                id: ids.get(i).map_or_else(VmId::new, |(vm, _)| *vm),
                name: name.clone(),
                region: req.region.clone(),
                image: req.image.clone(),
                attestation_id: Uuid::new_v4(),
                access: req.access.clone(),
                auth_method: req.auth_method,
                status: VmStatus::Creating,
                is_blocked: false,
                tags: req.tags.clone(),
                subscription: req.subscription,
                cloud_provider: req.cloud_provider,
                provider: req.provider,
                size: req.size,
                price: req.price,
                owner: caller.clone(),
                project: req.project,
                team: req.team,
                ip_configurations: Vec::new(),
                created_at: now,
                updated_at: now,
                login: None,
                pending_op: Some(PendingOp::new(OpKind::Create, now)),
                status_reason: None,
                cloud: None,
                expires_at: req.expires_at,
                purge_after_epoch: None,
                vcpus,
                // Every VM starts with the default rule (SSH, or Kraud.Cloud's open address)
                // as revision 1, which the provisioner applies with the create.
                rules: vec![{
                    let mut rule = SecurityRule::default_for(cloud_kind, 1, now);
                    if let Some((_, id)) = ids.get(i) {
                        rule.id = *id;
                    }
                    rule
                }],
                rules_revision: 1,
                rules_applied: 0,
                billing: billing.clone(),
                resize_to: None,
                version: 1,
            })
            .collect();
        let created = self.store_logins(logins, &mut records, username).await?;
        let events: Vec<VmEvent> = records
            .iter()
            .map(|vm| {
                VmEvent::new(vm.id, now, caller.to_string(), EventKind::Create)
                    .with_status(vm.status)
            })
            .collect();
        if let Err(e) = self.repo.insert_vms(&records, &events, &limits).await {
            // The VMs do not exist, so neither may their own logins (a team login stays:
            // it is the team's, reused by its next VM).
            remove_secrets(logins.store.as_ref(), &created, "a failed create").await;
            return Err(e);
        }
        tracing::info!(count = records.len(), team = %req.team, project = %req.project, "virtual machines created");
        Ok(records.iter().map(VirtualMachine::from_record).collect())
    }
}
