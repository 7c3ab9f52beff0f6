//! [`CloudDriver`] for [`KraudDriver`]: create, get, start, stop, reboot, rules, delete,
//! listing and adoption, built from the other files of the driver.

use std::time::Duration;

use async_trait::async_trait;
use reqwest::header::CONTENT_TYPE;
use reqwest::Method;
use vmapi_core::cloud::{
    Capabilities, CloudDriver, CloudState, CloudTarget, CloudVm, DriverError, DriverKind,
    ManagedKind, ManagedResource, VmSpec,
};
use vmapi_models::{DeploymentId, SecurityRule, Timestamp, VmId};

use super::config::{MANAGED_BY, REQUEST_TIMEOUT, STOP_GRACE_SECS};
use super::driver::KraudDriver;
use super::launch::{address_open, LaunchFiles};
use super::view::view;
use super::wire::{ItemList, Namespace};

#[async_trait]
impl CloudDriver for KraudDriver {
    fn kind(&self) -> DriverKind {
        DriverKind::Kraud
    }

    fn capabilities(&self) -> Capabilities {
        Self::static_capabilities()
    }

    async fn create(&self, spec: &VmSpec) -> Result<CloudVm, DriverError> {
        // Everything that can be refused locally is refused before the first call.
        let files = LaunchFiles::build(spec)?;
        let ns = Self::namespace_of(spec.vm_id);
        self.ensure_namespace(&ns).await?;
        if let Some(pod) = self.find_pod(&ns).await? {
            tracing::info!(vm = %spec.vm_id, namespace = %ns, "kraud pod exists already; not launching again");
            // An earlier attempt launched it, perhaps with other rules.
            self.set_address_open(&ns, &pod, address_open(&spec.rules)?)
                .await?;
            return Ok(view(&ns, &pod));
        }
        if self.find_deployment(&ns).await?.is_some() {
            tracing::info!(vm = %spec.vm_id, namespace = %ns, "kraud deployment exists already; waiting for its pod");
        } else {
            let launch_id = self.launch(&ns, &files).await?;
            tracing::info!(vm = %spec.vm_id, namespace = %ns, launch_id = %launch_id, "kraud launch accepted");
        }
        if let Some(pod) = self.wait_for_pod(&ns).await? {
            return Ok(view(&ns, &pod));
        }
        if spec.confidential.is_some() {
            // Without the pod there is nothing that reports the confidential technology; an
            // answer without it would read as a mismatch. Retry: the next create finds the
            // deployment and does not launch again.
            return Err(DriverError::Conflict(format!(
                "the launch into namespace {ns} is in progress; its pod is not visible yet"
            )));
        }
        Ok(CloudVm {
            provider_id: ns,
            state: CloudState::Provisioning,
            raw_state: "Launching".into(),
            public_ipv4: None,
            public_ipv6: None,
            private_ipv4: None,
            confidential: None,
        })
    }

    async fn get(&self, target: &CloudTarget) -> Result<Option<CloudVm>, DriverError> {
        let ns = Self::namespace_of(target.vm_id);
        Ok(self.find_pod(&ns).await?.map(|pod| view(&ns, &pod)))
    }

    async fn start(&self, target: &CloudTarget) -> Result<(), DriverError> {
        let (_, pod) = self.require_pod(target).await?;
        self.docker_container_op(&pod, "start", &[], REQUEST_TIMEOUT)
            .await
    }

    async fn stop(&self, target: &CloudTarget) -> Result<(), DriverError> {
        let (_, pod) = self.require_pod(target).await?;
        let grace = STOP_GRACE_SECS.to_string();
        self.docker_container_op(
            &pod,
            "stop",
            &[("t", &grace)],
            REQUEST_TIMEOUT + Duration::from_secs(STOP_GRACE_SECS),
        )
        .await
    }

    async fn reboot(&self, target: &CloudTarget) -> Result<(), DriverError> {
        let ns = Self::namespace_of(target.vm_id);
        if let Some(deployment) = self.find_deployment(&ns).await? {
            if let Some(id) = deployment.id.as_deref().or(deployment.aid.as_deref()) {
                let req = self.request(
                    Method::POST,
                    &["apis", "kr", "v1", "deployments", "by-id", id, "restart"],
                    &[],
                );
                self.call(req, "restart deployment").await?;
                return Ok(());
            }
        }
        // No deployment listed: restart the pod through the Docker API.
        let (_, pod) = self.require_pod(target).await?;
        let grace = STOP_GRACE_SECS.to_string();
        self.docker_container_op(
            &pod,
            "restart",
            &[("t", &grace)],
            REQUEST_TIMEOUT + Duration::from_secs(STOP_GRACE_SECS),
        )
        .await
    }

    /// Opens the pod's address (label `kr.network.policy=open`) when the rules hold an
    /// inbound allow rule and no deny rule, else closes it (label removed).
    async fn apply_rules(
        &self,
        target: &CloudTarget,
        rules: &[SecurityRule],
    ) -> Result<(), DriverError> {
        let open = address_open(rules)?;
        let (ns, pod) = self.require_pod(target).await?;
        self.set_address_open(&ns, &pod, open).await
    }

    async fn delete(&self, target: &CloudTarget) -> Result<(), DriverError> {
        let ns = Self::namespace_of(target.vm_id);
        let req = self.request(
            Method::DELETE,
            &["api", "v1", "namespaces", &ns],
            &[("recursive", "true")],
        );
        match self.call(req, "delete namespace").await {
            Ok(_) | Err(DriverError::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Namespaces are not zonal, so `region` selects nothing: every namespace named
    /// `vm-{vmId}` (`GET /api/v1/namespaces`) that is not being deleted (`status.phase`
    /// `Terminating` or a `metadata.deletionTimestamp`), with the requested region in its
    /// target, the namespace's `creationTimestamp` and, as raw state, its pod's
    /// `Status.Display` (the namespace's phase when it holds no pod).
    async fn list_managed(&self, region: &str) -> Result<Vec<ManagedResource>, DriverError> {
        let list: ItemList<Namespace> = self
            .json(
                self.request(Method::GET, &["api", "v1", "namespaces"], &[]),
                "list namespaces",
            )
            .await?;
        let mut ours: Vec<(VmId, String, Namespace)> = list
            .items
            .unwrap_or_default()
            .into_iter()
            .filter(|ns| !ns.is_terminating())
            .filter_map(|ns| {
                let name = ns.metadata.as_ref()?.name.clone()?;
                Some((Self::vm_of_namespace(&name)?, name, ns))
            })
            .collect();
        if ours.is_empty() {
            return Ok(Vec::new());
        }
        ours.sort_by(|a, b| a.1.cmp(&b.1));
        let pods = self.list_pods().await?;
        Ok(ours
            .into_iter()
            .map(|(vm_id, name, ns)| {
                let display = pods
                    .iter()
                    .find(|p| p.namespace.as_deref() == Some(name.as_str()))
                    .and_then(|p| p.status.as_ref()?.display.clone())
                    .filter(|d| !d.trim().is_empty());
                let phase = ns.status.as_ref().and_then(|s| s.phase.clone());
                let created_at = ns
                    .metadata
                    .as_ref()
                    .and_then(|m| m.creation_timestamp.as_deref())
                    .and_then(|t| Timestamp::parse(t.trim()).ok());
                ManagedResource {
                    kind: ManagedKind::Vm,
                    target: CloudTarget {
                        vm_id,
                        region: region.to_string(),
                        provider_id: Some(name),
                    },
                    created_at,
                    raw_state: display.or(phase).unwrap_or_default().trim().to_string(),
                    deployment: ns
                        .metadata
                        .as_ref()
                        .and_then(|m| m.labels.as_ref()?.get(DeploymentId::TAG).cloned()),
                }
            })
            .collect())
    }

    /// Labels the VM's namespace with this deployment (`PATCH /api/v1/namespaces/{ns}`, a JSON
    /// merge patch of `metadata.labels`).
    async fn adopt(&self, resource: &ManagedResource) -> Result<(), DriverError> {
        let ns = Self::namespace_of(resource.target.vm_id);
        let body = serde_json::json!({
            "metadata": { "labels": {
                MANAGED_BY.0: MANAGED_BY.1,
                DeploymentId::TAG: self.deployment.as_str(),
            } }
        });
        let req = self
            .request(Method::PATCH, &["api", "v1", "namespaces", &ns], &[])
            .header(CONTENT_TYPE, "application/merge-patch+json")
            .body(body.to_string());
        self.call(req, "patch namespace labels").await?;
        Ok(())
    }
}
