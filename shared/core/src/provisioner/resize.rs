//! A resize in the provisioner: the driver's next step, and the records that end it (the new
//! size billed at its price from now, or the old one with the reason), each with what it
//! changes on the team's quota usage.

use vmapi_models::{OpKind, Timestamp, VmRecord, VmStatus};

use super::base::Provisioner;
use super::records::done;
use super::step::{get, refusal, target_of, Step, StepError};
use crate::cloud::{CloudDriver, CloudState, ResizeProgress};
use crate::ports::{NameChange, VcpuChange};

impl Provisioner {
    /// The next step of the VM's pending resize.
    pub(super) async fn resize_step(
        &self,
        vm: &VmRecord,
        driver: &dyn CloudDriver,
        overdue: bool,
        now: Timestamp,
    ) -> Result<Step, StepError> {
        let Some(to) = vm.resize_to.clone() else {
            // Nothing to move to: the resize is over.
            return Ok(Step::Write(Box::new(done(
                vm, vm.status, None, driver, now,
            ))));
        };
        let target = target_of(vm);
        let running = vm.status == VmStatus::Running;
        match driver.resize(&target, &to.size_name, running).await {
            Ok(ResizeProgress::Done) => {
                let cloud = get(driver, &target).await?;
                Ok(Step::Write(Box::new(done(
                    &resized(vm, now),
                    vm.status,
                    cloud.as_ref(),
                    driver,
                    now,
                ))))
            }
            Ok(ResizeProgress::Waiting) if !overdue => Ok(Step::Wait(self.options.poll_interval)),
            Ok(ResizeProgress::Waiting) => {
                let observed = get(driver, &target).await.ok().flatten().map(|c| c.state);
                Ok(Step::Write(Box::new(resize_failed(
                    vm,
                    now,
                    "the cloud did not finish the resize in time".into(),
                    observed,
                ))))
            }
            Err(e) if e.is_retryable() && !overdue => Err(StepError::Retry(e)),
            Err(e) => {
                let reason = refusal(vm, OpKind::Resize, &e);
                let observed = get(driver, &target).await.ok().flatten().map(|c| c.state);
                Ok(Step::Write(Box::new(resize_failed(
                    vm, now, reason, observed,
                ))))
            }
        }
    }
}

/// The record with the size the cloud confirmed: new size, price and vCPUs, billed at the new
/// price from `now`.
fn resized(vm: &VmRecord, now: Timestamp) -> VmRecord {
    let mut next = vm.clone();
    if let Some(to) = &vm.resize_to {
        next.size = to.size;
        next.price = to.price;
        if next.vcpus.is_some() {
            next.vcpus = Some(to.vcpus);
        }
        if let Some(billing) = &mut next.billing {
            billing.reprice(to.price_per_hour, &to.currency_code, now);
        }
    }
    next.resize_to = None;
    next
}

/// A resize that did not happen: the old size and vCPUs, the reason, and the status the cloud
/// shows (a VM stopped for the resize stays stopped until it is started).
pub(super) fn resize_failed(
    vm: &VmRecord,
    now: Timestamp,
    reason: String,
    observed: Option<CloudState>,
) -> VmRecord {
    let mut next = vm.clone();
    if let Some(to) = &vm.resize_to {
        if next.vcpus.is_some() {
            next.vcpus = Some(to.from_vcpus);
        }
        next.status_reason = Some(format!("the resize to {} failed: {reason}", to.size_name));
    }
    match observed {
        Some(CloudState::Stopped) if vm.status == VmStatus::Running => {
            next.set_status(VmStatus::Stopped, now);
            next.ip_configurations.retain(|ip| ip.kind != "public");
        }
        _ => {}
    }
    next.resize_to = None;
    next.pending_op = None;
    next.updated_at = now;
    next.version = vm.version + 1;
    next
}

/// What a write that ends a resize changes on the team's quota usage: meanwhile the VM counted
/// the larger of its two sizes; now it counts the one it has.
pub(super) fn quota_after(vm: &VmRecord, next: &VmRecord) -> NameChange {
    match (
        vm.resize_to.is_some() && next.resize_to.is_none(),
        vm.vcpus,
        next.vcpus,
    ) {
        (true, Some(before), Some(after)) if before != after => NameChange {
            vcpus: Some(VcpuChange {
                delta: i64::from(after) - i64::from(before),
                room: None,
            }),
            ..NameChange::default()
        },
        _ => NameChange::default(),
    }
}
