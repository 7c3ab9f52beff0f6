//! One run over a VM: read it as stored now, decide the next step of its `pendingOp`, write
//! it conditionally, until the operation is done or the cloud is busy.

use std::time::Instant;

use vmapi_models::{EventKind, OpKind, Timestamp, VmEvent, VmId, VmRecord, VmStatus};

use super::base::{Outcome, Provisioner, WorkItem};
use super::records::{done, failed, finished_op, rules_applied, rules_failed, teardown_failed};
use super::resize::{quota_after, resize_failed};
use super::step::{call, get, refusal, target_of, tokio_sleep, Step, StepError};
use crate::cloud::{CloudDriver, CloudState, CloudTarget, CloudVm};
use crate::error::{Error, ErrorChain, Result};
use crate::ports::NameChange;

/// Which way a start or stop goes.
#[derive(Clone, Copy)]
enum Power {
    On,
    Off,
}

impl Provisioner {
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
                        .replace_vm(&next, vm.version, &quota_after(&vm, &next), event.as_ref())
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
                OpKind::Resize => resize_failed(vm, now, reason, None),
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
            (OpKind::Resize, VmStatus::Running | VmStatus::Stopped) => {
                self.resize_step(vm, driver.as_ref(), overdue, now).await
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
                        // Kept at least to the end of its month, whose cost estimate bills it.
                        gone.purge_after_epoch = Some(
                            (now.unix_millis() / 1000
                                + self.options.deleted_retention.as_secs() as i64)
                                .max(now.next_month_start().unix_millis() / 1000),
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
}
