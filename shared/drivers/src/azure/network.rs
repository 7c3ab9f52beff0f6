//! The VMs' networks: the region's subnet (a managed virtual network created once when none is
//! configured) and the VM's addresses read from its NICs and public IPs.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use vmapi_core::cloud::DriverError;

use super::config::{RegionNetwork, MANAGED_BY, NETWORK_API_VERSION};
use super::driver::AzureDriver;
use super::lro::Outcome;
use super::util::{last_segment, safe_arm_id};

impl AzureDriver {
    pub(super) async fn network_for(&self, region: &str) -> Result<RegionNetwork, DriverError> {
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
    pub(super) async fn ensure_resource(&self, id: &str, body: &Value) -> Result<(), DriverError> {
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

    /// Public IPv4, public IPv6 and private IPv4 of the VM, read from its NICs and their
    /// public IP resources.
    pub(super) async fn addresses(
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
}
