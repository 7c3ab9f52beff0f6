//! An Azure Resource Manager test server (axum, 127.0.0.1:0) reproducing the documented
//! behaviour the driver relies on:
//!
//! * Entra ID client-credentials token endpoint (`POST /login/{tenant}/oauth2/v2.0/token`),
//!   checking the form fields; bearer tokens checked on every management call (401
//!   `ExpiredAuthenticationToken` once expired).
//! * `Microsoft.Compute/virtualMachines`: `PUT` (201 + `Azure-AsyncOperation` + `Retry-After`,
//!   200 for an update of an existing VM), `GET` with `$expand=instanceView` (statuses
//!   `ProvisioningState/*` and `PowerState/*`; 404 `ResourceNotFound`), `POST`
//!   `start|deallocate|restart|powerOff` (202 + `Location` polled until 200, or
//!   `Azure-AsyncOperation`), `DELETE` (202 + `Location`, then 404; 204 for an absent VM).
//! * VM list of the resource group (`GET .../virtualMachines`): `{"value": [...], "nextLink"}`
//!   pages of a configurable size, `nextLink` carrying the api-version and an opaque
//!   `$skiptoken`; `$expand=instanceView` only with a `$filter` (400 otherwise), as documented.
//!   VMs carry `properties.timeCreated`; VMs the service did not create can be added directly.
//! * The NIC and public IP a VM declares inline appear as `Microsoft.Network` resources when
//!   the create completes and go with the VM when their `deleteOption` is `Delete`; their bodies
//!   are the documents' own examples with this VM's names and addresses (`examples`).
//! * Virtual networks and network security groups (`GET`/`PUT`; NSGs also `DELETE`, and the
//!   resource group's list, paged like the VM list).
//! * Operation status monitors report `InProgress` a configurable number of times, then
//!   `Succeeded` or `Failed` with `error{code,message}`. Each `GET` of the VM also advances its
//!   pending operation (time passing).
//! * Error injection (409, 429 with `Retry-After`, 400, 403, 5xx …) by method and path.
//! * ARM validation: api-versions, SSH key path, adminPassword when password login is on,
//!   subnet references, ConfidentialVM settings; `adminPassword` is never returned.
//! * Every exchange is checked against the vendored Microsoft.Compute and Microsoft.Network
//!   documents (`tests/specs/azure/openapi/`, see `spec_check`); the token endpoint and the
//!   operation monitors, which no document describes, against Microsoft's documented shapes in
//!   code (`shapes`). A violation fails the test when the server is dropped.

#![allow(dead_code)]

mod controls;
mod examples;
mod ids;
mod lifecycle;
mod network;
mod operations;
mod reply;
mod resize;
mod router;
pub mod shapes;
mod state;
mod token;
mod validate;
mod vms;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::middleware;
use axum::Router;
use serde_json::json;
use vmapi_drivers::azure::{AzureConfig, RegionNetwork};
use vmapi_models::Sensitive;

use crate::spec_check;
use state::{Inner, Shared};

// What the includers name (not each uses every one).
#[allow(unused_imports)]
pub use ids::{
    CLIENT_ID, CLIENT_SECRET, COMPUTE, NETWORK, RESOURCES, RESOURCE_GROUP, SHARED_VNET,
    SUBSCRIPTION, TENANT,
};
#[allow(unused_imports)]
pub use state::{ActionStyle, Recorded};

/// An ARM error to inject.
pub struct Fault {
    status: u16,
    code: String,
    message: String,
    retry_after: Option<u64>,
    times: u32,
}

impl Fault {
    /// `status` with `{"error":{"code","message"}}`, once.
    pub fn new(status: u16, code: &str, message: &str) -> Fault {
        Fault {
            status,
            code: code.into(),
            message: message.into(),
            retry_after: None,
            times: 1,
        }
    }

    /// Adds `Retry-After: seconds`.
    pub fn retry_after(mut self, seconds: u64) -> Fault {
        self.retry_after = Some(seconds);
        self
    }
}

/// The running server.
pub struct ArmServer {
    pub addr: SocketAddr,
    state: Shared,
    violations: spec_check::Violations,
}

impl Drop for ArmServer {
    fn drop(&mut self) {
        self.violations.assert_none();
    }
}

impl ArmServer {
    /// Starts the server on a free local port.
    pub async fn start() -> ArmServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let base = format!("http://{addr}");
        let mut vnets = BTreeMap::new();
        vnets.insert(
            SHARED_VNET.to_string(),
            json!({
                "name": SHARED_VNET,
                "location": "westeurope",
                "properties": {
                    "provisioningState": "Succeeded",
                    "addressSpace": { "addressPrefixes": ["10.0.0.0/16"] },
                    "subnets": [{ "name": "default", "properties": { "addressPrefix": "10.0.0.0/24" } }]
                }
            }),
        );
        let state = Arc::new(Mutex::new(Inner {
            base,
            token_expires_in: 3599,
            token_requests: 0,
            token_forms: Vec::new(),
            valid_tokens: HashSet::new(),
            issued_tokens: Vec::new(),
            vms: BTreeMap::new(),
            nics: BTreeMap::new(),
            pips: BTreeMap::new(),
            disks: BTreeMap::new(),
            vnets,
            nsgs: BTreeMap::new(),
            ops: HashMap::new(),
            counter: 0,
            vm_counter: 0,
            vm_puts: 0,
            list_page_size: 50,
            op_polls: 1,
            retry_after: Some(0),
            action_style: ActionStyle::Location,
            fail_next_create: None,
            fail_next_action: None,
            drop_security_profile: false,
            secondary_ip_config_first: false,
            operation_base_override: None,
            injections: Vec::new(),
            requests: Vec::new(),
        }));
        spec_check::ensure();
        let violations = spec_check::Violations::default();
        let spec = spec_check::Context {
            api: "azure",
            violations: violations.clone(),
            skip: shapes::skip,
        };
        let app = Router::new()
            .fallback(router::handle)
            .with_state(state.clone())
            .layer(middleware::from_fn_with_state(
                violations.clone(),
                shapes::layer,
            ))
            .layer(middleware::from_fn_with_state(spec, spec_check::layer));
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        ArmServer {
            addr,
            state,
            violations,
        }
    }

    /// What the API description check saw: the operations checked, and violations so far.
    pub fn spec(&self) -> &spec_check::Violations {
        &self.violations
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.state.lock().unwrap()
    }

    /// Management base URL.
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// ARM id of the resource group.
    pub fn group_id(&self) -> String {
        format!("/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}")
    }

    /// ARM id of the pre-existing `westeurope` subnet.
    pub fn shared_subnet_id(&self) -> String {
        format!(
            "{}/providers/Microsoft.Network/virtualNetworks/{SHARED_VNET}/subnets/default",
            self.group_id()
        )
    }

    /// A driver configuration against this server: `westeurope` uses the existing subnet, other
    /// regions get managed networks; create returns as soon as the PUT is accepted.
    pub fn config(&self) -> AzureConfig {
        let mut config = AzureConfig::new(
            TENANT,
            CLIENT_ID,
            Sensitive::new(CLIENT_SECRET.into()),
            SUBSCRIPTION,
            RESOURCE_GROUP,
        );
        config.login_base = format!("{}/login", self.base());
        config.management_base = self.base();
        config.networks.insert(
            "westeurope".into(),
            RegionNetwork {
                subnet_id: self.shared_subnet_id(),
                network_security_group_id: None,
            },
        );
        config.request_timeout = Duration::from_secs(5);
        config.create_wait = Duration::ZERO;
        config.operation_timeout = Duration::from_secs(5);
        config
    }
}
