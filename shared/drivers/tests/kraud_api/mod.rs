//! A Kraud.Cloud API test server (axum on 127.0.0.1:0) shaped after the vendor's OpenAPI file
//! (`kraudcloud/cli` `api/openapi.yaml`) and the reference notes: bearer authentication with
//! `{"message"}` errors, the k8s-shaped namespace create/list/delete (`k8s.NamespaceList` with
//! `metadata.creationTimestamp` and `status.phase`), the compose launch
//! (multipart/form-data, parsed and checked here), the native pod and deployment lists, the
//! deployment restart, the Docker Engine container start/stop/restart, and the k8s-shaped pod
//! patch (`PATCH /api/v1/namespaces/{ns}/pods/{pod}`, JSON merge patch) as far as it sets or
//! removes the `kr.network.policy` label that opens the pod's address (the launch label sets
//! it first).
//!
//! Every exchange is checked against Kraud.Cloud's API description
//! (`tests/specs/kraud/openapi.yaml`, see `spec_check`): a request the document does not allow,
//! or an answer it does not allow, fails the test when the server is dropped.
//!
//! Pods move on each time their status is read: a launched pod shows `Creating...` once, then
//! `Starting...` for `boot_polls` reads, then `Running` with its overlay addresses; a stop shows
//! `Stopping...` for `stop_polls` reads, then `Stopped`. Faults (any status, with a message and
//! `Retry-After`) can be injected per method and path prefix.

#![allow(dead_code)]

mod compose;
mod controls;
mod deployments;
mod gate;
mod launch;
mod namespaces;
mod pods;
mod state;

use std::sync::{Arc, Mutex};

use axum::routing::{delete, get, patch, post};
use axum::{middleware, Router};

use crate::spec_check;
use deployments::{container_op, list_deployments, restart_deployment};
use gate::{gate, not_found};
use launch::launch;
use namespaces::{create_namespace, delete_namespace, list_namespaces, patch_namespace};
use pods::{inspect_pod, list_pods, patch_pod};
use state::{Inner, Shared};

// What the includers name (not each uses every one).
#[allow(unused_imports)]
pub use state::{Launch, Options, Patch};

/// A running test server.
pub struct KraudApi {
    /// `http://127.0.0.1:{port}`.
    pub base_url: String,
    inner: Shared,
    task: tokio::task::JoinHandle<()>,
    violations: spec_check::Violations,
}

impl Drop for KraudApi {
    fn drop(&mut self) {
        self.task.abort();
        self.violations.assert_none();
    }
}

impl KraudApi {
    /// Starts a server with `opts`.
    pub async fn start(opts: Options) -> KraudApi {
        spec_check::ensure();
        let violations = spec_check::Violations::default();
        let spec = spec_check::Context {
            api: "kraud",
            violations: violations.clone(),
            skip: |_| false,
        };
        let inner: Shared = Arc::new(Mutex::new(Inner {
            opts,
            ..Inner::default()
        }));
        let app = Router::new()
            .route(
                "/api/v1/namespaces",
                post(create_namespace).get(list_namespaces),
            )
            .route(
                "/api/v1/namespaces/{name}",
                delete(delete_namespace).patch(patch_namespace),
            )
            .route(
                "/api/v1/namespaces/{namespace}/pods/{pod}",
                patch(patch_pod),
            )
            .route("/apis/kraudcloud.com/v1/launch", post(launch))
            .route("/apis/kraudcloud.com/v1/pods", get(list_pods))
            .route("/apis/kraudcloud.com/v1/pods/{q}", get(inspect_pod))
            .route("/apis/kraudcloud.com/v1/deployments", get(list_deployments))
            .route(
                "/apis/kr/v1/deployments/by-id/{id}/restart",
                post(restart_deployment),
            )
            .route("/v1.41/containers/{id}/{op}", post(container_op))
            .fallback(not_found)
            .layer(middleware::from_fn_with_state(inner.clone(), gate))
            .layer(middleware::from_fn_with_state(spec, spec_check::layer))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        KraudApi {
            base_url: format!("http://{addr}"),
            inner,
            task,
            violations,
        }
    }

    /// What the API description check saw: the operations checked, and violations so far.
    pub fn spec(&self) -> &spec_check::Violations {
        &self.violations
    }
}
