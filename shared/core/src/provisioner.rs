//! The provisioner: carries out a VM's `pendingOp` in its cloud, one conditional write per step.
//!
//! It always works from the VM as stored now (never from a stream image), so a redelivered or
//! duplicated stream record finds nothing to do or continues where the last run stopped. Every
//! write is conditional on the VM's `version`; losing a race means reading again.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use vmapi_models::{
    AuthMethod, CloudKind, CloudRef, CredentialScope, EventKind, IpConfigId, IpConfiguration,
    OpKind, PendingOp, ProviderRecord, SecretRef, Timestamp, VmEvent, VmId, VmRecord, VmStatus,
};

use crate::cloud::{CloudDriver, CloudState, CloudTarget, CloudVm, DriverError, LoginSpec, VmSpec};
use crate::credentials::{password_hash, SecretStore};
use crate::error::{Error, ErrorChain, Result};
use crate::ports::{Clock, FinishedOp, Lookup, Metrics, NameChange, NoMetrics, Repository};

/// The driver for each cloud.
#[derive(Clone, Default)]
pub struct Drivers(HashMap<CloudKind, Arc<dyn CloudDriver>>);

impl Drivers {
    /// No drivers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Serves `cloud` with `driver`.
    pub fn with(mut self, cloud: CloudKind, driver: Arc<dyn CloudDriver>) -> Self {
        self.0.insert(cloud, driver);
        self
    }

    /// The driver of a cloud.
    pub fn get(&self, cloud: CloudKind) -> Option<&Arc<dyn CloudDriver>> {
        self.0.get(&cloud)
    }

    /// `cloud=driver` pairs, for the start-up log line.
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = self
            .0
            .iter()
            .map(|(c, d)| format!("{c:?}={}", d.kind()).to_lowercase())
            .collect();
        parts.sort();
        parts.join(", ")
    }
}

/// Timing of the provisioner.
#[derive(Clone, Debug)]
pub struct ProvisionerOptions {
    /// How long one run may wait for the cloud before it hands the VM to the next run (by
    /// bumping `pendingOp.attempt`, which the stream delivers again).
    pub poll_budget: Duration,
    /// Pause between two looks at the cloud.
    pub poll_interval: Duration,
    /// After this long a create, start, stop or reboot that has not finished fails.
    pub op_deadline: Duration,
    /// After this long a teardown that has not finished is left in status 5 with a reason.
    pub delete_deadline: Duration,
    /// How long a deleted record is kept (its DynamoDB TTL; the cleanup job purges it too).
    pub deleted_retention: Duration,
}

impl Default for ProvisionerOptions {
    fn default() -> Self {
        ProvisionerOptions {
            poll_budget: Duration::from_secs(20),
            poll_interval: Duration::from_secs(2),
            op_deadline: Duration::from_secs(30 * 60),
            delete_deadline: Duration::from_secs(30 * 60),
            deleted_retention: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

/// What one run did with a VM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing was pending (already done, or a duplicate record).
    Idle,
    /// The VM does not exist.
    Gone,
    /// The operation finished (successfully or with the VM failed).
    Finished(VmStatus),
    /// The cloud is still busy; the next run continues (the VM was touched to wake it).
    Waiting,
}

/// One stream record to process: its sequence number and the VM it is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkItem {
    /// Sequence number (reported back on failure).
    pub sequence: String,
    /// The VM.
    pub vm: VmId,
}

/// Carries out pending cloud operations.
#[derive(Clone)]
pub struct Provisioner {
    repo: Arc<dyn Repository>,
    clock: Arc<dyn Clock>,
    drivers: Drivers,
    secrets: Option<Arc<dyn SecretStore>>,
    options: ProvisionerOptions,
    metrics: Arc<dyn Metrics>,
}

/// The next thing to do after looking at a VM.
enum Step {
    /// Write this record (conditional on the read version).
    Write(Box<VmRecord>),
    /// The cloud is busy: look again after this long.
    Wait(Duration),
}

impl Provisioner {
    /// The drivers it provisions with.
    pub fn drivers(&self) -> &Drivers {
        &self.drivers
    }

    /// The secret store of the VMs' logins, if wired.
    pub fn secrets(&self) -> Option<&Arc<dyn SecretStore>> {
        self.secrets.as_ref()
    }

    /// Notes that a team or project was removed from the platform (seen on the stream), so the
    /// cleanup job deletes its VMs.
    pub async fn note_gone(&self, gone: crate::ports::Gone) -> Result<()> {
        tracing::info!(gone = %gone, "removed from the platform; its VMs go with the next cleanup run");
        self.repo
            .put_tombstone(&crate::ports::Tombstone {
                gone,
                at: self.clock.now(),
            })
            .await
    }

    /// Wires the provisioner. `secrets` is needed to read logins (create) and remove VM logins
    /// (delete).
    pub fn new(
        repo: Arc<dyn Repository>,
        clock: Arc<dyn Clock>,
        drivers: Drivers,
        secrets: Option<Arc<dyn SecretStore>>,
        options: ProvisionerOptions,
    ) -> Self {
        Provisioner {
            repo,
            clock,
            drivers,
            secrets,
            options,
            metrics: Arc::new(NoMetrics),
        }
    }

    /// Reports every finished operation to `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<dyn Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// Processes stream records; returns the sequence numbers that failed (to be retried).
    /// Records of one VM are handled once per batch, VMs concurrently.
    pub async fn process_batch(&self, items: &[WorkItem]) -> Vec<String> {
        let mut first_seq: Vec<(VmId, String)> = Vec::new();
        for item in items {
            if !first_seq.iter().any(|(vm, _)| *vm == item.vm) {
                first_seq.push((item.vm, item.sequence.clone()));
            }
        }
        let runs = first_seq.iter().map(|(vm, _)| self.process(*vm));
        let results = futures_util::future::join_all(runs).await;
        let mut failed = Vec::new();
        for ((vm, seq), result) in first_seq.into_iter().zip(results) {
            match result {
                Ok(outcome) => tracing::debug!(vm = %vm, ?outcome, "provisioned"),
                Err(e) => {
                    tracing::warn!(vm = %vm, error = %ErrorChain(&e), "provisioning step failed; the record will be retried");
                    failed.push(seq);
                }
            }
        }
        failed
    }

    /// Moves one VM's pending operation on as far as the cloud allows within the poll budget.
    pub async fn process(&self, id: VmId) -> Result<Outcome> {
        let started = Instant::now();
        let mut retries = 0u32;
        loop {
            let Some(vm) = self.repo.get_vm(id).await? else {
                return Ok(Outcome::Gone);
            };
            let Some(pending) = vm.pending_op.clone() else {
                return Ok(Outcome::Idle);
            };
            let step = match self.step(&vm, pending.op).await {
                Ok(step) => step,
                Err(StepError::Retry(e)) => {
                    retries += 1;
                    let wait = e.retry_after();
                    if started.elapsed() + wait < self.options.poll_budget && retries < 5 {
                        tracing::info!(vm = %id, error = %e, "cloud busy, retrying");
                        tokio_sleep(wait).await;
                        continue;
                    }
                    return Err(Error::Unavailable {
                        message: format!("cloud busy: {e}"),
                        retry_after_secs: wait.as_secs().max(1) as u32,
                        source: None,
                    });
                }
                Err(StepError::Fatal(e)) => return Err(e),
            };
            match step {
                Step::Write(next) => {
                    // Finished: nothing pending any more, or the security rules chained after it.
                    let done = next.pending_op.as_ref().map(|p| p.op) != Some(pending.op);
                    let chained = next.pending_op.is_some();
                    let status = next.status;
                    // A finished operation goes into the VM's history with its result.
                    let event = done.then(|| {
                        let event = VmEvent::new(
                            id,
                            next.updated_at,
                            "system:provisioner",
                            EventKind::ProvisioningDone,
                        )
                        .with_status(status);
                        match &next.status_reason {
                            Some(reason) => {
                                event.with_detail(format!("{}: {reason}", pending.op.name()))
                            }
                            None => event.with_detail(pending.op.name()),
                        }
                    });
                    match self
                        .repo
                        .replace_vm(&next, vm.version, &NameChange::default(), event.as_ref())
                        .await
                    {
                        Ok(()) => {
                            if done {
                                tracing::info!(vm = %id, op = pending.op.name(), status = %status, reason = next.status_reason.as_deref().unwrap_or(""), "cloud operation finished");
                                self.metrics
                                    .operation_finished(&finished_op(&pending, &next));
                                if !chained {
                                    return Ok(Outcome::Finished(status));
                                }
                                // The next loop carries out the chained apply-rules.
                            }
                        }
                        Err(Error::VersionConflict) => {
                            // Changed meanwhile (a user action or another run): start over.
                            if pending.op == OpKind::Create {
                                self.compensate_create(id).await;
                            }
                        }
                        Err(e) => return Err(e),
                    }
                }
                Step::Wait(wait) => {
                    if started.elapsed() + wait >= self.options.poll_budget {
                        // Hand over to the next run: touching the VM wakes the stream again.
                        let mut next = vm.clone();
                        if let Some(p) = next.pending_op.as_mut() {
                            p.attempt += 1;
                        }
                        next.version = vm.version + 1;
                        tokio_sleep(wait.min(self.options.poll_interval)).await;
                        return match self
                            .repo
                            .replace_vm(&next, vm.version, &NameChange::default(), None)
                            .await
                        {
                            Ok(()) | Err(Error::VersionConflict) => Ok(Outcome::Waiting),
                            Err(e) => Err(e),
                        };
                    }
                    tokio_sleep(wait).await;
                }
            }
        }
    }

    /// After a create lost a race: if the VM is being deleted or gone, make sure what the create
    /// made is removed (the delete may have looked before the instance existed).
    async fn compensate_create(&self, id: VmId) {
        let Ok(Some(vm)) = self.repo.get_vm(id).await else {
            return;
        };
        if !matches!(vm.status, VmStatus::Deleting | VmStatus::Deleted) {
            return;
        }
        if let Ok(Some(driver)) = self.driver_of(&vm).await {
            if let Err(e) = driver.delete(&target_of(&vm)).await {
                tracing::warn!(vm = %id, error = %e, "could not remove a VM created during its delete; the cleanup job will");
            }
        }
    }

    /// The driver of the VM's cloud, or `None` when this deployment has none for it.
    async fn driver_of(&self, vm: &VmRecord) -> Result<Option<Arc<dyn CloudDriver>>> {
        let mut lookup = Lookup::default();
        lookup.cloud_providers.insert(vm.cloud_provider);
        let found = self.repo.lookup(&lookup).await?;
        let kind = found
            .cloud_providers
            .get(&vm.cloud_provider)
            .and_then(CloudKind::of);
        Ok(kind.and_then(|k| self.drivers.get(k)).cloned())
    }

    /// Decides the next step of `op` for the VM as stored.
    async fn step(&self, vm: &VmRecord, op: OpKind) -> Result<Step, StepError> {
        let now = self.clock.now();
        let Some(driver) = self.driver_of(vm).await.map_err(StepError::Fatal)? else {
            let reason = format!(
                "this deployment has no driver for the VM's cloud provider {}; contact the operator",
                vm.cloud_provider
            );
            return Ok(Step::Write(Box::new(match op {
                OpKind::Delete => teardown_failed(vm, now, reason),
                OpKind::ApplyRules => rules_failed(vm, now, &reason),
                _ => failed(vm, now, reason),
            })));
        };
        let target = target_of(vm);
        let overdue = vm.pending_op.as_ref().is_some_and(|p| {
            let limit = if op == OpKind::Delete {
                self.options.delete_deadline
            } else {
                self.options.op_deadline
            };
            now.unix_millis() - p.requested_at.unix_millis() > limit.as_millis() as i64
        });
        let poll = Step::Wait(self.options.poll_interval);
        match (op, vm.status) {
            (OpKind::Create, VmStatus::Creating) => {
                let spec = self.spec(vm, &driver).await.map_err(StepError::Fatal)?;
                match driver.create(&spec).await {
                    Ok(cloud) => Ok(Step::Write(Box::new(self.after_create(
                        vm,
                        &spec,
                        cloud,
                        driver.as_ref(),
                    )))),
                    Err(e) if e.is_retryable() => Err(StepError::Retry(e)),
                    Err(e) => Ok(Step::Write(Box::new(failed(vm, now, refusal(vm, op, &e))))),
                }
            }
            (OpKind::Create, VmStatus::Provisioning) => {
                match get(driver.as_ref(), &target).await? {
                    Some(cloud) => {
                        let confidential = self
                            .required_confidential(vm)
                            .await
                            .map_err(StepError::Fatal)?;
                        Ok(self.observe_create(
                            vm,
                            cloud,
                            confidential,
                            overdue,
                            now,
                            driver.as_ref(),
                        ))
                    }
                    None if overdue => Ok(Step::Write(Box::new(failed(
                        vm,
                        now,
                        "the VM never appeared in its cloud".into(),
                    )))),
                    // Not visible yet (clouds are eventually consistent), or lost: create again;
                    // the create is idempotent by the VM id.
                    None => {
                        let mut again = vm.clone();
                        again.status = VmStatus::Creating;
                        again.version = vm.version + 1;
                        Ok(Step::Write(Box::new(again)))
                    }
                }
            }
            (OpKind::Start, VmStatus::Starting) => {
                self.power(vm, driver.as_ref(), &target, Power::On, overdue, now)
                    .await
            }
            (OpKind::Stop, VmStatus::Stopping) => {
                self.power(vm, driver.as_ref(), &target, Power::Off, overdue, now)
                    .await
            }
            (OpKind::Reboot, VmStatus::Running) => {
                call(driver.reboot(&target)).await?;
                Ok(Step::Write(Box::new(done(
                    vm,
                    VmStatus::Running,
                    None,
                    driver.as_ref(),
                    now,
                ))))
            }
            (OpKind::ApplyRules, VmStatus::Running | VmStatus::Stopped) => {
                match driver.apply_rules(&target, &vm.rules).await {
                    Ok(()) => Ok(Step::Write(Box::new(rules_applied(vm, now)))),
                    Err(e) if e.is_retryable() && !overdue => Err(StepError::Retry(e)),
                    // A firewall that cannot be set up does not fail the VM: it keeps running
                    // (or stopped) with the rules it had, and says why.
                    Err(e) => Ok(Step::Write(Box::new(rules_failed(
                        vm,
                        now,
                        &refusal(vm, op, &e),
                    )))),
                }
            }
            (OpKind::Delete, VmStatus::Deleting) => {
                match driver.get(&target).await {
                    Ok(None)
                    | Ok(Some(CloudVm {
                        state: CloudState::Deleted,
                        ..
                    })) => {
                        // The VM is gone: a last delete removes what only goes after it (AWS
                        // security group, Azure NSG); absent parts count as removed.
                        match driver.delete(&target).await {
                            Ok(()) => {}
                            Err(e) if e.is_retryable() && !overdue => {
                                return Err(StepError::Retry(e))
                            }
                            Err(e) => {
                                return Ok(Step::Write(Box::new(teardown_failed(
                                    vm,
                                    now,
                                    format!("{}; delete it again to retry", refusal(vm, op, &e)),
                                ))))
                            }
                        }
                        // The cloud resources are gone: now the VM's own login may go.
                        self.release_login(vm).await.map_err(StepError::Fatal)?;
                        let mut gone = done(vm, VmStatus::Deleted, None, driver.as_ref(), now);
                        gone.purge_after_epoch = Some(
                            now.unix_millis() / 1000
                                + self.options.deleted_retention.as_secs() as i64,
                        );
                        Ok(Step::Write(Box::new(gone)))
                    }
                    Ok(Some(_)) if overdue => Ok(Step::Write(Box::new(teardown_failed(
                        vm,
                        now,
                        "the cloud did not remove the VM in time; delete it again to retry".into(),
                    )))),
                    Ok(Some(c)) if c.state == CloudState::Deleting => Ok(poll),
                    Ok(Some(_)) => match driver.delete(&target).await {
                        Ok(()) => Ok(poll),
                        Err(e) if e.is_retryable() => Err(StepError::Retry(e)),
                        Err(e) => Ok(Step::Write(Box::new(teardown_failed(
                            vm,
                            now,
                            format!("{}; delete it again to retry", refusal(vm, op, &e)),
                        )))),
                    },
                    Err(e) if e.is_retryable() => Err(StepError::Retry(e)),
                    Err(e) => Ok(Step::Write(Box::new(teardown_failed(
                        vm,
                        now,
                        format!("{}; delete it again to retry", refusal(vm, op, &e)),
                    )))),
                }
            }
            (op, status) => {
                // The status moved on without the operation (e.g. an old record): drop it.
                tracing::warn!(vm = %vm.id, op = op.name(), status = %status, "pending operation does not fit the status; dropped");
                let mut next = vm.clone();
                next.pending_op = None;
                next.version = vm.version + 1;
                Ok(Step::Write(Box::new(next)))
            }
        }
    }

    /// One step of a start (`Power::On`) or stop (`Power::Off`): done when the cloud reports the
    /// target state, the call is (re)sent while the VM is still in the opposite state, and a
    /// failure, a vanished VM or a missed deadline fails the VM with a reason.
    async fn power(
        &self,
        vm: &VmRecord,
        driver: &dyn CloudDriver,
        target: &CloudTarget,
        power: Power,
        overdue: bool,
        now: Timestamp,
    ) -> Result<Step, StepError> {
        let (reached, opposite, status, verb) = match power {
            Power::On => (
                CloudState::Running,
                CloudState::Stopped,
                VmStatus::Running,
                "start",
            ),
            Power::Off => (
                CloudState::Stopped,
                CloudState::Running,
                VmStatus::Stopped,
                "stop",
            ),
        };
        let fail = |reason: String| Ok(Step::Write(Box::new(failed(vm, now, reason))));
        match get(driver, target).await? {
            Some(c) if c.state == reached => Ok(Step::Write(Box::new(done(
                vm,
                status,
                Some(&c),
                driver,
                now,
            )))),
            Some(c) if c.state == opposite => {
                match power {
                    Power::On => call(driver.start(target)).await?,
                    Power::Off => call(driver.stop(target)).await?,
                }
                Ok(Step::Wait(self.options.poll_interval))
            }
            Some(CloudVm {
                state: CloudState::Failed(reason),
                ..
            }) => fail(reason),
            Some(_) if overdue => fail(format!("the cloud did not {verb} the VM in time")),
            Some(_) => Ok(Step::Wait(self.options.poll_interval)),
            None => fail("the VM no longer exists in its cloud".into()),
        }
    }

    /// The record after a successful create call.
    fn after_create(
        &self,
        vm: &VmRecord,
        spec: &VmSpec,
        cloud: CloudVm,
        driver: &dyn CloudDriver,
    ) -> VmRecord {
        let now = self.clock.now();
        let mut next = vm.clone();
        next.cloud = Some(cloud_ref(driver, &spec.region, &cloud));
        next.version = vm.version + 1;
        if let Some(reason) = confidential_mismatch(spec.confidential, &cloud) {
            return failed(&next, now, reason);
        }
        // The create set the firewall up with the rules of this record (`spec.rules`).
        next.rules_applied = vm.rules_revision;
        match &cloud.state {
            CloudState::Running => done(&next, VmStatus::Running, Some(&cloud), driver, now),
            CloudState::Failed(reason) => failed(&next, now, reason.clone()),
            _ => {
                next.status = VmStatus::Provisioning;
                next.updated_at = now;
                next
            }
        }
    }

    fn observe_create(
        &self,
        vm: &VmRecord,
        cloud: CloudVm,
        confidential: Option<vmapi_models::ConfidentialTech>,
        overdue: bool,
        now: Timestamp,
        driver: &dyn CloudDriver,
    ) -> Step {
        if let Some(reason) = confidential_mismatch(confidential, &cloud) {
            return Step::Write(Box::new(failed(vm, now, reason)));
        }
        match &cloud.state {
            CloudState::Running => Step::Write(Box::new(done(
                vm,
                VmStatus::Running,
                Some(&cloud),
                driver,
                now,
            ))),
            CloudState::Failed(reason) => Step::Write(Box::new(failed(vm, now, reason.clone()))),
            CloudState::Deleted | CloudState::Deleting => Step::Write(Box::new(failed(
                vm,
                now,
                "the VM was removed from its cloud while being created".into(),
            ))),
            _ if overdue => Step::Write(Box::new(failed(
                vm,
                now,
                format!(
                    "the cloud did not finish creating the VM in time (last state {})",
                    cloud.raw_state
                ),
            ))),
            _ => Step::Wait(self.options.poll_interval),
        }
    }

    async fn required_confidential(
        &self,
        vm: &VmRecord,
    ) -> Result<Option<vmapi_models::ConfidentialTech>> {
        let mut lookup = Lookup::default();
        lookup.sizes.insert(vm.size);
        let found = self.repo.lookup(&lookup).await?;
        Ok(found.sizes.get(&vm.size).and_then(|s| s.confidential))
    }

    /// Builds the create request from the catalog and the VM's login.
    async fn spec(&self, vm: &VmRecord, driver: &Arc<dyn CloudDriver>) -> Result<VmSpec> {
        let mut lookup = Lookup::default();
        lookup.add_catalog_of(vm);
        let found = self.repo.lookup(&lookup).await?;
        let size = found.sizes.get(&vm.size).ok_or_else(|| Error::Internal {
            context: format!("size {} of VM {} is missing", vm.size, vm.id),
            source: None,
        })?;
        let provider = found
            .providers
            .get(&vm.provider)
            .ok_or_else(|| Error::Internal {
                context: format!("provider {} of VM {} is missing", vm.provider, vm.id),
                source: None,
            })?;
        let image = provider
            .image_refs
            .get(&ProviderRecord::image_key(&vm.image))
            .cloned()
            .unwrap_or_else(|| ProviderRecord::image_key(&vm.image));
        let login = self
            .login_spec(vm, driver.capabilities().password_login)
            .await?;
        Ok(VmSpec {
            vm_id: vm.id,
            team: vm.team,
            name: vm.name.to_string(),
            region: vm.region.datacenter.name.clone(),
            size: size.name.clone(),
            memory_gb: size.memory_gb,
            vcpus: size.vcpus,
            disk_gb: size.space_gb,
            image,
            login,
            confidential: size.confidential,
            rules: vm.rules.clone(),
        })
    }

    /// The public side of the VM's login (public keys, password hash).
    async fn login_spec(&self, vm: &VmRecord, wants_password: bool) -> Result<LoginSpec> {
        let username = vm
            .login
            .as_ref()
            .map(|l| l.username.clone())
            .unwrap_or_else(|| "root".into());
        let mut spec = LoginSpec {
            username,
            public_keys: Vec::new(),
            password_hash: None,
            password: None,
        };
        if let Some(access) = &vm.access {
            spec.public_keys.push(access.ssh_public_key.to_string());
        }
        let Some(SecretRef { path, .. }) = vm.login.as_ref().and_then(|l| l.secret.as_ref()) else {
            return Ok(spec);
        };
        let store = self.secrets.as_ref().ok_or_else(|| Error::Internal {
            context: "the provisioner has no secret store".into(),
            source: None,
        })?;
        let secret = store.read(path).await?.ok_or_else(|| Error::Internal {
            context: format!("the login of VM {} is missing from the secret store", vm.id),
            source: None,
        })?;
        match vm.auth_method {
            AuthMethod::SshKey => {
                if let Some(k) = secret.public_key {
                    spec.public_keys.push(k);
                }
            }
            AuthMethod::Password => {
                if let Some(p) = &secret.password {
                    spec.password_hash = Some(password_hash(p)?);
                    if wants_password {
                        spec.password = Some(p.clone());
                    }
                }
            }
        }
        Ok(spec)
    }

    /// Removes the VM's own login (VM scope) once its cloud resources are gone.
    async fn release_login(&self, vm: &VmRecord) -> Result<()> {
        let Some(SecretRef {
            path,
            scope: CredentialScope::Vm,
        }) = vm.login.as_ref().and_then(|l| l.secret.as_ref())
        else {
            return Ok(());
        };
        let store = self.secrets.as_ref().ok_or_else(|| Error::Internal {
            context: "the provisioner has no secret store".into(),
            source: None,
        })?;
        store.delete(path).await?;
        tracing::info!(vm = %vm.id, "VM login removed after the cloud teardown");
        Ok(())
    }
}

/// Which way a start or stop goes.
#[derive(Clone, Copy)]
enum Power {
    On,
    Off,
}

/// Why a step could not be decided.
enum StepError {
    /// The cloud is busy or unreachable: try again.
    Retry(DriverError),
    /// Our own dependency failed.
    Fatal(Error),
}

/// The reason users read for a driver error that ends the operation. The error itself goes to
/// the logs: its text says more than the reason (what an `Unauthorized` or `Unreachable` error
/// says is never shown to users).
fn refusal(vm: &VmRecord, op: OpKind, e: &DriverError) -> String {
    tracing::warn!(vm = %vm.id, op = op.name(), error = %e, "the cloud operation failed");
    e.user_reason()
}

async fn get(driver: &dyn CloudDriver, target: &CloudTarget) -> Result<Option<CloudVm>, StepError> {
    match driver.get(target).await {
        Ok(v) => Ok(v),
        Err(DriverError::NotFound(_)) => Ok(None),
        Err(e) if e.is_retryable() => Err(StepError::Retry(e)),
        Err(e) => Err(StepError::Fatal(Error::internal(
            "reading the VM from its cloud",
            e,
        ))),
    }
}

async fn call(
    f: impl std::future::Future<Output = Result<(), DriverError>>,
) -> Result<(), StepError> {
    match f.await {
        Ok(()) => Ok(()),
        Err(e) if e.is_retryable() => Err(StepError::Retry(e)),
        Err(e) => Err(StepError::Fatal(Error::internal("a cloud operation", e))),
    }
}

async fn tokio_sleep(d: Duration) {
    tokio::time::sleep(d).await;
}

/// The measurement of `pending`, finished by writing `next`.
fn finished_op(pending: &PendingOp, next: &VmRecord) -> FinishedOp {
    let millis = next.updated_at.unix_millis() - pending.requested_at.unix_millis();
    FinishedOp {
        cloud: next
            .cloud
            .as_ref()
            .map_or_else(|| "none".to_string(), |c| c.driver.clone()),
        op: pending.op,
        succeeded: next.status != VmStatus::Failed && next.status_reason.is_none(),
        duration: Duration::from_millis(millis.max(0) as u64),
    }
}

fn target_of(vm: &VmRecord) -> CloudTarget {
    CloudTarget {
        vm_id: vm.id,
        region: vm.region.datacenter.name.clone(),
        provider_id: vm.cloud.as_ref().map(|c| c.id.clone()),
    }
}

fn cloud_ref(driver: &dyn CloudDriver, region: &str, cloud: &CloudVm) -> CloudRef {
    CloudRef {
        driver: driver.kind().name().into(),
        id: cloud.provider_id.clone(),
        region: region.into(),
        raw_state: cloud.raw_state.clone(),
    }
}

fn confidential_mismatch(
    wanted: Option<vmapi_models::ConfidentialTech>,
    cloud: &CloudVm,
) -> Option<String> {
    let wanted = wanted?;
    if cloud.confidential == Some(wanted) {
        return None;
    }
    Some(format!(
        "the size requires {} but the cloud created the VM without it; it was not used",
        wanted.name()
    ))
}

/// The addresses of a cloud VM as `ipConfigurations`.
fn ip_configurations(cloud: &CloudVm) -> Vec<IpConfiguration> {
    let mut out = Vec::new();
    let mut add = |kind: &str, method: &str, version: &str, address: &Option<String>| {
        if let Some(a) = address {
            out.push(IpConfiguration {
                id: IpConfigId::new(),
                kind: kind.into(),
                method: method.into(),
                version: version.into(),
                address: a.clone(),
            });
        }
    };
    add("public", "Dynamic", "IPv4", &cloud.public_ipv4);
    add("public", "Dynamic", "IPv6", &cloud.public_ipv6);
    add("private", "Dynamic", "IPv4", &cloud.private_ipv4);
    out
}

/// Start of the `statusReason` of a VM whose security rules could not be applied.
pub const RULES_FAILED: &str = "security rules could not be applied";

/// The record with the operation finished in `status`. A running or stopped VM whose cloud
/// does not have its latest security rules gets `apply-rules` pending instead of nothing.
fn done(
    vm: &VmRecord,
    status: VmStatus,
    cloud: Option<&CloudVm>,
    driver: &dyn CloudDriver,
    now: Timestamp,
) -> VmRecord {
    let mut next = vm.clone();
    next.status = status;
    next.status_reason = None;
    next.pending_op = (matches!(status, VmStatus::Running | VmStatus::Stopped)
        && vm.rules_applied < vm.rules_revision)
        .then(|| PendingOp::new(OpKind::ApplyRules, now));
    next.updated_at = now;
    next.version = vm.version + 1;
    match status {
        VmStatus::Running => {
            if let Some(c) = cloud {
                next.ip_configurations = ip_configurations(c);
                let region = vm
                    .cloud
                    .as_ref()
                    .map(|r| r.region.clone())
                    .unwrap_or_else(|| vm.region.datacenter.name.clone());
                next.cloud = Some(cloud_ref(driver, &region, c));
            }
        }
        // Public addresses are given up when a VM stops or goes.
        VmStatus::Stopped => next.ip_configurations.retain(|ip| ip.kind != "public"),
        VmStatus::Deleted => next.ip_configurations.clear(),
        _ => {}
    }
    next
}

/// The record after its security rules were applied: the revision the cloud now has, nothing
/// pending, and no stale reason from an earlier failed attempt.
fn rules_applied(vm: &VmRecord, now: Timestamp) -> VmRecord {
    let mut next = vm.clone();
    next.rules_applied = vm.rules_revision;
    next.pending_op = None;
    if next
        .status_reason
        .as_deref()
        .is_some_and(|r| r.starts_with(RULES_FAILED))
    {
        next.status_reason = None;
    }
    next.updated_at = now;
    next.version = vm.version + 1;
    next
}

/// Security rules that could not be applied: the VM keeps its status, the cloud its old
/// firewall (`rules_applied` stays), and the reason is shown. A new rule change tries again.
fn rules_failed(vm: &VmRecord, now: Timestamp, reason: &str) -> VmRecord {
    let mut next = vm.clone();
    next.status_reason = Some(format!("{RULES_FAILED}: {reason}"));
    next.pending_op = None;
    next.updated_at = now;
    next.version = vm.version + 1;
    next
}

/// The record failed with a reason users can read.
fn failed(vm: &VmRecord, now: Timestamp, reason: String) -> VmRecord {
    let mut next = vm.clone();
    next.status = VmStatus::Failed;
    next.status_reason = Some(reason);
    next.pending_op = None;
    next.updated_at = now;
    next.version = vm.version + 1;
    next
}

/// A teardown that did not succeed: the VM stays deleting (5) with the reason and its login in
/// place, so it can still be reached and the delete retried.
fn teardown_failed(vm: &VmRecord, now: Timestamp, reason: String) -> VmRecord {
    let mut next = vm.clone();
    next.status_reason = Some(reason);
    next.pending_op = None;
    next.updated_at = now;
    next.version = vm.version + 1;
    next
}
