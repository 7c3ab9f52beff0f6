//! The instance itself: its cloud-init login, its tags, and the driver's view of it.

use aws_sdk_ec2::types::{Instance, InstanceStateName, ResourceType, Tag, TagSpecification};
use vmapi_core::cloud::{CloudState, CloudVm, LoginSpec, VmSpec};
use vmapi_models::{ConfidentialTech, DeploymentId};

use super::driver::MANAGED_BY;

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
pub(super) fn serde_json_string(s: &str) -> String {
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

pub(super) fn tags(
    spec: &VmSpec,
    deployment: &DeploymentId,
    kind: ResourceType,
) -> TagSpecification {
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
