//! The VM's security group `vm-api-{vmId}`: made before the launch, its ingress permissions
//! kept equal to the VM's security rules, removed after the instance is gone.

use aws_sdk_ec2::types::{Filter, IpPermission, IpRange, Ipv6Range, ResourceType};
use aws_sdk_ec2::Client;
use vmapi_core::cloud::{CloudTarget, DriverError, VmSpec};
use vmapi_models::{Direction, Ports, Protocol, RuleAccess, SecurityRule, VmId};

use super::driver::{deployment_tag, managed_by_filter, vm_id_tag, AwsDriver};
use super::errors::{error_code, map_err};
use super::instance::tags;

impl AwsDriver {
    /// The VM's security group id, found by name, `vm-id` tag and this deployment's tag.
    pub(super) async fn find_group(
        &self,
        client: &Client,
        vm: VmId,
    ) -> Result<Option<String>, DriverError> {
        self.find_group_of(client, vm, true).await
    }

    /// The VM's security group id by name and `vm-id` tag; `ours_only` also asks for this
    /// deployment's tag (off only to adopt an untagged group).
    pub(super) async fn find_group_of(
        &self,
        client: &Client,
        vm: VmId,
        ours_only: bool,
    ) -> Result<Option<String>, DriverError> {
        let mut req = client
            .describe_security_groups()
            .filters(
                Filter::builder()
                    .name("group-name")
                    .values(group_name(vm))
                    .build(),
            )
            .filters(
                Filter::builder()
                    .name("tag:vm-id")
                    .values(vm.to_string())
                    .build(),
            );
        if ours_only {
            req = req.filters(self.deployment_filter());
        }
        let out = req.send().await.map_err(map_err)?;
        Ok(out
            .security_groups()
            .iter()
            .find_map(|g| g.group_id().map(str::to_string)))
    }

    /// The VM's security group, created (in the default VPC, tagged) when it is missing.
    pub(super) async fn ensure_group(&self, spec: &VmSpec) -> Result<String, DriverError> {
        let client = self.client(&spec.region);
        if let Some(id) = self.find_group(&client, spec.vm_id).await? {
            return Ok(id);
        }
        let vpcs = client
            .describe_vpcs()
            .filters(Filter::builder().name("is-default").values("true").build())
            .send()
            .await
            .map_err(map_err)?;
        let vpc = vpcs
            .vpcs()
            .iter()
            .find_map(|v| v.vpc_id())
            .ok_or_else(|| {
                DriverError::InvalidSpec(format!("region {} has no default VPC", spec.region))
            })?
            .to_string();
        match client
            .create_security_group()
            .group_name(group_name(spec.vm_id))
            .description(format!("Firewall of VM {} (vm-api)", spec.vm_id))
            .vpc_id(&vpc)
            .tag_specifications(tags(spec, &self.deployment, ResourceType::SecurityGroup))
            .send()
            .await
        {
            Ok(out) => {
                let id = out.group_id().unwrap_or_default().to_string();
                tracing::info!(vm = %spec.vm_id, group = %id, "EC2 security group created");
                Ok(id)
            }
            // Made meanwhile by a concurrent attempt.
            Err(e) if error_code(&e).as_deref() == Some("InvalidGroup.Duplicate") => self
                .find_group(&client, spec.vm_id)
                .await?
                .ok_or_else(|| DriverError::Conflict("the security group is being created".into())),
            Err(e) => Err(map_err(e)),
        }
    }

    /// Makes the group's ingress permissions equal to `rules`: revokes the extra ones and
    /// authorizes the missing ones (one call each; a duplicate or an already revoked one counts
    /// as done, so concurrent syncs agree). Egress is left alone.
    pub(super) async fn sync_group(
        &self,
        region: &str,
        group: &str,
        rules: &[SecurityRule],
    ) -> Result<(), DriverError> {
        let desired = permissions(rules)?;
        let client = self.client(region);
        let out = client
            .describe_security_group_rules()
            .filters(Filter::builder().name("group-id").values(group).build())
            .send()
            .await
            .map_err(map_err)?;
        let mut present: Vec<Permission> = Vec::new();
        for rule in out.security_group_rules() {
            if rule.is_egress() == Some(true) || rule.group_id() != Some(group) {
                continue;
            }
            let cidr = rule
                .cidr_ipv4()
                .or(rule.cidr_ipv6())
                .and_then(|c| c.parse::<ipnet::IpNet>().ok());
            let current = cidr.map(|cidr| Permission {
                protocol: normalize_protocol(rule.ip_protocol().unwrap_or("-1")),
                from: rule.from_port().unwrap_or(-1),
                to: rule.to_port().unwrap_or(-1),
                cidr,
            });
            match current {
                Some(p) if desired.iter().any(|(d, _)| *d == p) && !present.contains(&p) => {
                    present.push(p)
                }
                // Not ours (another group, a prefix list) or not wanted any more.
                _ => {
                    let Some(id) = rule.security_group_rule_id() else {
                        continue;
                    };
                    match client
                        .revoke_security_group_ingress()
                        .group_id(group)
                        .security_group_rule_ids(id)
                        .send()
                        .await
                    {
                        Ok(_) => {}
                        Err(e)
                            if error_code(&e).as_deref() == Some("InvalidPermission.NotFound") => {}
                        Err(e) => return Err(map_err(e)),
                    }
                }
            }
        }
        for (p, description) in desired.iter().filter(|(p, _)| !present.contains(p)) {
            match client
                .authorize_security_group_ingress()
                .group_id(group)
                .ip_permissions(ip_permission(p, Some(description)))
                .send()
                .await
            {
                Ok(_) => {}
                Err(e) if error_code(&e).as_deref() == Some("InvalidPermission.Duplicate") => {}
                Err(e) => return Err(map_err(e)),
            }
        }
        Ok(())
    }

    /// Every security group of this service in the client's region, as (VM id, group id,
    /// deployment tag).
    pub(super) async fn list_groups(&self, client: &Client) -> Result<Vec<Group>, DriverError> {
        let mut groups = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let out = client
                .describe_security_groups()
                .filters(managed_by_filter())
                .set_next_token(next.take())
                .max_results(1000)
                .send()
                .await
                .map_err(map_err)?;
            for g in out.security_groups() {
                let vm_id = vm_id_tag(g.tags());
                // Only groups named as this driver names them.
                if let (Some(vm_id), Some(id)) = (vm_id, g.group_id()) {
                    if g.group_name() == Some(group_name(vm_id).as_str()) {
                        groups.push((vm_id, id.to_string(), deployment_tag(g.tags())));
                    }
                }
            }
            match out.next_token() {
                Some(t) if !t.is_empty() => next = Some(t.to_string()),
                _ => break,
            }
        }
        Ok(groups)
    }

    /// Removes the VM's security group (absent: done; still in use: retryable conflict).
    pub(super) async fn delete_group(&self, target: &CloudTarget) -> Result<(), DriverError> {
        let client = self.client(&target.region);
        let Some(id) = self.find_group(&client, target.vm_id).await? else {
            return Ok(());
        };
        match client.delete_security_group().group_id(&id).send().await {
            Ok(_) => {
                tracing::info!(vm = %target.vm_id, group = %id, "EC2 security group deleted");
                Ok(())
            }
            Err(e) => match map_err(e) {
                DriverError::NotFound(_) => Ok(()),
                other => Err(other),
            },
        }
    }
}

/// A listed security group: VM id, group id, deployment tag.
pub(super) type Group = (VmId, String, Option<String>);

/// Name of a VM's security group: `vm-api-{vmId}`.
pub fn group_name(vm: VmId) -> String {
    format!("vm-api-{vm}")
}

/// One ingress permission as the driver compares them: protocol (`tcp`, `udp`, `icmp`,
/// `icmpv6`, `-1`), port range (`-1`/`-1` where ports do not apply) and source network.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Permission {
    /// `tcp`, `udp`, `icmp`, `icmpv6` or `-1` (every protocol).
    pub protocol: String,
    /// First port (ICMP type; -1 for all).
    pub from: i32,
    /// Last port (ICMP code; -1 for all).
    pub to: i32,
    /// Source network.
    pub cidr: ipnet::IpNet,
}

/// The ingress permissions a rule set asks for (each once; the first rule's name is the
/// description). Protocol `*` with every port is `-1`; with some ports a `tcp` and a `udp`
/// permission per range; ICMP from an IPv6 network is `icmpv6`. Only inbound allow rules can
/// be expressed (the API refuses the others for AWS VMs).
pub fn permissions(rules: &[SecurityRule]) -> Result<Vec<(Permission, String)>, DriverError> {
    let mut sorted: Vec<&SecurityRule> = rules.iter().collect();
    sorted.sort_by_key(|r| r.priority);
    let mut out: Vec<(Permission, String)> = Vec::new();
    for rule in sorted {
        if rule.direction != Direction::Inbound || rule.access != RuleAccess::Allow {
            return Err(DriverError::InvalidSpec(format!(
                "AWS security groups take only inbound allow rules; rule {} is not one",
                rule.name
            )));
        }
        let cidr = rule.cidr_block.0;
        let ranges: Vec<(i32, i32)> = match &rule.port_range {
            Ports::Any => vec![(0, 65535)],
            Ports::Ranges(r) => r.iter().map(|p| (p.from.into(), p.to.into())).collect(),
        };
        let mut add = |protocol: &str, from: i32, to: i32| {
            let p = Permission {
                protocol: protocol.into(),
                from,
                to,
                cidr,
            };
            if !out.iter().any(|(q, _)| *q == p) {
                out.push((p, rule.name.to_string()));
            }
        };
        match rule.protocol {
            Protocol::Tcp | Protocol::Udp => {
                let name = if rule.protocol == Protocol::Tcp {
                    "tcp"
                } else {
                    "udp"
                };
                for (from, to) in &ranges {
                    add(name, *from, *to);
                }
            }
            Protocol::Icmp => add(
                if rule.cidr_block.is_v6() {
                    "icmpv6"
                } else {
                    "icmp"
                },
                -1,
                -1,
            ),
            Protocol::Any if rule.port_range.is_any() => add("-1", -1, -1),
            Protocol::Any => {
                for (from, to) in &ranges {
                    add("tcp", *from, *to);
                    add("udp", *from, *to);
                }
            }
        }
    }
    Ok(out)
}

/// The protocol name EC2 reports, normalized (`6` → `tcp`, `all` → `-1`, …).
pub(super) fn normalize_protocol(p: &str) -> String {
    match p.to_ascii_lowercase().as_str() {
        "6" => "tcp".into(),
        "17" => "udp".into(),
        "1" => "icmp".into(),
        "58" => "icmpv6".into(),
        "all" => "-1".into(),
        other => other.into(),
    }
}

pub(super) fn ip_permission(p: &Permission, description: Option<&str>) -> IpPermission {
    let mut b = IpPermission::builder()
        .ip_protocol(&p.protocol)
        .from_port(p.from)
        .to_port(p.to);
    match p.cidr {
        ipnet::IpNet::V4(_) => {
            b = b.ip_ranges(
                IpRange::builder()
                    .cidr_ip(p.cidr.to_string())
                    .set_description(description.map(str::to_string))
                    .build(),
            )
        }
        ipnet::IpNet::V6(_) => {
            b = b.ipv6_ranges(
                Ipv6Range::builder()
                    .cidr_ipv6(p.cidr.to_string())
                    .set_description(description.map(str::to_string))
                    .build(),
            )
        }
    }
    b.build()
}
