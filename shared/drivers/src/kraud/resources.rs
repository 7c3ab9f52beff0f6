//! Kraud resources: namespaces, pods, deployments, the pod label that opens its address, the
//! launch, and Docker container operations.

use std::time::{Duration, Instant};

use reqwest::header::CONTENT_TYPE;
use reqwest::{Method, StatusCode};
use vmapi_core::cloud::{CloudTarget, DriverError};
use vmapi_models::{DeploymentId, VmId};

use super::config::{DOCKER_API, MANAGED_BY};
use super::driver::KraudDriver;
use super::errors::{error_from_response, transport_error, truncate};
use super::launch::{LaunchFiles, NETWORK_POLICY};
use super::wire::{Deployment, ItemList, LaunchAnswer, Pod};

impl KraudDriver {
    /// Creates the namespace; one that exists already is fine. The body is a whole
    /// `k8s.Namespace`: the API description requires `spec` and `status` (with `phase`) in the
    /// create body too, so both are sent with the values of a new namespace.
    pub(super) async fn ensure_namespace(&self, ns: &str) -> Result<(), DriverError> {
        let body = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": ns,
                "labels": {
                    MANAGED_BY.0: MANAGED_BY.1,
                    DeploymentId::TAG: self.deployment.as_str(),
                },
            },
            "spec": {},
            "status": { "phase": "Active" },
        });
        let req = self
            .request(Method::POST, &["api", "v1", "namespaces"], &[])
            .json(&body);
        match self.call(req, "create namespace").await {
            Ok(_) => Ok(()),
            Err(DriverError::Conflict(_)) => Ok(()),
            Err(DriverError::InvalidSpec(m) | DriverError::Provider { message: m, .. })
                if m.to_ascii_lowercase().contains("already exists") =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// The VM id of one of our namespaces: `vm-{vmId}` exactly as [`Self::namespace_of`] writes it.
    pub(super) fn vm_of_namespace(ns: &str) -> Option<VmId> {
        let vm = VmId::parse(ns.strip_prefix("vm-")?).ok()?;
        (Self::namespace_of(vm) == ns).then_some(vm)
    }

    /// Every pod (with its status), sorted by name.
    pub(super) async fn list_pods(&self) -> Result<Vec<Pod>, DriverError> {
        let list: ItemList<Pod> = self
            .json(
                self.request(
                    Method::GET,
                    &["apis", "kraudcloud.com", "v1", "pods"],
                    &[("status", "true")],
                ),
                "list pods",
            )
            .await?;
        let mut pods = list.items.unwrap_or_default();
        pods.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(pods)
    }

    /// The pod of a namespace (with its status), if there is one.
    pub(super) async fn find_pod(&self, ns: &str) -> Result<Option<Pod>, DriverError> {
        Ok(self
            .list_pods()
            .await?
            .into_iter()
            .find(|p| p.namespace.as_deref() == Some(ns)))
    }

    /// The deployment of a namespace, if there is one.
    pub(super) async fn find_deployment(
        &self,
        ns: &str,
    ) -> Result<Option<Deployment>, DriverError> {
        let list: ItemList<Deployment> = self
            .json(
                self.request(
                    Method::GET,
                    &["apis", "kraudcloud.com", "v1", "deployments"],
                    &[],
                ),
                "list deployments",
            )
            .await?;
        Ok(list
            .items
            .unwrap_or_default()
            .into_iter()
            .find(|d| d.namespace.as_deref() == Some(ns)))
    }

    /// Sets (`open`) or removes the pod's `kr.network.policy=open` label through the k8s-shaped
    /// pod patch (a JSON merge patch of `metadata.labels`).
    pub(super) async fn set_address_open(
        &self,
        ns: &str,
        pod: &Pod,
        open: bool,
    ) -> Result<(), DriverError> {
        let name = pod
            .name
            .as_deref()
            .filter(|n| !n.is_empty())
            .ok_or_else(|| DriverError::Provider {
                code: "invalid_response".into(),
                message: format!("the pod of namespace {ns} has no name"),
            })?;
        let body = serde_json::json!({
            "metadata": { "labels": { NETWORK_POLICY: if open { serde_json::json!("open") } else { serde_json::Value::Null } } }
        });
        let req = self
            .request(
                Method::PATCH,
                &["api", "v1", "namespaces", ns, "pods", name],
                &[],
            )
            .header(CONTENT_TYPE, "application/merge-patch+json")
            .body(body.to_string());
        self.call(req, "patch pod labels").await?;
        tracing::info!(namespace = %ns, open, "kraud pod address firewall set");
        Ok(())
    }

    pub(super) async fn require_pod(
        &self,
        target: &CloudTarget,
    ) -> Result<(String, Pod), DriverError> {
        let ns = Self::namespace_of(target.vm_id);
        match self.find_pod(&ns).await? {
            Some(pod) => Ok((ns, pod)),
            None => Err(DriverError::NotFound(format!("no pod in namespace {ns}"))),
        }
    }

    /// Launches the compose template into the namespace; returns the launch id.
    pub(super) async fn launch(
        &self,
        ns: &str,
        files: &LaunchFiles,
    ) -> Result<String, DriverError> {
        let (content_type, body) = files.multipart();
        let req = self
            .request(
                Method::POST,
                &["apis", "kraudcloud.com", "v1", "launch"],
                &[("namespace", ns)],
            )
            .header(CONTENT_TYPE, content_type)
            .body(body);
        let resp = self.call(req, "launch").await?;
        let is_json = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("json"));
        let text = resp
            .text()
            .await
            .map_err(|e| transport_error("launch", e))?;
        let launch_failed = |message: &str| DriverError::Provider {
            code: "launch_failed".into(),
            message: truncate(message.trim()),
        };
        if is_json {
            let answer: LaunchAnswer =
                serde_json::from_str(&text).map_err(|e| DriverError::Provider {
                    code: "invalid_response".into(),
                    message: format!("launch: unexpected answer: {e}"),
                })?;
            if let Some(error) = answer.error.filter(|e| !e.trim().is_empty()) {
                return Err(launch_failed(&error));
            }
            return Ok(answer.launch_id.unwrap_or_default());
        }
        // A streamed text log (older API): a line with `Error: ` is a failure.
        if let Some(line) = text.lines().find(|l| l.contains("Error: ")) {
            let message = &line[line.find("Error: ").unwrap_or(0) + "Error: ".len()..];
            return Err(launch_failed(message));
        }
        Ok(String::new())
    }

    pub(super) async fn docker_container_op(
        &self,
        pod: &Pod,
        op: &str,
        query: &[(&str, &str)],
        timeout: Duration,
    ) -> Result<(), DriverError> {
        let id = pod.container_id().ok_or_else(|| DriverError::Provider {
            code: "invalid_response".into(),
            message: "the pod has neither AID nor ID".into(),
        })?;
        let req = self
            .request(Method::POST, &[DOCKER_API, "containers", id, op], query)
            .timeout(timeout);
        let what = format!("container {op}");
        let resp = self.send(req, &what).await?;
        // 304: already started / already stopped.
        if resp.status().is_success() || resp.status() == StatusCode::NOT_MODIFIED {
            Ok(())
        } else {
            Err(error_from_response(&what, resp).await)
        }
    }

    pub(super) async fn wait_for_pod(&self, ns: &str) -> Result<Option<Pod>, DriverError> {
        let deadline = Instant::now() + self.launch_wait;
        loop {
            if let Some(pod) = self.find_pod(ns).await? {
                return Ok(Some(pod));
            }
            if Instant::now() + self.launch_poll > deadline {
                return Ok(None);
            }
            tokio::time::sleep(self.launch_poll).await;
        }
    }
}
