//! What a test reads back (launches, requests, namespaces, patches) and sets (namespaces and
//! pods made by someone else, display states, options, injected faults).

use std::collections::BTreeMap;

use axum::http::Method;
use serde_json::{json, Value};

use super::namespaces::new_namespace;
use super::state::{Fault, Launch, Options, Patch, Phase, SimDeployment, SimPod};
use super::KraudApi;

impl KraudApi {
    /// The accepted token.
    pub fn token(&self) -> String {
        self.inner.lock().unwrap().opts.token.clone()
    }

    /// Launches received so far.
    pub fn launches(&self) -> Vec<Launch> {
        self.inner.lock().unwrap().launches.clone()
    }

    /// Requests received so far, as `METHOD /path?query` (authorized or not).
    pub fn requests(&self) -> Vec<String> {
        self.inner.lock().unwrap().requests.clone()
    }

    /// `Authorization` headers received so far.
    pub fn authorizations(&self) -> Vec<String> {
        self.inner.lock().unwrap().authorizations.clone()
    }

    /// Namespaces that exist.
    pub fn namespaces(&self) -> Vec<String> {
        self.inner
            .lock()
            .unwrap()
            .namespaces
            .iter()
            .map(|n| n.name.clone())
            .collect()
    }

    /// Adds a namespace as if someone else had created it (no pod).
    pub fn add_namespace(&self, name: &str) {
        self.add_namespace_labelled(name, &[]);
    }

    /// Adds a namespace with `labels`, as if someone else had created it (no pod).
    pub fn add_namespace_labelled(&self, name: &str, labels: &[(&str, &str)]) {
        let mut st = self.inner.lock().unwrap();
        let mut ns = new_namespace(&mut st, name);
        for (k, v) in labels {
            ns.labels.insert(k.to_string(), json!(v));
        }
        st.namespaces.push(ns);
    }

    /// The labels of a namespace.
    pub fn namespace_labels(&self, name: &str) -> Option<serde_json::Map<String, Value>> {
        let st = self.inner.lock().unwrap();
        st.namespaces
            .iter()
            .find(|n| n.name == name)
            .map(|n| n.labels.clone())
    }

    /// Adds a running pod (and its deployment) to an existing namespace, as if someone else
    /// had launched it.
    pub fn add_pod(&self, namespace: &str) {
        let mut st = self.inner.lock().unwrap();
        assert!(st.namespaces.iter().any(|n| n.name == namespace));
        st.counter += 1;
        let n = st.counter;
        let pod_aid = format!("p{n:05}");
        st.pods.push(SimPod {
            id: format!("00000000-0000-4000-8000-{n:012}"),
            aid: pod_aid.clone(),
            namespace: namespace.into(),
            mem: "2G".into(),
            zone: "uca".into(),
            image: "nginx/nginx:latest".into(),
            res: BTreeMap::new(),
            phase: Phase::Running,
            hidden_reads: 0,
            number: n,
            open: true,
        });
        st.deployments.push(SimDeployment {
            id: format!("10000000-0000-4000-8000-{n:012}"),
            aid: format!("d{n:05}"),
            namespace: namespace.into(),
            pod_aid,
        });
    }

    /// Starts the deletion of a namespace without finishing it: it stays listed with
    /// `metadata.deletionTimestamp` and phase `Terminating`.
    pub fn set_terminating(&self, namespace: &str) {
        let mut st = self.inner.lock().unwrap();
        for ns in st.namespaces.iter_mut().filter(|n| n.name == namespace) {
            ns.deleting = Some("2025-01-02T00:00:00Z".into());
        }
    }

    /// Whether the address of the pod in `namespace` is open (`None`: no pod).
    pub fn address_open(&self, namespace: &str) -> Option<bool> {
        let st = self.inner.lock().unwrap();
        st.pods
            .iter()
            .find(|p| p.namespace == namespace)
            .map(|p| p.open)
    }

    /// Pod patches accepted so far.
    pub fn patches(&self) -> Vec<Patch> {
        self.inner.lock().unwrap().patches.clone()
    }

    /// Number of pods that exist.
    pub fn pod_count(&self) -> usize {
        self.inner.lock().unwrap().pods.len()
    }

    /// Changes the options (e.g. `honor_snp`, `launch_error`) for later requests.
    pub fn set_options(&self, change: impl FnOnce(&mut Options)) {
        change(&mut self.inner.lock().unwrap().opts);
    }

    /// Makes the pod of `namespace` show `display` (with `healthy`) from now on.
    pub fn set_display(&self, namespace: &str, display: &str, healthy: bool) {
        let mut s = self.inner.lock().unwrap();
        for pod in s.pods.iter_mut().filter(|p| p.namespace == namespace) {
            pod.phase = Phase::Fixed(display.into(), healthy);
        }
    }

    /// Forgets the deployments of `namespace` (its pods stay), as if the API did not list them.
    pub fn forget_deployments(&self, namespace: &str) {
        self.inner
            .lock()
            .unwrap()
            .deployments
            .retain(|d| d.namespace != namespace);
    }

    /// Makes already launched pods visible in the list right away.
    pub fn reveal_pods(&self) {
        for pod in self.inner.lock().unwrap().pods.iter_mut() {
            pod.hidden_reads = 0;
        }
    }

    /// Answers the next `times` requests whose method is `method` and whose path starts with
    /// `path_prefix` with `status` and `{"message": message}` (and `Retry-After` if given).
    pub fn inject(
        &self,
        method: Method,
        path_prefix: &str,
        status: u16,
        message: &str,
        retry_after: Option<u64>,
        times: u32,
    ) {
        self.inner.lock().unwrap().faults.push(Fault {
            method,
            path_prefix: path_prefix.into(),
            status,
            message: message.into(),
            retry_after,
            remaining: times,
        });
    }
}
