//! Changing a VM's size: `PATCH` of `properties.hardwareProfile.vmSize`, deallocating first only
//! when the VM's hardware cluster does not offer the new size (`GET .../vmSizes` lists what it
//! may move to as it is), then starting it again when it was running. One step per call, each
//! chosen from the VM as it is now.

use reqwest::Method;
use serde_json::{json, Value};
use vmapi_core::cloud::{CloudState, CloudTarget, DriverError, ResizeProgress};

use super::config::COMPUTE_API_VERSION;
use super::driver::AzureDriver;
use super::lro::Outcome;
use super::vm::map_state;

impl AzureDriver {
    /// The next step of moving the VM to `size` (running afterwards when `running`).
    pub(super) async fn resize_step(
        &self,
        target: &CloudTarget,
        size: &str,
        running: bool,
    ) -> Result<ResizeProgress, DriverError> {
        let Some(vm) = self.vm_with_view(target).await? else {
            return Err(DriverError::NotFound(format!(
                "virtual machine of VM {}",
                target.vm_id
            )));
        };
        let current = vm
            .pointer("/properties/hardwareProfile/vmSize")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let updating = vm
            .pointer("/properties/provisioningState")
            .and_then(Value::as_str)
            .is_some_and(|s| s.eq_ignore_ascii_case("Updating"));
        let (state, _) = map_state(&vm);
        if updating || matches!(state, CloudState::Starting | CloudState::Stopping) {
            return Ok(ResizeProgress::Waiting);
        }
        if !current.eq_ignore_ascii_case(size) {
            if self.offers(target, size).await? {
                return self.patch_size(target, size).await;
            }
            if state == CloudState::Running {
                tracing::info!(vm = %target.vm_id, size, "deallocating an Azure VM: its hardware cluster lacks the new size");
                self.action(target, "deallocate").await?;
                return Ok(ResizeProgress::Waiting);
            }
            // Not even deallocated: the region lacks it. A VM that ran before goes back up.
            if running && state == CloudState::Stopped {
                if let Err(e) = self.action(target, "start").await {
                    tracing::warn!(vm = %target.vm_id, error = %e, "could not start the Azure VM again after a refused resize");
                }
            }
            return Err(DriverError::InvalidSpec(format!(
                "the size {size} is not offered in the VM's region"
            )));
        }
        match (state, running) {
            (CloudState::Stopped, true) => {
                self.action(target, "start").await?;
                Ok(ResizeProgress::Waiting)
            }
            (CloudState::Running, false) => {
                self.action(target, "deallocate").await?;
                Ok(ResizeProgress::Waiting)
            }
            (CloudState::Running | CloudState::Stopped, _) => Ok(ResizeProgress::Done),
            (other, _) => Err(DriverError::Provider {
                code: "UnexpectedState".into(),
                message: format!("the VM is {other:?} and cannot be resized"),
            }),
        }
    }

    /// Whether the VM may move to `size` as it is (running: its hardware cluster's sizes;
    /// deallocated: the region's).
    async fn offers(&self, target: &CloudTarget, size: &str) -> Result<bool, DriverError> {
        let path = format!("{}/vmSizes", self.vm_path(target));
        let resp = self
            .call(Method::GET, &self.url(&path, COMPUTE_API_VERSION), None)
            .await?;
        if !resp.status.is_success() {
            return Err(resp.error());
        }
        let body = resp.json()?;
        Ok(body["value"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s["name"].as_str())
            .any(|name| name.eq_ignore_ascii_case(size)))
    }

    async fn patch_size(
        &self,
        target: &CloudTarget,
        size: &str,
    ) -> Result<ResizeProgress, DriverError> {
        let body = json!({ "properties": { "hardwareProfile": { "vmSize": size } } });
        let resp = self
            .call(
                Method::PATCH,
                &self.url(&self.vm_path(target), COMPUTE_API_VERSION),
                Some(&body),
            )
            .await?;
        if !resp.status.is_success() {
            return Err(resp.error());
        }
        tracing::info!(vm = %target.vm_id, size, "Azure VM size changed");
        if self.wait_for(&resp, self.config.operation_timeout).await? == Outcome::StillRunning {
            tracing::info!(vm = %target.vm_id, "Azure resize still running; state follows through get");
        }
        // The next call sees the new size and starts or stops the VM as asked.
        Ok(ResizeProgress::Waiting)
    }
}
