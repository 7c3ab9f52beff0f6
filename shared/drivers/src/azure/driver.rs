//! The [`AzureDriver`] itself: its state, construction (configuration checks, HTTP client)
//! and the Resource Manager paths and URLs of its resources.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Mutex as StdMutex;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;
use vmapi_core::cloud::{Capabilities, CloudTarget, DriverError};
use vmapi_core::ErrorChain;
use vmapi_models::{ConfidentialTech, Sensitive, VmId};

use super::config::{AzureConfig, RegionNetwork};
use super::util::{is_vm_resource_id, safe_arm_id};

pub(super) struct CachedToken {
    pub(super) value: Sensitive,
    pub(super) refresh_at: Instant,
}

/// The Azure Resource Manager driver.
pub struct AzureDriver {
    pub(super) config: AzureConfig,
    pub(super) login_base: String,
    pub(super) management_base: String,
    pub(super) http: reqwest::Client,
    pub(super) token: Mutex<Option<CachedToken>>,
    /// Networks created or found by this process, per region.
    pub(super) ready_networks: StdMutex<BTreeMap<String, RegionNetwork>>,
}

impl fmt::Debug for AzureDriver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AzureDriver")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl AzureDriver {
    /// What this driver can do, known before it is built (credentials are read lazily).
    pub fn static_capabilities() -> Capabilities {
        Capabilities {
            confidential: vec![ConfidentialTech::SevSnp],
            native_idempotency: true,
            password_login: true,
            resize: vmapi_models::CloudKind::Azure.can_resize(),
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
    pub(super) fn group_path(&self) -> String {
        format!(
            "/subscriptions/{}/resourceGroups/{}",
            self.config.subscription_id, self.config.resource_group
        )
    }

    /// ARM id of the VM a target names: its provider id when that is a VM resource id,
    /// otherwise the deterministic name in the configured resource group.
    pub(super) fn vm_path(&self, target: &CloudTarget) -> String {
        if let Some(id) = target.provider_id.as_deref() {
            if is_vm_resource_id(id) {
                return id.to_string();
            }
        }
        self.vm_path_for(target.vm_id)
    }

    pub(super) fn vm_path_for(&self, vm: VmId) -> String {
        format!(
            "{}/providers/Microsoft.Compute/virtualMachines/{}",
            self.group_path(),
            Self::vm_name(vm)
        )
    }

    pub(super) fn url(&self, path: &str, api_version: &str) -> String {
        format!("{}{path}?api-version={api_version}", self.management_base)
    }
}
