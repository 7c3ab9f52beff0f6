//! What the server keeps: its options, namespaces, pods and deployments, the launches and
//! patches it accepted, injected faults, and the requests it saw.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::http::Method;
use serde_json::Value;

/// How the server behaves.
#[derive(Clone, Debug)]
pub struct Options {
    /// The only bearer token accepted.
    pub token: String,
    /// Status reads a pod shows `Starting...` for, after a launch, start or restart.
    pub boot_polls: u32,
    /// Status reads a pod shows `Stopping...` for after a stop.
    pub stop_polls: u32,
    /// Pod-list reads during which a freshly launched pod is not listed yet.
    pub appear_after: u32,
    /// Whether the `kr.res.snp` label is honoured (else the pod runs without SNP).
    pub honor_snp: bool,
    /// Makes every launch fail with this status and message.
    pub launch_error: Option<(u16, String)>,
    /// Answers launches with this streamed text log (the older, non-JSON answer) instead of
    /// `{"launch_id"}`; a log with an `Error: ` line launches nothing.
    pub launch_text: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            token: "test-token-kraud".into(),
            boot_polls: 2,
            stop_polls: 1,
            appear_after: 0,
            honor_snp: true,
            launch_error: None,
            launch_text: None,
        }
    }
}

/// One accepted launch, as received.
#[derive(Clone, Debug)]
pub struct Launch {
    /// `?namespace=`.
    pub namespace: String,
    /// The `docker-compose.yml` field, verbatim.
    pub compose: String,
    /// The `.env` field, verbatim.
    pub env: String,
    /// The service's labels after `.env` substitution.
    pub labels: Vec<String>,
    /// The service's image.
    pub image: String,
    /// The root volume's size after substitution.
    pub volume_size: String,
    /// The service's entrypoint list, unquoted.
    pub entrypoint: Vec<String>,
    /// The request's `Accept` header.
    pub accept: String,
}

#[derive(Clone, Debug, PartialEq)]
pub(super) enum Phase {
    Creating,
    Starting(u32),
    Running,
    Stopping(u32),
    Stopped,
    Fixed(String, bool),
}

#[derive(Clone, Debug)]
pub(super) struct SimPod {
    pub(super) id: String,
    pub(super) aid: String,
    pub(super) namespace: String,
    pub(super) mem: String,
    pub(super) zone: String,
    pub(super) image: String,
    pub(super) res: BTreeMap<String, String>,
    pub(super) phase: Phase,
    pub(super) hidden_reads: u32,
    pub(super) number: u32,
    /// Whether the address is open (`kr.network.policy=open`).
    pub(super) open: bool,
}

#[derive(Clone, Debug)]
pub(super) struct SimNamespace {
    pub(super) name: String,
    pub(super) number: u32,
    pub(super) created: String,
    /// Set once a deletion has begun (`deletionTimestamp`, phase `Terminating`).
    pub(super) deleting: Option<String>,
    /// `metadata.labels`.
    pub(super) labels: serde_json::Map<String, Value>,
}

#[derive(Clone, Debug)]
pub(super) struct SimDeployment {
    pub(super) id: String,
    pub(super) aid: String,
    pub(super) namespace: String,
    pub(super) pod_aid: String,
}

#[derive(Clone, Debug)]
pub(super) struct Fault {
    pub(super) method: Method,
    pub(super) path_prefix: String,
    pub(super) status: u16,
    pub(super) message: String,
    pub(super) retry_after: Option<u64>,
    pub(super) remaining: u32,
}

#[derive(Default)]
pub(super) struct Inner {
    pub(super) opts: Options,
    pub(super) namespaces: Vec<SimNamespace>,
    pub(super) namespace_counter: u32,
    pub(super) pods: Vec<SimPod>,
    pub(super) deployments: Vec<SimDeployment>,
    pub(super) launches: Vec<Launch>,
    pub(super) faults: Vec<Fault>,
    pub(super) requests: Vec<String>,
    pub(super) authorizations: Vec<String>,
    pub(super) counter: u32,
    pub(super) patches: Vec<Patch>,
}

/// One accepted pod patch.
#[derive(Clone, Debug)]
pub struct Patch {
    /// Namespace of the path.
    pub namespace: String,
    /// Pod name of the path.
    pub pod: String,
    /// `Content-Type` sent.
    pub content_type: String,
    /// The body.
    pub body: Value,
}

pub(super) type Shared = Arc<Mutex<Inner>>;
