//! The use cases: create, list, get, update, start, stop, delete.

use std::collections::HashSet;
use std::sync::Arc;

use uuid::Uuid;
use vmapi_models::{
    ActionResult, AuthMethod, CreateVmRequest, HostName, ProjectId, Ref, TeamId, UpdateVmRequest,
    UserId, VirtualMachine, VmId, VmRecord, VmStatus,
};

use crate::authz::{authorize, Need};
use crate::error::{ConflictCode, Error, FieldError, NotFoundKind, Result};
use crate::lifecycle::{decide, Action, Decision};
use crate::ports::{Clock, Found, Lookup, NameChange, PageKey, Repository};

/// Most VMs one create request may make.
pub const MAX_VMS_PER_REQUEST: usize = 10;

/// How often a conditional write is retried after losing to a concurrent one.
const WRITE_ATTEMPTS: usize = 3;

/// A page of populated VMs.
#[derive(Clone, Debug)]
pub struct ListPage {
    /// The VMs, newest first.
    pub items: Vec<VirtualMachine>,
    /// Where the next page starts.
    pub next: Option<PageKey>,
}

/// The use cases over a repository and a clock.
#[derive(Clone)]
pub struct Service {
    repo: Arc<dyn Repository>,
    clock: Arc<dyn Clock>,
}

impl Service {
    /// Wires the use cases.
    pub fn new(repo: Arc<dyn Repository>, clock: Arc<dyn Clock>) -> Self {
        Service { repo, clock }
    }

    /// Creates one VM per host name, all in one atomic write. Two round trips.
    pub async fn create(
        &self,
        caller: &UserId,
        req: CreateVmRequest,
    ) -> Result<Vec<VirtualMachine>> {
        check_request_shape(&req)?;

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

        let now = self.clock.now();
        let records: Vec<VmRecord> = req
            .host_names
            .iter()
            .map(|name| VmRecord {
                id: VmId::new(),
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
                version: 1,
            })
            .collect();
        self.repo.insert_vms(&records).await?;
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
        let page = self.repo.list_project_vms(project, limit, after).await?;
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
            .filter(|vm| vm.team == team && vm.status.is_active())
            .map(|vm| populate(vm, &found, false))
            .collect();
        Ok(ListPage {
            items,
            next: page.next,
        })
    }

    /// One VM with every reference populated. Two round trips.
    pub async fn get(&self, caller: &UserId, id: VmId) -> Result<VirtualMachine> {
        let (vm, found) = self.load_visible(caller, id, Need::Read).await?;
        Ok(populate(&vm, &found, true))
    }

    /// Changes `name` and/or `tags`. Three round trips (more only when a concurrent write interferes).
    pub async fn update(
        &self,
        caller: &UserId,
        id: VmId,
        patch: UpdateVmRequest,
    ) -> Result<VirtualMachine> {
        if patch.name.is_none() && patch.tags.is_none() {
            return Err(Error::invalid_field(
                "body",
                "nothing to update: give `name` and/or `tags`",
            ));
        }
        for attempt in 1..=WRITE_ATTEMPTS {
            let (vm, found) = self.load_visible(caller, id, Need::Write).await?;
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
            next.updated_at = self.clock.now();
            next.version = vm.version + 1;
            match self.repo.replace_vm(&next, vm.version, &names).await {
                Ok(()) => return Ok(populate(&next, &found, true)),
                Err(Error::VersionConflict) if attempt < WRITE_ATTEMPTS => continue,
                Err(e) => return Err(concurrency_to_conflict(e)),
            }
        }
        unreachable_conflict()
    }

    /// Starts, stops or deletes a VM as the state table says. Three round trips: read the VM,
    /// read its team, conditional write. Until provisioning exists nothing is in the cloud, so a
    /// delete completes at once.
    pub async fn act(&self, caller: &UserId, id: VmId, action: Action) -> Result<ActionResult> {
        for attempt in 1..=WRITE_ATTEMPTS {
            let vm = self
                .repo
                .get_vm(id)
                .await?
                .ok_or_else(|| Error::not_found(NotFoundKind::Vm, id))?;
            if vm.status == VmStatus::Deleted {
                return Err(Error::not_found(NotFoundKind::Vm, id));
            }
            let mut lookup = Lookup::default();
            lookup.teams.insert(vm.team);
            let found = self.repo.lookup(&lookup).await?;
            authorize(found.teams.get(&vm.team), caller, Need::Write, || {
                Error::not_found(NotFoundKind::Vm, id)
            })?;
            let target = match decide(action, vm.status) {
                Decision::NoOp => return Ok(ActionResult::new(id, vm.status)),
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
                // No provisioner yet: nothing is in the cloud, so deleting completes at once.
                Decision::To(VmStatus::Deleting) => VmStatus::Deleted,
                Decision::To(status) => status,
            };
            let mut next = vm.clone();
            next.status = target;
            next.updated_at = self.clock.now();
            next.version = vm.version + 1;
            let names = if target.is_active() {
                NameChange::default()
            } else {
                NameChange {
                    release: Some(vm.name.clone()),
                    claim: None,
                }
            };
            match self.repo.replace_vm(&next, vm.version, &names).await {
                Ok(()) => {
                    tracing::info!(vm = %id, from = %vm.status, to = %target, "virtual machine {}", action.verb());
                    return Ok(ActionResult::new(id, target));
                }
                Err(Error::VersionConflict) if attempt < WRITE_ATTEMPTS => continue,
                Err(e) => return Err(concurrency_to_conflict(e)),
            }
        }
        unreachable_conflict()
    }

    /// Reads a VM and everything it refers to; hides VMs the caller may not see.
    async fn load_visible(
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
        let mut lookup = Lookup::default();
        lookup.add_vm(&vm);
        let found = self.repo.lookup(&lookup).await?;
        authorize(found.teams.get(&vm.team), caller, need, || {
            Error::not_found(NotFoundKind::Vm, id)
        })?;
        Ok((vm, found))
    }
}

fn concurrency_to_conflict(e: Error) -> Error {
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
    if let Some(access) = &req.access {
        if req.auth_method != AuthMethod::SshKey {
            details.push(FieldError::new(
                "access",
                "an SSH public key can only be given with authMethod 1 (SSH key)",
            ));
        } else if let Err(msg) = check_public_key_shape(&access.ssh_public_key) {
            details.push(FieldError::new("access.sshPublicKey", msg));
        }
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

/// An OpenSSH public key line: `<type> <base64> [comment]`.
fn check_public_key_shape(key: &str) -> Result<(), String> {
    const TYPES: [&str; 4] = [
        "ssh-ed25519",
        "ssh-rsa",
        "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp384",
    ];
    if key.len() > 16 * 1024 {
        return Err("the key is longer than 16 KiB".into());
    }
    let mut parts = key.split_whitespace();
    let kind = parts.next().unwrap_or("");
    let body = parts.next().unwrap_or("");
    if !TYPES.contains(&kind) {
        return Err(format!(
            "expected an OpenSSH public key starting with one of {}",
            TYPES.join(", ")
        ));
    }
    if body.is_empty()
        || !body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'=')
    {
        return Err("the key data is not base64".into());
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

/// The wire form of a VM with references populated from `found` (ids where absent).
/// `with_owner_objects` also populates `project` and `team` (get, update), not in lists.
fn populate(vm: &VmRecord, found: &Found, with_owner_objects: bool) -> VirtualMachine {
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
    if with_owner_objects {
        if let Some(p) = found.projects.get(&vm.project) {
            wire.project = Ref::Populated(p.clone());
        }
        if let Some(t) = found.teams.get(&vm.team) {
            wire.team = Ref::Populated(t.clone());
        }
    }
    wire
}
