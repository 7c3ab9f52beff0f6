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

mod examples;
pub mod shapes;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::{json, Value};
use vmapi_drivers::azure::{AzureConfig, RegionNetwork};
use vmapi_models::Sensitive;

use crate::spec_check;

pub const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
pub const CLIENT_ID: &str = "5a1c3f0e-7d2b-4c6a-9e8f-0123456789ab";
pub const CLIENT_SECRET: &str = "Q~client-secret-value-7Zx";
pub const SUBSCRIPTION: &str = "00000000-1111-2222-3333-444444444444";
pub const RESOURCE_GROUP: &str = "vm-api-test";
pub const COMPUTE: &str = "2024-03-01";
pub const NETWORK: &str = "2024-05-01";
pub const RESOURCES: &str = "2021-04-01";
/// The pre-existing network of region `westeurope`.
pub const SHARED_VNET: &str = "shared-westeurope";

/// One request the server saw.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: String,
    pub body: String,
    pub authorization: Option<String>,
    pub status: u16,
}

/// How POST actions report their operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActionStyle {
    Location,
    AsyncOperation,
}

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

struct Injection {
    method: Method,
    path_contains: String,
    status: u16,
    code: String,
    message: String,
    retry_after: Option<u64>,
    remaining: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OpKind {
    Create,
    Start,
    Deallocate,
    PowerOff,
    Restart,
    Delete,
    Network,
}

struct Op {
    kind: OpKind,
    /// Lower-case VM name (empty for network operations).
    vm: String,
    remaining: u32,
    failure: Option<(String, String)>,
    /// `None` while running.
    result: Option<Result<(), (String, String)>>,
    /// Power state to restore when the operation fails.
    previous_power: Option<String>,
}

struct Vm {
    name: String,
    model: Value,
    provisioning: String,
    failure: Option<(String, String)>,
    power: Option<String>,
    pending: Option<String>,
    nic: Option<String>,
    number: u32,
    /// `properties.timeCreated`.
    created: String,
}

struct Resource {
    body: Value,
    delete_with_vm: bool,
}

struct Inner {
    base: String,
    // tokens
    token_expires_in: u64,
    token_requests: u32,
    token_forms: Vec<BTreeMap<String, String>>,
    valid_tokens: HashSet<String>,
    issued_tokens: Vec<String>,
    // compute and network
    vms: BTreeMap<String, Vm>,
    nics: BTreeMap<String, Resource>,
    pips: BTreeMap<String, Resource>,
    disks: BTreeMap<String, Resource>,
    vnets: BTreeMap<String, Value>,
    nsgs: BTreeMap<String, Value>,
    ops: HashMap<String, Op>,
    counter: u32,
    vm_counter: u32,
    vm_puts: u32,
    // behaviour
    list_page_size: usize,
    op_polls: u32,
    retry_after: Option<u64>,
    action_style: ActionStyle,
    fail_next_create: Option<(String, String)>,
    fail_next_action: Option<(String, String)>,
    drop_security_profile: bool,
    secondary_ip_config_first: bool,
    operation_base_override: Option<String>,
    injections: Vec<Injection>,
    requests: Vec<Recorded>,
}

type Shared = Arc<Mutex<Inner>>;

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
            .fallback(handle)
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

    // ----- behaviour -----

    /// How many times an operation answers InProgress (or 202) before it ends.
    pub fn set_op_polls(&self, polls: u32) {
        self.inner().op_polls = polls;
    }

    /// `Retry-After` on accepted and running operations (`None`: no header).
    pub fn set_retry_after(&self, seconds: Option<u64>) {
        self.inner().retry_after = seconds;
    }

    /// `expires_in` of new tokens.
    pub fn set_token_expires_in(&self, seconds: u64) {
        self.inner().token_expires_in = seconds;
    }

    /// Invalidates every token issued so far (ARM answers 401 ExpiredAuthenticationToken).
    pub fn expire_tokens(&self) {
        self.inner().valid_tokens.clear();
    }

    /// The next VM create operation fails with this ARM error.
    pub fn fail_next_create(&self, code: &str, message: &str) {
        self.inner().fail_next_create = Some((code.into(), message.into()));
    }

    /// The next start/deallocate/restart operation fails with this ARM error.
    pub fn fail_next_action(&self, code: &str, message: &str) {
        self.inner().fail_next_action = Some((code.into(), message.into()));
    }

    /// How POST actions report their operation.
    pub fn set_action_style(&self, style: ActionStyle) {
        self.inner().action_style = style;
    }

    /// Creates VMs without the security profile they ask for.
    pub fn drop_security_profile(&self, drop: bool) {
        self.inner().drop_security_profile = drop;
    }

    /// Lists the NIC example's secondary IP configuration (not primary, a CIDR private
    /// address) before the VM's own in NICs made from now on.
    pub fn set_secondary_ip_config_first(&self, first: bool) {
        self.inner().secondary_ip_config_first = first;
    }

    /// Points operation URLs at another origin.
    pub fn set_operation_base(&self, base: Option<&str>) {
        self.inner().operation_base_override = base.map(str::to_string);
    }

    /// Most VMs on one page of the VM list.
    pub fn set_list_page_size(&self, size: usize) {
        self.inner().list_page_size = size.max(1);
    }

    /// Adds a running VM as if someone else had created it: no operation, no NIC; `tags` as
    /// given (e.g. `{}` for a VM that is not the service's).
    pub fn insert_vm(&self, name: &str, location: &str, tags: Value) {
        let mut inner = self.inner();
        inner.vm_counter += 1;
        let number = inner.vm_counter;
        inner.vms.insert(
            name.to_ascii_lowercase(),
            Vm {
                name: name.to_string(),
                model: json!({
                    "location": location,
                    "tags": tags,
                    "properties": {
                        "hardwareProfile": { "vmSize": "Standard_B1s" },
                        "storageProfile": { "imageReference": {
                            "publisher": "Canonical", "offer": "ubuntu-24_04-lts",
                            "sku": "server", "version": "latest"
                        } },
                        "osProfile": { "computerName": name, "adminUsername": "someone" },
                    }
                }),
                provisioning: "Succeeded".into(),
                failure: None,
                power: Some("running".into()),
                pending: None,
                nic: None,
                number,
                created: time_created(number),
            },
        );
    }

    /// The tags of a VM of this name.
    pub fn vm_tags(&self, name: &str) -> Option<Value> {
        self.inner()
            .vms
            .get(&name.to_ascii_lowercase())
            .map(|vm| vm.model["tags"].clone())
    }

    /// Whether a VM of this name exists (in any state).
    pub fn has_vm(&self, name: &str) -> bool {
        self.inner().vms.contains_key(&name.to_ascii_lowercase())
    }

    /// `properties.provisioningState` of a VM.
    pub fn provisioning_state(&self, name: &str) -> Option<String> {
        self.inner()
            .vms
            .get(&name.to_ascii_lowercase())
            .map(|vm| vm.provisioning.clone())
    }

    /// Answers the next requests with this method whose path contains `path_contains` with
    /// the fault.
    pub fn inject(&self, method: Method, path_contains: &str, fault: Fault) {
        self.inner().injections.push(Injection {
            method,
            path_contains: path_contains.to_string(),
            status: fault.status,
            code: fault.code,
            message: fault.message,
            retry_after: fault.retry_after,
            remaining: fault.times,
        });
    }

    // ----- observations -----

    pub fn token_requests(&self) -> u32 {
        self.inner().token_requests
    }

    pub fn token_forms(&self) -> Vec<BTreeMap<String, String>> {
        self.inner().token_forms.clone()
    }

    pub fn issued_tokens(&self) -> Vec<String> {
        self.inner().issued_tokens.clone()
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.inner().requests.clone()
    }

    pub fn clear_requests(&self) {
        self.inner().requests.clear();
    }

    pub fn vm_count(&self) -> usize {
        self.inner().vms.len()
    }

    pub fn vm_puts(&self) -> u32 {
        self.inner().vm_puts
    }

    /// Names of the NICs, public IPs and disks that exist.
    pub fn leftovers(&self) -> Vec<String> {
        let inner = self.inner();
        inner
            .nics
            .keys()
            .chain(inner.pips.keys())
            .chain(inner.disks.keys())
            .cloned()
            .collect()
    }

    pub fn vnet_names(&self) -> Vec<String> {
        self.inner().vnets.keys().cloned().collect()
    }

    pub fn nsg_names(&self) -> Vec<String> {
        self.inner().nsgs.keys().cloned().collect()
    }

    /// A network security group as stored (its last PUT, with name, id and state).
    pub fn nsg(&self, name: &str) -> Option<Value> {
        self.inner().nsgs.get(name).cloned()
    }

    /// The NSG id on a NIC, if the NIC exists and has one.
    pub fn nic_nsg(&self, nic: &str) -> Option<String> {
        self.inner()
            .nics
            .get(nic)
            .and_then(|n| n.body.pointer("/properties/networkSecurityGroup/id"))
            .and_then(Value::as_str)
            .map(str::to_string)
    }

    /// Bodies of the VM PUTs received, parsed.
    pub fn vm_put_bodies(&self) -> Vec<Value> {
        self.requests()
            .iter()
            .filter(|r| r.method == "PUT" && r.path.contains("/virtualMachines/"))
            .map(|r| serde_json::from_str(&r.body).unwrap())
            .collect()
    }
}

// ----- helpers -----

fn error_body(code: &str, message: &str) -> Value {
    json!({ "error": { "code": code, "message": message } })
}

fn arm_error(status: u16, code: &str, message: &str) -> Response {
    (
        StatusCode::from_u16(status).unwrap(),
        [("content-type", "application/json; charset=utf-8")],
        error_body(code, message).to_string(),
    )
        .into_response()
}

fn json_response(
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Option<Value>,
) -> Response {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        map.insert(name, HeaderValue::from_str(&value).unwrap());
    }
    match body {
        Some(body) => {
            map.insert(
                "content-type",
                HeaderValue::from_static("application/json; charset=utf-8"),
            );
            (StatusCode::from_u16(status).unwrap(), map, body.to_string()).into_response()
        }
        None => (StatusCode::from_u16(status).unwrap(), map).into_response(),
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

fn parse_pairs(s: &str) -> BTreeMap<String, String> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn retry_header(inner: &Inner) -> Vec<(&'static str, String)> {
    inner
        .retry_after
        .map(|s| vec![("retry-after", s.to_string())])
        .unwrap_or_default()
}

fn not_found(kind: &str, name: &str) -> Response {
    arm_error(
        404,
        "ResourceNotFound",
        &format!(
            "The Resource '{kind}/{name}' under resource group '{RESOURCE_GROUP}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix"
        ),
    )
}

fn invalid(target: &str, message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        [("content-type", "application/json; charset=utf-8")],
        json!({ "error": { "code": "InvalidParameter", "message": message, "target": target } })
            .to_string(),
    )
        .into_response()
}

// ----- the handler -----

async fn handle(
    State(state): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    let query = uri.query().unwrap_or("").to_string();
    let body = String::from_utf8_lossy(&body).to_string();
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mut inner = state.lock().unwrap();
    let response = route(
        &mut inner,
        &method,
        &path,
        &query,
        &headers,
        &body,
        authorization.as_deref(),
    );
    inner.requests.push(Recorded {
        method: method.to_string(),
        path,
        query,
        body,
        authorization,
        status: response.status().as_u16(),
    });
    response
}

fn route(
    inner: &mut Inner,
    method: &Method,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    body: &str,
    authorization: Option<&str>,
) -> Response {
    if let Some(rest) = path.strip_prefix("/login/") {
        return token(inner, method, rest, headers, body);
    }

    // Bearer token.
    let token = authorization.and_then(|a| a.strip_prefix("Bearer "));
    match token {
        None => {
            return arm_error(
                401,
                "AuthenticationFailed",
                "Authentication failed. The 'Authorization' header is missing.",
            )
        }
        Some(t) if !inner.valid_tokens.contains(t) => {
            let code = if inner.issued_tokens.iter().any(|i| i == t) {
                "ExpiredAuthenticationToken"
            } else {
                "InvalidAuthenticationToken"
            };
            let mut response = arm_error(401, code, "The access token is invalid or has expired.");
            response.headers_mut().insert(
                "www-authenticate",
                HeaderValue::from_static("Bearer authorization_uri=\"https://login.windows.net/\", error=\"invalid_token\""),
            );
            return response;
        }
        Some(_) => {}
    }

    // Injected errors.
    if let Some(i) = inner
        .injections
        .iter_mut()
        .find(|i| i.remaining > 0 && i.method == *method && path.contains(&i.path_contains))
    {
        i.remaining -= 1;
        let mut response = arm_error(i.status, &i.code, &i.message);
        if let Some(s) = i.retry_after {
            response.headers_mut().insert(
                "retry-after",
                HeaderValue::from_str(&s.to_string()).unwrap(),
            );
        }
        return response;
    }

    let params = parse_pairs(query);
    let api_version = params.get("api-version").cloned().unwrap_or_default();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let lower: Vec<String> = segments.iter().map(|s| s.to_ascii_lowercase()).collect();
    let lower: Vec<&str> = lower.iter().map(String::as_str).collect();

    if lower.len() < 2 || lower[0] != "subscriptions" || segments[1] != SUBSCRIPTION {
        return arm_error(
            404,
            "SubscriptionNotFound",
            "The subscription could not be found.",
        );
    }

    // Operation status monitors and results.
    if let ["subscriptions", _, "providers", provider, "locations", _, kind, _] = lower.as_slice() {
        let expected = if *provider == "microsoft.network" {
            NETWORK
        } else {
            COMPUTE
        };
        if api_version != expected {
            return bad_api_version(&api_version);
        }
        let id = segments[7].to_string();
        return match *kind {
            "operations" => poll_async(inner, &id),
            "operationresults" => poll_location(inner, &id, path, query),
            _ => arm_error(404, "InvalidResourceType", "unknown operation resource"),
        };
    }

    let group_ok = lower.len() >= 4 && lower[2] == "resourcegroups";
    if !group_ok {
        return arm_error(404, "InvalidResourceType", "unknown resource");
    }
    if !segments[3].eq_ignore_ascii_case(RESOURCE_GROUP) {
        return arm_error(
            404,
            "ResourceGroupNotFound",
            &format!("Resource group '{}' could not be found.", segments[3]),
        );
    }
    if let [head @ .., "providers", "microsoft.resources", "tags", "default"] = &lower[4..] {
        if api_version != RESOURCES {
            return bad_api_version(&api_version);
        }
        if *method != Method::PATCH {
            return arm_error(405, "MethodNotAllowed", "method not allowed");
        }
        return merge_tags(inner, head, &segments, body);
    }
    match &lower[4..] {
        ["providers", "microsoft.compute", "virtualmachines"] => {
            if api_version != COMPUTE {
                return bad_api_version(&api_version);
            }
            if *method != Method::GET {
                return arm_error(405, "MethodNotAllowed", "method not allowed");
            }
            list_vms(inner, path, &params)
        }
        ["providers", "microsoft.compute", "virtualmachines", _, rest @ ..] => {
            if api_version != COMPUTE {
                return bad_api_version(&api_version);
            }
            let name = segments[7].to_string();
            match (method, rest) {
                (&Method::GET, []) => {
                    get_vm(inner, &name, params.get("$expand").map(String::as_str))
                }
                (&Method::PUT, []) => put_vm(inner, &name, headers, body),
                (&Method::DELETE, []) => delete_vm(inner, &name),
                (&Method::POST, [action]) => {
                    if !headers.contains_key("content-length")
                        && !headers.contains_key("transfer-encoding")
                    {
                        return arm_error(411, "LengthRequired", "Length Required");
                    }
                    vm_action(inner, &name, action)
                }
                _ => arm_error(405, "MethodNotAllowed", "method not allowed"),
            }
        }
        ["providers", "microsoft.network", "networksecuritygroups"] => {
            if api_version != NETWORK {
                return bad_api_version(&api_version);
            }
            if *method != Method::GET {
                return arm_error(405, "MethodNotAllowed", "method not allowed");
            }
            list_nsgs(inner, path, &params)
        }
        ["providers", "microsoft.network", kind, _] => {
            if api_version != NETWORK {
                return bad_api_version(&api_version);
            }
            let name = segments[7].to_string();
            network(inner, method, kind, &name, body)
        }
        _ => arm_error(404, "InvalidResourceType", "unknown resource type"),
    }
}

/// `PATCH {resource}/providers/Microsoft.Resources/tags/default` (Tags - Update At Scope) with
/// `operation: Merge` on a VM or an NSG of the resource group.
fn merge_tags(inner: &mut Inner, head: &[&str], segments: &[&str], body: &str) -> Response {
    let Ok(body) = serde_json::from_str::<Value>(body) else {
        return invalid("body", "The request body is not JSON.");
    };
    if body["operation"].as_str() != Some("Merge") {
        return invalid("operation", "Only Merge is supported here.");
    }
    let Some(new) = body.pointer("/properties/tags").and_then(Value::as_object) else {
        return invalid("properties.tags", "Tags are required.");
    };
    let name = segments[7];
    let tags = match head {
        ["providers", "microsoft.compute", "virtualmachines", _] => {
            match inner.vms.get_mut(&name.to_ascii_lowercase()) {
                Some(vm) => &mut vm.model["tags"],
                None => return not_found("Microsoft.Compute/virtualMachines", name),
            }
        }
        ["providers", "microsoft.network", "networksecuritygroups", _] => {
            match inner.nsgs.get_mut(name) {
                Some(nsg) => &mut nsg["tags"],
                None => return not_found("Microsoft.Network/networkSecurityGroups", name),
            }
        }
        _ => return arm_error(404, "InvalidResourceType", "unknown resource type"),
    };
    if !tags.is_object() {
        *tags = json!({});
    }
    for (k, v) in new {
        tags[k] = v.clone();
    }
    let merged = tags.clone();
    json_response(
        200,
        vec![],
        Some(json!({ "name": "default", "properties": { "tags": merged } })),
    )
}

fn bad_api_version(version: &str) -> Response {
    arm_error(
        400,
        "InvalidApiVersionParameter",
        &format!("The api-version '{version}' is invalid."),
    )
}

fn token(
    inner: &mut Inner,
    method: &Method,
    rest: &str,
    headers: &HeaderMap,
    body: &str,
) -> Response {
    let aad = |status: u16, error: &str, description: &str| {
        json_response(
            status,
            vec![],
            Some(json!({
                "error": error,
                "error_description": format!("{description}\r\nTrace ID: 0000\r\nCorrelation ID: 1111\r\nTimestamp: 2025-01-01 00:00:00Z"),
                "error_codes": [7000215],
            })),
        )
    };
    if *method != Method::POST || rest != format!("{TENANT}/oauth2/v2.0/token") {
        return aad(
            400,
            "invalid_request",
            "AADSTS900144: bad token request path or tenant.",
        );
    }
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type.starts_with("application/x-www-form-urlencoded") {
        return aad(
            400,
            "invalid_request",
            "AADSTS900144: the request body must be a form.",
        );
    }
    let form = parse_pairs(body);
    inner.token_forms.push(
        form.iter()
            .filter(|(k, _)| k.as_str() != "client_secret")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    );
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return aad(
            400,
            "unsupported_grant_type",
            "AADSTS70003: unsupported grant type.",
        );
    }
    if form.get("client_id").map(String::as_str) != Some(CLIENT_ID) {
        return aad(
            400,
            "unauthorized_client",
            "AADSTS700016: Application was not found in the directory.",
        );
    }
    if form.get("client_secret").map(String::as_str) != Some(CLIENT_SECRET) {
        return aad(
            401,
            "invalid_client",
            "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.",
        );
    }
    if form.get("scope").map(String::as_str) != Some("https://management.azure.com/.default") {
        return aad(
            400,
            "invalid_scope",
            "AADSTS70011: The provided value for the input parameter 'scope' is not valid.",
        );
    }
    inner.token_requests += 1;
    let token = format!("eyJ0eXAiOiJKV1Qi.arm-token-{}", inner.token_requests);
    inner.valid_tokens.insert(token.clone());
    inner.issued_tokens.push(token.clone());
    json_response(
        200,
        vec![],
        Some(json!({
            "token_type": "Bearer",
            "expires_in": inner.token_expires_in,
            "ext_expires_in": inner.token_expires_in,
            "access_token": token,
        })),
    )
}

fn vm_id(name: &str) -> String {
    format!(
        "/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}/providers/Microsoft.Compute/virtualMachines/{name}"
    )
}

fn network_id(kind: &str, name: &str) -> String {
    format!("/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}/providers/Microsoft.Network/{kind}/{name}")
}

fn new_op(
    inner: &mut Inner,
    kind: OpKind,
    vm: &str,
    failure: Option<(String, String)>,
    previous_power: Option<String>,
) -> String {
    inner.counter += 1;
    let id = format!(
        "{:08x}-0000-4000-8000-{:012x}",
        inner.counter, inner.counter
    );
    inner.ops.insert(
        id.clone(),
        Op {
            kind,
            vm: vm.to_string(),
            remaining: inner.op_polls,
            failure,
            result: None,
            previous_power,
        },
    );
    id
}

fn op_base(inner: &Inner) -> String {
    inner
        .operation_base_override
        .clone()
        .unwrap_or_else(|| inner.base.clone())
}

fn async_url(inner: &Inner, provider: &str, region: &str, id: &str) -> String {
    let version = if provider == "Microsoft.Network" {
        NETWORK
    } else {
        COMPUTE
    };
    format!(
        "{}/subscriptions/{SUBSCRIPTION}/providers/{provider}/locations/{region}/operations/{id}?p=571046f6-b640-41c1-86f7-f9f044b5adf9&api-version={version}",
        op_base(inner)
    )
}

fn location_url(inner: &Inner, region: &str, id: &str) -> String {
    format!(
        "{}/subscriptions/{SUBSCRIPTION}/providers/Microsoft.Compute/locations/{region}/operationResults/{id}?p=571046f6-b640-41c1-86f7-f9f044b5adf9&api-version={COMPUTE}",
        op_base(inner)
    )
}

/// Advances an operation by one step; applies its effects when it ends.
fn tick(inner: &mut Inner, id: &str) {
    let Some(op) = inner.ops.get_mut(id) else {
        return;
    };
    if op.result.is_some() {
        return;
    }
    if op.remaining > 0 {
        op.remaining -= 1;
        return;
    }
    let result = match op.failure.take() {
        Some(failure) => Err(failure),
        None => Ok(()),
    };
    op.result = Some(result.clone());
    let (kind, vm_name, previous) = (op.kind, op.vm.clone(), op.previous_power.clone());
    if kind == OpKind::Network {
        return;
    }
    if let Some(vm) = inner.vms.get_mut(&vm_name) {
        vm.pending = None;
    }
    match (kind, result) {
        (OpKind::Create, Ok(())) => complete_create(inner, &vm_name),
        (OpKind::Create, Err(failure)) => {
            if let Some(vm) = inner.vms.get_mut(&vm_name) {
                vm.provisioning = "Failed".into();
                vm.failure = Some(failure);
            }
        }
        (OpKind::Delete, Ok(())) => remove_vm(inner, &vm_name),
        (OpKind::Delete, Err(_)) => {
            if let Some(vm) = inner.vms.get_mut(&vm_name) {
                vm.provisioning = "Succeeded".into();
            }
        }
        (kind, outcome) => {
            if let Some(vm) = inner.vms.get_mut(&vm_name) {
                vm.power = Some(match outcome {
                    Err(_) => previous.unwrap_or_else(|| "running".into()),
                    Ok(()) => match kind {
                        OpKind::Deallocate => "deallocated".into(),
                        OpKind::PowerOff => "stopped".into(),
                        _ => "running".into(),
                    },
                });
            }
        }
    }
}

fn complete_create(inner: &mut Inner, vm_name: &str) {
    let Some(vm) = inner.vms.get_mut(vm_name) else {
        return;
    };
    vm.provisioning = "Succeeded".into();
    vm.power = Some("running".into());
    let number = vm.number;
    let model = vm.model.clone();
    let disk = &model["properties"]["storageProfile"]["osDisk"];
    let disk_name = disk["name"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| format!("{}_OsDisk_1", vm.name));
    let disk_delete = disk["deleteOption"].as_str() == Some("Delete");
    let mut nic_id = None;
    if let Some(config) = model
        .pointer("/properties/networkProfile/networkInterfaceConfigurations/0")
        .cloned()
    {
        let nic_name = config["name"].as_str().unwrap().to_string();
        let nic_delete = config
            .pointer("/properties/deleteOption")
            .and_then(Value::as_str)
            == Some("Delete");
        let ip = config
            .pointer("/properties/ipConfigurations/0")
            .cloned()
            .unwrap();
        let location = model["location"]
            .as_str()
            .unwrap_or("westeurope")
            .to_string();
        let id = network_id("networkInterfaces", &nic_name);
        let ip_name = ip["name"].as_str().unwrap_or("ipconfig1").to_string();
        let mut pip_id = None;
        if let Some(pip) = ip.pointer("/properties/publicIPAddressConfiguration") {
            let pip_name = pip["name"].as_str().unwrap().to_string();
            let pip_delete = pip
                .pointer("/properties/deleteOption")
                .and_then(Value::as_str)
                == Some("Delete");
            let this_pip = network_id("publicIPAddresses", &pip_name);
            let body = examples::public_ip(&examples::PublicIp {
                id: &this_pip,
                name: &pip_name,
                location: &location,
                address: &format!("20.50.0.{number}"),
                delete_option: if pip_delete { "Delete" } else { "Detach" },
                ip_configuration_id: &format!("{id}/ipConfigurations/{ip_name}"),
            });
            inner.pips.insert(
                pip_name.clone(),
                Resource {
                    body,
                    delete_with_vm: pip_delete,
                },
            );
            pip_id = Some(this_pip);
        }
        let body = examples::network_interface(&examples::Nic {
            id: &id,
            name: &nic_name,
            location: &location,
            vm_id: &vm_id(vm_name),
            network_security_group: config.pointer("/properties/networkSecurityGroup").cloned(),
            ip_name: &ip_name,
            private_ip: &format!("10.0.0.{}", 3 + number),
            subnet: ip.pointer("/properties/subnet").cloned().unwrap(),
            public_ip_id: pip_id.as_deref(),
            secondary_first: inner.secondary_ip_config_first,
        });
        inner.nics.insert(
            nic_name.clone(),
            Resource {
                body,
                delete_with_vm: nic_delete,
            },
        );
        nic_id = Some(id);
    }
    inner.disks.insert(
        disk_name,
        Resource {
            body: json!({}),
            delete_with_vm: disk_delete,
        },
    );
    if let Some(vm) = inner.vms.get_mut(vm_name) {
        vm.nic = nic_id;
    }
}

fn remove_vm(inner: &mut Inner, vm_name: &str) {
    let Some(vm) = inner.vms.remove(vm_name) else {
        return;
    };
    if let Some(nic_id) = vm.nic {
        let nic_name = nic_id.rsplit('/').next().unwrap().to_string();
        if let Some(nic) = inner.nics.get(&nic_name) {
            let pip_id = nic.body["properties"]["ipConfigurations"]
                .as_array()
                .into_iter()
                .flatten()
                .find_map(|c| c.pointer("/properties/publicIPAddress/id"))
                .and_then(Value::as_str)
                .map(str::to_string);
            if nic.delete_with_vm {
                inner.nics.remove(&nic_name);
            }
            if let Some(pip_id) = pip_id {
                let pip_name = pip_id.rsplit('/').next().unwrap().to_string();
                if inner.pips.get(&pip_name).is_some_and(|p| p.delete_with_vm) {
                    inner.pips.remove(&pip_name);
                }
            }
        }
    }
    inner.disks.retain(|_, d| !d.delete_with_vm);
}

fn render_vm(inner: &Inner, vm: &Vm, expand: bool) -> Value {
    let mut model = vm.model.clone();
    model["id"] = json!(vm_id(&vm.name));
    model["name"] = json!(vm.name);
    model["type"] = json!("Microsoft.Compute/virtualMachines");
    let props = &mut model["properties"];
    props["provisioningState"] = json!(vm.provisioning);
    props["vmId"] = json!(format!("0f47b100-583c-48e3-a4c0-{:012x}", vm.number));
    props["timeCreated"] = json!(vm.created);
    if let Some(os) = props.get_mut("osProfile").and_then(Value::as_object_mut) {
        // ARM never returns the password.
        os.remove("adminPassword");
    }
    if let Some(nic) = &vm.nic {
        props["networkProfile"]["networkInterfaces"] =
            json!([{ "id": nic, "properties": { "primary": true, "deleteOption": "Delete" } }]);
    }
    if expand {
        let mut statuses = Vec::new();
        match (vm.provisioning.as_str(), &vm.failure) {
            ("Failed", Some((code, message))) => statuses.push(json!({
                "code": format!("ProvisioningState/failed/{code}"),
                "level": "Error",
                "displayStatus": "Provisioning failed",
                "message": message,
            })),
            (state, _) => statuses.push(json!({
                "code": format!("ProvisioningState/{}", state.to_ascii_lowercase()),
                "level": "Info",
                "displayStatus": format!("Provisioning {}", state.to_ascii_lowercase()),
            })),
        }
        if let Some(power) = &vm.power {
            statuses.push(json!({
                "code": format!("PowerState/{power}"),
                "level": "Info",
                "displayStatus": format!("VM {power}"),
            }));
        }
        let computer_name = props["osProfile"]["computerName"].clone();
        props["instanceView"] = json!({
            "computerName": computer_name,
            "statuses": statuses,
        });
    }
    let _ = inner;
    model
}

/// ARM's `timeCreated` form (seven fractional digits, `+00:00`).
fn time_created(number: u32) -> String {
    format!(
        "2025-01-01T{:02}:{:02}:{:02}.1234567+00:00",
        number / 3600 % 24,
        number / 60 % 60,
        number % 60
    )
}

/// `GET .../virtualMachines`: one page of the resource group's VMs (model view), the next
/// page linked by `nextLink`. Listing is time passing too: pending operations advance.
fn list_vms(inner: &mut Inner, path: &str, params: &BTreeMap<String, String>) -> Response {
    if params.contains_key("$expand") && !params.contains_key("$filter") {
        return invalid(
            "$expand",
            "The $expand=instanceView query option can only be specified when a valid $filter option is specified.",
        );
    }
    if params.contains_key("$filter") {
        return invalid(
            "$filter",
            "This test server does not implement $filter (ARM takes only 'virtualMachineScaleSet/id').",
        );
    }
    let skip = match params.get("$skiptoken") {
        None => 0,
        Some(token) => match token.strip_prefix("vmlist.").and_then(|n| n.parse().ok()) {
            Some(n) => n,
            None => return invalid("$skiptoken", "The skip token is invalid."),
        },
    };
    let pending: Vec<String> = inner
        .vms
        .values()
        .filter_map(|vm| vm.pending.clone())
        .collect();
    for op in pending {
        tick(inner, &op);
    }
    let size = inner.list_page_size;
    let value: Vec<Value> = inner
        .vms
        .values()
        .skip(skip)
        .take(size)
        .map(|vm| render_vm(inner, vm, false))
        .collect();
    let mut body = json!({ "value": value });
    if skip + size < inner.vms.len() {
        body["nextLink"] = json!(format!(
            "{}{path}?api-version={COMPUTE}&$skiptoken=vmlist.{}",
            inner.base,
            skip + size
        ));
    }
    json_response(200, vec![], Some(body))
}

/// `GET .../networkSecurityGroups` (Network Security Groups - List): one page of the resource
/// group's NSGs as stored, the next page linked by `nextLink`.
fn list_nsgs(inner: &mut Inner, path: &str, params: &BTreeMap<String, String>) -> Response {
    let skip = match params.get("$skiptoken") {
        None => 0,
        Some(token) => match token.strip_prefix("nsglist.").and_then(|n| n.parse().ok()) {
            Some(n) => n,
            None => return invalid("$skiptoken", "The skip token is invalid."),
        },
    };
    let size = inner.list_page_size;
    let value: Vec<Value> = inner.nsgs.values().skip(skip).take(size).cloned().collect();
    let mut body = json!({ "value": value });
    if skip + size < inner.nsgs.len() {
        body["nextLink"] = json!(format!(
            "{}{path}?api-version={NETWORK}&$skiptoken=nsglist.{}",
            inner.base,
            skip + size
        ));
    }
    json_response(200, vec![], Some(body))
}

fn get_vm(inner: &mut Inner, name: &str, expand: Option<&str>) -> Response {
    let key = name.to_ascii_lowercase();
    let pending = match inner.vms.get(&key) {
        None => return not_found("Microsoft.Compute/virtualMachines", name),
        Some(vm) => vm.pending.clone(),
    };
    // Time passes: the VM's running operation advances.
    if let Some(op) = pending {
        tick(inner, &op);
    }
    match inner.vms.get(&key) {
        None => not_found("Microsoft.Compute/virtualMachines", name),
        Some(vm) => json_response(
            200,
            vec![],
            Some(render_vm(inner, vm, expand == Some("instanceView"))),
        ),
    }
}

fn validate_vm(inner: &Inner, body: &Value) -> Result<(), Box<Response>> {
    let props = &body["properties"];
    if body["location"].as_str().unwrap_or("").is_empty() {
        return Err(Box::new(invalid(
            "location",
            "The resource location is required.",
        )));
    }
    if props
        .pointer("/hardwareProfile/vmSize")
        .and_then(Value::as_str)
        .unwrap_or("")
        .is_empty()
    {
        return Err(Box::new(invalid(
            "hardwareProfile.vmSize",
            "The value of parameter vmSize is invalid.",
        )));
    }
    let image = &props["storageProfile"]["imageReference"];
    for field in ["publisher", "offer", "sku", "version"] {
        if image[field].as_str().unwrap_or("").is_empty() {
            return Err(Box::new(invalid(
                &format!("imageReference.{field}"),
                &format!("Required parameter '{field}' is missing (null)."),
            )));
        }
    }
    let os = &props["osProfile"];
    let user = os["adminUsername"].as_str().unwrap_or("");
    if user.is_empty() {
        return Err(Box::new(invalid(
            "adminUsername",
            "Required parameter 'adminUsername' is missing (null).",
        )));
    }
    if os["computerName"].as_str().unwrap_or("").is_empty() {
        return Err(Box::new(invalid(
            "computerName",
            "Required parameter 'computerName' is missing (null).",
        )));
    }
    let linux = &os["linuxConfiguration"];
    if linux["disablePasswordAuthentication"].as_bool() == Some(true) {
        let keys = linux
            .pointer("/ssh/publicKeys")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if keys.is_empty() {
            return Err(Box::new(invalid(
                "linuxConfiguration.ssh.publicKeys",
                "Authentication using either SSH or by user name and password must be enabled in Linux profile.",
            )));
        }
        let expected = format!("/home/{user}/.ssh/authorized_keys");
        for key in keys {
            if key["path"].as_str() != Some(expected.as_str()) {
                return Err(Box::new(invalid(
                    "linuxConfiguration.ssh.publicKeys.path",
                    &format!("Destination path for SSH public keys is currently limited to its default value {expected} due to a known issue in Linux provisioning agent."),
                )));
            }
            if key["keyData"].as_str().unwrap_or("").is_empty() {
                return Err(Box::new(invalid(
                    "linuxConfiguration.ssh.publicKeys.keyData",
                    "The value of parameter keyData is invalid.",
                )));
            }
        }
    } else if os["adminPassword"].as_str().unwrap_or("").is_empty() {
        return Err(Box::new(invalid(
            "adminPassword",
            "Required parameter 'adminPassword' is missing (null).",
        )));
    }
    let network = &props["networkProfile"];
    let configs = network["networkInterfaceConfigurations"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if configs.is_empty()
        && network["networkInterfaces"]
            .as_array()
            .is_none_or(Vec::is_empty)
    {
        return Err(Box::new(invalid(
            "networkProfile",
            "The VM needs a network interface.",
        )));
    }
    if !configs.is_empty() && network["networkApiVersion"].as_str().is_none() {
        return Err(Box::new(invalid(
            "networkProfile.networkApiVersion",
            "networkApiVersion is required when networkInterfaceConfigurations are specified.",
        )));
    }
    for config in &configs {
        if let Some(nsg) = config
            .pointer("/properties/networkSecurityGroup/id")
            .and_then(Value::as_str)
        {
            let name = nsg.rsplit('/').next().unwrap_or("");
            if !inner.nsgs.contains_key(name) {
                return Err(Box::new(arm_error(
                    400,
                    "InvalidResourceReference",
                    &format!(
                        "Resource {nsg} referenced by resource {} was not found.",
                        config["name"]
                    ),
                )));
            }
        }
        for ip in config
            .pointer("/properties/ipConfigurations")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
        {
            let subnet = ip
                .pointer("/properties/subnet/id")
                .and_then(Value::as_str)
                .unwrap_or("");
            let vnet = subnet
                .split('/')
                .collect::<Vec<_>>()
                .windows(2)
                .find(|w| w[0].eq_ignore_ascii_case("virtualNetworks"))
                .map(|w| w[1].to_string());
            if !vnet.is_some_and(|v| inner.vnets.contains_key(&v)) {
                return Err(Box::new(arm_error(
                    400,
                    "InvalidResourceReference",
                    &format!(
                        "Resource {subnet} referenced by resource {} was not found.",
                        config["name"]
                    ),
                )));
            }
        }
    }
    if props
        .pointer("/securityProfile/securityType")
        .and_then(Value::as_str)
        == Some("ConfidentialVM")
    {
        if props.pointer("/securityProfile/uefiSettings").is_none() {
            return Err(Box::new(invalid(
                "securityProfile.uefiSettings",
                "UefiSettings must be specified when SecurityType is ConfidentialVM.",
            )));
        }
        if props
            .pointer("/storageProfile/osDisk/managedDisk/securityProfile/securityEncryptionType")
            .is_none()
        {
            return Err(Box::new(invalid(
                "managedDisk.securityProfile.securityEncryptionType",
                "SecurityEncryptionType must be specified for ConfidentialVM.",
            )));
        }
    }
    Ok(())
}

fn put_vm(inner: &mut Inner, name: &str, headers: &HeaderMap, body: &str) -> Response {
    if !headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/json"))
    {
        return arm_error(
            415,
            "UnsupportedMediaType",
            "The content media type is not supported.",
        );
    }
    let Ok(mut model) = serde_json::from_str::<Value>(body) else {
        return arm_error(
            400,
            "InvalidRequestContent",
            "The request content was invalid and could not be deserialized.",
        );
    };
    if let Err(response) = validate_vm(inner, &model) {
        return *response;
    }
    inner.vm_puts += 1;
    let key = name.to_ascii_lowercase();
    if inner.drop_security_profile {
        if let Some(props) = model["properties"].as_object_mut() {
            props.remove("securityProfile");
        }
        if let Some(disk) = model
            .pointer_mut("/properties/storageProfile/osDisk/managedDisk")
            .and_then(Value::as_object_mut)
        {
            disk.remove("securityProfile");
        }
    }
    if inner.vms.contains_key(&key) {
        // Create-or-update: an update of the same VM.
        let vm = inner.vms.get_mut(&key).unwrap();
        vm.model = model;
        let vm = inner.vms.get(&key).unwrap();
        return json_response(200, vec![], Some(render_vm(inner, vm, false)));
    }
    let region = model["location"]
        .as_str()
        .unwrap_or("westeurope")
        .to_string();
    inner.vm_counter += 1;
    let number = inner.vm_counter;
    let failure = inner.fail_next_create.take();
    let op = new_op(inner, OpKind::Create, &key, failure, None);
    inner.vms.insert(
        key.clone(),
        Vm {
            name: name.to_string(),
            model,
            provisioning: "Creating".into(),
            failure: None,
            power: None,
            pending: Some(op.clone()),
            nic: None,
            number,
            created: time_created(number),
        },
    );
    let mut headers = vec![(
        "azure-asyncoperation",
        async_url(inner, "Microsoft.Compute", &region, &op),
    )];
    headers.extend(retry_header(inner));
    let vm = inner.vms.get(&key).unwrap();
    json_response(201, headers, Some(render_vm(inner, vm, false)))
}

fn vm_action(inner: &mut Inner, name: &str, action: &str) -> Response {
    let key = name.to_ascii_lowercase();
    let Some(vm) = inner.vms.get(&key) else {
        return not_found("Microsoft.Compute/virtualMachines", name);
    };
    if vm.pending.is_some() {
        return arm_error(
            409,
            "OperationNotAllowed",
            &format!("Operation '{action}' is not allowed since the VM '{name}' has another operation in progress."),
        );
    }
    let (kind, transitional) = match action {
        "start" => (OpKind::Start, "starting"),
        "deallocate" => (OpKind::Deallocate, "deallocating"),
        "poweroff" => (OpKind::PowerOff, "stopping"),
        "restart" => (OpKind::Restart, "starting"),
        _ => {
            return arm_error(
                404,
                "InvalidResourceType",
                &format!("unknown action {action}"),
            )
        }
    };
    if kind == OpKind::Restart && vm.power.as_deref() != Some("running") {
        return arm_error(
            409,
            "OperationNotAllowed",
            &format!(
                "Operation 'restart' is not allowed on VM '{name}' since the VM is not running."
            ),
        );
    }
    let region = vm.model["location"]
        .as_str()
        .unwrap_or("westeurope")
        .to_string();
    let previous = vm.power.clone();
    let failure = inner.fail_next_action.take();
    let op = new_op(inner, kind, &key, failure, previous);
    let vm = inner.vms.get_mut(&key).unwrap();
    vm.power = Some(transitional.into());
    vm.pending = Some(op.clone());
    let mut headers = match inner.action_style {
        ActionStyle::Location => vec![("location", location_url(inner, &region, &op))],
        ActionStyle::AsyncOperation => vec![(
            "azure-asyncoperation",
            async_url(inner, "Microsoft.Compute", &region, &op),
        )],
    };
    headers.extend(retry_header(inner));
    json_response(202, headers, None)
}

fn delete_vm(inner: &mut Inner, name: &str) -> Response {
    let key = name.to_ascii_lowercase();
    let Some(vm) = inner.vms.get(&key) else {
        // ARM: deleting an absent resource succeeds with 204.
        return json_response(204, vec![], None);
    };
    let region = vm.model["location"]
        .as_str()
        .unwrap_or("westeurope")
        .to_string();
    let op = new_op(inner, OpKind::Delete, &key, None, None);
    let vm = inner.vms.get_mut(&key).unwrap();
    vm.provisioning = "Deleting".into();
    vm.pending = Some(op.clone());
    let mut headers = vec![("location", location_url(inner, &region, &op))];
    headers.extend(retry_header(inner));
    json_response(202, headers, None)
}

fn poll_async(inner: &mut Inner, id: &str) -> Response {
    if !inner.ops.contains_key(id) {
        return arm_error(404, "NotFound", "The operation was not found.");
    }
    tick(inner, id);
    let op = &inner.ops[id];
    let body = match &op.result {
        None => {
            json!({ "name": id, "status": "InProgress", "startTime": "2025-01-01T00:00:00+00:00" })
        }
        Some(Ok(())) => json!({
            "name": id, "status": "Succeeded",
            "startTime": "2025-01-01T00:00:00+00:00", "endTime": "2025-01-01T00:00:05+00:00"
        }),
        Some(Err((code, message))) => json!({
            "name": id, "status": "Failed",
            "startTime": "2025-01-01T00:00:00+00:00", "endTime": "2025-01-01T00:00:05+00:00",
            "error": { "code": code, "message": message }
        }),
    };
    let headers = if op.result.is_none() {
        retry_header(inner)
    } else {
        vec![]
    };
    json_response(200, headers, Some(body))
}

fn poll_location(inner: &mut Inner, id: &str, path: &str, query: &str) -> Response {
    if !inner.ops.contains_key(id) {
        return arm_error(404, "NotFound", "The operation was not found.");
    }
    tick(inner, id);
    match &inner.ops[id].result {
        None => {
            let mut headers = vec![("location", format!("{}{path}?{query}", op_base(inner)))];
            headers.extend(retry_header(inner));
            json_response(202, headers, None)
        }
        Some(Ok(())) => json_response(200, vec![], None),
        Some(Err((code, message))) => arm_error(500, code, message),
    }
}

fn network(inner: &mut Inner, method: &Method, kind: &str, name: &str, body: &str) -> Response {
    match (method, kind) {
        (&Method::GET, "networkinterfaces") => match inner.nics.get(name) {
            Some(nic) => json_response(200, vec![], Some(nic.body.clone())),
            None => not_found("Microsoft.Network/networkInterfaces", name),
        },
        (&Method::GET, "publicipaddresses") => match inner.pips.get(name) {
            Some(pip) => json_response(200, vec![], Some(pip.body.clone())),
            None => not_found("Microsoft.Network/publicIPAddresses", name),
        },
        (&Method::GET, "virtualnetworks") | (&Method::GET, "networksecuritygroups") => {
            let map = if kind == "virtualnetworks" {
                &inner.vnets
            } else {
                &inner.nsgs
            };
            match map.get(name) {
                Some(resource) => json_response(200, vec![], Some(resource.clone())),
                None => not_found(&format!("Microsoft.Network/{kind}"), name),
            }
        }
        (&Method::PUT, "virtualnetworks") | (&Method::PUT, "networksecuritygroups") => {
            let Ok(mut resource) = serde_json::from_str::<Value>(body) else {
                return arm_error(400, "InvalidRequestContent", "invalid JSON");
            };
            let region = resource["location"].as_str().unwrap_or("").to_string();
            if region.is_empty() {
                return invalid("location", "The resource location is required.");
            }
            if kind == "networksecuritygroups" {
                if let Err(response) = validate_security_rules(&resource) {
                    return *response;
                }
            }
            resource["name"] = json!(name);
            resource["id"] = json!(network_id(kind, name));
            resource["properties"]["provisioningState"] = json!("Succeeded");
            let created = if kind == "virtualnetworks" {
                inner
                    .vnets
                    .insert(name.to_string(), resource.clone())
                    .is_none()
            } else {
                inner
                    .nsgs
                    .insert(name.to_string(), resource.clone())
                    .is_none()
            };
            let op = new_op(inner, OpKind::Network, "", None, None);
            let mut headers = vec![(
                "azure-asyncoperation",
                async_url(inner, "Microsoft.Network", &region, &op),
            )];
            headers.extend(retry_header(inner));
            resource["properties"]["provisioningState"] = json!("Updating");
            json_response(if created { 201 } else { 200 }, headers, Some(resource))
        }
        (&Method::DELETE, "networksecuritygroups") => {
            if !inner.nsgs.contains_key(name) {
                return json_response(204, vec![], None);
            }
            let in_use = inner.nics.values().any(|nic| {
                nic.body
                    .pointer("/properties/networkSecurityGroup/id")
                    .and_then(Value::as_str)
                    .is_some_and(|id| id.rsplit('/').next() == Some(name))
            });
            if in_use {
                return arm_error(
                    400,
                    "InUseNetworkSecurityGroupCannotBeDeleted",
                    &format!("Network security group {} cannot be deleted because it is in use by some resources.", network_id("networkSecurityGroups", name)),
                );
            }
            let region = inner.nsgs[name]["location"]
                .as_str()
                .unwrap_or("westeurope")
                .to_string();
            inner.nsgs.remove(name);
            let op = new_op(inner, OpKind::Network, "", None, None);
            let mut headers = vec![(
                "azure-asyncoperation",
                async_url(inner, "Microsoft.Network", &region, &op),
            )];
            headers.extend(retry_header(inner));
            json_response(202, headers, None)
        }
        _ => arm_error(405, "MethodNotAllowed", "method not allowed"),
    }
}

/// Checks `properties.securityRules` of an NSG as ARM does (the fields the driver sends):
/// names, priorities 100-4096 unique per direction, direction, access, protocol, one address
/// prefix per side, port range or ranges (not both).
fn validate_security_rules(nsg: &Value) -> Result<(), Box<Response>> {
    let rules = nsg
        .pointer("/properties/securityRules")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let bad = |code: &str, message: String| Err(Box::new(arm_error(400, code, &message)));
    let mut seen: Vec<(String, u64, String)> = Vec::new();
    for rule in &rules {
        let name = rule["name"].as_str().unwrap_or("");
        if name.is_empty() {
            return bad(
                "InvalidRequestFormat",
                "A security rule has no name.".into(),
            );
        }
        let p = &rule["properties"];
        let priority = p["priority"].as_u64().unwrap_or(0);
        if !(100..=4096).contains(&priority) {
            return bad(
                "SecurityRuleInvalidPriority",
                format!("Security rule {name} has invalid priority {priority}."),
            );
        }
        let direction = p["direction"].as_str().unwrap_or("");
        if !["Inbound", "Outbound"].contains(&direction) {
            return bad(
                "InvalidRequestFormat",
                format!("Security rule {name}: invalid direction '{direction}'."),
            );
        }
        if !["Allow", "Deny"].contains(&p["access"].as_str().unwrap_or("")) {
            return bad(
                "InvalidRequestFormat",
                format!("Security rule {name}: invalid access."),
            );
        }
        if !["Tcp", "Udp", "Icmp", "Esp", "Ah", "*"].contains(&p["protocol"].as_str().unwrap_or(""))
        {
            return bad(
                "InvalidRequestFormat",
                format!("Security rule {name}: invalid protocol."),
            );
        }
        for side in ["source", "destination"] {
            if !p[format!("{side}AddressPrefix")].is_string() {
                return bad(
                    "SecurityRuleParameterContainsUnsupportedValue",
                    format!("Security rule {name} needs {side}AddressPrefix."),
                );
            }
        }
        if !p["sourcePortRange"].is_string() {
            return bad(
                "InvalidRequestFormat",
                format!("Security rule {name} needs sourcePortRange."),
            );
        }
        match (
            p["destinationPortRange"].is_string(),
            p["destinationPortRanges"].as_array().is_some_and(|r| !r.is_empty()),
        ) {
            (true, false) | (false, true) => {}
            _ => {
                return bad(
                    "SecurityRuleInvalidPortRange",
                    format!("Security rule {name} needs exactly one of destinationPortRange and destinationPortRanges."),
                )
            }
        }
        if let Some(other) = seen
            .iter()
            .find(|(_, pr, d)| *pr == priority && d == direction)
        {
            return bad(
                "SecurityRuleConflict",
                format!("Security rule {name} conflicts with rule {}. Rules cannot have the same Priority and Direction.", other.0),
            );
        }
        seen.push((name.to_string(), priority, direction.to_string()));
    }
    Ok(())
}
