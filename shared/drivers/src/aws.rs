//! AWS EC2 driver (`aws-sdk-ec2`). Instances are found by their `vm-id` and deployment tags
//! (`vm-api-deployment`: a driver finds only its own deployment's), created with
//! `ClientToken` = the VM's idempotency key, and get their login through cloud-init user data
//! (public keys and a password hash only).
//!
//! Each VM has its own security group `vm-api-{vmId}` (tagged like the instance, in the default
//! VPC), made before the launch and removed after the instance is gone. Its ingress permissions
//! are kept equal to the VM's security rules; egress keeps the allow-all rule AWS creates.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_ec2::types::{
    AmdSevSnpSpecification, CpuOptionsRequest, Filter, Instance, InstanceStateName, InstanceType,
    IpPermission, IpRange, Ipv6Range, ResourceType, Tag, TagSpecification,
};
use aws_sdk_ec2::Client;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use vmapi_core::cloud::{
    Capabilities, CloudDriver, CloudState, CloudTarget, CloudVm, DriverError, DriverKind,
    LoginSpec, ManagedKind, ManagedResource, VmSpec,
};
use vmapi_core::ErrorChain;
use vmapi_models::{
    ConfidentialTech, DeploymentId, Direction, Ports, Protocol, RuleAccess, SecurityRule,
    Timestamp, VmId,
};

/// Tag on everything the service creates.
pub const MANAGED_BY: (&str, &str) = ("managed-by", "vm-api");

/// EC2 in every region the catalog names (one client per region, made on first use).
pub struct AwsDriver {
    sdk: SdkConfig,
    deployment: DeploymentId,
    clients: Mutex<HashMap<String, Client>>,
}

impl AwsDriver {
    /// A driver over the SDK configuration (credentials from the function's role) that tags
    /// what it makes with `deployment` and finds only what carries it.
    pub fn new(sdk: SdkConfig, deployment: DeploymentId) -> Self {
        AwsDriver {
            sdk,
            deployment,
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// A driver that uses `client` for every region (tests with mocked clients).
    pub fn with_client(sdk: SdkConfig, region: &str, client: Client) -> Self {
        let driver = AwsDriver::new(sdk, DeploymentId::local());
        driver
            .clients
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(region.to_string(), client);
        driver
    }

    fn client(&self, region: &str) -> Client {
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        clients
            .entry(region.to_string())
            .or_insert_with(|| {
                let conf = aws_sdk_ec2::config::Builder::from(&self.sdk)
                    .region(aws_sdk_ec2::config::Region::new(region.to_string()))
                    .build();
                Client::from_conf(conf)
            })
            .clone()
    }

    /// The live (not terminated) instance carrying our VM id, newest first.
    async fn find(&self, target: &CloudTarget) -> Result<Option<Instance>, DriverError> {
        let client = self.client(&target.region);
        let out = client
            .describe_instances()
            .filters(
                Filter::builder()
                    .name("tag:vm-id")
                    .values(target.vm_id.to_string())
                    .build(),
            )
            .filters(self.deployment_filter())
            .send()
            .await
            .map_err(map_err)?;
        let mut instances: Vec<Instance> = out
            .reservations()
            .iter()
            .flat_map(|r| r.instances().iter().cloned())
            .collect();
        instances.sort_by_key(|i| std::cmp::Reverse(i.launch_time().map(|t| t.secs())));
        let live = instances.iter().find(|i| {
            !matches!(
                i.state().and_then(|s| s.name()),
                Some(InstanceStateName::Terminated)
            )
        });
        Ok(live.or(instances.first()).cloned())
    }

    /// The VM's security group id, found by name, `vm-id` tag and this deployment's tag.
    async fn find_group(&self, client: &Client, vm: VmId) -> Result<Option<String>, DriverError> {
        self.find_group_of(client, vm, true).await
    }

    /// The VM's security group id by name and `vm-id` tag; `ours_only` also asks for this
    /// deployment's tag (off only to adopt an untagged group).
    async fn find_group_of(
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
    async fn ensure_group(&self, spec: &VmSpec) -> Result<String, DriverError> {
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
    async fn sync_group(
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

    /// The filter on this deployment's tag.
    fn deployment_filter(&self) -> Filter {
        Filter::builder()
            .name(format!("tag:{}", DeploymentId::TAG))
            .values(self.deployment.as_str())
            .build()
    }

    /// Every security group of this service in the client's region, as (VM id, group id,
    /// deployment tag).
    async fn list_groups(&self, client: &Client) -> Result<Vec<Group>, DriverError> {
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
    async fn delete_group(&self, target: &CloudTarget) -> Result<(), DriverError> {
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

    /// Starts, stops or reboots the target's live instance (none: `NotFound`).
    async fn instance_action(
        &self,
        target: &CloudTarget,
        action: InstanceAction,
    ) -> Result<(), DriverError> {
        let id = self
            .instance_id(target)
            .await?
            .ok_or_else(|| DriverError::NotFound(format!("instance of VM {}", target.vm_id)))?;
        let client = self.client(&target.region);
        match action {
            InstanceAction::Start => client
                .start_instances()
                .instance_ids(id)
                .send()
                .await
                .map(drop)
                .map_err(map_err),
            InstanceAction::Stop => client
                .stop_instances()
                .instance_ids(id)
                .send()
                .await
                .map(drop)
                .map_err(map_err),
            InstanceAction::Reboot => client
                .reboot_instances()
                .instance_ids(id)
                .send()
                .await
                .map(drop)
                .map_err(map_err),
        }
    }

    async fn instance_id(&self, target: &CloudTarget) -> Result<Option<String>, DriverError> {
        if let Some(id) = &target.provider_id {
            return Ok(Some(id.clone()));
        }
        Ok(self
            .find(target)
            .await?
            .filter(|i| !is_terminated(i))
            .and_then(|i| i.instance_id().map(str::to_string)))
    }
}

/// The instance actions of [`AwsDriver::instance_action`].
#[derive(Clone, Copy, Debug)]
enum InstanceAction {
    Start,
    Stop,
    Reboot,
}

/// The filter on this service's tag (`managed-by=vm-api`).
fn managed_by_filter() -> Filter {
    Filter::builder()
        .name(format!("tag:{}", MANAGED_BY.0))
        .values(MANAGED_BY.1)
        .build()
}

/// A listed security group: VM id, group id, deployment tag.
type Group = (VmId, String, Option<String>);

/// The value of a resource's deployment tag.
fn deployment_tag(tags: &[aws_sdk_ec2::types::Tag]) -> Option<String> {
    tags.iter()
        .find(|t| t.key() == Some(DeploymentId::TAG))
        .and_then(|t| t.value())
        .map(str::to_string)
}

/// The VM id in a resource's `vm-id` tag.
fn vm_id_tag(tags: &[aws_sdk_ec2::types::Tag]) -> Option<VmId> {
    tags.iter()
        .find(|t| t.key() == Some("vm-id"))
        .and_then(|t| t.value())
        .and_then(|v| v.parse::<VmId>().ok())
}

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
fn normalize_protocol(p: &str) -> String {
    match p.to_ascii_lowercase().as_str() {
        "6" => "tcp".into(),
        "17" => "udp".into(),
        "1" => "icmp".into(),
        "58" => "icmpv6".into(),
        "all" => "-1".into(),
        other => other.into(),
    }
}

fn ip_permission(p: &Permission, description: Option<&str>) -> IpPermission {
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

/// The error code of an SDK error, if EC2 answered one.
fn error_code<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> Option<String> {
    match e {
        SdkError::ServiceError(se) => se.err().code().map(str::to_string),
        _ => None,
    }
}

fn is_terminated(i: &Instance) -> bool {
    matches!(
        i.state().and_then(|s| s.name()),
        Some(InstanceStateName::Terminated)
    )
}

/// The cloud-init user data that installs the login: public keys and a password hash only.
pub fn cloud_init(login: &LoginSpec) -> String {
    let q = |s: &str| serde_json_string(s);
    let mut out = String::from("#cloud-config\n");
    out.push_str("disable_root: false\n");
    out.push_str(&format!(
        "ssh_pwauth: {}\n",
        if login.password_hash.is_some() {
            "true"
        } else {
            "false"
        }
    ));
    out.push_str("users:\n  - default\n");
    out.push_str(&format!("  - name: {}\n", q(&login.username)));
    if login.username != "root" {
        out.push_str("    sudo: \"ALL=(ALL) NOPASSWD:ALL\"\n    shell: /bin/bash\n");
    }
    match &login.password_hash {
        Some(hash) => out.push_str(&format!(
            "    lock_passwd: false\n    hashed_passwd: {}\n",
            q(hash)
        )),
        None => out.push_str("    lock_passwd: true\n"),
    }
    if !login.public_keys.is_empty() {
        out.push_str("    ssh_authorized_keys:\n");
        for k in &login.public_keys {
            out.push_str(&format!("      - {}\n", q(k)));
        }
    }
    out
}

/// A YAML double-quoted scalar (JSON string syntax is valid YAML).
fn serde_json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn tags(spec: &VmSpec, deployment: &DeploymentId, kind: ResourceType) -> TagSpecification {
    let tag = |k: &str, v: String| Tag::builder().key(k).value(v).build();
    TagSpecification::builder()
        .resource_type(kind)
        .tags(tag(MANAGED_BY.0, MANAGED_BY.1.into()))
        .tags(tag(DeploymentId::TAG, deployment.to_string()))
        .tags(tag("vm-id", spec.vm_id.to_string()))
        .tags(tag("team", spec.team.to_string()))
        .tags(tag("Name", spec.name.clone()))
        .build()
}

/// The normalized view of an instance.
pub fn view(i: &Instance) -> CloudVm {
    let name = i.state().and_then(|s| s.name()).cloned();
    let state = match &name {
        Some(InstanceStateName::Pending) => CloudState::Provisioning,
        Some(InstanceStateName::Running) => CloudState::Running,
        Some(InstanceStateName::Stopping) => CloudState::Stopping,
        Some(InstanceStateName::Stopped) => CloudState::Stopped,
        Some(InstanceStateName::ShuttingDown) => CloudState::Deleting,
        Some(InstanceStateName::Terminated) => CloudState::Deleted,
        _ => CloudState::Unknown,
    };
    let sev_snp = i
        .cpu_options()
        .and_then(|c| c.amd_sev_snp())
        .is_some_and(|s| s.as_str().eq_ignore_ascii_case("enabled"));
    CloudVm {
        provider_id: i.instance_id().unwrap_or_default().to_string(),
        raw_state: name
            .map(|n| n.as_str().to_string())
            .unwrap_or_else(|| "unknown".into()),
        public_ipv4: i.public_ip_address().map(str::to_string),
        public_ipv6: i.ipv6_address().map(str::to_string),
        private_ipv4: i.private_ip_address().map(str::to_string),
        confidential: sev_snp.then_some(ConfidentialTech::SevSnp),
        state,
    }
}

const QUOTA: [&str; 5] = [
    "InsufficientInstanceCapacity",
    "InstanceLimitExceeded",
    "VcpuLimitExceeded",
    "MaxSpotInstanceCountExceeded",
    "InsufficientCapacity",
];

/// Maps an SDK error to the driver taxonomy, keeping the real cause: a service error's code
/// and message; for a dispatch, timeout or response error (unreachable: never shown to users)
/// the whole source chain, down to the I/O, TLS or parse error, where the SDK's own text says
/// only "dispatch failure". A request the SDK could not even build (a bug of ours) keeps the
/// SDK's short text, which becomes the VM's status reason, and logs its cause here.
pub fn map_err<E, R>(e: SdkError<E, R>) -> DriverError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + 'static,
{
    match &e {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) | SdkError::ResponseError(_) => {
            DriverError::Unreachable(ErrorChain(&e).to_string())
        }
        SdkError::ServiceError(se) => {
            let code = se.err().code().unwrap_or("Unknown").to_string();
            let message = se.err().message().unwrap_or("").to_string();
            match code.as_str() {
                "RequestLimitExceeded" | "Throttling" | "ThrottlingException" => {
                    DriverError::Throttled {
                        retry_after: Duration::from_secs(2),
                    }
                }
                "AuthFailure" | "UnauthorizedOperation" | "Blocked" | "OptInRequired" => {
                    DriverError::Unauthorized(format!("{code}: {message}"))
                }
                c if QUOTA.contains(&c) => DriverError::Quota(format!("{code}: {message}")),
                "IncorrectInstanceState" | "IncorrectState" | "DependencyViolation" => {
                    DriverError::Conflict(format!("{code}: {message}"))
                }
                "InvalidGroup.NotFound" => DriverError::NotFound(message),
                c if c.starts_with("InvalidInstanceID") => DriverError::NotFound(message),
                c if c.starts_with("Invalid")
                    || c.starts_with("Unsupported")
                    || c == "IdempotentParameterMismatch"
                    || c == "IdempotentInstanceTerminated" =>
                {
                    DriverError::InvalidSpec(format!("{code}: {message}"))
                }
                _ => DriverError::Provider { code, message },
            }
        }
        _ => {
            tracing::error!(error = %ErrorChain(&e), "an EC2 request could not be built");
            DriverError::Provider {
                code: "SdkError".into(),
                message: e.to_string(),
            }
        }
    }
}

#[async_trait]
impl CloudDriver for AwsDriver {
    fn kind(&self) -> DriverKind {
        DriverKind::Aws
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            confidential: vec![ConfidentialTech::SevSnp],
            native_idempotency: true,
            password_login: false,
        }
    }

    async fn create(&self, spec: &VmSpec) -> Result<CloudVm, DriverError> {
        let target = spec.target();
        // The firewall first: the instance is launched into it.
        let group = self.ensure_group(spec).await?;
        self.sync_group(&spec.region, &group, &spec.rules).await?;
        // An earlier attempt may have made it (and emulators ignore ClientToken).
        if let Some(existing) = self.find(&target).await?.filter(|i| !is_terminated(i)) {
            return Ok(view(&existing));
        }
        if let Some(tech) = spec.confidential {
            if tech != ConfidentialTech::SevSnp {
                return Err(DriverError::InvalidSpec(format!(
                    "AWS offers sev-snp, not {}",
                    tech.name()
                )));
            }
        }
        let mut req = self
            .client(&spec.region)
            .run_instances()
            .image_id(&spec.image)
            .instance_type(InstanceType::from(spec.size.as_str()))
            .min_count(1)
            .max_count(1)
            .client_token(spec.idempotency_key())
            .security_group_ids(&group)
            .user_data(B64.encode(cloud_init(&spec.login)))
            .tag_specifications(tags(spec, &self.deployment, ResourceType::Instance))
            .tag_specifications(tags(spec, &self.deployment, ResourceType::Volume));
        if spec.confidential == Some(ConfidentialTech::SevSnp) {
            req = req.cpu_options(
                CpuOptionsRequest::builder()
                    .amd_sev_snp(AmdSevSnpSpecification::Enabled)
                    .build(),
            );
        }
        let out = req.send().await.map_err(map_err)?;
        let instance = out
            .instances()
            .first()
            .ok_or_else(|| DriverError::Provider {
                code: "NoInstance".into(),
                message: "RunInstances returned no instance".into(),
            })?;
        tracing::info!(vm = %spec.vm_id, instance = instance.instance_id().unwrap_or(""), region = %spec.region, "EC2 instance launched");
        Ok(view(instance))
    }

    async fn get(&self, target: &CloudTarget) -> Result<Option<CloudVm>, DriverError> {
        Ok(self
            .find(target)
            .await?
            .map(|i| view(&i))
            .filter(|v| v.state != CloudState::Deleted))
    }

    async fn start(&self, target: &CloudTarget) -> Result<(), DriverError> {
        self.instance_action(target, InstanceAction::Start).await
    }

    async fn stop(&self, target: &CloudTarget) -> Result<(), DriverError> {
        self.instance_action(target, InstanceAction::Stop).await
    }

    async fn reboot(&self, target: &CloudTarget) -> Result<(), DriverError> {
        self.instance_action(target, InstanceAction::Reboot).await
    }

    /// Terminates the instance; once it is terminated (or absent), removes its security group
    /// (the provisioner calls again after the instance is gone).
    async fn delete(&self, target: &CloudTarget) -> Result<(), DriverError> {
        let live = match self.find(target).await? {
            Some(i) if !is_terminated(&i) => i.instance_id().map(str::to_string),
            _ => None,
        };
        let Some(id) = live else {
            return self.delete_group(target).await;
        };
        match self
            .client(&target.region)
            .terminate_instances()
            .instance_ids(id)
            .send()
            .await
            .map_err(map_err)
        {
            Ok(_) | Err(DriverError::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Syncs the ingress permissions of the VM's security group with `rules`.
    async fn apply_rules(
        &self,
        target: &CloudTarget,
        rules: &[SecurityRule],
    ) -> Result<(), DriverError> {
        let client = self.client(&target.region);
        let group = self
            .find_group(&client, target.vm_id)
            .await?
            .ok_or_else(|| {
                DriverError::NotFound(format!("security group {}", group_name(target.vm_id)))
            })?;
        self.sync_group(&target.region, &group, rules).await
    }

    async fn list_managed(&self, region: &str) -> Result<Vec<ManagedResource>, DriverError> {
        let client = self.client(region);
        let mut found = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let out = client
                .describe_instances()
                .filters(managed_by_filter())
                .filters(
                    Filter::builder()
                        .name("instance-state-name")
                        .values("pending")
                        .values("running")
                        .values("stopping")
                        .values("stopped")
                        .build(),
                )
                .set_next_token(next.take())
                .max_results(1000)
                .send()
                .await
                .map_err(map_err)?;
            for i in out.reservations().iter().flat_map(|r| r.instances()) {
                let vm_id = vm_id_tag(i.tags());
                let (Some(vm_id), Some(id)) = (vm_id, i.instance_id()) else {
                    continue;
                };
                found.push(ManagedResource {
                    kind: ManagedKind::Vm,
                    target: CloudTarget {
                        vm_id,
                        region: region.to_string(),
                        provider_id: Some(id.to_string()),
                    },
                    created_at: i
                        .launch_time()
                        .and_then(|t| Timestamp::from_unix_millis(t.secs() * 1000).ok()),
                    raw_state: view(i).raw_state,
                    deployment: deployment_tag(i.tags()),
                });
            }
            match out.next_token() {
                Some(t) if !t.is_empty() => next = Some(t.to_string()),
                _ => break,
            }
        }
        // Security groups whose VM has no instance left: a teardown that stopped between the
        // instance and its group (the group can only go once the instance is terminated).
        let groups = self.list_groups(&client).await?;
        for (vm_id, group_id, deployment) in groups {
            if found.iter().any(|r| r.target.vm_id == vm_id) {
                continue;
            }
            found.push(ManagedResource {
                kind: ManagedKind::Firewall(group_id.clone()),
                target: CloudTarget {
                    vm_id,
                    region: region.to_string(),
                    provider_id: None,
                },
                // EC2 does not say when a group was made; the cleanup job removes one only when
                // no VM record needs it, and a group is made only for a recorded VM.
                created_at: None,
                raw_state: format!("security group {group_id}"),
                deployment,
            });
        }
        Ok(found)
    }

    /// `CreateTags` with this deployment's tag on the instance and on the VM's security group
    /// (found by name and `vm-id` tag only, as an untagged one is).
    async fn adopt(&self, resource: &ManagedResource) -> Result<(), DriverError> {
        let client = self.client(&resource.target.region);
        let mut ids: Vec<String> = Vec::new();
        match &resource.kind {
            ManagedKind::Vm => ids.extend(resource.target.provider_id.clone()),
            ManagedKind::Firewall(id) => ids.push(id.clone()),
        }
        if let Some(group) = self
            .find_group_of(&client, resource.target.vm_id, false)
            .await?
        {
            if !ids.contains(&group) {
                ids.push(group);
            }
        }
        if ids.is_empty() {
            return Err(DriverError::NotFound(format!(
                "nothing of VM {} to tag",
                resource.target.vm_id
            )));
        }
        client
            .create_tags()
            .set_resources(Some(ids))
            .tags(
                Tag::builder()
                    .key(DeploymentId::TAG)
                    .value(self.deployment.as_str())
                    .build(),
            )
            .send()
            .await
            .map_err(map_err)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vmapi_models::{CloudKind, RuleName};

    fn rule(name: &str, protocol: Protocol, ports: &[&str], cidr: &str) -> SecurityRule {
        let mut r = SecurityRule::default_for(Some(CloudKind::Aws), 1, Timestamp::now());
        r.name = RuleName::parse(name).unwrap();
        r.protocol = protocol;
        r.port_range = Ports::parse(ports).unwrap();
        r.cidr_block = cidr.parse().unwrap();
        r
    }

    #[test]
    fn rules_map_to_ingress_permissions() {
        let perms = permissions(&[
            rule("a", Protocol::Tcp, &["22", "8000-8090"], "0.0.0.0/0"),
            rule("b", Protocol::Any, &["53"], "10.0.0.0/8"),
            rule("c", Protocol::Any, &["*"], "192.0.2.0/24"),
            rule("d", Protocol::Icmp, &["*"], "2001:db8::/32"),
            rule("e", Protocol::Udp, &["*"], "0.0.0.0/0"),
            // The same permission again: once, under the first rule's name.
            rule("f", Protocol::Tcp, &["22"], "0.0.0.0/0"),
        ])
        .unwrap();
        let text: Vec<String> = perms
            .iter()
            .map(|(p, d)| format!("{} {} {} {} {d}", p.protocol, p.from, p.to, p.cidr))
            .collect();
        assert_eq!(
            text,
            [
                "tcp 22 22 0.0.0.0/0 a",
                "tcp 8000 8090 0.0.0.0/0 a",
                "tcp 53 53 10.0.0.0/8 b",
                "udp 53 53 10.0.0.0/8 b",
                "-1 -1 -1 192.0.2.0/24 c",
                "icmpv6 -1 -1 2001:db8::/32 d",
                "udp 0 65535 0.0.0.0/0 e",
            ]
        );
        let mut deny = rule("x", Protocol::Tcp, &["22"], "0.0.0.0/0");
        deny.access = RuleAccess::Deny;
        assert!(matches!(
            permissions(&[deny]),
            Err(DriverError::InvalidSpec(_))
        ));
        assert_eq!(normalize_protocol("6"), "tcp");
        assert_eq!(normalize_protocol("ALL"), "-1");
        assert_eq!(normalize_protocol("58"), "icmpv6");
    }

    mod errors {
        use super::*;
        use aws_sdk_ec2::error::{ConnectorError, ErrorMetadata};
        use aws_sdk_ec2::operation::run_instances::RunInstancesError;

        type Sdk = SdkError<RunInstancesError, ()>;

        fn service(code: &str, message: &str) -> Sdk {
            let meta = ErrorMetadata::builder().code(code).message(message).build();
            SdkError::service_error(RunInstancesError::generic(meta), ())
        }

        fn refused() -> std::io::Error {
            std::io::Error::new(
                std::io::ErrorKind::ConnectionRefused,
                "tcp connect error: Connection refused (os error 111)",
            )
        }

        #[test]
        fn service_errors_keep_code_and_message() {
            let e = map_err(service(
                "InvalidParameterValue",
                "Value (m9.huge) for parameter instanceType is invalid.",
            ));
            assert_eq!(
                e,
                DriverError::InvalidSpec(
                    "InvalidParameterValue: Value (m9.huge) for parameter instanceType is invalid."
                        .into()
                )
            );
            let e = map_err(service("InternalError", "An internal error has occurred"));
            assert_eq!(
                e.to_string(),
                "provider error InternalError: An internal error has occurred"
            );
            let e = map_err(service(
                "AuthFailure",
                "AWS was not able to validate the provided access credentials",
            ));
            assert!(
                e.to_string()
                    .contains("AuthFailure: AWS was not able to validate"),
                "{e}"
            );
        }

        #[test]
        fn unreachable_keeps_the_underlying_cause() {
            let e = map_err(Sdk::dispatch_failure(ConnectorError::io(refused().into())));
            let DriverError::Unreachable(m) = &e else {
                panic!("{e:?}")
            };
            assert!(m.starts_with("dispatch failure"), "{m}");
            assert!(m.contains("Connection refused (os error 111)"), "{m}");
            // What the provisioner logs is the error's text.
            assert!(e.to_string().contains("Connection refused"), "{e}");
            // Users read a generic reason, never the internals.
            assert_eq!(e.user_reason(), "the cloud could not be reached");

            let e = map_err(Sdk::timeout_error(
                "operation attempt timeout occurred after 4s",
            ));
            assert!(
                matches!(&e, DriverError::Unreachable(m) if m.contains("attempt timeout occurred after 4s")),
                "{e:?}"
            );
            let e = map_err(Sdk::response_error(
                "invalid XML: unexpected end of input",
                (),
            ));
            assert!(
                matches!(&e, DriverError::Unreachable(m) if m.contains("invalid XML: unexpected end of input")),
                "{e:?}"
            );
        }

        #[test]
        fn a_request_that_cannot_be_built_logs_its_cause() {
            let (logs, e) = crate::test_log::capture(|| {
                map_err(Sdk::construction_failure(
                    "failed to resolve endpoint: a region must be set",
                ))
            });
            // The status reason users read is unchanged…
            assert_eq!(
                e,
                DriverError::Provider {
                    code: "SdkError".into(),
                    message: "failed to construct request".into(),
                }
            );
            // …and the log carries the cause.
            assert!(logs.contains("ERROR"), "{logs}");
            assert!(
                logs.contains(
                    "failed to construct request: failed to resolve endpoint: a region must be set"
                ),
                "{logs}"
            );
        }
    }

    #[test]
    fn cloud_init_carries_keys_and_hash_only() {
        let login = LoginSpec {
            username: "root".into(),
            public_keys: vec!["ssh-ed25519 AAAAC3Nza vm-api-x".into()],
            password_hash: Some("$6$salt$hash".into()),
            password: Some(vmapi_models::Sensitive::new("plain-Text-9!".into())),
        };
        let ud = cloud_init(&login);
        assert!(ud.starts_with("#cloud-config\n"));
        assert!(ud.contains("hashed_passwd: \"$6$salt$hash\""));
        assert!(ud.contains("- \"ssh-ed25519 AAAAC3Nza vm-api-x\""));
        assert!(ud.contains("ssh_pwauth: true"));
        assert!(!ud.contains("plain-Text-9!"), "never the plaintext");
        let keys_only = cloud_init(&LoginSpec {
            password_hash: None,
            password: None,
            ..login
        });
        assert!(keys_only.contains("lock_passwd: true") && keys_only.contains("ssh_pwauth: false"));
    }
}
