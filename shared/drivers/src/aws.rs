//! AWS EC2 driver (`aws-sdk-ec2`). Instances are found by their `vm-id` tag, created with
//! `ClientToken` = the VM's idempotency key, and get their login through cloud-init user data
//! (public keys and a password hash only).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_ec2::types::{
    AmdSevSnpSpecification, CpuOptionsRequest, Filter, Instance, InstanceStateName, InstanceType,
    ResourceType, Tag, TagSpecification,
};
use aws_sdk_ec2::Client;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use vmapi_core::cloud::{
    Capabilities, CloudDriver, CloudState, CloudTarget, CloudVm, DriverError, DriverKind,
    LoginSpec, ManagedResource, VmSpec,
};
use vmapi_models::{ConfidentialTech, Timestamp, VmId};

/// Tag on everything the service creates.
pub const MANAGED_BY: (&str, &str) = ("managed-by", "vm-api");

/// EC2 in every region the catalog names (one client per region, made on first use).
pub struct AwsDriver {
    sdk: SdkConfig,
    clients: Mutex<HashMap<String, Client>>,
}

impl AwsDriver {
    /// A driver over the SDK configuration (credentials from the function's role).
    pub fn new(sdk: SdkConfig) -> Self {
        AwsDriver {
            sdk,
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// A driver that uses `client` for every region (tests with mocked clients).
    pub fn with_client(sdk: SdkConfig, region: &str, client: Client) -> Self {
        let driver = AwsDriver::new(sdk);
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

fn tags(spec: &VmSpec, kind: ResourceType) -> TagSpecification {
    let tag = |k: &str, v: String| Tag::builder().key(k).value(v).build();
    TagSpecification::builder()
        .resource_type(kind)
        .tags(tag(MANAGED_BY.0, MANAGED_BY.1.into()))
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

/// Maps an SDK error to the driver taxonomy.
pub fn map_err<E, R>(e: SdkError<E, R>) -> DriverError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    match &e {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) | SdkError::ResponseError(_) => {
            DriverError::Unreachable(format!("{e}"))
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
                "IncorrectInstanceState" | "IncorrectState" => {
                    DriverError::Conflict(format!("{code}: {message}"))
                }
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
        _ => DriverError::Provider {
            code: "SdkError".into(),
            message: format!("{e}"),
        },
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
            .user_data(B64.encode(cloud_init(&spec.login)))
            .tag_specifications(tags(spec, ResourceType::Instance))
            .tag_specifications(tags(spec, ResourceType::Volume));
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
        let id = self
            .instance_id(target)
            .await?
            .ok_or_else(|| DriverError::NotFound(format!("instance of VM {}", target.vm_id)))?;
        self.client(&target.region)
            .start_instances()
            .instance_ids(id)
            .send()
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn stop(&self, target: &CloudTarget) -> Result<(), DriverError> {
        let id = self
            .instance_id(target)
            .await?
            .ok_or_else(|| DriverError::NotFound(format!("instance of VM {}", target.vm_id)))?;
        self.client(&target.region)
            .stop_instances()
            .instance_ids(id)
            .send()
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn reboot(&self, target: &CloudTarget) -> Result<(), DriverError> {
        let id = self
            .instance_id(target)
            .await?
            .ok_or_else(|| DriverError::NotFound(format!("instance of VM {}", target.vm_id)))?;
        self.client(&target.region)
            .reboot_instances()
            .instance_ids(id)
            .send()
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn delete(&self, target: &CloudTarget) -> Result<(), DriverError> {
        let Some(id) = self.instance_id(target).await? else {
            return Ok(());
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

    async fn list_managed(&self, region: &str) -> Result<Vec<ManagedResource>, DriverError> {
        let client = self.client(region);
        let mut found = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let out = client
                .describe_instances()
                .filters(
                    Filter::builder()
                        .name(format!("tag:{}", MANAGED_BY.0))
                        .values(MANAGED_BY.1)
                        .build(),
                )
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
                let vm_id = i
                    .tags()
                    .iter()
                    .find(|t| t.key() == Some("vm-id"))
                    .and_then(|t| t.value())
                    .and_then(|v| v.parse::<VmId>().ok());
                let (Some(vm_id), Some(id)) = (vm_id, i.instance_id()) else {
                    continue;
                };
                found.push(ManagedResource {
                    target: CloudTarget {
                        vm_id,
                        region: region.to_string(),
                        provider_id: Some(id.to_string()),
                    },
                    created_at: i
                        .launch_time()
                        .and_then(|t| Timestamp::from_unix_millis(t.secs() * 1000).ok()),
                    raw_state: view(i).raw_state,
                });
            }
            match out.next_token() {
                Some(t) if !t.is_empty() => next = Some(t.to_string()),
                _ => break,
            }
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
