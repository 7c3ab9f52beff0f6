//! The launch: compose template, `.env`, multipart body, and the first-boot login script.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use vmapi_core::cloud::{DriverError, LoginSpec, VmSpec};
use vmapi_models::{ConfidentialTech, Direction, Protocol, RuleAccess, SecurityRule, VmId};

use super::config::{DEFAULT_ZONE, KNOWN_ZONES};
use super::driver::KraudDriver;
use super::errors::truncate;

/// The pod label that opens the firewall of its public address (value `open`).
pub const NETWORK_POLICY: &str = "kr.network.policy";

/// Whether a rule set opens the VM's address: an inbound allow rule and no deny rule. Kraud
/// filters nothing finer, so any other rule (a port, a protocol, a source network, outbound)
/// is refused rather than approximated.
pub fn address_open(rules: &[SecurityRule]) -> Result<bool, DriverError> {
    if let Some(r) = rules.iter().find(|r| {
        r.direction != Direction::Inbound
            || r.protocol != Protocol::Any
            || !r.port_range.is_any()
            || !r.cidr_block.is_any()
            || r.cidr_block.is_v6()
    }) {
        return Err(DriverError::InvalidSpec(format!(
            "Kraud.Cloud can only open or close a VM's address; rule {} filters by direction, protocol, port or source",
            r.name
        )));
    }
    Ok(rules.iter().any(|r| r.access == RuleAccess::Allow)
        && !rules.iter().any(|r| r.access == RuleAccess::Deny))
}

/// The two files of a launch.
pub(super) struct LaunchFiles {
    compose: String,
    env: String,
}

impl LaunchFiles {
    pub(super) fn build(spec: &VmSpec) -> Result<Self, DriverError> {
        let image = spec.image.trim();
        if image.is_empty() || image.chars().any(|c| c.is_whitespace() || c == '$') {
            return Err(DriverError::InvalidSpec(format!(
                "'{}' is not an OCI image reference",
                truncate(image)
            )));
        }
        if spec.memory_gb == 0 || spec.disk_gb == 0 {
            return Err(DriverError::InvalidSpec(
                "memory and disk must be at least 1 GB".into(),
            ));
        }
        let entrypoint = login_script(&spec.login)?;
        let mut labels = vec![
            "kr.res.mem=${MEM}".to_string(),
            "kr.zone=${ZONE}".to_string(),
        ];
        if address_open(&spec.rules)? {
            labels.push(format!("{NETWORK_POLICY}=open"));
        }
        match spec.confidential {
            None => {}
            Some(ConfidentialTech::SevSnp) => labels.push("kr.res.snp=1".into()),
            Some(other) => {
                return Err(DriverError::InvalidSpec(format!(
                    "Kraud.Cloud offers no {}",
                    other.name()
                )))
            }
        }
        let q = |s: &str| yaml_quote(&s.replace('$', "$$"));
        let mut y = String::new();
        y.push_str("version: \"3.9\"\n");
        y.push_str(&format!("name: {}\n", q(&Self::project(spec.vm_id))));
        y.push_str("volumes:\n");
        y.push_str("  root:\n");
        y.push_str("    driver: lv2\n");
        y.push_str("    driver_opts:\n");
        y.push_str("      size: \"${BOOT_SIZE}\"\n");
        y.push_str("      zone: \"${ZONE}\"\n");
        y.push_str("services:\n");
        y.push_str("  vm:\n");
        y.push_str("    restart: always\n");
        y.push_str(&format!("    image: {}\n", q(image)));
        if !spec.name.trim().is_empty() {
            y.push_str(&format!("    hostname: {}\n", q(spec.name.trim())));
        }
        y.push_str("    volumes:\n");
        y.push_str("      - \"root:/\"\n");
        y.push_str("    entrypoint:\n");
        y.push_str("      - \"/bin/sh\"\n");
        y.push_str("      - \"-c\"\n");
        y.push_str(&format!("      - {}\n", q(&entrypoint)));
        y.push_str("    labels:\n");
        for label in &labels {
            // Labels carry the ${…} placeholders of the .env on purpose: no `$$` escaping.
            y.push_str(&format!("      - {}\n", yaml_quote(label)));
        }
        let env = format!(
            "MEM={}\nZONE={}\nBOOT_SIZE={}G\n",
            memory(spec.memory_gb),
            zone_of(&spec.region),
            spec.disk_gb
        );
        Ok(LaunchFiles { compose: y, env })
    }

    pub(super) fn project(vm: VmId) -> String {
        KraudDriver::namespace_of(vm)
    }

    /// The multipart/form-data body (fields `docker-compose.yml` and `.env`) and its
    /// content type.
    pub(super) fn multipart(&self) -> (String, Vec<u8>) {
        let mut boundary = String::from("vmapi-kraud-launch-7f3a9c");
        while self.compose.contains(&boundary) || self.env.contains(&boundary) {
            boundary.push('x');
        }
        let mut body = String::new();
        for (name, content_type, content) in [
            ("docker-compose.yml", "application/x-yaml", &self.compose),
            (".env", "text/plain", &self.env),
        ] {
            body.push_str(&format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{name}\"\r\nContent-Type: {content_type}\r\n\r\n{content}\r\n"
            ));
        }
        body.push_str(&format!("--{boundary}--\r\n"));
        (
            format!("multipart/form-data; boundary={boundary}"),
            body.into_bytes(),
        )
    }
}

/// `kr.res.mem` value: `{n}G`, or `{n}T` for whole terabytes.
pub(super) fn memory(gb: u32) -> String {
    if gb >= 1024 && gb.is_multiple_of(1024) {
        format!("{}T", gb / 1024)
    } else {
        format!("{gb}G")
    }
}

/// The Kraud zone of a region: a zone name itself, `berlin` for `uca`, else [`DEFAULT_ZONE`].
pub fn zone_of(region: &str) -> &'static str {
    let region = region.trim().to_ascii_lowercase();
    if let Some(zone) = KNOWN_ZONES.iter().find(|z| **z == region) {
        return zone;
    }
    match region.as_str() {
        "berlin" | "de-berlin" | "eu-berlin" => "uca",
        _ => {
            tracing::debug!(region = %region, zone = DEFAULT_ZONE, "region names no Kraud zone; using the default zone");
            DEFAULT_ZONE
        }
    }
}

/// A YAML double-quoted scalar (JSON string syntax is valid YAML).
pub(super) fn yaml_quote(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

/// The first-boot login script, run by `/bin/sh -c` before `exec /sbin/init`. All values are
/// base64 literals, so the script holds no `$` (compose interpolation) and no quoting. It runs
/// once (marker file on the root volume), so keys the user adds later survive reboots.
pub(super) fn login_script(login: &LoginSpec) -> Result<String, DriverError> {
    let user = login.username.trim();
    let valid_user = !user.is_empty()
        && user.len() <= 32
        && user
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && user
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if !valid_user {
        return Err(DriverError::InvalidSpec(format!(
            "'{}' is not a valid Linux user name",
            truncate(user)
        )));
    }
    let keys: Vec<&str> = login
        .public_keys
        .iter()
        .map(|k| k.trim())
        .filter(|k| !k.is_empty())
        .collect();
    if keys.iter().any(|k| k.contains('\n') || k.contains('\r')) {
        return Err(DriverError::InvalidSpec(
            "an SSH public key spans several lines".into(),
        ));
    }
    let hash = login
        .password_hash
        .as_deref()
        .map(str::trim)
        .filter(|h| !h.is_empty());
    if let Some(h) = hash {
        // A crypt(3) hash; anything else could be a plaintext password and must not be sent.
        if !h.starts_with('$') || h.contains(':') || h.chars().any(char::is_whitespace) {
            return Err(DriverError::InvalidSpec(
                "the password hash is not in crypt(3) format".into(),
            ));
        }
    }
    if keys.is_empty() && hash.is_none() {
        return Err(DriverError::InvalidSpec(
            "the login has neither a public key nor a password hash".into(),
        ));
    }
    let root = user == "root";
    let home = if root {
        "/root".to_string()
    } else {
        format!("/home/{user}")
    };
    let marker = "/var/lib/vmapi-login-installed";
    let mut s: Vec<String> = Vec::new();
    s.push(format!("if [ ! -e {marker} ]; then"));
    // The PVM images ship root:root; never leave that enabled.
    s.push("passwd -l root >/dev/null 2>&1".into());
    if !root {
        s.push(format!(
            "id -u {user} >/dev/null 2>&1 || useradd -m -s /bin/bash {user}"
        ));
        s.push(format!(
            "usermod -aG sudo {user} >/dev/null 2>&1 || usermod -aG wheel {user} >/dev/null 2>&1"
        ));
        let sudoers = format!("{user} ALL=(ALL) NOPASSWD:ALL\n");
        s.push(format!(
            "[ -d /etc/sudoers.d ] && echo {} | base64 -d > /etc/sudoers.d/90-vmapi && chmod 440 /etc/sudoers.d/90-vmapi",
            base64(sudoers.as_bytes())
        ));
    }
    if !keys.is_empty() {
        let mut authorized = keys.join("\n");
        authorized.push('\n');
        s.push(format!("mkdir -p {home}/.ssh"));
        s.push(format!(
            "echo {} | base64 -d > {home}/.ssh/authorized_keys",
            base64(authorized.as_bytes())
        ));
        s.push(format!(
            "chmod 700 {home}/.ssh; chmod 600 {home}/.ssh/authorized_keys; chown -R {user}: {home}/.ssh"
        ));
    }
    let sshd = if let Some(h) = hash {
        s.push(format!(
            "echo {} | base64 -d | chpasswd -e",
            base64(format!("{user}:{h}\n").as_bytes())
        ));
        if root {
            "PermitRootLogin yes\nPasswordAuthentication yes\n"
        } else {
            "PasswordAuthentication yes\n"
        }
    } else {
        "PasswordAuthentication no\n"
    };
    s.push(format!(
        "mkdir -p /etc/ssh/sshd_config.d && echo {} | base64 -d > /etc/ssh/sshd_config.d/01-vmapi.conf",
        base64(sshd.as_bytes())
    ));
    s.push(format!("mkdir -p /var/lib && touch {marker}"));
    s.push("fi".into());
    s.push("exec /sbin/init".into());
    let script = s.join("\n");
    debug_assert!(!script.contains('$'));
    Ok(script)
}

/// Standard base64 with padding.
pub(super) fn base64(data: &[u8]) -> String {
    B64.encode(data)
}
