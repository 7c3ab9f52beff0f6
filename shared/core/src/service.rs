//! The use cases: create, list, get, update, start, stop, delete.

use std::collections::HashSet;
use std::sync::Arc;

use futures_util::future::join_all;
use uuid::Uuid;
use vmapi_models::{
    ActionResult, AuthMethod, CloudKind, CreateVmRequest, CredentialScope, EventKind, HostName,
    Login, LoginSecret, OpKind, PendingOp, ProjectId, Ref, Role, SecretPath, SecretRef,
    SecurityRule, SecurityRuleId, TeamId, UpdateVmRequest, UserId, VirtualMachine, VmCredentials,
    VmEvent, VmId, VmRecord, VmStatus,
};

use crate::authz::{authorize, not_blocked, Need};
use crate::credentials::{
    generate_team_login, generate_vm_login, remove_secrets, Created, SecretLabels, SecretStore,
};
use crate::error::{ConflictCode, Error, FieldError, NotFoundKind, Result};
use crate::lifecycle::{decide, Action, Decision};
use crate::ports::{Clock, EventPage, Found, Lookup, NameChange, PageKey, Repository, VmFilter};
use crate::quota::{QuotaLimits, Usage};

/// Most VMs one create request may make.
pub const MAX_VMS_PER_REQUEST: usize = 10;

/// How often a conditional write is retried after losing to a concurrent one.
pub(crate) const WRITE_ATTEMPTS: usize = 3;

/// A page of populated VMs.
#[derive(Clone, Debug)]
pub struct ListPage {
    /// The VMs, newest first.
    pub items: Vec<VirtualMachine>,
    /// Where the next page starts.
    pub next: Option<PageKey>,
}

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
    logins: Option<Logins>,
    quotas: QuotaLimits,
}

impl Service {
    /// Wires the use cases that need no secret store.
    pub fn new(repo: Arc<dyn Repository>, clock: Arc<dyn Clock>) -> Self {
        Service {
            repo,
            clock,
            logins: None,
            quotas: QuotaLimits::default(),
        }
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

    fn logins(&self) -> Result<&Logins> {
        self.logins.as_ref().ok_or_else(|| Error::Internal {
            context: "this function was built without a secret store".into(),
            source: None,
        })
    }

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

    /// A project's active VMs, newest first, with provider, size and price populated.
    /// Two round trips whatever the page size.
    pub async fn list(
        &self,
        caller: &UserId,
        team: TeamId,
        project: ProjectId,
        limit: usize,
        after: Option<&PageKey>,
    ) -> Result<ListPage> {
        self.list_filtered(caller, team, project, limit, after, &VmFilter::default())
            .await
    }

    /// [`Service::list`] of the VMs that pass `filter` (status, tag, name prefix). Still two
    /// round trips: the store filters while it reads the list index, so a page may hold fewer
    /// than `limit` VMs while a next page follows.
    pub async fn list_filtered(
        &self,
        caller: &UserId,
        team: TeamId,
        project: ProjectId,
        limit: usize,
        after: Option<&PageKey>,
        filter: &VmFilter,
    ) -> Result<ListPage> {
        let page = self
            .repo
            .list_project_vms(project, limit, after, filter)
            .await?;
        let mut lookup = Lookup::default();
        lookup.teams.insert(team);
        lookup.projects.insert(project);
        for vm in &page.items {
            lookup.add_catalog_of(vm);
        }
        let found = self.repo.lookup(&lookup).await?;
        authorize(found.teams.get(&team), caller, Need::Read, || {
            Error::not_found(NotFoundKind::Team, team)
        })?;
        match found.projects.get(&project) {
            Some(p) if p.team == team => {}
            _ => return Err(Error::not_found(NotFoundKind::Project, project)),
        }
        let items = page
            .items
            .iter()
            .filter(|vm| vm.team == team && vm.status.is_active() && filter.matches(vm))
            .map(|vm| populate(vm, &found, None))
            .collect();
        Ok(ListPage {
            items,
            next: page.next,
        })
    }

    /// One VM with every reference populated. Two round trips.
    pub async fn get(&self, caller: &UserId, id: VmId) -> Result<VirtualMachine> {
        Ok(self.get_versioned(caller, id).await?.0)
    }

    /// A page of a VM's history, newest first: who did what, when, the status after and why.
    /// Everyone who may read the VM may read its history. Three round trips.
    pub async fn activity(
        &self,
        caller: &UserId,
        id: VmId,
        limit: usize,
        after: Option<&str>,
    ) -> Result<EventPage> {
        self.load_visible(caller, id, Need::Read).await?;
        self.repo.vm_events(id, limit, after).await
    }

    /// One VM and its stored version (the HTTP layer's `ETag`). Two round trips.
    pub async fn get_versioned(&self, caller: &UserId, id: VmId) -> Result<(VirtualMachine, u64)> {
        let (vm, found) = self.load_visible(caller, id, Need::Read).await?;
        Ok((populate(&vm, &found, Some(caller)), vm.version))
    }

    /// Changes `name` and/or `tags`. Three round trips (more only when a concurrent write interferes).
    pub async fn update(
        &self,
        caller: &UserId,
        id: VmId,
        patch: UpdateVmRequest,
    ) -> Result<VirtualMachine> {
        Ok(self.update_if(caller, id, patch, &IfMatch::Any).await?.0)
    }

    /// [`Service::update`] only if the stored version is one `if_match` names (else
    /// `PreconditionFailed`, also when a concurrent write wins); returns the new version too.
    pub async fn update_if(
        &self,
        caller: &UserId,
        id: VmId,
        patch: UpdateVmRequest,
        if_match: &IfMatch,
    ) -> Result<(VirtualMachine, u64)> {
        if patch.name.is_none() && patch.tags.is_none() && patch.expires_at.is_none() {
            return Err(Error::invalid_field(
                "body",
                "nothing to update: give `name`, `tags` and/or `expiresAt`",
            ));
        }
        if let Some(Some(at)) = patch.expires_at {
            check_expiry(at, self.clock.now())?;
        }
        for attempt in 1..=WRITE_ATTEMPTS {
            let (vm, found) = self.load_visible(caller, id, Need::Write).await?;
            if_match.check(id, vm.version)?;
            not_blocked(&vm, "a change")?;
            if vm.status == VmStatus::Deleting {
                return Err(Error::conflict(
                    ConflictCode::IllegalTransition,
                    format!("Virtual machine {id} is being deleted and cannot be changed"),
                ));
            }
            let mut next = vm.clone();
            let mut names = NameChange::default();
            if let Some(name) = &patch.name {
                if name != &vm.name {
                    names.release = Some(vm.name.clone());
                    names.claim = Some(name.clone());
                    next.name = name.clone();
                }
            }
            if let Some(tags) = &patch.tags {
                next.tags = tags.clone();
            }
            if let Some(expires_at) = patch.expires_at {
                next.expires_at = expires_at;
            }
            next.updated_at = self.clock.now();
            next.version = vm.version + 1;
            let changed: Vec<&str> = [
                patch.name.as_ref().map(|_| "name"),
                patch.tags.as_ref().map(|_| "tags"),
                patch.expires_at.as_ref().map(|_| "expiresAt"),
            ]
            .into_iter()
            .flatten()
            .collect();
            let event = VmEvent::new(id, next.updated_at, caller.to_string(), EventKind::Update)
                .with_status(next.status)
                .with_detail(format!("changed {}", changed.join(", ")));
            match self
                .repo
                .replace_vm(&next, vm.version, &names, Some(&event))
                .await
            {
                Ok(()) => return Ok((populate(&next, &found, Some(caller)), next.version)),
                Err(Error::VersionConflict) if if_match.is_conditional() => {
                    return Err(if_match.lost(id))
                }
                Err(Error::VersionConflict) if attempt < WRITE_ATTEMPTS => continue,
                Err(e) => return Err(concurrency_to_conflict(e)),
            }
        }
        unreachable_conflict()
    }

    /// Blocks or unblocks a VM for an operator or administrator (`actor`, as recorded in its
    /// history); no team membership is checked. Whether anything changed. Two round trips.
    pub async fn set_blocked(&self, id: VmId, blocked: bool, actor: &str) -> Result<bool> {
        for attempt in 1..=WRITE_ATTEMPTS {
            let vm = self
                .repo
                .get_vm(id)
                .await?
                .filter(|vm| vm.status != VmStatus::Deleted)
                .ok_or_else(|| Error::not_found(NotFoundKind::Vm, id))?;
            if vm.is_blocked == blocked {
                return Ok(false);
            }
            let mut next = vm.clone();
            next.is_blocked = blocked;
            next.updated_at = self.clock.now();
            next.version = vm.version + 1;
            let kind = if blocked {
                EventKind::Block
            } else {
                EventKind::Unblock
            };
            let event = VmEvent::new(id, next.updated_at, actor, kind).with_status(next.status);
            match self
                .repo
                .replace_vm(&next, vm.version, &NameChange::default(), Some(&event))
                .await
            {
                Ok(()) => {
                    tracing::info!(vm = %id, blocked, actor, "virtual machine block changed");
                    return Ok(true);
                }
                Err(Error::VersionConflict) if attempt < WRITE_ATTEMPTS => continue,
                Err(e) => return Err(concurrency_to_conflict(e)),
            }
        }
        unreachable_conflict()
    }

    /// Starts, stops or deletes a VM as the state table says: the status changes and the cloud
    /// work is left to the provisioner as `pendingOp`, in one conditional write. Three round
    /// trips: read the VM, read its team, write.
    pub async fn act(&self, caller: &UserId, id: VmId, action: Action) -> Result<ActionResult> {
        Ok(self.act_if(caller, id, action, &IfMatch::Any).await?.0)
    }

    /// [`Service::act`] only if the stored version is one `if_match` names; returns the
    /// version after the action too.
    pub async fn act_if(
        &self,
        caller: &UserId,
        id: VmId,
        action: Action,
        if_match: &IfMatch,
    ) -> Result<(ActionResult, u64)> {
        for attempt in 1..=WRITE_ATTEMPTS {
            let vm = self
                .repo
                .get_vm(id)
                .await?
                .ok_or_else(|| Error::not_found(NotFoundKind::Vm, id))?;
            if vm.status == VmStatus::Deleted {
                return Err(Error::not_found(NotFoundKind::Vm, id));
            }
            note_team(&vm);
            let mut lookup = Lookup::default();
            lookup.teams.insert(vm.team);
            let found = self.repo.lookup(&lookup).await?;
            authorize(found.teams.get(&vm.team), caller, Need::Write, || {
                Error::not_found(NotFoundKind::Vm, id)
            })?;
            if_match.check(id, vm.version)?;
            if matches!(action, Action::Start | Action::Reboot) {
                not_blocked(
                    &vm,
                    if action == Action::Start {
                        "a start"
                    } else {
                        "a reboot"
                    },
                )?;
            }
            // A reboot already pending is not asked twice.
            if action == Action::Reboot
                && vm
                    .pending_op
                    .as_ref()
                    .is_some_and(|p| p.op == OpKind::Reboot)
            {
                return Ok((ActionResult::new(id, vm.status), vm.version));
            }
            let target = match decide(action, vm.status) {
                // A teardown that failed (deleting, nothing pending) is retried by a new delete.
                Decision::NoOp
                    if action == Action::Delete
                        && vm.status == VmStatus::Deleting
                        && vm.pending_op.is_none() =>
                {
                    VmStatus::Deleting
                }
                Decision::NoOp => return Ok((ActionResult::new(id, vm.status), vm.version)),
                Decision::Gone => return Err(Error::not_found(NotFoundKind::Vm, id)),
                Decision::Illegal => {
                    return Err(Error::conflict(
                        ConflictCode::IllegalTransition,
                        format!(
                            "cannot {} virtual machine {id} while it is {} (status {})",
                            action.verb(),
                            vm.status.name(),
                            vm.status.code()
                        ),
                    ))
                }
                Decision::To(status) => status,
            };
            let now = self.clock.now();
            let mut next = vm.clone();
            next.status = target;
            next.status_reason = None;
            next.pending_op = Some(PendingOp::new(action.op(), now));
            next.updated_at = now;
            next.version = vm.version + 1;
            let names = if target.is_active() {
                NameChange::default()
            } else if vm.status.is_active() {
                // Leaving the active statuses: its name and its quota usage are free at once.
                NameChange::leaving_active(&vm)
            } else {
                // A retried teardown: the VM left the quota when it was first deleted.
                NameChange {
                    release: Some(vm.name.clone()),
                    ..NameChange::default()
                }
            };
            let kind = match action {
                Action::Start => EventKind::Start,
                Action::Stop => EventKind::Stop,
                Action::Reboot => EventKind::Reboot,
                Action::Delete => EventKind::Delete,
            };
            let event = VmEvent::new(id, now, caller.to_string(), kind).with_status(target);
            match self
                .repo
                .replace_vm(&next, vm.version, &names, Some(&event))
                .await
            {
                Ok(()) => {
                    tracing::info!(vm = %id, from = %vm.status, to = %target, "virtual machine {}", action.verb());
                    return Ok((ActionResult::new(id, target), next.version));
                }
                Err(Error::VersionConflict) if if_match.is_conditional() => {
                    return Err(if_match.lost(id))
                }
                Err(Error::VersionConflict) if attempt < WRITE_ATTEMPTS => continue,
                Err(e) => return Err(concurrency_to_conflict(e)),
            }
        }
        unreachable_conflict()
    }

    /// Stores the logins of new VMs and notes where on each record. Returns the paths written
    /// now that belong to these VMs alone (VM scope), for removal if the create fails later.
    async fn store_logins(
        &self,
        logins: &Logins,
        records: &mut [VmRecord],
        username: &str,
    ) -> Result<Vec<SecretPath>> {
        let Some(first) = records.first() else {
            return Ok(Vec::new());
        };
        let (team, auth_method) = (first.team, first.auth_method);
        if first.access.is_some() {
            // The user's own public key: nothing secret to store.
            for vm in records.iter_mut() {
                vm.login = Some(Login {
                    username: username.to_string(),
                    secret: None,
                });
            }
            return Ok(Vec::new());
        }
        match logins.scope {
            CredentialScope::Team => {
                let path = CredentialScope::Team.path(team, first.id);
                self.ensure_team_login(logins, &path, team, auth_method)
                    .await?;
                for vm in records.iter_mut() {
                    vm.login = Some(Login {
                        username: username.to_string(),
                        secret: Some(SecretRef {
                            path: path.clone(),
                            scope: CredentialScope::Team,
                        }),
                    });
                }
                Ok(Vec::new())
            }
            CredentialScope::Vm => {
                let mut planned = Vec::with_capacity(records.len());
                for vm in records.iter() {
                    let path = CredentialScope::Vm.path(team, vm.id);
                    let secret = generate_vm_login(vm.id, username, auth_method)?;
                    let labels = SecretLabels {
                        team,
                        vm: Some(vm.id),
                    };
                    planned.push((path, secret, labels));
                }
                let results = join_all(
                    planned
                        .iter()
                        .map(|(path, secret, labels)| logins.store.create(path, secret, *labels)),
                )
                .await;
                let mut written = Vec::new();
                let mut failure = None;
                for ((path, _, _), result) in planned.iter().zip(results) {
                    match result {
                        Ok(Created::Created) => written.push(path.clone()),
                        Ok(Created::AlreadyExists) => {
                            failure.get_or_insert(Error::Internal {
                                context: format!("a secret already exists at new VM path {path}"),
                                source: None,
                            });
                        }
                        Err(e) => {
                            failure.get_or_insert(e);
                        }
                    }
                }
                if let Some(e) = failure {
                    remove_secrets(logins.store.as_ref(), &written, "a failed create").await;
                    return Err(e);
                }
                for (vm, (path, _, _)) in records.iter_mut().zip(planned) {
                    vm.login = Some(Login {
                        username: username.to_string(),
                        secret: Some(SecretRef {
                            path,
                            scope: CredentialScope::Vm,
                        }),
                    });
                }
                Ok(written)
            }
        }
    }

    /// Makes sure the team's login exists and has what `auth_method` needs.
    async fn ensure_team_login(
        &self,
        logins: &Logins,
        path: &SecretPath,
        team: TeamId,
        auth_method: AuthMethod,
    ) -> Result<()> {
        let existing = match logins.store.read(path).await? {
            Some(secret) => secret,
            None => {
                let secret = generate_team_login(team, auth_method)?;
                let labels = SecretLabels { team, vm: None };
                match logins.store.create(path, &secret, labels).await? {
                    Created::Created => {
                        tracing::info!(team = %team, backend = logins.store.backend(), "team login created");
                        return Ok(());
                    }
                    // A concurrent create of the team's first VM won; use its login.
                    Created::AlreadyExists => {
                        logins
                            .store
                            .read(path)
                            .await?
                            .ok_or_else(|| Error::Internal {
                                context: format!("team login {path} vanished while being created"),
                                source: None,
                            })?
                    }
                }
            }
        };
        let usable = match auth_method {
            AuthMethod::Password => existing.password.is_some(),
            AuthMethod::SshKey => existing.private_key.is_some() && existing.public_key.is_some(),
        };
        if !usable {
            return Err(Error::Internal {
                context: format!(
                    "the team login at {path} has no {} for authMethod {}",
                    if auth_method == AuthMethod::Password {
                        "password"
                    } else {
                        "key pair"
                    },
                    auth_method.code()
                ),
                source: None,
            });
        }
        Ok(())
    }

    /// The login of a VM, for its owner and the team's owners and admins. Every read is
    /// recorded in the VM's history before the secret is handed out.
    pub async fn credentials(&self, caller: &UserId, id: VmId) -> Result<VmCredentials> {
        let (vm, found) = self.load_visible(caller, id, Need::Read).await?;
        let role = found.teams.get(&vm.team).and_then(|t| t.role_of(caller));
        let manager = matches!(role, Some(Role::Owner | Role::Admin));
        if !(&vm.owner == caller || manager) {
            return Err(Error::Forbidden(
                "only the virtual machine's owner and the team's owners and admins may read its credentials"
                    .into(),
            ));
        }
        not_blocked(&vm, "reading its credentials")?;
        let login = vm
            .login
            .as_ref()
            .ok_or_else(|| Error::not_found(NotFoundKind::Credentials, id))?;
        // A team login opens every VM of the team: only those who may reach all of them read it.
        let shared = login
            .secret
            .as_ref()
            .is_some_and(|r| r.scope == CredentialScope::Team);
        if shared && !manager {
            return Err(Error::Forbidden(
                "this virtual machine uses the team's shared login (credential scope team), which opens every virtual machine of the team; only the team's owners and admins may read it (create with access.sshPublicKey to log in with your own key)"
                    .into(),
            ));
        }
        let secret: Option<LoginSecret> = match &login.secret {
            Some(r) => {
                let found = self.logins()?.store.read(&r.path).await?;
                if found.is_none() {
                    tracing::warn!(vm = %id, scope = ?r.scope, "the VM's login is missing from the secret store");
                    return Err(Error::not_found(NotFoundKind::Credentials, id));
                }
                found
            }
            None => None,
        };
        let mut answer = VmCredentials {
            vm_id: id,
            username: login.username.clone(),
            auth_method: vm.auth_method,
            password: None,
            private_key: None,
            public_key: None,
            host: vm
                .ip_configurations
                .iter()
                .find(|ip| ip.kind == "public")
                .map(|ip| ip.address.clone()),
            port: vmapi_models::credentials::SSH_PORT,
        };
        match (vm.auth_method, secret) {
            (AuthMethod::Password, Some(s)) => answer.password = s.password,
            (AuthMethod::SshKey, Some(s)) => {
                answer.private_key = s.private_key;
                answer.public_key = s.public_key;
            }
            (_, None) => {
                answer.public_key = vm.access.as_ref().map(|a| a.ssh_public_key.to_string());
            }
        }
        self.repo
            .record_event(&VmEvent::new(
                id,
                self.clock.now(),
                caller.to_string(),
                EventKind::CredentialsRead,
            ))
            .await?;
        tracing::info!(vm = %id, "credentials read");
        Ok(answer)
    }

    /// Reads a VM and everything it refers to; hides VMs the caller may not see.
    pub(crate) async fn load_visible(
        &self,
        caller: &UserId,
        id: VmId,
        need: Need,
    ) -> Result<(VmRecord, Found)> {
        let vm = self
            .repo
            .get_vm(id)
            .await?
            .ok_or_else(|| Error::not_found(NotFoundKind::Vm, id))?;
        if vm.status == VmStatus::Deleted {
            return Err(Error::not_found(NotFoundKind::Vm, id));
        }
        note_team(&vm);
        let mut lookup = Lookup::default();
        lookup.add_vm(&vm);
        let found = self.repo.lookup(&lookup).await?;
        authorize(found.teams.get(&vm.team), caller, need, || {
            Error::not_found(NotFoundKind::Vm, id)
        })?;
        Ok((vm, found))
    }
}

/// Puts the VM's team on the request's span, so every later log line of the request carries it
/// (the HTTP layer declares the field; elsewhere this does nothing).
pub(crate) fn note_team(vm: &VmRecord) {
    tracing::Span::current().record("team", tracing::field::display(vm.team));
}

/// An expiry must lie in the future.
fn check_expiry(at: vmapi_models::Timestamp, now: vmapi_models::Timestamp) -> Result<()> {
    if at <= now {
        return Err(Error::invalid_field(
            "expiresAt",
            format!("must be in the future, got {at}"),
        ));
    }
    Ok(())
}

pub(crate) fn concurrency_to_conflict(e: Error) -> Error {
    match e {
        Error::VersionConflict => Error::conflict(
            ConflictCode::ConcurrentModification,
            "the virtual machine was changed concurrently; retry the request",
        ),
        other => other,
    }
}

fn unreachable_conflict<T>() -> Result<T> {
    Err(concurrency_to_conflict(Error::VersionConflict))
}

/// Checks what can be checked without the database.
fn check_request_shape(req: &CreateVmRequest) -> Result<()> {
    let mut details = Vec::new();
    let n = req.host_names.len();
    if n == 0 || n > MAX_VMS_PER_REQUEST {
        details.push(FieldError::new(
            "hostNames",
            format!("give 1 to {MAX_VMS_PER_REQUEST} host names, got {n}"),
        ));
    }
    if let Some(q) = req.quantity {
        if q as usize != n {
            details.push(FieldError::new(
                "quantity",
                format!("quantity {q} does not match the {n} host names given"),
            ));
        }
    }
    if req.access.is_some() && req.auth_method != AuthMethod::SshKey {
        details.push(FieldError::new(
            "access",
            "an SSH public key can only be given with authMethod 1 (SSH key)",
        ));
    }
    if !details.is_empty() {
        return Err(Error::invalid_fields(details));
    }
    let mut seen: HashSet<&HostName> = HashSet::new();
    for name in &req.host_names {
        if !seen.insert(name) {
            return Err(Error::conflict(
                ConflictCode::DuplicateHostName,
                format!("host name '{name}' appears more than once in the request"),
            ));
        }
    }
    Ok(())
}

/// Checks that the catalog references fit together.
fn check_catalog(req: &CreateVmRequest, found: &Found) -> Result<()> {
    let missing = |field: &str, what: &str, id: &dyn std::fmt::Display| {
        Error::invalid_field(field, format!("{what} {id} does not exist"))
    };
    let cloud = found
        .cloud_providers
        .get(&req.cloud_provider)
        .ok_or_else(|| missing("cloudProvider", "cloud provider", &req.cloud_provider))?;
    let provider = found
        .providers
        .get(&req.provider)
        .ok_or_else(|| missing("provider", "provider", &req.provider))?;
    let size = found
        .sizes
        .get(&req.size)
        .ok_or_else(|| missing("size", "size", &req.size))?;
    let price = found
        .prices
        .get(&req.price)
        .ok_or_else(|| missing("price", "price", &req.price))?;

    let mut details = Vec::new();
    if cloud.is_disabled {
        details.push(FieldError::new(
            "cloudProvider",
            format!("cloud provider {} is disabled", cloud.name),
        ));
    }
    if provider.is_disabled {
        details.push(FieldError::new(
            "provider",
            format!("provider {} is disabled", provider.id),
        ));
    }
    if provider.cloud_provider != req.cloud_provider {
        details.push(FieldError::new(
            "provider",
            format!(
                "provider {} does not belong to cloud provider {}",
                provider.id, req.cloud_provider
            ),
        ));
    }
    if size.provider != req.provider {
        details.push(FieldError::new(
            "size",
            format!(
                "size {} does not belong to provider {}",
                size.id, req.provider
            ),
        ));
    }
    if price.provider != req.provider {
        details.push(FieldError::new(
            "price",
            format!(
                "price {} does not belong to provider {}",
                price.id, req.provider
            ),
        ));
    }
    if price.size_name != size.name || price.location_name != size.location {
        details.push(FieldError::new(
            "price",
            format!(
                "price {} is not a price of size {} ({} in {})",
                price.id, size.id, size.name, size.location
            ),
        ));
    }
    if req.region.datacenter.name != price.location_name
        || !provider.locations.contains(&req.region)
    {
        details.push(FieldError::new(
            "region",
            format!(
                "region must be the catalog location '{}' of the chosen price",
                price.location_name
            ),
        ));
    }
    if req.image.distribution != price.image_name || !provider.images.contains(&req.image) {
        details.push(FieldError::new(
            "image",
            format!(
                "image must be a catalog image of distribution '{}' of the chosen price",
                price.image_name
            ),
        ));
    }
    if details.is_empty() {
        Ok(())
    } else {
        Err(Error::invalid_fields(details))
    }
}

/// The wire form of a VM with references populated from `found` (ids where absent). With
/// `for_caller` (get, update; not lists) `project` and `team` are populated too, the team's
/// `quotas` only for its owners and admins.
fn populate(vm: &VmRecord, found: &Found, for_caller: Option<&UserId>) -> VirtualMachine {
    let mut wire = VirtualMachine::from_record(vm);
    if let Some(p) = found.providers.get(&vm.provider) {
        wire.provider = Ref::Populated(p.to_wire(found.cloud_providers.get(&p.cloud_provider)));
    }
    if let Some(s) = found.sizes.get(&vm.size) {
        wire.size = Ref::Populated(s.clone());
    }
    if let Some(p) = found.prices.get(&vm.price) {
        wire.price = Ref::Populated(p.clone());
    }
    if let Some(caller) = for_caller {
        if let Some(p) = found.projects.get(&vm.project) {
            wire.project = Ref::Populated(p.clone());
        }
        if let Some(t) = found.teams.get(&vm.team) {
            let mut team = t.clone();
            if !matches!(t.role_of(caller), Some(Role::Owner | Role::Admin)) {
                team.quotas = None;
            }
            wire.team = Ref::Populated(team);
        }
    }
    wire
}

/// The versions a conditional request (`If-Match`) accepts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IfMatch {
    /// No condition (no header, or `*`).
    Any,
    /// One of these versions (an empty list matches nothing).
    Versions(Vec<u64>),
}

impl IfMatch {
    /// Whether a condition is set.
    pub fn is_conditional(&self) -> bool {
        matches!(self, IfMatch::Versions(_))
    }

    fn check(&self, id: VmId, stored: u64) -> Result<()> {
        match self {
            IfMatch::Versions(v) if !v.contains(&stored) => Err(Error::PreconditionFailed(format!(
                "virtual machine {id} is at version \"{stored}\", not the one If-Match names; read it again (GET returns its ETag) and retry"
            ))),
            _ => Ok(()),
        }
    }

    fn lost(&self, id: VmId) -> Error {
        Error::PreconditionFailed(format!(
            "virtual machine {id} changed while the request ran, so the version If-Match names is no longer current; read it again and retry"
        ))
    }
}
