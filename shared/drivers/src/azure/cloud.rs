//! [`CloudDriver`] for [`AzureDriver`]: create, get, start, stop, reboot, delete, rules,
//! listing and adoption, built from the other rooms of the driver.

use std::collections::HashSet;

use async_trait::async_trait;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use vmapi_core::cloud::{
    Capabilities, CloudDriver, CloudState, CloudTarget, CloudVm, DriverError, DriverKind,
    ManagedKind, ManagedResource, VmSpec,
};
use vmapi_models::{DeploymentId, SecurityRule};

use super::config::{COMPUTE_API_VERSION, MANAGED_BY, NETWORK_API_VERSION, RESOURCES_API_VERSION};
use super::driver::AzureDriver;
use super::list::{managed_resource, orphaned_nsg};
use super::lro::Outcome;
use super::nsg::nsg_rules_check;
use super::util::{is_vm_resource_id, last_segment, safe_arm_id};
use super::vm::{check_spec, map_vm, resource_tags};

#[async_trait]
impl CloudDriver for AzureDriver {
    fn kind(&self) -> DriverKind {
        DriverKind::Azure
    }

    fn capabilities(&self) -> Capabilities {
        Self::static_capabilities()
    }

    async fn create(&self, spec: &VmSpec) -> Result<CloudVm, DriverError> {
        check_spec(spec)?;
        nsg_rules_check(&spec.rules)?;
        let target = spec.target();
        // The firewall first (the NIC refers to it); put again on every attempt, so it holds
        // `spec.rules` also when an earlier attempt made the VM.
        self.put_nsg(
            spec.vm_id,
            &spec.region,
            &resource_tags(spec, &self.config.deployment),
            &spec.rules,
        )
        .await?;
        // An earlier attempt may have created it already: report that VM as it is.
        if let Some(existing) = self.get(&target).await? {
            return Ok(existing);
        }
        let network = self.network_for(&spec.region).await?;
        let body = self.vm_body(spec, &network)?;
        let path = self.vm_path_for(spec.vm_id);
        tracing::info!(vm = %spec.vm_id, region = %spec.region, size = %spec.size, "creating an Azure VM");
        let resp = self
            .call(
                Method::PUT,
                &self.url(&path, COMPUTE_API_VERSION),
                Some(&body),
            )
            .await?;
        drop(body);
        if !resp.status.is_success() {
            return Err(resp.error());
        }
        let outcome = if self.config.create_wait.is_zero() {
            Outcome::StillRunning
        } else {
            self.wait_for(&resp, self.config.create_wait).await?
        };
        if outcome == Outcome::Done {
            if let Some(vm) = self.get(&target).await? {
                return Ok(vm);
            }
        }
        match resp.json() {
            Ok(vm) if vm.get("properties").is_some() => Ok(map_vm(&vm, &path)),
            _ => Ok(self.get(&target).await?.unwrap_or(CloudVm {
                provider_id: path,
                state: CloudState::Provisioning,
                raw_state: String::new(),
                public_ipv4: None,
                public_ipv6: None,
                private_ipv4: None,
                confidential: None,
            })),
        }
    }

    async fn get(&self, target: &CloudTarget) -> Result<Option<CloudVm>, DriverError> {
        let Some(body) = self.vm_with_view(target).await? else {
            return Ok(None);
        };
        let path = self.vm_path(target);
        let mut vm = map_vm(&body, &path);
        let (public4, public6, private4) = self.addresses(&body, &path).await?;
        vm.public_ipv4 = public4;
        vm.public_ipv6 = public6;
        vm.private_ipv4 = private4;
        Ok(Some(vm))
    }

    async fn start(&self, target: &CloudTarget) -> Result<(), DriverError> {
        self.action(target, "start").await
    }

    async fn stop(&self, target: &CloudTarget) -> Result<(), DriverError> {
        // Deallocate: a merely powered-off VM is still billed.
        self.action(target, "deallocate").await
    }

    async fn reboot(&self, target: &CloudTarget) -> Result<(), DriverError> {
        self.action(target, "restart").await
    }

    async fn resize(
        &self,
        target: &CloudTarget,
        size: &str,
        running: bool,
    ) -> Result<vmapi_core::cloud::ResizeProgress, DriverError> {
        self.resize_step(target, size, running).await
    }

    /// Deletes the VM (with its disk, NIC and public IP), then its NSG: at once when the VM's
    /// delete finished in time, else with the call the provisioner makes once the VM is gone.
    async fn delete(&self, target: &CloudTarget) -> Result<(), DriverError> {
        let path = self.vm_path(target);
        let resp = self
            .call(Method::DELETE, &self.url(&path, COMPUTE_API_VERSION), None)
            .await?;
        if resp.status == StatusCode::NOT_FOUND || resp.status == StatusCode::NO_CONTENT {
            return self.delete_nsg(target.vm_id).await;
        }
        if !resp.status.is_success() {
            return Err(resp.error());
        }
        if self.wait_for(&resp, self.config.operation_timeout).await? == Outcome::StillRunning {
            tracing::info!(vm = %target.vm_id, "Azure delete still running; state follows through get");
            return Ok(());
        }
        match self.delete_nsg(target.vm_id).await {
            Err(e) if e.is_retryable() => {
                tracing::info!(vm = %target.vm_id, error = %e, "Azure NSG not deleted yet; the next delete removes it");
                Ok(())
            }
            other => other,
        }
    }

    /// Puts the VM's NSG again with exactly `rules` (location and tags as they are).
    async fn apply_rules(
        &self,
        target: &CloudTarget,
        rules: &[SecurityRule],
    ) -> Result<(), DriverError> {
        nsg_rules_check(rules)?;
        let path = self.nsg_path(target.vm_id);
        let found = self
            .call(Method::GET, &self.url(&path, NETWORK_API_VERSION), None)
            .await?;
        if found.status == StatusCode::NOT_FOUND {
            return Err(DriverError::NotFound(format!(
                "network security group {}",
                last_segment(&path)
            )));
        }
        if !found.status.is_success() {
            return Err(found.error());
        }
        let current = found.json()?;
        let location = current["location"]
            .as_str()
            .filter(|l| !l.is_empty())
            .unwrap_or(&target.region)
            .to_string();
        let tags = match &current["tags"] {
            Value::Object(t) => Value::Object(t.clone()),
            _ => json!({
                "managed-by": MANAGED_BY,
                "vm-id": target.vm_id.to_string(),
                DeploymentId::TAG: self.config.deployment.as_str(),
            }),
        };
        self.put_nsg(target.vm_id, &location, &tags, rules).await
    }

    /// `GET .../resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachines` (every page):
    /// the VMs tagged `managed-by: vm-api` whose `location` is `region`, except those whose
    /// `provisioningState` is `Deleting`.
    /// Also names the NSGs of VMs that are gone (every VM of the resource group counts, one
    /// being deleted included: its own delete removes its NSG).
    async fn list_managed(&self, region: &str) -> Result<Vec<ManagedResource>, DriverError> {
        let vms = self.list_vms().await?;
        let mut found: Vec<ManagedResource> = vms
            .iter()
            .filter_map(|vm| managed_resource(vm, region))
            .collect();
        let names: HashSet<String> = vms
            .iter()
            .filter_map(|vm| vm["name"].as_str())
            .map(str::to_ascii_lowercase)
            .collect();
        for nsg in self.list_nsgs().await? {
            if let Some(orphan) = orphaned_nsg(&nsg, region, &names) {
                found.push(orphan);
            }
        }
        Ok(found)
    }

    /// Merges this deployment's tag into the VM's and its NSG's tags (Tags - Update At Scope,
    /// `PATCH {id}/providers/Microsoft.Resources/tags/default`); an absent NSG is skipped.
    async fn adopt(&self, resource: &ManagedResource) -> Result<(), DriverError> {
        let nsg = match &resource.kind {
            ManagedKind::Firewall(id) if safe_arm_id(id) => id.clone(),
            _ => self.nsg_path(resource.target.vm_id),
        };
        let mut scopes = vec![nsg];
        if let (ManagedKind::Vm, Some(vm)) = (&resource.kind, &resource.target.provider_id) {
            if !is_vm_resource_id(vm) {
                return Err(DriverError::InvalidSpec(format!("'{vm}' is not a VM id")));
            }
            scopes.insert(0, vm.clone());
        }
        let body = json!({
            "operation": "Merge",
            "properties": { "tags": { DeploymentId::TAG: self.config.deployment.as_str() } },
        });
        for (i, scope) in scopes.iter().enumerate() {
            let url = self.url(
                &format!("{scope}/providers/Microsoft.Resources/tags/default"),
                RESOURCES_API_VERSION,
            );
            let resp = self.call(Method::PATCH, &url, Some(&body)).await?;
            let optional_nsg = i + 1 == scopes.len() && resource.kind == ManagedKind::Vm;
            if resp.status == StatusCode::NOT_FOUND && optional_nsg {
                continue;
            }
            if !resp.status.is_success() {
                return Err(resp.error());
            }
        }
        Ok(())
    }
}
