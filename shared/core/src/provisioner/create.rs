//! Creating a VM in its cloud: the spec and login it is created with, and what is checked
//! once it exists.

use std::sync::Arc;

use vmapi_models::{
    AuthMethod, CredentialScope, ProviderRecord, SecretRef, Timestamp, VmRecord, VmStatus,
};

use super::base::Provisioner;
use super::records::{cloud_ref, done, failed};
use super::step::Step;
use crate::cloud::{CloudDriver, CloudState, CloudVm, LoginSpec, VmSpec};
use crate::credentials::password_hash;
use crate::error::{Error, Result};
use crate::ports::Lookup;

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

impl Provisioner {
    /// The record after a successful create call.
    pub(super) fn after_create(
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
                next.set_status(VmStatus::Provisioning, now);
                next.updated_at = now;
                next
            }
        }
    }

    pub(super) fn observe_create(
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

    pub(super) async fn required_confidential(
        &self,
        vm: &VmRecord,
    ) -> Result<Option<vmapi_models::ConfidentialTech>> {
        let mut lookup = Lookup::default();
        lookup.sizes.insert(vm.size);
        let found = self.repo.lookup(&lookup).await?;
        Ok(found.sizes.get(&vm.size).and_then(|s| s.confidential))
    }

    /// Builds the create request from the catalog and the VM's login.
    pub(super) async fn spec(
        &self,
        vm: &VmRecord,
        driver: &Arc<dyn CloudDriver>,
    ) -> Result<VmSpec> {
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
    pub(super) async fn release_login(&self, vm: &VmRecord) -> Result<()> {
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
