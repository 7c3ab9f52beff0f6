//! Azure Resource Manager driver: VMs through the Compute REST API (`2024-03-01`) with the NIC
//! and public IP declared inline in the VM (`networkInterfaceConfigurations`), addresses read
//! through the Network REST API (`2024-05-01`), and a client-credentials token from Microsoft
//! Entra ID.
//!
//! * Names are deterministic: VM `vm-{vmId}`, NIC `vm-{vmId}-nic`, public IP `vm-{vmId}-pip`,
//!   OS disk `vm-{vmId}-osdisk`, network security group `vm-{vmId}-nsg`. A create is a `PUT` by
//!   name, so retries never make a second VM. OS disk, NIC and public IP carry
//!   `deleteOption: Delete`: deleting the VM removes them; the NSG is deleted after the VM.
//! * The VM's NSG (on its NIC) holds exactly the VM's security rules: it is put before the VM and
//!   put again, whole, by [`CloudDriver::apply_rules`].
//! * Every resource is tagged `managed-by: vm-api`, `vm-id` and `team`. [`CloudDriver::list_managed`]
//!   lists the resource group's VMs (following `nextLink`) and keeps those tagged
//!   `managed-by: vm-api` in the region.
//! * Long-running operations (201/202, or 200 with a non-terminal `provisioningState`) are
//!   followed through `Azure-AsyncOperation` or else `Location`, honouring `Retry-After`, for a
//!   bounded time. Operation URLs are only followed (with the token) on the management origin.
//! * The client secret and the access token are [`Sensitive`]: never logged, redacted in `Debug`.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::sync::Mutex as StdMutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use reqwest::header::{
    HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, LOCATION, RETRY_AFTER,
};
use reqwest::{Method, StatusCode};
use serde_json::{json, Map, Value};
use tokio::sync::Mutex;
use vmapi_core::cloud::{
    Capabilities, CloudDriver, CloudState, CloudTarget, CloudVm, DriverError, DriverKind,
    ManagedKind, ManagedResource, VmSpec,
};
use vmapi_core::ErrorChain;
use vmapi_models::{
    ConfidentialTech, DeploymentId, Direction, Ports, Protocol, RuleAccess, SecurityRule,
    Sensitive, Timestamp, VmId,
};

/// Compute API version of every `Microsoft.Compute` call.
pub const COMPUTE_API_VERSION: &str = "2024-03-01";
/// Network API version of every `Microsoft.Network` call.
pub const NETWORK_API_VERSION: &str = "2024-05-01";
/// API version of the Tags API (`Microsoft.Resources/tags`), which `vmctl adopt` uses.
pub const RESOURCES_API_VERSION: &str = "2021-04-01";
/// `networkProfile.networkApiVersion` of VMs whose NIC and public IP are declared inline.
pub const VM_NETWORK_API_VERSION: &str = "2020-11-01";
/// Default Entra ID (login) base URL.
pub const DEFAULT_LOGIN_BASE: &str = "https://login.microsoftonline.com";
/// Default Resource Manager base URL.
pub const DEFAULT_MANAGEMENT_BASE: &str = "https://management.azure.com";
/// Token scope of Resource Manager.
pub const MANAGEMENT_SCOPE: &str = "https://management.azure.com/.default";
/// Tag value of `managed-by` on every resource the driver creates.
pub const MANAGED_BY: &str = "vm-api";

/// A token is replaced this long before it expires.
const TOKEN_REFRESH_MARGIN: Duration = Duration::from_secs(300);
/// Wait before a retry when a 429 names no `Retry-After`.
const DEFAULT_THROTTLE_WAIT: Duration = Duration::from_secs(5);
/// First poll interval of an operation without `Retry-After`; doubles up to the maximum.
const BACKOFF_START: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(10);
/// Shortest wait between polls, even with `Retry-After: 0`.
const POLL_FLOOR: Duration = Duration::from_millis(50);
/// Longest operation URL followed (ARM: clients must accept 4 KB).
const MAX_OPERATION_URL: usize = 4096;
/// Longest provider text quoted in errors.
const MAX_MESSAGE: usize = 500;
/// Most pages of a list followed through `nextLink`.
const MAX_LIST_PAGES: usize = 1000;

/// An existing subnet (and optionally a network security group) for the VMs of one region.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegionNetwork {
    /// ARM id of the subnet, `/subscriptions/…/virtualNetworks/{vnet}/subnets/{subnet}`.
    pub subnet_id: String,
    /// ARM id of a network security group meant for the region's NICs. No longer put on NICs:
    /// each VM's NIC carries the VM's own NSG (`vm-{vmId}-nsg`, its security rules), and a NIC
    /// takes one NSG; put an operator-wide NSG on the subnet instead.
    pub network_security_group_id: Option<String>,
}

/// Configuration of the Azure driver. `Debug` redacts the client secret.
#[derive(Clone, Debug)]
pub struct AzureConfig {
    /// Entra ID tenant (directory) id.
    pub tenant_id: String,
    /// Application (client) id of the service principal.
    pub client_id: String,
    /// Client secret of the service principal.
    pub client_secret: Sensitive,
    /// Subscription the VMs live in.
    pub subscription_id: String,
    /// Existing resource group of the VMs (and of the networks the driver creates).
    pub resource_group: String,
    /// Entra ID base URL (default [`DEFAULT_LOGIN_BASE`]).
    pub login_base: String,
    /// Resource Manager base URL (default [`DEFAULT_MANAGEMENT_BASE`]).
    pub management_base: String,
    /// Existing networks per region (`westeurope` → subnet). Regions not listed get a network
    /// the driver creates once when `managed_networks` is set.
    pub networks: BTreeMap<String, RegionNetwork>,
    /// For regions without an entry in `networks`, create (once, if absent) the virtual network
    /// `vm-api-{region}` (10.0.0.0/16, subnet `default` 10.0.0.0/24) in the resource group.
    /// Default `true`.
    pub managed_networks: bool,
    /// Storage type of OS disks (default `Premium_LRS`).
    pub os_disk_type: String,
    /// Timeout of each HTTP request (default 10 s).
    pub request_timeout: Duration,
    /// How long a create follows its operation before returning the VM as provisioning
    /// (default 5 s; zero returns as soon as the `PUT` is accepted).
    pub create_wait: Duration,
    /// How long start, stop, reboot, delete and network creation follow their operation before
    /// returning (default 30 s); the VM's state then shows the rest through `get`.
    pub operation_timeout: Duration,
    /// This deployment: every resource is tagged with it, and only VMs and NSGs that carry it
    /// are this deployment's (default `local`).
    pub deployment: DeploymentId,
}

impl AzureConfig {
    /// A configuration with the public Azure endpoints, managed networks and default timeouts.
    pub fn new(
        tenant_id: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: Sensitive,
        subscription_id: impl Into<String>,
        resource_group: impl Into<String>,
    ) -> Self {
        AzureConfig {
            tenant_id: tenant_id.into(),
            client_id: client_id.into(),
            client_secret,
            subscription_id: subscription_id.into(),
            resource_group: resource_group.into(),
            login_base: DEFAULT_LOGIN_BASE.into(),
            management_base: DEFAULT_MANAGEMENT_BASE.into(),
            networks: BTreeMap::new(),
            managed_networks: true,
            os_disk_type: "Premium_LRS".into(),
            request_timeout: Duration::from_secs(10),
            deployment: DeploymentId::local(),
            create_wait: Duration::from_secs(5),
            operation_timeout: Duration::from_secs(30),
        }
    }
}

struct CachedToken {
    value: Sensitive,
    refresh_at: Instant,
}

/// The Azure Resource Manager driver.
pub struct AzureDriver {
    config: AzureConfig,
    login_base: String,
    management_base: String,
    http: reqwest::Client,
    token: Mutex<Option<CachedToken>>,
    /// Networks created or found by this process, per region.
    ready_networks: StdMutex<BTreeMap<String, RegionNetwork>>,
}

impl fmt::Debug for AzureDriver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AzureDriver")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// A response read to the end.
struct ArmResponse {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl ArmResponse {
    fn json(&self) -> Result<Value, DriverError> {
        serde_json::from_str(&self.body).map_err(|e| DriverError::Provider {
            code: "InvalidResponse".into(),
            message: format!("unreadable Resource Manager response: {e}"),
        })
    }

    fn error(&self) -> DriverError {
        arm_error(self.status, &self.headers, &self.body)
    }
}

/// How an operation ended within the time given.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Done,
    StillRunning,
}

impl AzureDriver {
    /// What this driver can do, known before it is built (credentials are read lazily).
    pub fn static_capabilities() -> Capabilities {
        Capabilities {
            confidential: vec![ConfidentialTech::SevSnp],
            native_idempotency: true,
            password_login: true,
        }
    }

    /// Builds the driver and its HTTP client (rustls, no redirects, per-request timeout).
    /// Fails when the configuration cannot form Resource Manager paths.
    pub fn new(config: AzureConfig) -> Result<Self, DriverError> {
        for (what, value) in [
            ("tenant_id", &config.tenant_id),
            ("client_id", &config.client_id),
            ("subscription_id", &config.subscription_id),
            ("resource_group", &config.resource_group),
        ] {
            if value.is_empty()
                || value.chars().any(|c| {
                    matches!(c, '/' | '?' | '#' | '%' | '&') || c.is_whitespace() || c.is_control()
                })
            {
                return Err(DriverError::InvalidSpec(format!(
                    "azure configuration: {what} is empty or not usable in a URL path"
                )));
            }
        }
        if config.client_secret.expose().is_empty() {
            return Err(DriverError::InvalidSpec(
                "azure configuration: client_secret is empty".into(),
            ));
        }
        for network in config.networks.values() {
            if !safe_arm_id(&network.subnet_id)
                || !network
                    .network_security_group_id
                    .as_deref()
                    .is_none_or(safe_arm_id)
            {
                return Err(DriverError::InvalidSpec(
                    "azure configuration: a network id is not an ARM resource id".into(),
                ));
            }
        }
        let login_base = config.login_base.trim_end_matches('/').to_string();
        let management_base = config.management_base.trim_end_matches('/').to_string();
        for (what, base) in [
            ("login_base", &login_base),
            ("management_base", &management_base),
        ] {
            if reqwest::Url::parse(base).is_err() {
                return Err(DriverError::InvalidSpec(format!(
                    "azure configuration: {what} is not a URL"
                )));
            }
        }
        let http = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .connect_timeout(config.request_timeout.min(Duration::from_secs(5)))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("vm-api-azure-driver/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                DriverError::Unreachable(format!(
                    "cannot build the HTTP client: {}",
                    ErrorChain(&e)
                ))
            })?;
        Ok(AzureDriver {
            config,
            login_base,
            management_base,
            http,
            token: Mutex::new(None),
            ready_networks: StdMutex::new(BTreeMap::new()),
        })
    }

    /// The VM's resource name: `vm-{vmId}`.
    pub fn vm_name(vm: VmId) -> String {
        format!("vm-{vm}")
    }

    /// ARM path of the resource group.
    fn group_path(&self) -> String {
        format!(
            "/subscriptions/{}/resourceGroups/{}",
            self.config.subscription_id, self.config.resource_group
        )
    }

    /// ARM id of the VM a target names: its provider id when that is a VM resource id,
    /// otherwise the deterministic name in the configured resource group.
    fn vm_path(&self, target: &CloudTarget) -> String {
        if let Some(id) = target.provider_id.as_deref() {
            if is_vm_resource_id(id) {
                return id.to_string();
            }
        }
        self.vm_path_for(target.vm_id)
    }

    fn vm_path_for(&self, vm: VmId) -> String {
        format!(
            "{}/providers/Microsoft.Compute/virtualMachines/{}",
            self.group_path(),
            Self::vm_name(vm)
        )
    }

    fn url(&self, path: &str, api_version: &str) -> String {
        format!("{}{path}?api-version={api_version}", self.management_base)
    }

    // ----- token -----

    /// The cached token, fetched anew when absent or within the refresh margin of expiry.
    async fn token(&self) -> Result<Sensitive, DriverError> {
        let mut cached = self.token.lock().await;
        if let Some(token) = cached.as_ref() {
            if Instant::now() < token.refresh_at {
                return Ok(token.value.clone());
            }
        }
        let fresh = self.fetch_token().await?;
        let value = fresh.value.clone();
        *cached = Some(fresh);
        Ok(value)
    }

    /// Forgets `used` after Resource Manager refused it (unless another call replaced it).
    async fn invalidate(&self, used: &Sensitive) {
        let mut cached = self.token.lock().await;
        if cached.as_ref().is_some_and(|t| &t.value == used) {
            *cached = None;
        }
    }

    async fn fetch_token(&self) -> Result<CachedToken, DriverError> {
        let url = format!(
            "{}/{}/oauth2/v2.0/token",
            self.login_base, self.config.tenant_id
        );
        let form = form_encode(&[
            ("grant_type", "client_credentials"),
            ("client_id", &self.config.client_id),
            ("client_secret", self.config.client_secret.expose()),
            ("scope", MANAGEMENT_SCOPE),
        ]);
        tracing::debug!(tenant = %self.config.tenant_id, "requesting an Azure access token");
        let asked = Instant::now();
        let resp = self
            .http
            .post(&url)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(reqwest::header::ACCEPT, "application/json")
            .body(form)
            .send()
            .await
            .map_err(|e| transport_error("Entra ID", &e))?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp
            .text()
            .await
            .map_err(|e| transport_error("Entra ID", &e))?;
        let parsed: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        if !status.is_success() {
            let code = parsed["error"].as_str().unwrap_or("token_error");
            // Entra ID descriptions carry trace and correlation ids on later lines.
            let description = parsed["error_description"]
                .as_str()
                .and_then(|d| d.lines().next())
                .unwrap_or("");
            let text = truncate(&format!("{code}: {description}"));
            return Err(match status.as_u16() {
                429 => DriverError::Throttled {
                    retry_after: retry_after(&headers).unwrap_or(DEFAULT_THROTTLE_WAIT),
                },
                400 | 401 | 403 => {
                    DriverError::Unauthorized(format!("Entra ID refused the token request: {text}"))
                }
                s if s >= 500 => {
                    DriverError::Unreachable(format!("Entra ID answered HTTP {s}: {text}"))
                }
                s => DriverError::Provider {
                    code: code.to_string(),
                    message: format!("Entra ID answered HTTP {s}: {text}"),
                },
            });
        }
        let Some(access_token) = parsed["access_token"].as_str().filter(|t| !t.is_empty()) else {
            return Err(DriverError::Provider {
                code: "InvalidTokenResponse".into(),
                message: "Entra ID returned no access_token".into(),
            });
        };
        let expires_in = match &parsed["expires_in"] {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.parse().ok(),
            _ => None,
        }
        .unwrap_or(0);
        let lifetime = Duration::from_secs(expires_in);
        Ok(CachedToken {
            value: Sensitive::new(access_token.to_string()),
            refresh_at: asked + lifetime.saturating_sub(TOKEN_REFRESH_MARGIN),
        })
    }

    // ----- requests -----

    /// One Resource Manager request with the bearer token; a 401 fetches a new token and
    /// repeats the request once.
    async fn call(
        &self,
        method: Method,
        url: &str,
        body: Option<&Value>,
    ) -> Result<ArmResponse, DriverError> {
        let mut refreshed = false;
        loop {
            let token = self.token().await?;
            let mut auth =
                HeaderValue::from_str(&format!("Bearer {}", token.expose())).map_err(|_| {
                    DriverError::Provider {
                        code: "InvalidTokenResponse".into(),
                        message: "Entra ID returned an access token that is not a header value"
                            .into(),
                    }
                })?;
            auth.set_sensitive(true);
            let mut request = self
                .http
                .request(method.clone(), url)
                .header(AUTHORIZATION, auth)
                .header(reqwest::header::ACCEPT, "application/json");
            if let Some(body) = body {
                request = request
                    .header(CONTENT_TYPE, "application/json")
                    .body(body.to_string());
            } else if method == Method::POST || method == Method::PUT {
                // Resource Manager wants a length on bodiless POSTs (411 otherwise); the
                // HTTP client sends none for an empty body by itself.
                request = request.header(CONTENT_LENGTH, "0");
            }
            tracing::debug!(%method, path = %path_of(url), "Resource Manager request");
            let resp = request
                .send()
                .await
                .map_err(|e| transport_error("Resource Manager", &e))?;
            let status = resp.status();
            let headers = resp.headers().clone();
            let body_text = resp
                .text()
                .await
                .map_err(|e| transport_error("Resource Manager", &e))?;
            tracing::debug!(%method, path = %path_of(url), status = status.as_u16(), "Resource Manager response");
            if status == StatusCode::UNAUTHORIZED && !refreshed {
                self.invalidate(&token).await;
                refreshed = true;
                continue;
            }
            return Ok(ArmResponse {
                status,
                headers,
                body: body_text,
            });
        }
    }

    /// Follows the operation `resp` started, for at most `limit`.
    async fn wait_for(&self, resp: &ArmResponse, limit: Duration) -> Result<Outcome, DriverError> {
        if !is_async(resp) {
            return Ok(Outcome::Done);
        }
        let deadline = Instant::now() + limit;
        let async_url = header_str(&resp.headers, "azure-asyncoperation");
        let location = header_str(&resp.headers, LOCATION.as_str());
        let (url, via_status) = match (async_url, location) {
            (Some(url), _) => (url, true),
            (None, Some(url)) => (url, false),
            (None, None) => return Ok(Outcome::StillRunning),
        };
        if !self.followable(&url) {
            tracing::warn!("not following an operation URL outside the management endpoint");
            return Ok(Outcome::StillRunning);
        }
        let mut backoff = BACKOFF_START;
        let mut wait = retry_after(&resp.headers);
        loop {
            let delay = wait.take().unwrap_or_else(|| {
                let d = backoff;
                backoff = (backoff * 2).min(BACKOFF_MAX);
                d
            });
            let now = Instant::now();
            if now >= deadline {
                return Ok(Outcome::StillRunning);
            }
            tokio::time::sleep(delay.max(POLL_FLOOR).min(deadline - now)).await;
            let poll = match self.call(Method::GET, &url, None).await {
                Ok(poll) => poll,
                Err(e) if e.is_retryable() => {
                    wait = Some(e.retry_after().min(BACKOFF_MAX));
                    continue;
                }
                Err(e) => return Err(e),
            };
            if via_status {
                if !poll.status.is_success() {
                    let error = poll.error();
                    if error.is_retryable() {
                        wait = retry_after(&poll.headers);
                        continue;
                    }
                    return Err(error);
                }
                let status = poll.json()?;
                match status["status"].as_str().unwrap_or("") {
                    s if s.eq_ignore_ascii_case("Succeeded") => return Ok(Outcome::Done),
                    s if s.eq_ignore_ascii_case("Failed") || s.eq_ignore_ascii_case("Canceled") => {
                        return Err(operation_error(s, &status["error"]));
                    }
                    _ => wait = retry_after(&poll.headers),
                }
            } else {
                match poll.status.as_u16() {
                    202 => wait = retry_after(&poll.headers),
                    200..=299 => return Ok(Outcome::Done),
                    429 => wait = Some(retry_after(&poll.headers).unwrap_or(DEFAULT_THROTTLE_WAIT)),
                    401 | 403 | 404 => return Err(poll.error()),
                    status => {
                        // The result of a failed operation is its error (ARM RPC); a 5xx
                        // without one is the gateway's and worth another poll.
                        let body: Value = serde_json::from_str(&poll.body).unwrap_or(Value::Null);
                        if body["error"]["code"].is_string() {
                            return Err(operation_error("Failed", &body["error"]));
                        }
                        if status < 500 {
                            return Err(poll.error());
                        }
                        wait = retry_after(&poll.headers);
                    }
                }
            }
        }
    }

    /// Whether an operation URL may be polled with the token: same management origin, sane size.
    fn followable(&self, url: &str) -> bool {
        url.len() <= MAX_OPERATION_URL && url.starts_with(&format!("{}/", self.management_base))
    }

    // ----- networks -----

    async fn network_for(&self, region: &str) -> Result<RegionNetwork, DriverError> {
        if let Some(network) = self.config.networks.get(region) {
            return Ok(network.clone());
        }
        if let Some(network) = self
            .ready_networks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(region)
        {
            return Ok(network.clone());
        }
        if !self.config.managed_networks {
            return Err(DriverError::InvalidSpec(format!(
                "no Azure network is configured for region {region}"
            )));
        }
        let prefix = format!("{}/providers/Microsoft.Network", self.group_path());
        let vnet_id = format!("{prefix}/virtualNetworks/vm-api-{region}");
        let tags = json!({ "managed-by": MANAGED_BY });
        self.ensure_resource(
            &vnet_id,
            &json!({
                "location": region,
                "tags": tags,
                "properties": {
                    "addressSpace": { "addressPrefixes": ["10.0.0.0/16"] },
                    "subnets": [{ "name": "default", "properties": { "addressPrefix": "10.0.0.0/24" } }]
                }
            }),
        )
        .await?;
        let network = RegionNetwork {
            subnet_id: format!("{vnet_id}/subnets/default"),
            network_security_group_id: None,
        };
        self.ready_networks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(region.to_string(), network.clone());
        Ok(network)
    }

    /// Creates a network resource unless it exists (never rewrites an existing one).
    async fn ensure_resource(&self, id: &str, body: &Value) -> Result<(), DriverError> {
        let url = self.url(id, NETWORK_API_VERSION);
        let found = self.call(Method::GET, &url, None).await?;
        if found.status.is_success() {
            return Ok(());
        }
        if found.status != StatusCode::NOT_FOUND {
            return Err(found.error());
        }
        tracing::info!(resource = %id, "creating an Azure network resource");
        let put = self.call(Method::PUT, &url, Some(body)).await?;
        if !put.status.is_success() {
            return Err(put.error());
        }
        match self.wait_for(&put, self.config.operation_timeout).await? {
            Outcome::Done => Ok(()),
            Outcome::StillRunning => Err(DriverError::Conflict(format!(
                "network resource {} is still being created",
                last_segment(id)
            ))),
        }
    }

    // ----- network security group (the VM's firewall) -----

    /// ARM id of the VM's network security group, `vm-{vmId}-nsg` in the resource group.
    fn nsg_path(&self, vm: VmId) -> String {
        format!(
            "{}/providers/Microsoft.Network/networkSecurityGroups/{}-nsg",
            self.group_path(),
            Self::vm_name(vm)
        )
    }

    /// Puts the VM's NSG whole, with exactly `rules`, and follows the operation. When it is not
    /// seen to end in time, the NSG's own `provisioningState` decides: `Succeeded` is done,
    /// anything else a retryable conflict.
    async fn put_nsg(
        &self,
        vm: VmId,
        location: &str,
        tags: &Value,
        rules: &[SecurityRule],
    ) -> Result<(), DriverError> {
        let path = self.nsg_path(vm);
        let body = json!({
            "location": location,
            "tags": tags,
            "properties": { "securityRules": nsg_rules(rules) },
        });
        let resp = self
            .call(
                Method::PUT,
                &self.url(&path, NETWORK_API_VERSION),
                Some(&body),
            )
            .await?;
        if !resp.status.is_success() {
            return Err(resp.error());
        }
        if self.wait_for(&resp, self.config.operation_timeout).await? == Outcome::Done {
            return Ok(());
        }
        let now = self
            .call(Method::GET, &self.url(&path, NETWORK_API_VERSION), None)
            .await?;
        let state = now
            .json()
            .ok()
            .and_then(|v| {
                v.pointer("/properties/provisioningState")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .unwrap_or_default();
        if now.status.is_success() && state.eq_ignore_ascii_case("Succeeded") {
            Ok(())
        } else {
            Err(DriverError::Conflict(format!(
                "network security group {} is still being updated",
                last_segment(&path)
            )))
        }
    }

    /// Deletes the VM's NSG (absent: done). While a NIC still uses it, a retryable conflict.
    async fn delete_nsg(&self, vm: VmId) -> Result<(), DriverError> {
        let path = self.nsg_path(vm);
        let resp = self
            .call(Method::DELETE, &self.url(&path, NETWORK_API_VERSION), None)
            .await?;
        if resp.status == StatusCode::NOT_FOUND || resp.status == StatusCode::NO_CONTENT {
            return Ok(());
        }
        if !resp.status.is_success() {
            return Err(match resp.error() {
                DriverError::InvalidSpec(m) if m.starts_with("InUseNetworkSecurityGroup") => {
                    DriverError::Conflict(m)
                }
                other => other,
            });
        }
        if self.wait_for(&resp, self.config.operation_timeout).await? == Outcome::StillRunning {
            tracing::info!(vm = %vm, "Azure NSG delete still running");
        }
        Ok(())
    }

    // ----- VM body and views -----

    fn vm_body(&self, spec: &VmSpec, network: &RegionNetwork) -> Result<Value, DriverError> {
        let nsg = self.nsg_path(spec.vm_id);
        let image = check_spec(spec)?;
        let login = &spec.login;
        let password = login.password.as_ref().filter(|p| !p.expose().is_empty());
        let confidential = spec.confidential == Some(ConfidentialTech::SevSnp);
        let name = Self::vm_name(spec.vm_id);

        let mut linux = Map::new();
        linux.insert(
            "disablePasswordAuthentication".into(),
            json!(password.is_none()),
        );
        if !login.public_keys.is_empty() {
            let path = format!("/home/{}/.ssh/authorized_keys", login.username);
            let keys: Vec<Value> = login
                .public_keys
                .iter()
                .map(|k| json!({ "path": path, "keyData": k.trim() }))
                .collect();
            linux.insert("ssh".into(), json!({ "publicKeys": keys }));
        }
        let mut os_profile = json!({
            "computerName": spec.name,
            "adminUsername": login.username,
            "linuxConfiguration": linux,
        });
        if let Some(password) = password {
            os_profile["adminPassword"] = json!(password.expose());
        }

        let mut managed_disk = json!({ "storageAccountType": self.config.os_disk_type });
        if confidential {
            managed_disk["securityProfile"] =
                json!({ "securityEncryptionType": "VMGuestStateOnly" });
        }
        let mut os_disk = json!({
            "name": format!("{name}-osdisk"),
            "createOption": "FromImage",
            "caching": "ReadWrite",
            "deleteOption": "Delete",
            "managedDisk": managed_disk,
        });
        if spec.disk_gb > 0 {
            os_disk["diskSizeGB"] = json!(spec.disk_gb);
        }

        let mut nic = json!({
            "primary": true,
            "deleteOption": "Delete",
            "ipConfigurations": [{
                "name": "ipconfig1",
                "properties": {
                    "primary": true,
                    "subnet": { "id": network.subnet_id },
                    "publicIPAddressConfiguration": {
                        "name": format!("{name}-pip"),
                        "sku": { "name": "Standard" },
                        "properties": { "publicIPAllocationMethod": "Static", "deleteOption": "Delete" }
                    }
                }
            }]
        });
        nic["networkSecurityGroup"] = json!({ "id": nsg });

        let mut properties = json!({
            "hardwareProfile": { "vmSize": spec.size },
            "storageProfile": {
                "imageReference": {
                    "publisher": image[0], "offer": image[1], "sku": image[2], "version": image[3]
                },
                "osDisk": os_disk,
            },
            "osProfile": os_profile,
            "networkProfile": {
                "networkApiVersion": VM_NETWORK_API_VERSION,
                "networkInterfaceConfigurations": [{ "name": format!("{name}-nic"), "properties": nic }]
            },
        });
        if confidential {
            properties["securityProfile"] = json!({
                "securityType": "ConfidentialVM",
                "uefiSettings": { "secureBootEnabled": true, "vTpmEnabled": true }
            });
        }
        Ok(json!({
            "location": spec.region,
            "tags": resource_tags(spec, &self.config.deployment),
            "properties": properties,
        }))
    }

    /// Public IPv4, public IPv6 and private IPv4 of the VM, read from its NICs and their
    /// public IP resources.
    async fn addresses(
        &self,
        vm: &Value,
        vm_path: &str,
    ) -> Result<(Option<String>, Option<String>, Option<String>), DriverError> {
        let mut nic_ids: Vec<String> = vm
            .pointer("/properties/networkProfile/networkInterfaces")
            .and_then(Value::as_array)
            .map(|nics| {
                let mut nics: Vec<&Value> = nics.iter().collect();
                // The primary NIC first.
                nics.sort_by_key(|n| {
                    !n.pointer("/properties/primary")
                        .and_then(Value::as_bool)
                        .unwrap_or(false)
                });
                nics.iter()
                    .filter_map(|n| n["id"].as_str())
                    .filter(|id| safe_arm_id(id))
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        if nic_ids.is_empty() {
            // Declared inline, the NIC has our deterministic name (it may not exist yet).
            let name = last_segment(vm_path);
            nic_ids.push(format!(
                "{}/providers/Microsoft.Network/networkInterfaces/{name}-nic",
                self.group_path()
            ));
        }
        let (mut public4, mut public6, mut private4) = (None, None, None);
        for nic_id in nic_ids {
            let resp = self
                .call(Method::GET, &self.url(&nic_id, NETWORK_API_VERSION), None)
                .await?;
            if resp.status == StatusCode::NOT_FOUND {
                continue;
            }
            if !resp.status.is_success() {
                return Err(resp.error());
            }
            let nic = resp.json()?;
            let mut configs = nic
                .pointer("/properties/ipConfigurations")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            // The primary IP configuration first: a NIC may list others before it, and their
            // private address may be a CIDR block (Network API: `privateIPAddress` "can be a
            // single IP address or a CIDR block in the format <address>/<prefix-length>").
            configs.sort_by_key(|c| {
                !c.pointer("/properties/primary")
                    .and_then(Value::as_bool)
                    .unwrap_or(false)
            });
            for config in configs {
                let props = &config["properties"];
                if private4.is_none() {
                    let version = props["privateIPAddressVersion"].as_str().unwrap_or("IPv4");
                    if version.eq_ignore_ascii_case("IPv4") {
                        private4 = props["privateIPAddress"]
                            .as_str()
                            .map(|a| a.split('/').next().unwrap_or(a).to_string());
                    }
                }
                let Some(pip_id) = props.pointer("/publicIPAddress/id").and_then(Value::as_str)
                else {
                    continue;
                };
                if !safe_arm_id(pip_id) {
                    continue;
                }
                let resp = self
                    .call(Method::GET, &self.url(pip_id, NETWORK_API_VERSION), None)
                    .await?;
                if resp.status == StatusCode::NOT_FOUND {
                    continue;
                }
                if !resp.status.is_success() {
                    return Err(resp.error());
                }
                let pip = resp.json()?;
                let Some(address) = pip.pointer("/properties/ipAddress").and_then(Value::as_str)
                else {
                    continue;
                };
                let version = pip
                    .pointer("/properties/publicIPAddressVersion")
                    .and_then(Value::as_str)
                    .unwrap_or(if address.contains(':') {
                        "IPv6"
                    } else {
                        "IPv4"
                    });
                if version.eq_ignore_ascii_case("IPv6") {
                    public6.get_or_insert_with(|| address.to_string());
                } else {
                    public4.get_or_insert_with(|| address.to_string());
                }
            }
        }
        Ok((public4, public6, private4))
    }

    /// The VMs of the resource group, every page.
    async fn list_vms(&self) -> Result<Vec<Value>, DriverError> {
        let path = format!(
            "{}/providers/Microsoft.Compute/virtualMachines",
            self.group_path()
        );
        self.list_all(&path, COMPUTE_API_VERSION, "virtual machine")
            .await
    }

    /// The network security groups of the resource group, every page.
    async fn list_nsgs(&self) -> Result<Vec<Value>, DriverError> {
        let path = format!(
            "{}/providers/Microsoft.Network/networkSecurityGroups",
            self.group_path()
        );
        self.list_all(&path, NETWORK_API_VERSION, "network security group")
            .await
    }

    /// Every item of an ARM list, page by page (`nextLink` is followed only on the
    /// management origin, and a list that does not end is an error).
    async fn list_all(
        &self,
        path: &str,
        api_version: &str,
        what: &str,
    ) -> Result<Vec<Value>, DriverError> {
        let mut next = Some(self.url(path, api_version));
        let mut seen = HashSet::new();
        let mut items = Vec::new();
        while let Some(url) = next.take() {
            if seen.len() >= MAX_LIST_PAGES || !seen.insert(url.clone()) {
                return Err(DriverError::Provider {
                    code: "InvalidResponse".into(),
                    message: format!("the {what} list does not end"),
                });
            }
            let resp = self.call(Method::GET, &url, None).await?;
            if !resp.status.is_success() {
                return Err(resp.error());
            }
            let mut page = resp.json()?;
            if let Value::Array(page_items) = page["value"].take() {
                items.extend(page_items);
            }
            next = match page["nextLink"].as_str().map(str::trim) {
                None | Some("") => None,
                Some(link) if self.followable(link) => Some(link.to_string()),
                Some(_) => {
                    return Err(DriverError::Provider {
                        code: "InvalidResponse".into(),
                        message: format!(
                            "the {what} list's nextLink leaves the management endpoint"
                        ),
                    })
                }
            };
        }
        Ok(items)
    }

    /// Runs a VM action (`start`, `deallocate`, `restart`) and follows it briefly.
    async fn action(&self, target: &CloudTarget, action: &str) -> Result<(), DriverError> {
        let path = format!("{}/{action}", self.vm_path(target));
        let resp = self
            .call(Method::POST, &self.url(&path, COMPUTE_API_VERSION), None)
            .await?;
        if resp.status == StatusCode::NOT_FOUND {
            return Err(DriverError::NotFound(format!(
                "virtual machine {}",
                last_segment(&self.vm_path(target))
            )));
        }
        if !resp.status.is_success() {
            return Err(resp.error());
        }
        if self.wait_for(&resp, self.config.operation_timeout).await? == Outcome::StillRunning {
            tracing::info!(vm = %target.vm_id, action, "Azure operation still running; state follows through get");
        }
        Ok(())
    }
}

#[async_trait]
impl CloudDriver for AzureDriver {
    fn kind(&self) -> DriverKind {
        DriverKind::Azure
    }

    fn capabilities(&self) -> Capabilities {
        Self::static_capabilities()
    }

    async fn create(&self, spec: &VmSpec) -> Result<CloudVm, DriverError> {
        check_spec(spec)?;
        nsg_rules_check(&spec.rules)?;
        let target = spec.target();
        // The firewall first (the NIC refers to it); put again on every attempt, so it holds
        // `spec.rules` also when an earlier attempt made the VM.
        self.put_nsg(
            spec.vm_id,
            &spec.region,
            &resource_tags(spec, &self.config.deployment),
            &spec.rules,
        )
        .await?;
        // An earlier attempt may have created it already: report that VM as it is.
        if let Some(existing) = self.get(&target).await? {
            return Ok(existing);
        }
        let network = self.network_for(&spec.region).await?;
        let body = self.vm_body(spec, &network)?;
        let path = self.vm_path_for(spec.vm_id);
        tracing::info!(vm = %spec.vm_id, region = %spec.region, size = %spec.size, "creating an Azure VM");
        let resp = self
            .call(
                Method::PUT,
                &self.url(&path, COMPUTE_API_VERSION),
                Some(&body),
            )
            .await?;
        drop(body);
        if !resp.status.is_success() {
            return Err(resp.error());
        }
        let outcome = if self.config.create_wait.is_zero() {
            Outcome::StillRunning
        } else {
            self.wait_for(&resp, self.config.create_wait).await?
        };
        if outcome == Outcome::Done {
            if let Some(vm) = self.get(&target).await? {
                return Ok(vm);
            }
        }
        match resp.json() {
            Ok(vm) if vm.get("properties").is_some() => Ok(map_vm(&vm, &path)),
            _ => Ok(self.get(&target).await?.unwrap_or(CloudVm {
                provider_id: path,
                state: CloudState::Provisioning,
                raw_state: String::new(),
                public_ipv4: None,
                public_ipv6: None,
                private_ipv4: None,
                confidential: None,
            })),
        }
    }

    async fn get(&self, target: &CloudTarget) -> Result<Option<CloudVm>, DriverError> {
        let path = self.vm_path(target);
        let url = format!(
            "{}&$expand=instanceView",
            self.url(&path, COMPUTE_API_VERSION)
        );
        let resp = self.call(Method::GET, &url, None).await?;
        if resp.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !resp.status.is_success() {
            return Err(resp.error());
        }
        let body = resp.json()?;
        let mut vm = map_vm(&body, &path);
        let (public4, public6, private4) = self.addresses(&body, &path).await?;
        vm.public_ipv4 = public4;
        vm.public_ipv6 = public6;
        vm.private_ipv4 = private4;
        Ok(Some(vm))
    }

    async fn start(&self, target: &CloudTarget) -> Result<(), DriverError> {
        self.action(target, "start").await
    }

    async fn stop(&self, target: &CloudTarget) -> Result<(), DriverError> {
        // Deallocate: a merely powered-off VM is still billed.
        self.action(target, "deallocate").await
    }

    async fn reboot(&self, target: &CloudTarget) -> Result<(), DriverError> {
        self.action(target, "restart").await
    }

    /// Deletes the VM (with its disk, NIC and public IP), then its NSG: at once when the VM's
    /// delete finished in time, else with the call the provisioner makes once the VM is gone.
    async fn delete(&self, target: &CloudTarget) -> Result<(), DriverError> {
        let path = self.vm_path(target);
        let resp = self
            .call(Method::DELETE, &self.url(&path, COMPUTE_API_VERSION), None)
            .await?;
        if resp.status == StatusCode::NOT_FOUND || resp.status == StatusCode::NO_CONTENT {
            return self.delete_nsg(target.vm_id).await;
        }
        if !resp.status.is_success() {
            return Err(resp.error());
        }
        if self.wait_for(&resp, self.config.operation_timeout).await? == Outcome::StillRunning {
            tracing::info!(vm = %target.vm_id, "Azure delete still running; state follows through get");
            return Ok(());
        }
        match self.delete_nsg(target.vm_id).await {
            Err(e) if e.is_retryable() => {
                tracing::info!(vm = %target.vm_id, error = %e, "Azure NSG not deleted yet; the next delete removes it");
                Ok(())
            }
            other => other,
        }
    }

    /// Puts the VM's NSG again with exactly `rules` (location and tags as they are).
    async fn apply_rules(
        &self,
        target: &CloudTarget,
        rules: &[SecurityRule],
    ) -> Result<(), DriverError> {
        nsg_rules_check(rules)?;
        let path = self.nsg_path(target.vm_id);
        let found = self
            .call(Method::GET, &self.url(&path, NETWORK_API_VERSION), None)
            .await?;
        if found.status == StatusCode::NOT_FOUND {
            return Err(DriverError::NotFound(format!(
                "network security group {}",
                last_segment(&path)
            )));
        }
        if !found.status.is_success() {
            return Err(found.error());
        }
        let current = found.json()?;
        let location = current["location"]
            .as_str()
            .filter(|l| !l.is_empty())
            .unwrap_or(&target.region)
            .to_string();
        let tags = match &current["tags"] {
            Value::Object(t) => Value::Object(t.clone()),
            _ => json!({
                "managed-by": MANAGED_BY,
                "vm-id": target.vm_id.to_string(),
                DeploymentId::TAG: self.config.deployment.as_str(),
            }),
        };
        self.put_nsg(target.vm_id, &location, &tags, rules).await
    }

    /// `GET .../resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachines` (every page):
    /// the VMs tagged `managed-by: vm-api` whose `location` is `region`, except those whose
    /// `provisioningState` is `Deleting`.
    /// Also names the NSGs of VMs that are gone (every VM of the resource group counts, one
    /// being deleted included: its own delete removes its NSG).
    async fn list_managed(&self, region: &str) -> Result<Vec<ManagedResource>, DriverError> {
        let vms = self.list_vms().await?;
        let mut found: Vec<ManagedResource> = vms
            .iter()
            .filter_map(|vm| managed_resource(vm, region))
            .collect();
        let names: HashSet<String> = vms
            .iter()
            .filter_map(|vm| vm["name"].as_str())
            .map(str::to_ascii_lowercase)
            .collect();
        for nsg in self.list_nsgs().await? {
            if let Some(orphan) = orphaned_nsg(&nsg, region, &names) {
                found.push(orphan);
            }
        }
        Ok(found)
    }

    /// Merges this deployment's tag into the VM's and its NSG's tags (Tags - Update At Scope,
    /// `PATCH {id}/providers/Microsoft.Resources/tags/default`); an absent NSG is skipped.
    async fn adopt(&self, resource: &ManagedResource) -> Result<(), DriverError> {
        let nsg = match &resource.kind {
            ManagedKind::Firewall(id) if safe_arm_id(id) => id.clone(),
            _ => self.nsg_path(resource.target.vm_id),
        };
        let mut scopes = vec![nsg];
        if let (ManagedKind::Vm, Some(vm)) = (&resource.kind, &resource.target.provider_id) {
            if !is_vm_resource_id(vm) {
                return Err(DriverError::InvalidSpec(format!("'{vm}' is not a VM id")));
            }
            scopes.insert(0, vm.clone());
        }
        let body = json!({
            "operation": "Merge",
            "properties": { "tags": { DeploymentId::TAG: self.config.deployment.as_str() } },
        });
        for (i, scope) in scopes.iter().enumerate() {
            let url = self.url(
                &format!("{scope}/providers/Microsoft.Resources/tags/default"),
                RESOURCES_API_VERSION,
            );
            let resp = self.call(Method::PATCH, &url, Some(&body)).await?;
            let optional_nsg = i + 1 == scopes.len() && resource.kind == ManagedKind::Vm;
            if resp.status == StatusCode::NOT_FOUND && optional_nsg {
                continue;
            }
            if !resp.status.is_success() {
                return Err(resp.error());
            }
        }
        Ok(())
    }
}

// ----- mapping -----

/// Tags of every resource made for a VM.
fn resource_tags(spec: &VmSpec, deployment: &DeploymentId) -> Value {
    json!({
        "managed-by": MANAGED_BY,
        DeploymentId::TAG: deployment.as_str(),
        "vm-id": spec.vm_id.to_string(),
        "team": spec.team.to_string(),
    })
}

/// Refuses rule sets an NSG cannot hold (two rules of one direction with one priority).
fn nsg_rules_check(rules: &[SecurityRule]) -> Result<(), DriverError> {
    for (i, a) in rules.iter().enumerate() {
        if let Some(b) = rules[..i]
            .iter()
            .find(|b| b.direction == a.direction && b.priority == a.priority)
        {
            return Err(DriverError::InvalidSpec(format!(
                "rules {} and {} have the same direction and priority {}",
                b.name, a.name, a.priority
            )));
        }
    }
    Ok(())
}

/// The NSG `securityRules` of a rule set: the rule's CIDR is the remote side (source of
/// inbound, destination of outbound traffic), the VM side is `*`, source ports are `*`;
/// destination ports are `*`, one range (`destinationPortRange`) or several
/// (`destinationPortRanges`).
pub fn nsg_rules(rules: &[SecurityRule]) -> Vec<Value> {
    let mut sorted: Vec<&SecurityRule> = rules.iter().collect();
    sorted.sort_by_key(|r| (r.direction == Direction::Outbound, r.priority));
    sorted
        .into_iter()
        .map(|rule| {
            let cidr = rule.cidr_block.to_string();
            let (source, destination) = match rule.direction {
                Direction::Inbound => (cidr.as_str(), "*"),
                Direction::Outbound => ("*", cidr.as_str()),
            };
            let mut props = json!({
                "priority": rule.priority,
                "direction": match rule.direction {
                    Direction::Inbound => "Inbound",
                    Direction::Outbound => "Outbound",
                },
                "access": match rule.access {
                    RuleAccess::Allow => "Allow",
                    RuleAccess::Deny => "Deny",
                },
                "protocol": match rule.protocol {
                    Protocol::Tcp => "Tcp",
                    Protocol::Udp => "Udp",
                    Protocol::Icmp => "Icmp",
                    Protocol::Any => "*",
                },
                "sourceAddressPrefix": source,
                "sourcePortRange": "*",
                "destinationAddressPrefix": destination,
            });
            match (&rule.port_range, rule.protocol) {
                (Ports::Ranges(r), Protocol::Tcp | Protocol::Udp | Protocol::Any)
                    if r.len() > 1 =>
                {
                    props["destinationPortRanges"] =
                        json!(r.iter().map(ToString::to_string).collect::<Vec<_>>());
                }
                (Ports::Ranges(r), Protocol::Tcp | Protocol::Udp | Protocol::Any)
                    if r.len() == 1 =>
                {
                    props["destinationPortRange"] = json!(r[0].to_string());
                }
                _ => props["destinationPortRange"] = json!("*"),
            }
            if !rule.description.is_empty() {
                props["description"] = json!(rule.description);
            }
            json!({ "name": rule.name.as_str(), "properties": props })
        })
        .collect()
}

/// Refuses specs Azure cannot take, before any request; returns the image URN's parts.
fn check_spec(spec: &VmSpec) -> Result<[String; 4], DriverError> {
    if spec.region.is_empty() || !spec.region.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(DriverError::InvalidSpec(format!(
            "'{}' is not an Azure region name",
            truncate(&spec.region)
        )));
    }
    let image = parse_urn(&spec.image)?;
    if spec.size.trim().is_empty() {
        return Err(DriverError::InvalidSpec("the VM size is empty".into()));
    }
    let login = &spec.login;
    if login.username.is_empty() {
        return Err(DriverError::InvalidSpec(
            "the login has no user name".into(),
        ));
    }
    let has_password = login
        .password
        .as_ref()
        .is_some_and(|p| !p.expose().is_empty());
    if !has_password && login.public_keys.is_empty() {
        return Err(DriverError::InvalidSpec(
            "an Azure Linux VM needs an SSH public key or a password".into(),
        ));
    }
    match spec.confidential {
        None | Some(ConfidentialTech::SevSnp) => Ok(image),
        Some(other) => Err(DriverError::InvalidSpec(format!(
            "the Azure driver does not request {} VMs",
            other.name()
        ))),
    }
}

/// The driver's view of a VM resource (without addresses).
fn map_vm(vm: &Value, fallback_id: &str) -> CloudVm {
    let (state, raw_state) = map_state(vm);
    let confidential = vm
        .pointer("/properties/securityProfile/securityType")
        .and_then(Value::as_str)
        .filter(|t| t.eq_ignore_ascii_case("ConfidentialVM"))
        .map(|_| ConfidentialTech::SevSnp);
    CloudVm {
        provider_id: vm["id"]
            .as_str()
            .filter(|id| safe_arm_id(id))
            .unwrap_or(fallback_id)
            .to_string(),
        state,
        raw_state,
        public_ipv4: None,
        public_ipv6: None,
        private_ipv4: None,
        confidential,
    }
}

/// A listed resource's tag reader and location, when it carries our `managed-by` tag and is in
/// `region` (an empty region: every location of the resource group).
fn ours_in<'a>(
    resource: &'a Value,
    region: &str,
) -> Option<(impl Fn(&str) -> Option<&'a str>, &'a str)> {
    let tags = resource["tags"].as_object()?;
    // ARM tag names are case-insensitive; values are not.
    let tag = move |key: &str| {
        tags.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .and_then(|(_, v)| v.as_str())
    };
    if tag("managed-by") != Some(MANAGED_BY) {
        return None;
    }
    let location = resource["location"].as_str().unwrap_or("");
    if !region.is_empty() && !same_region(location, region) {
        return None;
    }
    Some((tag, location))
}

/// A listed VM as a [`ManagedResource`], when it is ours (`managed-by` tag, a VM id from the
/// `vm-id` tag or else the name `vm-{vmId}`, both agreeing when both are there), in `region`,
/// has a usable resource id and is not being deleted.
fn managed_resource(vm: &Value, region: &str) -> Option<ManagedResource> {
    let (tag, location) = ours_in(vm, region)?;
    let name = vm["name"].as_str().unwrap_or("");
    let from_name = name.strip_prefix("vm-").and_then(|id| VmId::parse(id).ok());
    let vm_id = match (tag("vm-id").map(|t| VmId::parse(t.trim())), from_name) {
        (Some(Ok(tagged)), Some(named)) if tagged != named => {
            tracing::warn!(
                vm = name,
                "Azure VM's vm-id tag and name disagree; not listed"
            );
            return None;
        }
        (Some(Ok(tagged)), _) => tagged,
        (None, Some(named)) => named,
        _ => {
            tracing::debug!(
                vm = name,
                "Azure VM tagged managed-by without a VM id; not listed"
            );
            return None;
        }
    };
    // Later calls must reach exactly this VM: only a usable resource id will do.
    let id = vm["id"].as_str().filter(|id| is_vm_resource_id(id))?;
    let (state, raw_state) = map_state(vm);
    if state == CloudState::Deleting {
        return None;
    }
    let created_at = vm
        .pointer("/properties/timeCreated")
        .and_then(Value::as_str)
        .and_then(|t| Timestamp::parse(t).ok());
    Some(ManagedResource {
        kind: ManagedKind::Vm,
        target: CloudTarget {
            vm_id,
            region: if region.is_empty() { location } else { region }.to_string(),
            provider_id: Some(id.to_string()),
        },
        created_at,
        raw_state,
        deployment: tag(DeploymentId::TAG).map(str::to_string),
    })
}

/// A listed NSG as a [`ManagedResource`] when it is ours (`managed-by` tag, named
/// `vm-{vmId}-nsg` after the `vm-id` tag), in `region`, and its VM is not among `vm_names`
/// (lower case).
fn orphaned_nsg(nsg: &Value, region: &str, vm_names: &HashSet<String>) -> Option<ManagedResource> {
    let (tag, location) = ours_in(nsg, region)?;
    let vm_id = VmId::parse(tag("vm-id")?.trim()).ok()?;
    let vm_name = AzureDriver::vm_name(vm_id);
    let name = nsg["name"].as_str()?;
    if !name.eq_ignore_ascii_case(&format!("{vm_name}-nsg"))
        || vm_names.contains(&vm_name.to_ascii_lowercase())
    {
        return None;
    }
    let id = nsg["id"].as_str().unwrap_or(name).to_string();
    Some(ManagedResource {
        kind: ManagedKind::Firewall(id),
        target: CloudTarget {
            vm_id,
            region: if region.is_empty() { location } else { region }.to_string(),
            // No VM: delete finds none and removes the NSG.
            provider_id: None,
        },
        created_at: None,
        raw_state: nsg
            .pointer("/properties/provisioningState")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        deployment: tag(DeploymentId::TAG).map(str::to_string),
    })
}

/// Whether two Azure locations are the same (`westeurope`, `West Europe`).
fn same_region(a: &str, b: &str) -> bool {
    let norm = |s: &str| -> String {
        s.chars()
            .filter(|c| !c.is_whitespace())
            .flat_map(char::to_lowercase)
            .collect()
    };
    !a.trim().is_empty() && norm(a) == norm(b)
}

/// Normalized state and raw status code from the instance view (or, without one, from
/// `properties.provisioningState`).
fn map_state(vm: &Value) -> (CloudState, String) {
    let mut provisioning: Option<(String, String)> = None;
    let mut power: Option<String> = None;
    if let Some(statuses) = vm
        .pointer("/properties/instanceView/statuses")
        .and_then(Value::as_array)
    {
        for status in statuses {
            let code = status["code"].as_str().unwrap_or("");
            if code.len() > "ProvisioningState/".len()
                && code[.."ProvisioningState/".len()].eq_ignore_ascii_case("ProvisioningState/")
            {
                let message = status["message"]
                    .as_str()
                    .or_else(|| status["displayStatus"].as_str())
                    .unwrap_or("")
                    .to_string();
                provisioning = Some((code.to_string(), message));
            } else if code.len() > "PowerState/".len()
                && code[.."PowerState/".len()].eq_ignore_ascii_case("PowerState/")
            {
                power = Some(code.to_string());
            }
        }
    }
    if provisioning.is_none() {
        if let Some(state) = vm
            .pointer("/properties/provisioningState")
            .and_then(Value::as_str)
        {
            provisioning = Some((
                format!("ProvisioningState/{}", state.to_ascii_lowercase()),
                String::new(),
            ));
        }
    }
    if let Some((code, message)) = &provisioning {
        let detail = code["ProvisioningState/".len()..].to_ascii_lowercase();
        if detail == "failed" || detail.starts_with("failed/") {
            let reason = code["ProvisioningState/".len()..]
                .split_once('/')
                .map(|(_, reason)| reason)
                .unwrap_or("ProvisioningFailed");
            let text = if message.is_empty() {
                reason.to_string()
            } else {
                format!("{reason}: {message}")
            };
            return (CloudState::Failed(truncate(&text)), code.clone());
        }
        if detail == "deleting" {
            return (CloudState::Deleting, code.clone());
        }
        if detail == "creating" {
            return (CloudState::Provisioning, code.clone());
        }
    }
    match power {
        Some(code) => {
            let state = match code["PowerState/".len()..].to_ascii_lowercase().as_str() {
                "starting" => CloudState::Starting,
                "running" => CloudState::Running,
                "stopping" | "deallocating" => CloudState::Stopping,
                "stopped" | "deallocated" => CloudState::Stopped,
                _ => CloudState::Unknown,
            };
            (state, code)
        }
        None => (
            CloudState::Provisioning,
            provisioning.map(|(code, _)| code).unwrap_or_default(),
        ),
    }
}

/// Whether a response starts an asynchronous operation.
fn is_async(resp: &ArmResponse) -> bool {
    match resp.status.as_u16() {
        201 | 202 => true,
        200 => serde_json::from_str::<Value>(&resp.body)
            .ok()
            .and_then(|v| {
                v.pointer("/properties/provisioningState")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .is_some_and(|s| {
                !["succeeded", "failed", "canceled"].contains(&s.to_ascii_lowercase().as_str())
            }),
        _ => false,
    }
}

/// Error codes that mean quota or capacity.
fn is_quota_code(code: &str, message: &str) -> bool {
    const CODES: &[&str] = &[
        "QuotaExceeded",
        "SkuNotAvailable",
        "AllocationFailed",
        "ZonalAllocationFailed",
        "OverconstrainedAllocationRequest",
        "OverconstrainedZonalAllocationRequest",
        "PublicIPCountLimitReached",
    ];
    CODES.iter().any(|c| c.eq_ignore_ascii_case(code))
        || code.to_ascii_lowercase().contains("quota")
        || (code.eq_ignore_ascii_case("OperationNotAllowed")
            && message.to_ascii_lowercase().contains("quota"))
}

/// Error codes that mean the request cannot succeed as given.
fn is_invalid_code(code: &str) -> bool {
    const CODES: &[&str] = &[
        "InvalidParameter",
        "InvalidRequestContent",
        "InvalidRequestFormat",
        "BadRequest",
        "ImageNotFound",
        "PlatformImageNotFound",
        "InvalidApiVersionParameter",
        "LocationNotAvailableForResourceType",
        "NoRegisteredProviderFound",
        "InvalidResourceReference",
        "VMMarketplaceInvalidInput",
        "RequestDisallowedByPolicy",
        "PropertyChangeNotAllowed",
    ];
    CODES.iter().any(|c| c.eq_ignore_ascii_case(code))
}

/// Maps an unsuccessful Resource Manager response to a driver error.
fn arm_error(status: StatusCode, headers: &HeaderMap, body: &str) -> DriverError {
    let parsed: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let error = &parsed["error"];
    let code = error["code"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| {
            status
                .canonical_reason()
                .unwrap_or("HTTPError")
                .replace(' ', "")
        });
    let message = truncate(error["message"].as_str().unwrap_or(""));
    let text = if message.is_empty() {
        format!("{code} (HTTP {})", status.as_u16())
    } else {
        format!("{code}: {message}")
    };
    match status.as_u16() {
        429 => DriverError::Throttled {
            retry_after: retry_after(headers).unwrap_or(DEFAULT_THROTTLE_WAIT),
        },
        401 | 403 if !is_invalid_code(&code) => DriverError::Unauthorized(text),
        _ if is_quota_code(&code, &message) => DriverError::Quota(text),
        400 => DriverError::InvalidSpec(text),
        _ if is_invalid_code(&code) => DriverError::InvalidSpec(text),
        404 => DriverError::NotFound(text),
        409 => DriverError::Conflict(text),
        s if s >= 500 => {
            DriverError::Unreachable(format!("Resource Manager answered HTTP {s}: {text}"))
        }
        _ => DriverError::Provider { code, message },
    }
}

/// Maps a Failed or Canceled operation status to a driver error.
fn operation_error(status: &str, error: &Value) -> DriverError {
    let code = error["code"].as_str().unwrap_or(status).to_string();
    let message = truncate(
        error["message"]
            .as_str()
            .unwrap_or("the operation did not succeed"),
    );
    if is_quota_code(&code, &message) {
        DriverError::Quota(format!("{code}: {message}"))
    } else if is_invalid_code(&code) {
        DriverError::InvalidSpec(format!("{code}: {message}"))
    } else {
        DriverError::Provider { code, message }
    }
}

fn transport_error(service: &str, error: &reqwest::Error) -> DriverError {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    // reqwest errors name the URL (no secrets: the token travels in a header, the client
    // secret in the body); their own text ("error sending request") hides the cause in the
    // source chain (the connect, TLS or I/O error).
    DriverError::Unreachable(format!("{service} {kind}: {}", ErrorChain(error)))
}

// ----- small helpers -----

/// `Retry-After` in seconds.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(|s| Duration::from_secs(s.min(3600)))
}

fn header_str(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

/// An ARM resource id we are willing to put into a URL path.
fn safe_arm_id(id: &str) -> bool {
    id.starts_with("/subscriptions/")
        && !id.contains("..")
        && id.len() <= 1024
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '_' | '.' | '(' | ')'))
}

/// A VM resource id we are willing to put into a URL path.
fn is_vm_resource_id(id: &str) -> bool {
    safe_arm_id(id)
        && id
            .to_ascii_lowercase()
            .contains("/providers/microsoft.compute/virtualmachines/")
}

/// `publisher:offer:sku:version`.
fn parse_urn(urn: &str) -> Result<[String; 4], DriverError> {
    let parts: Vec<&str> = urn.split(':').map(str::trim).collect();
    match parts.as_slice() {
        [publisher, offer, sku, version] if parts.iter().all(|p| !p.is_empty()) => Ok([
            publisher.to_string(),
            offer.to_string(),
            sku.to_string(),
            version.to_string(),
        ]),
        _ => Err(DriverError::InvalidSpec(format!(
            "'{}' is not an Azure image URN (publisher:offer:sku:version)",
            truncate(urn)
        ))),
    }
}

fn last_segment(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// The path of a URL, for logs (no query).
fn path_of(url: &str) -> &str {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let path = rest.find('/').map(|i| &rest[i..]).unwrap_or("/");
    path.split('?').next().unwrap_or(path)
}

fn truncate(s: &str) -> String {
    if s.chars().count() <= MAX_MESSAGE {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(MAX_MESSAGE).collect();
        out.push('…');
        out
    }
}

/// `application/x-www-form-urlencoded` body.
fn form_encode(pairs: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (i, (key, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        percent_encode(key, &mut out);
        out.push('=');
        percent_encode(value, &mut out);
    }
    out
}

fn percent_encode(s: &str, out: &mut String) {
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A loopback port nobody listens on.
    fn closed_port() -> std::net::SocketAddr {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    }

    fn target() -> CloudTarget {
        CloudTarget {
            vm_id: VmId::new(),
            region: "r".into(),
            provider_id: None,
        }
    }

    #[tokio::test]
    async fn an_unreachable_endpoint_names_the_connection_error() {
        let base = format!("http://{}", closed_port());
        let mut config = AzureConfig::new(
            "tenant",
            "client",
            Sensitive::new("azure-client-secret-value".into()),
            "subscription",
            "group",
        );
        config.login_base = base.clone();
        config.management_base = base;
        let driver = AzureDriver::new(config).unwrap();
        let e = driver.get(&target()).await.expect_err("nobody listens");
        let DriverError::Unreachable(m) = &e else {
            panic!("{e:?}")
        };
        assert!(m.starts_with("Entra ID connection failed: "), "{m}");
        // Not only reqwest's "error sending request": the cause below it.
        assert!(m.to_lowercase().contains("connection refused"), "{m}");
        assert!(!m.contains("azure-client-secret-value"), "{m}");
    }

    #[test]
    fn form_encoding_escapes_reserved_characters() {
        assert_eq!(
            form_encode(&[("scope", MANAGEMENT_SCOPE), ("a b", "x&y=z")]),
            "scope=https%3A%2F%2Fmanagement.azure.com%2F.default&a%20b=x%26y%3Dz"
        );
    }

    #[test]
    fn states_map_from_the_instance_view() {
        let view = |codes: &[&str]| {
            json!({ "properties": { "instanceView": { "statuses":
                codes.iter().map(|c| json!({ "code": c })).collect::<Vec<_>>() } } })
        };
        let cases = [
            (vec!["ProvisioningState/creating"], CloudState::Provisioning),
            (
                vec!["ProvisioningState/succeeded"],
                CloudState::Provisioning,
            ),
            (
                vec!["ProvisioningState/succeeded", "PowerState/running"],
                CloudState::Running,
            ),
            (
                vec!["ProvisioningState/succeeded", "PowerState/starting"],
                CloudState::Starting,
            ),
            (
                vec!["ProvisioningState/succeeded", "PowerState/stopping"],
                CloudState::Stopping,
            ),
            (
                vec!["ProvisioningState/succeeded", "PowerState/deallocating"],
                CloudState::Stopping,
            ),
            (
                vec!["ProvisioningState/succeeded", "PowerState/stopped"],
                CloudState::Stopped,
            ),
            (
                vec!["ProvisioningState/updating", "PowerState/deallocated"],
                CloudState::Stopped,
            ),
            (
                vec!["ProvisioningState/succeeded", "PowerState/unknown"],
                CloudState::Unknown,
            ),
            (
                vec!["ProvisioningState/deleting", "PowerState/running"],
                CloudState::Deleting,
            ),
        ];
        for (codes, state) in cases {
            assert_eq!(map_state(&view(&codes)).0, state, "{codes:?}");
        }
        let (state, raw) = map_state(&view(&[
            "ProvisioningState/succeeded",
            "PowerState/running",
        ]));
        assert_eq!(
            (state, raw.as_str()),
            (CloudState::Running, "PowerState/running")
        );
        let failed = json!({ "properties": { "instanceView": { "statuses": [
            { "code": "ProvisioningState/failed/AllocationFailed", "message": "no capacity" }
        ] } } });
        assert_eq!(
            map_state(&failed),
            (
                CloudState::Failed("AllocationFailed: no capacity".into()),
                "ProvisioningState/failed/AllocationFailed".into()
            )
        );
        let bare = json!({ "properties": { "provisioningState": "Creating" } });
        assert_eq!(map_state(&bare).0, CloudState::Provisioning);
    }

    #[test]
    fn errors_map_by_code_before_status() {
        let body = |code: &str, message: &str| {
            json!({ "error": { "code": code, "message": message } }).to_string()
        };
        let none = HeaderMap::new();
        assert!(matches!(
            arm_error(
                StatusCode::CONFLICT,
                &none,
                &body("OperationNotAllowed", "exceeding approved quota")
            ),
            DriverError::Quota(_)
        ));
        assert!(matches!(
            arm_error(StatusCode::CONFLICT, &none, &body("Conflict", "busy")),
            DriverError::Conflict(_)
        ));
        assert!(matches!(
            arm_error(
                StatusCode::BAD_REQUEST,
                &none,
                &body("InvalidParameter", "bad")
            ),
            DriverError::InvalidSpec(_)
        ));
        assert!(matches!(
            arm_error(
                StatusCode::FORBIDDEN,
                &none,
                &body("AuthorizationFailed", "no")
            ),
            DriverError::Unauthorized(_)
        ));
        assert!(matches!(
            arm_error(StatusCode::SERVICE_UNAVAILABLE, &none, ""),
            DriverError::Unreachable(_)
        ));
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(
            arm_error(StatusCode::TOO_MANY_REQUESTS, &headers, ""),
            DriverError::Throttled {
                retry_after: Duration::from_secs(7)
            }
        );
    }

    #[test]
    fn listed_vms_are_ours_only_with_the_tag_and_an_id() {
        let vm = VmId::new();
        let other = VmId::new();
        let group =
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines";
        let listed = |name: &str, tags: Value, location: &str, state: &str| {
            json!({
                "id": format!("{group}/{name}"),
                "name": name,
                "location": location,
                "tags": tags,
                "properties": {
                    "provisioningState": state,
                    "timeCreated": "2024-05-06T07:08:09.1234567+00:00"
                }
            })
        };
        let name = format!("vm-{vm}");
        let ours = json!({ "managed-by": MANAGED_BY, "vm-id": vm.to_string() });
        let found = managed_resource(
            &listed(&name, ours.clone(), "westeurope", "Succeeded"),
            "westeurope",
        )
        .expect("ours");
        assert_eq!(found.target.vm_id, vm);
        assert_eq!(
            found.target.provider_id.as_deref(),
            Some(format!("{group}/{name}").as_str())
        );
        assert_eq!(found.raw_state, "ProvisioningState/succeeded");
        assert_eq!(
            found.created_at,
            Some(Timestamp::parse("2024-05-06T07:08:09.123Z").unwrap())
        );
        // Tag names are case-insensitive; locations may be display names.
        let upper = json!({ "Managed-By": MANAGED_BY, "VM-ID": vm.to_string() });
        assert!(managed_resource(
            &listed(&name, upper, "West Europe", "Succeeded"),
            "westeurope"
        )
        .is_some());
        // The name alone names the VM when the vm-id tag is missing.
        let by_name = json!({ "managed-by": MANAGED_BY });
        assert_eq!(
            managed_resource(
                &listed(&name, by_name.clone(), "westeurope", "Creating"),
                "westeurope"
            )
            .map(|r| r.target.vm_id),
            Some(vm)
        );
        let cases = [
            listed(
                &name,
                json!({ "vm-id": vm.to_string() }),
                "westeurope",
                "Succeeded",
            ),
            listed(
                &name,
                json!({ "managed-by": "someone-else", "vm-id": vm.to_string() }),
                "westeurope",
                "Succeeded",
            ),
            listed(&name, ours.clone(), "northeurope", "Succeeded"),
            listed(&name, ours.clone(), "westeurope", "Deleting"),
            listed(
                &format!("vm-{other}"),
                ours.clone(),
                "westeurope",
                "Succeeded",
            ),
            listed(
                &name,
                json!({ "managed-by": MANAGED_BY, "vm-id": "not-an-id" }),
                "westeurope",
                "Succeeded",
            ),
            listed("web-server", by_name, "westeurope", "Succeeded"),
            json!({ "name": name, "location": "westeurope", "tags": ours }),
        ];
        for case in cases {
            assert_eq!(managed_resource(&case, "westeurope"), None, "{case}");
        }
    }

    #[test]
    fn urns_and_ids_are_checked() {
        assert!(parse_urn("Canonical:ubuntu-24_04-lts:server:latest").is_ok());
        assert!(parse_urn("Canonical:ubuntu-24_04-lts:server").is_err());
        assert!(!safe_arm_id("/subscriptions/a/../b"));
        assert!(!safe_arm_id("/subscriptions/a?x=1"));
        assert!(safe_arm_id("/subscriptions/a/resourceGroups/rg_1.(x)/providers/Microsoft.Compute/virtualMachines/vm-1"));
    }
}
