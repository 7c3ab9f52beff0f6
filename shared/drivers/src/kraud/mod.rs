//! Kraud.Cloud driver over its REST API (reqwest, rustls).
//!
//! Kraud.Cloud has no "VM" resource: a VM is a *PVM*, a pod (micro-VM) running a full-OS image
//! with systemd as init. Each of our VMs gets its own namespace, `vm-{vmId}`, so that one
//! recursive namespace delete removes everything the VM had. The driver:
//!
//! * creates the namespace (`POST /api/v1/namespaces`; "already exists" is fine), then — unless
//!   the namespace already holds a pod or a deployment (check-then-launch: the cloud has no
//!   idempotency key) — launches a docker-compose template into it
//!   (`POST /apis/kraudcloud.com/v1/launch?namespace=…`, multipart/form-data);
//! * reads the VM back from the pod list (`GET /apis/kraudcloud.com/v1/pods?status=true`), maps
//!   the first word of `Status.Display` to [`CloudState`], takes addresses from `Overlays[]` and
//!   the confidential technology from the pod's `Res` as reported (never from what was asked);
//! * starts and stops the pod through Kraud's Docker Engine API (`/v1.41/containers/{id}/…`),
//!   restarts its deployment (`/apis/kr/v1/deployments/by-id/{id}/restart`), and deletes the
//!   namespace recursively;
//! * lists the service's VMs as the namespaces named `vm-{vmId}` (`GET /api/v1/namespaces`),
//!   leaving out those being deleted;
//! * has no port filter: a pod's public address is firewalled unless the pod carries the label
//!   `kr.network.policy=open`. The security rules open it (an inbound allow rule and no deny
//!   rule) or close it: as a launch label at create, and later through the k8s-shaped pod patch
//!   (`PATCH /api/v1/namespaces/{ns}/pods/{pod}`, the label set or removed).
//!
//! The login (public keys, a SHA-512 crypt password hash; never a plaintext password) is
//! installed on first boot by a small shell entrypoint in the compose that then `exec`s
//! `/sbin/init`. Everything here that the vendor does not document is listed in
//! `docs/providers.md`.
//!
//! Files by concern: `config` (configuration, limits), `driver` (the driver, its requests),
//! `resources` (namespaces, pods, deployments, the launch call, container operations), `wire`
//! (the answers' types), `view` (a pod as a VM), `errors` (error mapping), `launch` (compose
//! template and login script), and `cloud`, the [`CloudDriver`](vmapi_core::cloud::CloudDriver)
//! implementation that joins them.

mod cloud;
mod config;
mod driver;
mod errors;
mod launch;
mod resources;
mod view;
mod wire;

pub use config::{KraudConfig, DEFAULT_BASE_URL, DEFAULT_ZONE, KNOWN_ZONES, MANAGED_BY};
pub use driver::KraudDriver;
pub use launch::{address_open, zone_of, NETWORK_POLICY};
pub use view::state_of;

#[cfg(test)]
mod tests;
