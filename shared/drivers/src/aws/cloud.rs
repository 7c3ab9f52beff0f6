//! [`CloudDriver`] for [`AwsDriver`]: create, get, start, stop, reboot, delete, rules,
//! listing and adoption, built from the other files of the driver.

use async_trait::async_trait;
use aws_sdk_ec2::types::{
    AmdSevSnpSpecification, CpuOptionsRequest, Filter, InstanceType, ResourceType, Tag,
};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use vmapi_core::cloud::{
    Capabilities, CloudDriver, CloudState, CloudTarget, CloudVm, DriverError, DriverKind,
    ManagedKind, ManagedResource, ResizeProgress, VmSpec,
};
use vmapi_models::{ConfidentialTech, DeploymentId, SecurityRule, Timestamp};

use super::driver::{
    deployment_tag, is_terminated, managed_by_filter, vm_id_tag, AwsDriver, InstanceAction,
};
use super::errors::map_err;
use super::group::group_name;
use super::instance::{cloud_init, tags, view};

#[async_trait]
impl CloudDriver for AwsDriver {
    fn kind(&self) -> DriverKind {
        DriverKind::Aws
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            confidential: vec![ConfidentialTech::SevSnp],
            native_idempotency: true,
            password_login: false,
            resize: vmapi_models::CloudKind::Aws.can_resize(),
        }
    }

    async fn create(&self, spec: &VmSpec) -> Result<CloudVm, DriverError> {
        let target = spec.target();
        // The firewall first: the instance is launched into it.
        let group = self.ensure_group(spec).await?;
        self.sync_group(&spec.region, &group, &spec.rules).await?;
        // An earlier attempt may have made it (and emulators ignore ClientToken).
        if let Some(existing) = self.find(&target).await?.filter(|i| !is_terminated(i)) {
            return Ok(view(&existing));
        }
        if let Some(tech) = spec.confidential {
            if tech != ConfidentialTech::SevSnp {
                return Err(DriverError::InvalidSpec(format!(
                    "AWS offers sev-snp, not {}",
                    tech.name()
                )));
            }
        }
        let mut req = self
            .client(&spec.region)
            .run_instances()
            .image_id(&spec.image)
            .instance_type(InstanceType::from(spec.size.as_str()))
            .min_count(1)
            .max_count(1)
            .client_token(spec.idempotency_key())
            .security_group_ids(&group)
            .user_data(B64.encode(cloud_init(&spec.login)))
            .tag_specifications(tags(spec, &self.deployment, ResourceType::Instance))
            .tag_specifications(tags(spec, &self.deployment, ResourceType::Volume));
        if spec.confidential == Some(ConfidentialTech::SevSnp) {
            req = req.cpu_options(
                CpuOptionsRequest::builder()
                    .amd_sev_snp(AmdSevSnpSpecification::Enabled)
                    .build(),
            );
        }
        let out = req.send().await.map_err(map_err)?;
        let instance = out
            .instances()
            .first()
            .ok_or_else(|| DriverError::Provider {
                code: "NoInstance".into(),
                message: "RunInstances returned no instance".into(),
            })?;
        tracing::info!(vm = %spec.vm_id, instance = instance.instance_id().unwrap_or(""), region = %spec.region, "EC2 instance launched");
        Ok(view(instance))
    }

    async fn get(&self, target: &CloudTarget) -> Result<Option<CloudVm>, DriverError> {
        Ok(self
            .find(target)
            .await?
            .map(|i| view(&i))
            .filter(|v| v.state != CloudState::Deleted))
    }

    async fn start(&self, target: &CloudTarget) -> Result<(), DriverError> {
        self.instance_action(target, InstanceAction::Start).await
    }

    async fn stop(&self, target: &CloudTarget) -> Result<(), DriverError> {
        self.instance_action(target, InstanceAction::Stop).await
    }

    async fn reboot(&self, target: &CloudTarget) -> Result<(), DriverError> {
        self.instance_action(target, InstanceAction::Reboot).await
    }

    /// Terminates the instance; once it is terminated (or absent), removes its security group
    /// (the provisioner calls again after the instance is gone).
    async fn delete(&self, target: &CloudTarget) -> Result<(), DriverError> {
        let live = match self.find(target).await? {
            Some(i) if !is_terminated(&i) => i.instance_id().map(str::to_string),
            _ => None,
        };
        let Some(id) = live else {
            return self.delete_group(target).await;
        };
        match self
            .client(&target.region)
            .terminate_instances()
            .instance_ids(id)
            .send()
            .await
            .map_err(map_err)
        {
            Ok(_) | Err(DriverError::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn resize(
        &self,
        target: &CloudTarget,
        size: &str,
        running: bool,
    ) -> Result<ResizeProgress, DriverError> {
        self.resize_step(target, size, running).await
    }

    /// Syncs the ingress permissions of the VM's security group with `rules`.
    async fn apply_rules(
        &self,
        target: &CloudTarget,
        rules: &[SecurityRule],
    ) -> Result<(), DriverError> {
        let client = self.client(&target.region);
        let group = self
            .find_group(&client, target.vm_id)
            .await?
            .ok_or_else(|| {
                DriverError::NotFound(format!("security group {}", group_name(target.vm_id)))
            })?;
        self.sync_group(&target.region, &group, rules).await
    }

    async fn list_managed(&self, region: &str) -> Result<Vec<ManagedResource>, DriverError> {
        let client = self.client(region);
        let mut found = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let out = client
                .describe_instances()
                .filters(managed_by_filter())
                .filters(
                    Filter::builder()
                        .name("instance-state-name")
                        .values("pending")
                        .values("running")
                        .values("stopping")
                        .values("stopped")
                        .build(),
                )
                .set_next_token(next.take())
                .max_results(1000)
                .send()
                .await
                .map_err(map_err)?;
            for i in out.reservations().iter().flat_map(|r| r.instances()) {
                let vm_id = vm_id_tag(i.tags());
                let (Some(vm_id), Some(id)) = (vm_id, i.instance_id()) else {
                    continue;
                };
                found.push(ManagedResource {
                    kind: ManagedKind::Vm,
                    target: CloudTarget {
                        vm_id,
                        region: region.to_string(),
                        provider_id: Some(id.to_string()),
                    },
                    created_at: i
                        .launch_time()
                        .and_then(|t| Timestamp::from_unix_millis(t.secs() * 1000).ok()),
                    raw_state: view(i).raw_state,
                    deployment: deployment_tag(i.tags()),
                });
            }
            match out.next_token() {
                Some(t) if !t.is_empty() => next = Some(t.to_string()),
                _ => break,
            }
        }
        // Security groups whose VM has no instance left: a teardown that stopped between the
        // instance and its group (the group can only go once the instance is terminated).
        let groups = self.list_groups(&client).await?;
        for (vm_id, group_id, deployment) in groups {
            if found.iter().any(|r| r.target.vm_id == vm_id) {
                continue;
            }
            found.push(ManagedResource {
                kind: ManagedKind::Firewall(group_id.clone()),
                target: CloudTarget {
                    vm_id,
                    region: region.to_string(),
                    provider_id: None,
                },
                // EC2 does not say when a group was made; the cleanup job removes one only when
                // no VM record needs it, and a group is made only for a recorded VM.
                created_at: None,
                raw_state: format!("security group {group_id}"),
                deployment,
            });
        }
        Ok(found)
    }

    /// `CreateTags` with this deployment's tag on the instance and on the VM's security group
    /// (found by name and `vm-id` tag only, as an untagged one is).
    async fn adopt(&self, resource: &ManagedResource) -> Result<(), DriverError> {
        let client = self.client(&resource.target.region);
        let mut ids: Vec<String> = Vec::new();
        match &resource.kind {
            ManagedKind::Vm => ids.extend(resource.target.provider_id.clone()),
            ManagedKind::Firewall(id) => ids.push(id.clone()),
        }
        if let Some(group) = self
            .find_group_of(&client, resource.target.vm_id, false)
            .await?
        {
            if !ids.contains(&group) {
                ids.push(group);
            }
        }
        if ids.is_empty() {
            return Err(DriverError::NotFound(format!(
                "nothing of VM {} to tag",
                resource.target.vm_id
            )));
        }
        client
            .create_tags()
            .set_resources(Some(ids))
            .tags(
                Tag::builder()
                    .key(DeploymentId::TAG)
                    .value(self.deployment.as_str())
                    .build(),
            )
            .send()
            .await
            .map_err(map_err)?;
        Ok(())
    }
}
