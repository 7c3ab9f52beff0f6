//! VM logins: the user's SSH public key, the stored secret, where it lives, and the
//! credentials answer. Secret values are [`Sensitive`]: their `Debug` never shows them.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use ssh_key::public::KeyData;
use ssh_key::PublicKey;
use zeroize::Zeroizing;

use crate::ids::{TeamId, VmId};
use crate::newtype::checked_text;
use crate::status::AuthMethod;
use crate::ParseError;

/// A secret string (password, private key). `Debug` and `Display` print `[redacted]`; the
/// memory is wiped on drop. Only [`Sensitive::expose`] and serialization reveal it.
#[derive(Clone, PartialEq, Eq)]
pub struct Sensitive(Zeroizing<String>);

impl Sensitive {
    /// Wraps a secret.
    pub fn new(value: String) -> Self {
        Sensitive(Zeroizing::new(value))
    }

    /// The secret itself: use only to store it or to hand it to its owner.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Sensitive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Sensitive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl Serialize for Sensitive {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.expose())
    }
}

impl<'de> Deserialize<'de> for Sensitive {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Sensitive::new)
    }
}

/// Smallest accepted RSA modulus.
pub const MIN_RSA_BITS: usize = 3072;

/// A user's OpenSSH public key: Ed25519, or RSA of at least 3072 bits. Stored and shown in
/// OpenSSH's canonical one-line form (`ssh-ed25519 AAAA... comment`).
#[derive(Clone, PartialEq, Eq)]
pub struct SshPublicKey(String);

checked_text!(SshPublicKey);

impl SshPublicKey {
    /// Parses and checks an `authorized_keys`-style line without options.
    pub fn parse(line: &str) -> Result<Self, ParseError> {
        let err = |m: &str| ParseError(m.to_string());
        if line.len() > 16 * 1024 {
            return Err(err("the key is longer than 16 KiB"));
        }
        if line.chars().any(char::is_control) {
            return Err(err("the key must be one line without control characters"));
        }
        let kind = line.split_whitespace().next().unwrap_or("");
        if kind.starts_with("ecdsa-") || kind.starts_with("sk-") || kind == "ssh-dss" {
            return Err(ParseError(format!(
                "{kind} keys are not accepted; use ssh-ed25519 or ssh-rsa with at least {MIN_RSA_BITS} bits"
            )));
        }
        let key = PublicKey::from_openssh(line.trim()).map_err(|_| {
            err("not an OpenSSH public key; expected `ssh-ed25519 AAAA... [comment]` or `ssh-rsa AAAA... [comment]`")
        })?;
        match key.key_data() {
            KeyData::Ed25519(_) => {}
            KeyData::Rsa(rsa) => {
                let bits = rsa
                    .n
                    .as_positive_bytes()
                    .map(|b| b.len() * 8 - b.first().map_or(8, |x| x.leading_zeros() as usize))
                    .unwrap_or(0);
                if bits < MIN_RSA_BITS {
                    return Err(ParseError(format!(
                        "RSA keys need at least {MIN_RSA_BITS} bits, this one has {bits}"
                    )));
                }
            }
            _ => {
                return Err(ParseError(format!(
                    "{} keys are not accepted; use ssh-ed25519 or ssh-rsa with at least {MIN_RSA_BITS} bits",
                    key.algorithm()
                )))
            }
        }
        let canonical = key
            .to_openssh()
            .map_err(|_| err("the key could not be encoded"))?;
        Ok(SshPublicKey(canonical))
    }
}

/// Where VM logins are kept: one per team (the platform's layout) or one per VM.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CredentialScope {
    /// `{teamId}/user/root`, created with the team's first VM and reused.
    #[default]
    Team,
    /// `{teamId}/vm/{vmId}/root`, removed with its VM.
    Vm,
}

impl CredentialScope {
    /// From configuration text (`team` or `vm`).
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "team" => Ok(CredentialScope::Team),
            "vm" => Ok(CredentialScope::Vm),
            other => Err(ParseError(format!(
                "credential scope must be `team` or `vm`, got `{other}`"
            ))),
        }
    }

    /// `team` or `vm`.
    pub fn path_kind(self) -> &'static str {
        match self {
            CredentialScope::Team => "team",
            CredentialScope::Vm => "vm",
        }
    }

    /// The path of a VM's login in this scope.
    pub fn path(self, team: TeamId, vm: VmId) -> SecretPath {
        match self {
            CredentialScope::Team => SecretPath(format!("{team}/user/root")),
            CredentialScope::Vm => SecretPath(format!("{team}/vm/{vm}/root")),
        }
    }
}

/// A secret's path below the store's mount or name prefix, e.g. `6548.../user/root`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SecretPath(String);

impl SecretPath {
    /// A path from its text (operator tools and tests; the service derives paths from scopes).
    pub fn from_text(text: &str) -> Self {
        SecretPath(text.to_string())
    }

    /// The path text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whose login this is, if the path has one of the two shapes the service writes
    /// (`{team}/user/root`, `{team}/vm/{vm}/root`); anything else is not a login of ours.
    pub fn owner(&self) -> Option<SecretOwner> {
        let parts: Vec<&str> = self.0.split('/').collect();
        match parts.as_slice() {
            [team, "user", "root"] => team.parse().ok().map(SecretOwner::Team),
            [team, "vm", vm, "root"] => Some(SecretOwner::Vm {
                team: team.parse().ok()?,
                vm: vm.parse().ok()?,
            }),
            _ => None,
        }
    }
}

/// Whose login a secret is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecretOwner {
    /// The team login shared by the team's VMs.
    Team(TeamId),
    /// One VM's login.
    Vm {
        /// The VM's team.
        team: TeamId,
        /// The VM.
        vm: VmId,
    },
}

impl fmt::Display for SecretPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The secret stored for a login. Field names are the stored JSON keys (`docs/credentials.md`).
/// A team login carries both a password and a key pair, so every VM of the team can use it
/// whatever its `authMethod`; a VM login carries what its VM's method needs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoginSecret {
    /// Login user name (`root` for a team login; the VM's cloud user for a VM login).
    pub username: String,
    /// The login method the secret was made for.
    pub auth_method: AuthMethod,
    /// The password, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<Sensitive>,
    /// OpenSSH private key, if the service generated the key pair.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key: Option<Sensitive>,
    /// OpenSSH public key, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
}

/// Where a VM's login lives, kept on the VM record (never on the wire).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Login {
    /// The user to log in as on this VM.
    pub username: String,
    /// The stored secret; `None` when the user brought their own public key.
    #[serde(default)]
    pub secret: Option<SecretRef>,
}

/// A stored secret and the scope it was written in (so a later change of the configured scope
/// never orphans or wrongly deletes it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretRef {
    /// Path below the store's mount or prefix.
    pub path: SecretPath,
    /// Scope it was written in.
    pub scope: CredentialScope,
}

/// SSH port of every VM.
pub const SSH_PORT: u16 = 22;

/// Answer of `GET /api/virtual-machines/{id}/credentials`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct VmCredentials {
    /// The VM.
    pub vm_id: VmId,
    /// User to log in as.
    pub username: String,
    /// Login method.
    pub auth_method: AuthMethod,
    /// The password (authMethod 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub password: Option<Sensitive>,
    /// The private key (authMethod 1 with a generated key pair).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub private_key: Option<Sensitive>,
    /// The public key installed on the VM (authMethod 1), else `null`.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub public_key: Option<String>,
    /// The VM's public address, `null` until it has one.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub host: Option<String>,
    /// SSH port.
    #[cfg_attr(feature = "openapi", schema(examples(22)))]
    pub port: u16,
}

/// OpenAPI schemas of secrets and public keys (feature `openapi`).
#[cfg(feature = "openapi")]
mod schema {
    use utoipa::openapi::schema::{ObjectBuilder, Type};

    use super::*;
    use crate::newtype::named_schema;

    named_schema!(
        Sensitive => ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(
                "A secret (generated password or OpenSSH private key), handed out only to those allowed to read it",
            )),
        SshPublicKey => ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(
                "An OpenSSH public key on one line (`ssh-ed25519 AAAA... [comment]`): Ed25519, or RSA of at least 3072 bits; ECDSA, security keys and DSA are refused. Stored and shown in canonical form",
            ))
            .max_length(Some(16 * 1024))
            .examples([
                "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOAKEyfwmZRghqzj9JLL8xl+SfAN+bqcjzApJNJ0S2Ck user@host",
            ]),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_paths_name_their_owner() {
        let team: TeamId = "6548a41f38406c14db33b61e".parse().unwrap();
        let vm: VmId = "654a25cb56c3f39a7fe1a2f1".parse().unwrap();
        assert_eq!(
            CredentialScope::Team.path(team, vm).owner(),
            Some(SecretOwner::Team(team))
        );
        assert_eq!(
            CredentialScope::Vm.path(team, vm).owner(),
            Some(SecretOwner::Vm { team, vm })
        );
        for other in [
            "azure-credentials",
            "x/user/root",
            "6548a41f38406c14db33b61e/vm/zz/root",
            "",
        ] {
            assert_eq!(SecretPath::from_text(other).owner(), None, "{other}");
        }
    }

    const ED25519: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOAKEyfwmZRghqzj9JLL8xl+SfAN+bqcjzApJNJ0S2Ck user@host";

    #[test]
    fn sensitive_hides_itself() {
        let s = Sensitive::new("hunter2-secret".into());
        assert_eq!(format!("{s:?} {s}"), "[redacted] [redacted]");
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"hunter2-secret\"");
        let secret = LoginSecret {
            username: "root".into(),
            auth_method: AuthMethod::Password,
            password: Some(s),
            private_key: None,
            public_key: None,
        };
        assert!(!format!("{secret:?}").contains("hunter2"));
    }

    #[test]
    fn accepts_ed25519_and_keeps_comment() {
        let k = SshPublicKey::parse(ED25519).unwrap();
        assert_eq!(k.as_str(), ED25519);
        let padded = format!("  {ED25519}  ");
        assert_eq!(SshPublicKey::parse(&padded).unwrap().as_str(), ED25519);
    }

    #[test]
    fn accepts_rsa_3072() {
        let rsa = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABgQCnuUHfAwDitGrdoJLTYC5rEbCDMGSRQ0AbfQPDyvFALl/f22tbV+uG55nxeFXHzduHMRITHyFHga/iqYca+9q5f7/TZUC/pNFn6Xq/Ur/vXgi5zXo/NAfDz4BIkMDlaW4544IVoM2AD3TRJI2tb5E2V9MNsFGEThvwjs8wjeoiIKt4epHgakva29nkvcwbo3/JRvqm6y0H31xkH966PmPQKUX/vDF9c6gjZJ3PNQS3XlsvgHUZ+MOGNPMAvic9tfQzRD4eeEU8JhGf9L3NacH+ma+trUCqObKxRN3BCeA5nIcOBJJNt6ufn4H+X+mXcR3M4kMlEfC8vpDYi2Zi7CnlyueXXlZhIX2AsUQK3rkZEw9jPro/tj1Aa/RitlAY06rDuTZSL294wHjvIJDxbMTnkUOIw0lSAY8ojtLTepUhew+AVIbnRZImfkyeYIfJSsigdLvCzei4wtrHxAqdE2pVFM3SK/K2Wx8p9xl5tQ5+YpCl7us/9zgCmI2mGmtpXss= big";
        assert_eq!(SshPublicKey::parse(rsa).unwrap().as_str(), rsa);
    }

    #[test]
    fn rejects_bad_keys() {
        for (line, needle) in [
            ("", "not an OpenSSH public key"),
            ("ssh-ed25519", "not an OpenSSH public key"),
            ("ssh-ed25519 !!!notbase64", "not an OpenSSH public key"),
            ("ssh-dss AAAAB3NzaC1kc3MAAACBAP", "not accepted"),
            (
                "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBJxQLV8pohV61Y9evXguU96wViq3zoW67cUkjndz+hBMme/FdJV1iz8FzbeyzwyoKBpn4+HdQAfzeCN6bjXhiJA= ec",
                "not accepted",
            ),
            (
                "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDUeV68ACuTkHxjEgNwQG6PQrBL0Wtlcn5KPnVf7G0voWUqlEGCXsIomMwkS8ti/PthGNAYvwRzdIg3QTOo8OCuSlCTIIZaUXaKE+0uuvwplaOdYfo3gY8usyMe26GBBRD0BE6UyIXjOSSrbgZ1EGyzv8LJB5I6ma4J6Lu3teyYBw== small",
                "at least 3072 bits",
            ),
            (&format!("{ED25519}\nssh-ed25519 AAAA"), "one line"),
        ] {
            let err = SshPublicKey::parse(line).unwrap_err().0;
            assert!(err.contains(needle), "{line:?}: {err}");
        }
    }

    #[test]
    fn scope_paths_follow_the_platform_layout() {
        let team = TeamId::parse("6548a41f38406c14db33b6fc").unwrap();
        let vm = VmId::parse("654a11e60b23ef1b0f36d44e").unwrap();
        assert_eq!(
            CredentialScope::Team.path(team, vm).as_str(),
            "6548a41f38406c14db33b6fc/user/root"
        );
        assert_eq!(
            CredentialScope::Vm.path(team, vm).as_str(),
            "6548a41f38406c14db33b6fc/vm/654a11e60b23ef1b0f36d44e/root"
        );
        assert_eq!(CredentialScope::parse(" VM ").unwrap(), CredentialScope::Vm);
        assert!(CredentialScope::parse("project").is_err());
    }
}
