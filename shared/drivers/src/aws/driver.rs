//! The [`AwsDriver`]: its EC2 clients (one per region), finding a VM's instance by its tags,
//! and the instance actions (start, stop, reboot).

use std::collections::HashMap;
use std::sync::Mutex;

use aws_config::SdkConfig;
use aws_sdk_ec2::types::{Filter, Instance, InstanceStateName};
use aws_sdk_ec2::Client;
use vmapi_core::cloud::{CloudTarget, DriverError};
use vmapi_models::{DeploymentId, VmId};

use super::errors::map_err;

/// Tag on everything the service creates.
pub const MANAGED_BY: (&str, &str) = ("managed-by", "vm-api");

/// EC2 in every region the catalog names (one client per region, made on first use).
pub struct AwsDriver {
    pub(super) sdk: SdkConfig,
    pub(super) deployment: DeploymentId,
    pub(super) clients: Mutex<HashMap<String, Client>>,
}

impl AwsDriver {
    /// A driver over the SDK configuration (credentials from the function's role) that tags
    /// what it makes with `deployment` and finds only what carries it.
    pub fn new(sdk: SdkConfig, deployment: DeploymentId) -> Self {
        AwsDriver {
            sdk,
            deployment,
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// A driver that uses `client` for every region (tests with mocked clients).
    pub fn with_client(sdk: SdkConfig, region: &str, client: Client) -> Self {
        let driver = AwsDriver::new(sdk, DeploymentId::local());
        driver
            .clients
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(region.to_string(), client);
        driver
    }

    pub(super) fn client(&self, region: &str) -> Client {
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        clients
            .entry(region.to_string())
            .or_insert_with(|| {
                let conf = aws_sdk_ec2::config::Builder::from(&self.sdk)
                    .region(aws_sdk_ec2::config::Region::new(region.to_string()))
                    .build();
                Client::from_conf(conf)
            })
            .clone()
    }

    /// The live (not terminated) instance carrying our VM id, newest first.
    pub(super) async fn find(&self, target: &CloudTarget) -> Result<Option<Instance>, DriverError> {
        let client = self.client(&target.region);
        let out = client
            .describe_instances()
            .filters(
                Filter::builder()
                    .name("tag:vm-id")
                    .values(target.vm_id.to_string())
                    .build(),
            )
            .filters(self.deployment_filter())
            .send()
            .await
            .map_err(map_err)?;
        let mut instances: Vec<Instance> = out
            .reservations()
            .iter()
            .flat_map(|r| r.instances().iter().cloned())
            .collect();
        instances.sort_by_key(|i| std::cmp::Reverse(i.launch_time().map(|t| t.secs())));
        let live = instances.iter().find(|i| {
            !matches!(
                i.state().and_then(|s| s.name()),
                Some(InstanceStateName::Terminated)
            )
        });
        Ok(live.or(instances.first()).cloned())
    }

    /// The filter on this deployment's tag.
    pub(super) fn deployment_filter(&self) -> Filter {
        Filter::builder()
            .name(format!("tag:{}", DeploymentId::TAG))
            .values(self.deployment.as_str())
            .build()
    }

    /// Starts, stops or reboots the target's live instance (none: `NotFound`).
    pub(super) async fn instance_action(
        &self,
        target: &CloudTarget,
        action: InstanceAction,
    ) -> Result<(), DriverError> {
        let id = self
            .instance_id(target)
            .await?
            .ok_or_else(|| DriverError::NotFound(format!("instance of VM {}", target.vm_id)))?;
        let client = self.client(&target.region);
        match action {
            InstanceAction::Start => client
                .start_instances()
                .instance_ids(id)
                .send()
                .await
                .map(drop)
                .map_err(map_err),
            InstanceAction::Stop => client
                .stop_instances()
                .instance_ids(id)
                .send()
                .await
                .map(drop)
                .map_err(map_err),
            InstanceAction::Reboot => client
                .reboot_instances()
                .instance_ids(id)
                .send()
                .await
                .map(drop)
                .map_err(map_err),
        }
    }

    pub(super) async fn instance_id(
        &self,
        target: &CloudTarget,
    ) -> Result<Option<String>, DriverError> {
        if let Some(id) = &target.provider_id {
            return Ok(Some(id.clone()));
        }
        Ok(self
            .find(target)
            .await?
            .filter(|i| !is_terminated(i))
            .and_then(|i| i.instance_id().map(str::to_string)))
    }
}

/// The instance actions of [`AwsDriver::instance_action`].
#[derive(Clone, Copy, Debug)]
pub(super) enum InstanceAction {
    Start,
    Stop,
    Reboot,
}

/// The filter on this service's tag (`managed-by=vm-api`).
pub(super) fn managed_by_filter() -> Filter {
    Filter::builder()
        .name(format!("tag:{}", MANAGED_BY.0))
        .values(MANAGED_BY.1)
        .build()
}

/// The value of a resource's deployment tag.
pub(super) fn deployment_tag(tags: &[aws_sdk_ec2::types::Tag]) -> Option<String> {
    tags.iter()
        .find(|t| t.key() == Some(DeploymentId::TAG))
        .and_then(|t| t.value())
        .map(str::to_string)
}

/// The VM id in a resource's `vm-id` tag.
pub(super) fn vm_id_tag(tags: &[aws_sdk_ec2::types::Tag]) -> Option<VmId> {
    tags.iter()
        .find(|t| t.key() == Some("vm-id"))
        .and_then(|t| t.value())
        .and_then(|v| v.parse::<VmId>().ok())
}

pub(super) fn is_terminated(i: &Instance) -> bool {
    matches!(
        i.state().and_then(|s| s.name()),
        Some(InstanceStateName::Terminated)
    )
}
