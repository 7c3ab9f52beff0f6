//! The create-rule request in its three accepted shapes (neutral, Azure NSG style, AWS
//! security-group style), parsed and validated into one [`NewRule`].

use serde::{Deserialize, Serialize};

use super::cidr::Cidr;
use super::fields::{parse_description, Direction, Protocol, RuleAccess, RuleName};
use super::limits::{DEFAULT_PRIORITY, MAX_PRIORITY, MIN_PRIORITY};
use super::ports::Ports;
use super::rule::SecurityRule;
use crate::cloud::CloudKind;
use crate::ids::{SecurityRuleId, UserId, VmId};
use crate::timestamp::Timestamp;

/// `portRange` as sent: one string or an array of strings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum PortRangeInput {
    /// `"22"`, `"8000-8090"` or `"*"`.
    One(String),
    /// `["22", "443"]` (1-16 items).
    Many(Vec<String>),
}

impl PortRangeInput {
    fn items(&self) -> Vec<&str> {
        match self {
            PortRangeInput::One(s) => vec![s.as_str()],
            PortRangeInput::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

/// Body of `POST /api/security-rules`. One body for every cloud; the platform's Azure (NSG) and
/// AWS (security group) shapes are accepted too. Which fields mean what:
///
/// | neutral | Azure shape | AWS shape |
/// |---|---|---|
/// | `portRange` | `destinationPortRange` | `portRange` |
/// | `cidrBlock` | `sourceAddressPrefix` | `cidrBlock` |
/// | `source` (`*`) | `source` (`*`) | `source` (`*`) |
///
/// Give the ports once (`portRange` or `destinationPortRange`) and the addresses at most once
/// (`cidrBlock` or `sourceAddressPrefix`). Azure's `sourcePortRange`, `destination` and
/// `destinationAddressPrefix` are accepted only as `*` (rules match any source port, and the VM
/// itself as destination).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateRuleRequest {
    /// The VM the rule belongs to.
    #[cfg_attr(feature = "openapi", schema(value_type = VmId, required = true))]
    pub virtual_machine: Option<VmId>,
    /// Name (1-80 letters, digits, `.`, `_`, `-`), unique in the VM.
    #[cfg_attr(feature = "openapi", schema(value_type = String, required = true, min_length = 1, max_length = 80, pattern = "^[A-Za-z0-9]([A-Za-z0-9._-]{0,78}[A-Za-z0-9_])?$"))]
    pub name: Option<String>,
    /// Free text (at most 140 characters).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(required = false, value_type = String, max_length = 140, pattern = "^[A-Za-z0-9 ._:/()#,@\\[\\]+=&;{}!$*-]*$"))]
    pub description: Option<String>,
    /// `Inbound` (default) or `Outbound`.
    #[cfg_attr(feature = "openapi", schema(required = false, value_type = Direction))]
    pub direction: Option<String>,
    /// `Tcp`, `Udp`, `Icmp` or `*` (any); case is ignored.
    #[cfg_attr(feature = "openapi", schema(value_type = Protocol, required = true))]
    pub protocol: Option<String>,
    /// Ports: `"22"`, `"8000-8090"`, `"*"`, or an array of these.
    #[cfg_attr(feature = "openapi", schema(required = false, value_type = PortRangeInput))]
    pub port_range: Option<PortRangeInput>,
    /// Remote addresses in CIDR notation, or `*` for any IPv4 address (default).
    #[cfg_attr(feature = "openapi", schema(required = false, value_type = String))]
    pub cidr_block: Option<String>,
    /// `*`, or the same CIDR as `cidrBlock` (`sourceAddressPrefix`).
    #[cfg_attr(feature = "openapi", schema(required = false, value_type = String))]
    pub source: Option<String>,
    /// Evaluation order, lower first, 100-4096, unique per direction; default: the next free
    /// multiple of 10 from 1000.
    #[cfg_attr(feature = "openapi", schema(required = false, value_type = u32, minimum = 100, maximum = 4096))]
    pub priority: Option<u32>,
    /// `Allow` (default) or `Deny`; case is ignored.
    #[cfg_attr(feature = "openapi", schema(required = false, value_type = RuleAccess))]
    pub access: Option<String>,
    /// Azure shape: the ports.
    #[cfg_attr(feature = "openapi", schema(required = false, value_type = PortRangeInput))]
    pub destination_port_range: Option<PortRangeInput>,
    /// Azure shape: the remote addresses.
    #[cfg_attr(feature = "openapi", schema(required = false, value_type = String))]
    pub source_address_prefix: Option<String>,
    /// Azure shape: must be `*`.
    #[cfg_attr(feature = "openapi", schema(required = false, value_type = String, pattern = "^\\*$"))]
    pub source_port_range: Option<String>,
    /// Azure shape: must be `*`.
    #[cfg_attr(feature = "openapi", schema(required = false, value_type = String, pattern = "^\\*$"))]
    pub destination: Option<String>,
    /// Azure shape: must be `*`.
    #[cfg_attr(feature = "openapi", schema(required = false, value_type = String, pattern = "^\\*$"))]
    pub destination_address_prefix: Option<String>,
}

/// A validated new rule, before its VM's cloud is checked and its priority assigned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewRule {
    /// The VM.
    pub vm: VmId,
    /// Name.
    pub name: RuleName,
    /// Description.
    pub description: String,
    /// Direction.
    pub direction: Direction,
    /// Protocol.
    pub protocol: Protocol,
    /// Ports.
    pub port_range: Ports,
    /// Remote addresses.
    pub cidr_block: Cidr,
    /// Priority, if given.
    pub priority: Option<u16>,
    /// Access.
    pub access: RuleAccess,
}

fn word<T: Copy>(field: &str, s: &str, options: &[(&str, T)]) -> Result<T, (String, String)> {
    options
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(s.trim()))
        .map(|(_, v)| *v)
        .ok_or_else(|| {
            let names: Vec<String> = options.iter().map(|(n, _)| format!("\"{n}\"")).collect();
            (
                field.to_owned(),
                format!(
                    "`{}` is not one of {}",
                    crate::error::clip(s, 24),
                    names.join(", ")
                ),
            )
        })
}

impl CreateRuleRequest {
    /// Validates the body; on failure, every offending field with what is wrong.
    pub fn parse(self) -> Result<NewRule, Vec<(String, String)>> {
        let mut errors: Vec<(String, String)> = Vec::new();
        let mut err = |f: &str, m: String| errors.push((f.to_owned(), m));

        let vm = self.virtual_machine;
        if vm.is_none() {
            err("virtualMachine", "is required".into());
        }
        let name = match self.name.as_deref() {
            None => {
                err("name", "is required".into());
                None
            }
            Some(n) => RuleName::parse(n).map_err(|e| err("name", e.0)).ok(),
        };
        let description = parse_description(self.description.as_deref().unwrap_or(""))
            .map_err(|e| err("description", e.0))
            .ok();
        let direction = match self.direction.as_deref() {
            None => Some(Direction::Inbound),
            Some(s) => word(
                "direction",
                s,
                &[
                    ("Inbound", Direction::Inbound),
                    ("Outbound", Direction::Outbound),
                ],
            )
            .map_err(|(f, m)| err(&f, m))
            .ok(),
        };
        let protocol = match self.protocol.as_deref() {
            None => {
                err("protocol", "is required".into());
                None
            }
            Some(s) => word(
                "protocol",
                s,
                &[
                    ("Tcp", Protocol::Tcp),
                    ("Udp", Protocol::Udp),
                    ("Icmp", Protocol::Icmp),
                    ("*", Protocol::Any),
                ],
            )
            .map_err(|(f, m)| err(&f, m))
            .ok(),
        };
        let access = match self.access.as_deref() {
            None => Some(RuleAccess::Allow),
            Some(s) => word(
                "access",
                s,
                &[("Allow", RuleAccess::Allow), ("Deny", RuleAccess::Deny)],
            )
            .map_err(|(f, m)| err(&f, m))
            .ok(),
        };

        // Ports: `portRange` or Azure's `destinationPortRange`, not both.
        let ports = match (&self.port_range, &self.destination_port_range) {
            (Some(_), Some(_)) => {
                err(
                    "destinationPortRange",
                    "give the ports once, as portRange or destinationPortRange".into(),
                );
                None
            }
            (None, None) => match protocol {
                // ICMP has no ports: nothing to give.
                Some(Protocol::Icmp) => Some(Ports::Any),
                _ => {
                    err("portRange", "is required: a port, a range such as \"8000-8090\", \"*\", or an array of these".into());
                    None
                }
            },
            (Some(p), None) => Ports::parse(&p.items())
                .map_err(|e| err("portRange", e.0))
                .ok(),
            (None, Some(p)) => Ports::parse(&p.items())
                .map_err(|e| err("destinationPortRange", e.0))
                .ok(),
        };
        if let (Some(Protocol::Icmp), Some(Ports::Ranges(_))) = (protocol, &ports) {
            err(
                "portRange",
                "ICMP has no ports; leave portRange out or give \"*\"".into(),
            );
        }

        // Remote addresses: `cidrBlock` or `sourceAddressPrefix`, with `source` as `*` or the
        // same network.
        let cidr = match (&self.cidr_block, &self.source_address_prefix) {
            (Some(_), Some(_)) => {
                err(
                    "sourceAddressPrefix",
                    "give the addresses once, as cidrBlock or sourceAddressPrefix".into(),
                );
                None
            }
            (Some(c), None) => c.parse::<Cidr>().map_err(|e| err("cidrBlock", e.0)).ok(),
            (None, Some(c)) => c
                .parse::<Cidr>()
                .map_err(|e| err("sourceAddressPrefix", e.0))
                .ok(),
            (None, None) => match self.source.as_deref().map(str::trim) {
                None | Some("*") => Some(Cidr::any_v4()),
                Some(s) => s.parse::<Cidr>().map_err(|e| err("source", e.0)).ok(),
            },
        };
        if let (Some(source), Some(cidr)) = (self.source.as_deref().map(str::trim), cidr) {
            if source != "*" && source.parse::<Cidr>().ok() != Some(cidr) {
                err(
                    "source",
                    format!("must be \"*\" or the same network as cidrBlock ({cidr})"),
                );
            }
        }
        for (field, value) in [
            ("sourcePortRange", &self.source_port_range),
            ("destination", &self.destination),
            ("destinationAddressPrefix", &self.destination_address_prefix),
        ] {
            if let Some(v) = value {
                if v.trim() != "*" {
                    err(
                        field,
                        format!(
                            "only \"*\" is supported (got `{}`): rules match any source port and the VM itself",
                            crate::error::clip(v, 24)
                        ),
                    );
                }
            }
        }
        let priority = match self.priority {
            None => None,
            Some(p) if (MIN_PRIORITY as u32..=MAX_PRIORITY as u32).contains(&p) => Some(p as u16),
            Some(p) => {
                err(
                    "priority",
                    format!("{p} is outside {MIN_PRIORITY}-{MAX_PRIORITY}"),
                );
                None
            }
        };

        match (
            vm,
            name,
            description,
            direction,
            protocol,
            ports,
            cidr,
            access,
        ) {
            (
                Some(vm),
                Some(name),
                Some(description),
                Some(direction),
                Some(protocol),
                Some(port_range),
                Some(cidr_block),
                Some(access),
            ) if errors.is_empty() => Ok(NewRule {
                vm,
                name,
                description,
                direction,
                protocol,
                port_range,
                cidr_block,
                priority,
                access,
            }),
            _ => Err(errors),
        }
    }
}

impl NewRule {
    /// Why the VM's cloud cannot carry this rule, if it cannot (the API answers 422 with it).
    ///
    /// - Kraud.Cloud can only open or close a VM's address: an inbound rule for every protocol,
    ///   port and IPv4 address.
    /// - AWS security groups only allow, and this service leaves their default allow-all egress
    ///   rule in place: `Deny` and outbound rules are refused.
    /// - Azure NSGs take every rule.
    pub fn unsupported_on(&self, cloud: Option<CloudKind>) -> Option<String> {
        match cloud {
            Some(CloudKind::Kraud) => {
                let open_address = self.direction == Direction::Inbound
                    && self.protocol == Protocol::Any
                    && self.port_range.is_any()
                    && self.cidr_block.is_any()
                    && !self.cidr_block.is_v6();
                (!open_address).then(|| {
                    "Kraud.Cloud can only open or close a VM's public address, not filter by port, protocol or source: a rule there must be Inbound with protocol \"*\", portRange [\"*\"] and cidrBlock \"0.0.0.0/0\" (Allow opens the address, Deny closes it)".to_owned()
                })
            }
            Some(CloudKind::Aws) => {
                if self.access == RuleAccess::Deny {
                    Some("AWS security groups can only allow traffic: access \"Deny\" is not supported for AWS VMs; leave the traffic unallowed instead".into())
                } else if self.direction == Direction::Outbound {
                    Some("AWS VMs keep their security group's default rule allowing all outbound traffic, so outbound rules are not supported for AWS VMs".into())
                } else {
                    None
                }
            }
            Some(CloudKind::Azure) | None => None,
        }
    }

    /// The rule to store: `priority` is the given one or the next free one; `None` when no
    /// priority is free.
    pub fn into_rule(
        self,
        existing: &[SecurityRule],
        created_by: &UserId,
        revision: u32,
        now: Timestamp,
    ) -> Option<SecurityRule> {
        let priority = match self.priority {
            Some(p) => p,
            None => next_priority(existing, self.direction)?,
        };
        Some(SecurityRule {
            id: SecurityRuleId::new(),
            name: self.name,
            description: self.description,
            direction: self.direction,
            protocol: self.protocol,
            port_range: self.port_range,
            cidr_block: self.cidr_block,
            priority,
            access: self.access,
            created_by: created_by.to_string(),
            revision,
            created_at: now,
            updated_at: now,
        })
    }
}

/// The next free priority of a direction: the lowest multiple of 10 from 1000 above every rule
/// of that direction, else the lowest free number.
pub fn next_priority(existing: &[SecurityRule], direction: Direction) -> Option<u16> {
    let used: Vec<u16> = existing
        .iter()
        .filter(|r| r.direction == direction)
        .map(|r| r.priority)
        .collect();
    let above = used
        .iter()
        .copied()
        .filter(|p| *p >= DEFAULT_PRIORITY)
        .max()
        .map_or(DEFAULT_PRIORITY, |p| (p / 10 + 1) * 10);
    if above <= MAX_PRIORITY && !used.contains(&above) {
        return Some(above);
    }
    (MIN_PRIORITY..=MAX_PRIORITY).find(|p| !used.contains(p))
}
