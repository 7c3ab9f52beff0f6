//! Security (firewall) rules of a VM: one cloud-neutral model, the request body in its three
//! accepted shapes (neutral, Azure NSG style, AWS security-group style), validation, and what
//! each cloud can express.
//!
//! A rule set lives in its VM's record (`VmRecord::rules`); the provisioner makes the cloud's
//! firewall equal to it (`pendingOp` `apply-rules`).

use std::fmt;
use std::str::FromStr;

use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::cloud::CloudKind;
use crate::ids::{SecurityRuleId, UserId, VmId};
use crate::timestamp::Timestamp;
use crate::ParseError;

/// Most rules one VM may have (AWS allows 60 inbound rules per security group by default).
pub const MAX_RULES_PER_VM: usize = 50;
/// Most port ranges in one rule.
pub const MAX_PORT_RANGES: usize = 16;
/// Lowest priority number (evaluated first), as on Azure.
pub const MIN_PRIORITY: u16 = 100;
/// Highest priority number, as on Azure.
pub const MAX_PRIORITY: u16 = 4096;
/// Priority of the default rule and the first priority handed out when none is given.
pub const DEFAULT_PRIORITY: u16 = 1000;
/// Longest description (Azure's limit).
pub const MAX_DESCRIPTION: usize = 140;

/// Which traffic a rule is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Direction {
    /// Traffic to the VM.
    Inbound,
    /// Traffic from the VM.
    Outbound,
}

/// IP protocol of a rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// ICMP (no ports).
    Icmp,
    /// Any protocol.
    #[serde(rename = "*")]
    Any,
}

/// Whether a rule lets traffic through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum RuleAccess {
    /// Let it through.
    Allow,
    /// Drop it.
    Deny,
}

/// An inclusive port range, `from` ≤ `to`, both 1–65535. Written `22` or `8000-8090`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortRange {
    /// First port.
    pub from: u16,
    /// Last port.
    pub to: u16,
}

impl FromStr for PortRange {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        let port = |p: &str| -> Result<u16, ParseError> {
            match p.trim().parse::<u16>() {
                Ok(n) if n >= 1 => Ok(n),
                _ => Err(ParseError(format!(
                    "`{}` is not a port (1-65535)",
                    crate::names::clip(p, 16)
                ))),
            }
        };
        let (from, to) = match s.split_once('-') {
            Some((a, b)) => (port(a)?, port(b)?),
            None => {
                let p = port(s)?;
                (p, p)
            }
        };
        if from > to {
            return Err(ParseError(format!(
                "port range {from}-{to} ends before it starts"
            )));
        }
        Ok(PortRange { from, to })
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.from == self.to {
            write!(f, "{}", self.from)
        } else {
            write!(f, "{}-{}", self.from, self.to)
        }
    }
}

/// The destination ports of a rule: every port (`["*"]`) or 1–16 non-overlapping ranges, kept
/// sorted. On the wire an array of strings (`["22"]`, `["80", "8000-8090"]`, `["*"]`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Ports {
    /// Every port.
    Any,
    /// These ranges.
    Ranges(Vec<PortRange>),
}

impl Ports {
    /// Parses the wire strings.
    pub fn parse<S: AsRef<str>>(items: &[S]) -> Result<Self, ParseError> {
        if items.is_empty() {
            return Err(ParseError(
                "give at least one port or range, or \"*\" for every port".into(),
            ));
        }
        if items.iter().any(|s| s.as_ref().trim() == "*") {
            return if items.len() == 1 {
                Ok(Ports::Any)
            } else {
                Err(ParseError(
                    "\"*\" (every port) cannot be combined with other ranges".into(),
                ))
            };
        }
        if items.len() > MAX_PORT_RANGES {
            return Err(ParseError(format!(
                "at most {MAX_PORT_RANGES} port ranges per rule"
            )));
        }
        let mut ranges = items
            .iter()
            .map(|s| s.as_ref().parse::<PortRange>())
            .collect::<Result<Vec<_>, _>>()?;
        ranges.sort();
        for pair in ranges.windows(2) {
            if pair[1].from <= pair[0].to {
                return Err(ParseError(format!(
                    "port ranges {} and {} overlap",
                    pair[0], pair[1]
                )));
            }
        }
        Ok(Ports::Ranges(ranges))
    }

    /// The wire strings.
    pub fn to_strings(&self) -> Vec<String> {
        match self {
            Ports::Any => vec!["*".into()],
            Ports::Ranges(r) => r.iter().map(ToString::to_string).collect(),
        }
    }

    /// Whether every port is meant.
    pub fn is_any(&self) -> bool {
        matches!(self, Ports::Any)
    }
}

impl Serialize for Ports {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_strings().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Ports {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let items = Vec::<String>::deserialize(d)?;
        Ports::parse(&items).map_err(serde::de::Error::custom)
    }
}

/// The remote address range of a rule (source of inbound, destination of outbound traffic): an
/// IPv4 or IPv6 network in CIDR notation with no host bits set. `*` on input means any IPv4
/// address (`0.0.0.0/0`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Cidr(pub IpNet);

impl Cidr {
    /// Every IPv4 address.
    pub fn any_v4() -> Self {
        Cidr("0.0.0.0/0".parse().expect("valid network"))
    }

    /// Whether it matches every address of its family.
    pub fn is_any(&self) -> bool {
        self.0.prefix_len() == 0
    }

    /// Whether it is an IPv6 network.
    pub fn is_v6(&self) -> bool {
        matches!(self.0, IpNet::V6(_))
    }
}

impl FromStr for Cidr {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        let s = s.trim();
        if s == "*" {
            return Ok(Cidr::any_v4());
        }
        let net: IpNet = s.parse().map_err(|_| {
            ParseError(format!(
                "`{}` is not a network in CIDR notation, e.g. 203.0.113.0/24 or \"*\"",
                crate::names::clip(s, 48)
            ))
        })?;
        if net.trunc() != net {
            return Err(ParseError(format!(
                "{net} has host bits set; the network is {}",
                net.trunc()
            )));
        }
        Ok(Cidr(net))
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Serialize for Cidr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A rule name: 1–80 characters, letters, digits, `.`, `_` and `-`, starting with a letter or
/// digit and ending with a letter, digit or `_` (Azure's rule-name rule, so every cloud takes
/// it). Unique among one VM's rules, ignoring case.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct RuleName(String);

impl RuleName {
    /// Longest name.
    pub const MAX_LEN: usize = 80;

    /// Parses a name.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
        let first_ok = s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
        let last_ok = s
            .chars()
            .last()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        if s.is_empty()
            || s.len() > Self::MAX_LEN
            || !s.chars().all(ok_char)
            || !first_ok
            || !last_ok
        {
            return Err(ParseError(format!(
                "`{}` is not a rule name: 1-{} letters, digits, '.', '_' or '-', starting with a letter or digit and ending with a letter, digit or '_'",
                crate::names::clip(s, 40),
                Self::MAX_LEN
            )));
        }
        Ok(RuleName(s.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for RuleName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        RuleName::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for RuleName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Checks a description: at most 140 characters from the set AWS takes in security-group rule
/// descriptions (letters, digits, spaces and `._-:/()#,@[]+=&;{}!$*`), so it works on every cloud.
pub fn parse_description(s: &str) -> Result<String, ParseError> {
    let ok = |c: char| c.is_ascii_alphanumeric() || " ._-:/()#,@[]+=&;{}!$*".contains(c);
    if s.chars().count() > MAX_DESCRIPTION {
        return Err(ParseError(format!("at most {MAX_DESCRIPTION} characters")));
    }
    if let Some(bad) = s.chars().find(|c| !ok(*c)) {
        return Err(ParseError(format!(
            "{bad:?} is not allowed; use letters, digits, spaces and ._-:/()#,@[]+=&;{{}}!$*"
        )));
    }
    Ok(s.to_owned())
}

/// One security rule of a VM, as stored in the VM's record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecurityRule {
    /// Id.
    #[serde(rename = "_id")]
    pub id: SecurityRuleId,
    /// Name, unique in the VM (ignoring case).
    pub name: RuleName,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// Inbound or outbound.
    pub direction: Direction,
    /// Protocol.
    pub protocol: Protocol,
    /// Destination ports.
    pub port_range: Ports,
    /// Remote addresses.
    pub cidr_block: Cidr,
    /// Evaluation order (lower first), unique per direction in the VM.
    pub priority: u16,
    /// Allow or deny.
    pub access: RuleAccess,
    /// Who made it (`system` for the default rule).
    pub created_by: String,
    /// The VM's `rulesRevision` that added it: the rule is in the cloud once the VM's
    /// `rulesApplied` reaches it.
    pub revision: u32,
    /// Created.
    pub created_at: Timestamp,
    /// Last changed.
    pub updated_at: Timestamp,
}

impl SecurityRule {
    /// Name of the default inbound SSH rule made with each VM.
    pub const DEFAULT_SSH: &'static str = "AllowAnySSHInbound";
    /// Name of the default rule of Kraud.Cloud VMs (whose firewall can only open or close the
    /// VM's address, which covers SSH).
    pub const DEFAULT_OPEN: &'static str = "AllowAnyInbound";

    /// The default rule a new VM on `cloud` gets: inbound TCP 22 from anywhere, or on
    /// Kraud.Cloud the open address.
    pub fn default_for(cloud: Option<CloudKind>, revision: u32, now: Timestamp) -> Self {
        let address_only = cloud == Some(CloudKind::Kraud);
        SecurityRule {
            id: SecurityRuleId::new(),
            name: RuleName(
                if address_only {
                    Self::DEFAULT_OPEN
                } else {
                    Self::DEFAULT_SSH
                }
                .into(),
            ),
            description: "Created with the VM".into(),
            direction: Direction::Inbound,
            protocol: if address_only {
                Protocol::Any
            } else {
                Protocol::Tcp
            },
            port_range: if address_only {
                Ports::Any
            } else {
                Ports::Ranges(vec![PortRange { from: 22, to: 22 }])
            },
            cidr_block: Cidr::any_v4(),
            priority: DEFAULT_PRIORITY,
            access: RuleAccess::Allow,
            created_by: "system".into(),
            revision,
            created_at: now,
            updated_at: now,
        }
    }

    /// The wire form; `applied` says whether the cloud has it (`rules_applied >= revision`).
    pub fn to_wire(&self, vm: VmId, rules_applied: u32) -> SecurityRuleView {
        SecurityRuleView {
            id: self.id,
            rule: self.id,
            virtual_machine: vm,
            name: self.name.clone(),
            description: self.description.clone(),
            direction: self.direction,
            protocol: self.protocol,
            port_range: self.port_range.to_strings(),
            source: if self.cidr_block.is_any() {
                "*".into()
            } else {
                self.cidr_block.to_string()
            },
            cidr_block: self.cidr_block.to_string(),
            priority: self.priority,
            access: self.access,
            applied: rules_applied >= self.revision,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

/// A security rule on the wire (201 of create, items of the list).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct SecurityRuleView {
    /// Id.
    #[serde(rename = "_id")]
    pub id: SecurityRuleId,
    /// The same id (the platform's `rule` field).
    pub rule: SecurityRuleId,
    /// The VM.
    pub virtual_machine: VmId,
    /// Name.
    #[cfg_attr(feature = "openapi", schema(value_type = String, min_length = 1, max_length = 80))]
    pub name: RuleName,
    /// Free text.
    pub description: String,
    /// Inbound or outbound.
    pub direction: Direction,
    /// Protocol.
    pub protocol: Protocol,
    /// Destination ports: `["*"]` or ranges such as `["22"]`, `["8000-8090"]`.
    pub port_range: Vec<String>,
    /// `*` for any address, else the CIDR.
    pub source: String,
    /// Remote addresses in CIDR notation.
    pub cidr_block: String,
    /// Evaluation order, lower first (100-4096).
    pub priority: u16,
    /// Allow or deny.
    pub access: RuleAccess,
    /// Whether the VM's cloud firewall has this rule yet.
    pub applied: bool,
    /// Created.
    pub created_at: Timestamp,
    /// Last changed.
    pub updated_at: Timestamp,
}

/// Body of `DELETE /api/security-rules/{id}`'s 200.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct RuleDeleted {
    /// `Security rule deleted`.
    pub message: String,
    /// The rule.
    pub rule_id: SecurityRuleId,
    /// Its VM.
    pub vm_id: VmId,
}

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
                    crate::names::clip(s, 24),
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
                            crate::names::clip(v, 24)
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: serde_json::Value) -> Result<NewRule, Vec<(String, String)>> {
        serde_json::from_value::<CreateRuleRequest>(v)
            .expect("body shape")
            .parse()
    }

    fn fields(v: serde_json::Value) -> Vec<String> {
        parse(v).unwrap_err().into_iter().map(|(f, _)| f).collect()
    }

    const VM: &str = "6549fc8570c99a149c79193f";

    #[test]
    fn the_platforms_aws_example_parses() {
        let r = parse(
            json!({ "protocol": "Tcp", "direction": "Inbound", "portRange": ["22"], "name": "SSH",
            "description": "", "source": "*", "cidrBlock": "0.0.0.0/0", "virtualMachine": VM }),
        )
        .unwrap();
        assert_eq!(r.protocol, Protocol::Tcp);
        assert_eq!(
            r.port_range,
            Ports::Ranges(vec![PortRange { from: 22, to: 22 }])
        );
        assert_eq!(r.cidr_block.to_string(), "0.0.0.0/0");
        assert_eq!(r.access, RuleAccess::Allow);
        assert_eq!(r.priority, None);
    }

    #[test]
    fn the_platforms_azure_example_parses() {
        let r = parse(
            json!({ "source": "*", "sourcePortRange": "*", "sourceAddressPrefix": "*",
            "destination": "*", "destinationPortRange": "8080", "destinationAddressPrefix": "*",
            "protocol": "*", "access": "Allow", "priority": 100, "direction": "Inbound",
            "name": "Any", "description": "", "virtualMachine": "6549fc7a70c99a149c7918e8" }),
        )
        .unwrap();
        assert_eq!(r.protocol, Protocol::Any);
        assert_eq!(r.port_range.to_strings(), vec!["8080"]);
        assert_eq!(r.priority, Some(100));
        assert!(r.cidr_block.is_any());
    }

    #[test]
    fn the_neutral_body_takes_ranges_and_case_insensitive_words() {
        let r = parse(
            json!({ "virtualMachine": VM, "name": "web", "protocol": "udp",
            "direction": "outbound", "access": "deny", "portRange": ["8000-8090", "53"],
            "cidrBlock": "2001:db8::/32", "priority": 4096 }),
        )
        .unwrap();
        assert_eq!(r.port_range.to_strings(), vec!["53", "8000-8090"]);
        assert_eq!(r.direction, Direction::Outbound);
        assert_eq!(r.access, RuleAccess::Deny);
        assert!(r.cidr_block.is_v6());
        let r = parse(json!({ "virtualMachine": VM, "name": "ping", "protocol": "Icmp" })).unwrap();
        assert!(r.port_range.is_any());
    }

    #[test]
    fn every_bad_field_is_named() {
        assert_eq!(
            fields(json!({})),
            vec!["virtualMachine", "name", "protocol", "portRange"]
        );
        assert_eq!(
            fields(
                json!({ "virtualMachine": VM, "name": "-bad", "protocol": "gre", "portRange": "0",
                "cidrBlock": "10.0.0.1/8", "priority": 99, "direction": "in", "access": "maybe" })
            ),
            vec![
                "name",
                "direction",
                "protocol",
                "access",
                "portRange",
                "cidrBlock",
                "priority"
            ]
        );
        let base = json!({ "virtualMachine": VM, "name": "a", "protocol": "Tcp" });
        let with = |k: &str, v: serde_json::Value| {
            let mut b = base.clone();
            b[k] = v;
            if k != "portRange" {
                b["portRange"] = json!("22");
            }
            fields(b)
        };
        assert_eq!(with("portRange", json!("70000")), vec!["portRange"]);
        assert_eq!(with("portRange", json!("90-80")), vec!["portRange"]);
        assert_eq!(with("portRange", json!(["80", "70-90"])), vec!["portRange"]);
        assert_eq!(with("portRange", json!(["*", "22"])), vec!["portRange"]);
        assert_eq!(with("portRange", json!([])), vec!["portRange"]);
        assert_eq!(with("cidrBlock", json!("300.0.0.0/8")), vec!["cidrBlock"]);
        assert_eq!(with("cidrBlock", json!("10.0.0.0/33")), vec!["cidrBlock"]);
        assert_eq!(with("source", json!("10.0.0.1/8")), vec!["source"]);
        assert_eq!(
            fields(
                json!({ "virtualMachine": VM, "name": "a", "protocol": "Tcp", "portRange": "22",
                "cidrBlock": "10.0.0.0/8", "source": "10.1.0.0/16" })
            ),
            vec!["source"]
        );
        assert_eq!(
            with("sourcePortRange", json!("1024")),
            vec!["sourcePortRange"]
        );
        assert_eq!(
            with("destinationAddressPrefix", json!("10.0.0.4")),
            vec!["destinationAddressPrefix"]
        );
        assert_eq!(
            with("destinationPortRange", json!("22")),
            vec!["destinationPortRange"]
        );
        assert_eq!(with("description", json!("é")), vec!["description"]);
        assert_eq!(
            with("description", json!("x".repeat(141))),
            vec!["description"]
        );
        assert_eq!(with("name", json!("x".repeat(81))), vec!["name"]);
        let mut icmp = base.clone();
        icmp["protocol"] = json!("Icmp");
        icmp["portRange"] = json!("22");
        assert_eq!(fields(icmp), vec!["portRange"]);
    }

    #[test]
    fn unknown_fields_are_refused_by_the_body_shape() {
        let e = serde_json::from_value::<CreateRuleRequest>(json!({ "name": "a", "fromPort": 22 }))
            .unwrap_err();
        assert!(e.to_string().contains("fromPort"), "{e}");
    }

    #[test]
    fn source_may_repeat_the_network() {
        let r = parse(
            json!({ "virtualMachine": VM, "name": "a", "protocol": "Tcp", "portRange": "22",
            "source": "203.0.113.0/24" }),
        )
        .unwrap();
        assert_eq!(r.cidr_block.to_string(), "203.0.113.0/24");
    }

    #[test]
    fn clouds_refuse_what_they_cannot_express() {
        let rule = |v: serde_json::Value| parse(v).unwrap();
        let ssh = rule(
            json!({ "virtualMachine": VM, "name": "a", "protocol": "Tcp", "portRange": "22" }),
        );
        assert!(ssh
            .unsupported_on(Some(CloudKind::Kraud))
            .unwrap()
            .contains("Kraud.Cloud"));
        assert_eq!(ssh.unsupported_on(Some(CloudKind::Aws)), None);
        assert_eq!(ssh.unsupported_on(Some(CloudKind::Azure)), None);
        let open =
            rule(json!({ "virtualMachine": VM, "name": "a", "protocol": "*", "portRange": "*" }));
        assert_eq!(open.unsupported_on(Some(CloudKind::Kraud)), None);
        let deny = rule(
            json!({ "virtualMachine": VM, "name": "a", "protocol": "*", "portRange": "*", "access": "Deny" }),
        );
        assert_eq!(deny.unsupported_on(Some(CloudKind::Kraud)), None);
        assert!(deny
            .unsupported_on(Some(CloudKind::Aws))
            .unwrap()
            .contains("Deny"));
        let out = rule(
            json!({ "virtualMachine": VM, "name": "a", "protocol": "Tcp", "portRange": "443", "direction": "Outbound" }),
        );
        assert!(out
            .unsupported_on(Some(CloudKind::Aws))
            .unwrap()
            .contains("outbound"));
        assert_eq!(out.unsupported_on(Some(CloudKind::Azure)), None);
    }

    #[test]
    fn priorities_are_handed_out_per_direction() {
        let now = Timestamp::now();
        let user = UserId::parse("u1").unwrap();
        let mut rules = vec![SecurityRule::default_for(Some(CloudKind::Aws), 1, now)];
        assert_eq!(next_priority(&rules, Direction::Inbound), Some(1010));
        assert_eq!(next_priority(&rules, Direction::Outbound), Some(1000));
        let r = parse(json!({ "virtualMachine": VM, "name": "b", "protocol": "Tcp", "portRange": "80", "priority": 4096 }))
            .unwrap()
            .into_rule(&rules, &user, 2, now)
            .unwrap();
        rules.push(r);
        // 4096 is taken and nothing fits above it: the lowest free number.
        assert_eq!(next_priority(&rules, Direction::Inbound), Some(100));
    }

    #[test]
    fn stored_rules_round_trip_and_show_on_the_wire() {
        let now = Timestamp::now();
        let vm = VmId::parse(VM).unwrap();
        let rule = SecurityRule::default_for(None, 3, now);
        let back: SecurityRule =
            serde_json::from_value(serde_json::to_value(&rule).unwrap()).unwrap();
        assert_eq!(back, rule);
        let wire = serde_json::to_value(rule.to_wire(vm, 2)).unwrap();
        assert_eq!(wire["name"], "AllowAnySSHInbound");
        assert_eq!(wire["portRange"], json!(["22"]));
        assert_eq!(wire["protocol"], "Tcp");
        assert_eq!(wire["source"], "*");
        assert_eq!(wire["cidrBlock"], "0.0.0.0/0");
        assert_eq!(wire["rule"], wire["_id"]);
        assert_eq!(wire["virtualMachine"], VM);
        assert_eq!(wire["applied"], false);
        assert!(rule.to_wire(vm, 3).applied);
        let kraud = SecurityRule::default_for(Some(CloudKind::Kraud), 1, now);
        assert_eq!(kraud.to_wire(vm, 0).port_range, vec!["*"]);
        assert_eq!(kraud.protocol, Protocol::Any);
    }
}
