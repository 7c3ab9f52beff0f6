//! The records a step writes: an operation done, failed or torn down; rules applied or not.

use std::time::Duration;

use vmapi_models::{
    CloudRef, IpConfigId, IpConfiguration, OpKind, PendingOp, Timestamp, VmRecord, VmStatus,
};

use crate::cloud::{CloudDriver, CloudVm};
use crate::ports::FinishedOp;

/// The measurement of `pending`, finished by writing `next`.
pub(super) fn finished_op(pending: &PendingOp, next: &VmRecord) -> FinishedOp {
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

pub(super) fn cloud_ref(driver: &dyn CloudDriver, region: &str, cloud: &CloudVm) -> CloudRef {
    CloudRef {
        driver: driver.kind().name().into(),
        id: cloud.provider_id.clone(),
        region: region.into(),
        raw_state: cloud.raw_state.clone(),
    }
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
pub(super) fn done(
    vm: &VmRecord,
    status: VmStatus,
    cloud: Option<&CloudVm>,
    driver: &dyn CloudDriver,
    now: Timestamp,
) -> VmRecord {
    let mut next = vm.clone();
    next.set_status(status, now);
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
pub(super) fn rules_applied(vm: &VmRecord, now: Timestamp) -> VmRecord {
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
pub(super) fn rules_failed(vm: &VmRecord, now: Timestamp, reason: &str) -> VmRecord {
    let mut next = vm.clone();
    next.status_reason = Some(format!("{RULES_FAILED}: {reason}"));
    next.pending_op = None;
    next.updated_at = now;
    next.version = vm.version + 1;
    next
}

/// The record failed with a reason users can read.
pub(super) fn failed(vm: &VmRecord, now: Timestamp, reason: String) -> VmRecord {
    let mut next = vm.clone();
    next.set_status(VmStatus::Failed, now);
    next.status_reason = Some(reason);
    next.pending_op = None;
    next.updated_at = now;
    next.version = vm.version + 1;
    next
}

/// A teardown that did not succeed: the VM stays deleting (5) with the reason and its login in
/// place, so it can still be reached and the delete retried.
pub(super) fn teardown_failed(vm: &VmRecord, now: Timestamp, reason: String) -> VmRecord {
    let mut next = vm.clone();
    next.status_reason = Some(reason);
    next.pending_op = None;
    next.updated_at = now;
    next.version = vm.version + 1;
    next
}
