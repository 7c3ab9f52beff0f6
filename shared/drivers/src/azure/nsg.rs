//! The VM's network security group (its firewall): put whole with exactly the VM's security
//! rules, deleted after the VM.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use vmapi_core::cloud::DriverError;
use vmapi_models::{Direction, Ports, Protocol, RuleAccess, SecurityRule, VmId};

use super::config::NETWORK_API_VERSION;
use super::driver::AzureDriver;
use super::lro::Outcome;
use super::util::last_segment;

impl AzureDriver {
    /// ARM id of the VM's network security group, `vm-{vmId}-nsg` in the resource group.
    pub(super) fn nsg_path(&self, vm: VmId) -> String {
        format!(
            "{}/providers/Microsoft.Network/networkSecurityGroups/{}-nsg",
            self.group_path(),
            Self::vm_name(vm)
        )
    }

    /// Puts the VM's NSG whole, with exactly `rules`, and follows the operation. When it is not
    /// seen to end in time, the NSG's own `provisioningState` decides: `Succeeded` is done,
    /// anything else a retryable conflict.
    pub(super) async fn put_nsg(
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
    pub(super) async fn delete_nsg(&self, vm: VmId) -> Result<(), DriverError> {
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
}

/// Refuses rule sets an NSG cannot hold (two rules of one direction with one priority).
pub(super) fn nsg_rules_check(rules: &[SecurityRule]) -> Result<(), DriverError> {
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
