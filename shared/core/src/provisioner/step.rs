//! What a step decides (the next write, or a wait) and the driver calls it makes, their errors
//! sorted into "try again" and "give up".

use std::time::Duration;

use vmapi_models::{OpKind, VmRecord};

use crate::cloud::{CloudDriver, CloudTarget, CloudVm, DriverError};
use crate::error::{Error, Result};

/// The next thing to do after looking at a VM.
pub(super) enum Step {
    /// Write this record (conditional on the read version).
    Write(Box<VmRecord>),
    /// The cloud is busy: look again after this long.
    Wait(Duration),
}

/// Why a step could not be decided.
pub(super) enum StepError {
    /// The cloud is busy or unreachable: try again.
    Retry(DriverError),
    /// Our own dependency failed.
    Fatal(Error),
}

/// The reason users read for a driver error that ends the operation. The error itself goes to
/// the logs: its text says more than the reason (what an `Unauthorized` or `Unreachable` error
/// says is never shown to users).
pub(super) fn refusal(vm: &VmRecord, op: OpKind, e: &DriverError) -> String {
    tracing::warn!(vm = %vm.id, op = op.name(), error = %e, "the cloud operation failed");
    e.user_reason()
}

pub(super) async fn get(
    driver: &dyn CloudDriver,
    target: &CloudTarget,
) -> Result<Option<CloudVm>, StepError> {
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

pub(super) async fn call(
    f: impl std::future::Future<Output = Result<(), DriverError>>,
) -> Result<(), StepError> {
    match f.await {
        Ok(()) => Ok(()),
        Err(e) if e.is_retryable() => Err(StepError::Retry(e)),
        Err(e) => Err(StepError::Fatal(Error::internal("a cloud operation", e))),
    }
}

pub(super) async fn tokio_sleep(d: Duration) {
    tokio::time::sleep(d).await;
}

pub(super) fn target_of(vm: &VmRecord) -> CloudTarget {
    CloudTarget {
        vm_id: vm.id,
        region: vm.region.datacenter.name.clone(),
        provider_id: vm.cloud.as_ref().map(|c| c.id.clone()),
    }
}
