//! Secret-store configuration from environment variables (docs/configuration.md's table is
//! generated from the declarations here).

use std::time::Duration;

use vmapi_aws::settings::deployment;
use vmapi_config::{ConfigError, Env, Reader, Var};
use vmapi_models::{CredentialScope, DeploymentId, Sensitive};

use Reader::{Cleanup, Logins, Provisioner, Vmctl};

/// Who reads the secret store's settings.
const READERS: &[Reader] = &[Logins, Provisioner, Cleanup, Vmctl];

/// Which store keeps the logins.
pub const SECRET_BACKEND: Var = Var::new(
    "SECRET_BACKEND",
    READERS,
    "where VM logins (and the clouds' own credentials) are kept",
)
.default("secretsmanager")
.note("`make run`: `vault`")
.values("`secretsmanager` or `vault`");
/// Scope of new logins.
pub const CREDENTIAL_SCOPE: Var = Var::new(
    "CREDENTIAL_SCOPE",
    READERS,
    "`team` (`{teamId}/user/root`, shared by the team's VMs) or `vm` (`{teamId}/vm/{vmId}/root`)",
)
.default("team")
.values("`team` or `vm`");
/// Read cache lifetime.
pub const SECRETS_CACHE_SECONDS: Var = Var::new(
    "SECRETS_CACHE_SECONDS",
    READERS,
    "how long a container caches secret reads (0 disables)",
)
.default("300")
.values("a whole number of seconds");
/// Secrets Manager name prefix.
pub const SECRETS_PREFIX: Var = Var::new(
    "SECRETS_PREFIX",
    READERS,
    "Secrets Manager name prefix of the logins",
)
.default(DEFAULT_SECRETS_PREFIX)
.values("made of letters, digits and `/_+=.@-`");
/// KMS key of new secrets.
pub const SECRETS_KMS_KEY_ID: Var = Var::new(
    "SECRETS_KMS_KEY_ID",
    READERS,
    "KMS key of new secrets (else `aws/secretsmanager`)",
);
/// Recovery window of deleted secrets.
pub const SECRETS_RECOVERY_WINDOW_DAYS: Var = Var::new(
    "SECRETS_RECOVERY_WINDOW_DAYS",
    READERS,
    "0 deletes logins at once; 7–30 schedules the deletion",
)
.default("0")
.values("0 (delete at once) or 7 to 30");
/// Vault address.
pub const VAULT_ADDR: Var = Var::new(
    "VAULT_ADDR",
    READERS,
    "Vault address (with `VAULT_AUTH=lambda-extension` the extension's setting: the functions \
     call `VAULT_PROXY_ADDR`)",
)
.values("an http(s) URL");
/// The Vault Lambda Extension's proxy.
pub const VAULT_PROXY_ADDR: Var = Var::new(
    "VAULT_PROXY_ADDR",
    READERS,
    "with `VAULT_AUTH=lambda-extension`: the Vault Lambda Extension's local proxy, which the \
     functions call instead of `VAULT_ADDR` (docs/credentials.md)",
)
.default(LAMBDA_EXTENSION_ADDR)
.values("an http(s) URL");
/// KV v2 mount.
pub const VAULT_MOUNT: Var =
    Var::new("VAULT_MOUNT", READERS, "KV v2 mount").default(DEFAULT_VAULT_MOUNT);
/// How the service logs in to Vault.
pub const VAULT_AUTH: Var = Var::new(
    "VAULT_AUTH",
    READERS,
    "how the service logs in to Vault: `token` (`VAULT_TOKEN`), `aws-iam` (the function's \
     role) or `lambda-extension` (the extension logs in)",
)
.default("token")
.values("`token`, `aws-iam` or `lambda-extension`");
/// A fixed Vault token.
pub const VAULT_TOKEN: Var = Var::new("VAULT_TOKEN", READERS, "token for `VAULT_AUTH=token`");
/// AWS IAM login: role.
pub const VAULT_AWS_ROLE: Var = Var::new(
    "VAULT_AWS_ROLE",
    READERS,
    "AWS IAM login to Vault: the Vault role (else Vault's default)",
);
/// AWS IAM login: mount.
pub const VAULT_AWS_MOUNT: Var = Var::new(
    "VAULT_AWS_MOUNT",
    READERS,
    "AWS IAM login to Vault: the auth method's mount",
)
.default("aws");
/// AWS IAM login: server id header.
pub const VAULT_AWS_SERVER_ID: Var = Var::new(
    "VAULT_AWS_SERVER_ID",
    READERS,
    "AWS IAM login to Vault: `X-Vault-AWS-IAM-Server-ID`, if Vault requires it",
);
/// AWS IAM login: STS region.
pub const VAULT_AWS_STS_REGION: Var = Var::new(
    "VAULT_AWS_STS_REGION",
    READERS,
    "AWS IAM login to Vault: region of the STS endpoint Vault is configured for",
)
.default("us-east-1");
/// Enterprise namespace.
pub const VAULT_NAMESPACE: Var = Var::new("VAULT_NAMESPACE", READERS, "Vault Enterprise namespace");

/// The variables of this crate.
pub const VARS: &[Var] = &[
    SECRET_BACKEND,
    CREDENTIAL_SCOPE,
    SECRETS_CACHE_SECONDS,
    SECRETS_PREFIX,
    SECRETS_KMS_KEY_ID,
    SECRETS_RECOVERY_WINDOW_DAYS,
    VAULT_ADDR,
    VAULT_PROXY_ADDR,
    VAULT_MOUNT,
    VAULT_AUTH,
    VAULT_TOKEN,
    VAULT_AWS_ROLE,
    VAULT_AWS_MOUNT,
    VAULT_AWS_SERVER_ID,
    VAULT_AWS_STS_REGION,
    VAULT_NAMESPACE,
];

/// Which store keeps the logins.
#[derive(Clone, Debug)]
pub enum Backend {
    /// AWS Secrets Manager.
    SecretsManager(SecretsManagerConfig),
    /// HashiCorp Vault KV v2.
    Vault(VaultConfig),
}

/// Secrets Manager settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretsManagerConfig {
    /// Prepended to every path to form the secret name (`vm-api/`).
    pub prefix: String,
    /// KMS key for new secrets (the account's default key when absent).
    pub kms_key_id: Option<String>,
    /// Days a deleted secret can be restored; 0 deletes at once.
    pub recovery_window_days: u8,
}

/// How the service authenticates to Vault.
#[derive(Clone, Debug)]
pub enum VaultAuth {
    /// A fixed token (`VAULT_TOKEN`).
    Token(Sensitive),
    /// AWS IAM login with the function's role.
    AwsIam {
        /// Vault role to log in as (Vault's default when absent).
        role: Option<String>,
        /// Mount of the AWS auth method.
        mount: String,
        /// Value of `X-Vault-AWS-IAM-Server-ID`, if Vault requires it.
        server_id: Option<String>,
        /// Region of the STS endpoint Vault is configured for.
        sts_region: String,
    },
    /// The Vault Lambda Extension's local proxy, which authenticates by itself.
    LambdaExtension,
}

/// Vault settings.
#[derive(Clone, Debug)]
pub struct VaultConfig {
    /// Address, e.g. `https://vault.example.com:8200`.
    pub address: String,
    /// KV v2 mount (`enclaive-static`).
    pub mount: String,
    /// Enterprise namespace, if any.
    pub namespace: Option<String>,
    /// Authentication.
    pub auth: VaultAuth,
}

/// Everything about logins: backend, scope and read cache.
#[derive(Clone, Debug)]
pub struct SecretsConfig {
    /// The backend.
    pub backend: Backend,
    /// Scope of new logins.
    pub scope: CredentialScope,
    /// How long reads are cached per container (0 disables the cache).
    pub cache_ttl: Duration,
    /// This deployment (`DEPLOYMENT_ID`): new secrets carry it, and cleanup and `vmctl adopt`
    /// consider only secrets that carry it.
    pub deployment: DeploymentId,
}

/// Default Vault KV v2 mount: the platform's.
pub const DEFAULT_VAULT_MOUNT: &str = "enclaive-static";
/// Default Secrets Manager name prefix.
pub const DEFAULT_SECRETS_PREFIX: &str = "vm-api/";
/// Address of the Vault Lambda Extension's proxy.
pub const LAMBDA_EXTENSION_ADDR: &str = "http://127.0.0.1:8200";

impl SecretsConfig {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::read(&Env::process())
    }

    /// Reads settings from `env` (the process environment, or a stand-in).
    pub fn read(env: &Env) -> Result<Self, ConfigError> {
        let scope = env.parse_with(&CREDENTIAL_SCOPE, |v| CredentialScope::parse(v).ok())?;
        let backend = match env
            .parse_with(&SECRET_BACKEND, |v| {
                let v = v.to_ascii_lowercase();
                ["secretsmanager", "vault"]
                    .contains(&v.as_str())
                    .then_some(v)
            })?
            .as_str()
        {
            "vault" => Backend::Vault(vault(env)?),
            _ => Backend::SecretsManager(SecretsManagerConfig {
                prefix: env.parse_with(&SECRETS_PREFIX, |v| {
                    let ok = |c: char| c.is_ascii_alphanumeric() || "/_+=.@-".contains(c);
                    v.chars().all(ok).then(|| v.to_string())
                })?,
                kms_key_id: env.get(&SECRETS_KMS_KEY_ID),
                recovery_window_days: env.parse_with(&SECRETS_RECOVERY_WINDOW_DAYS, |v| {
                    v.parse::<u8>()
                        .ok()
                        .filter(|d| *d == 0 || (7..=30).contains(d))
                })?,
            }),
        };
        Ok(SecretsConfig {
            backend,
            scope,
            cache_ttl: env.secs(&SECRETS_CACHE_SECONDS)?,
            deployment: deployment(env)?,
        })
    }
}

/// The Vault settings (`SECRET_BACKEND=vault`).
fn vault(env: &Env) -> Result<VaultConfig, ConfigError> {
    let auth = match env.parse_with(&VAULT_AUTH, |v| {
        ["token", "aws-iam", "lambda-extension"]
            .into_iter()
            .find(|a| *a == v)
    })? {
        "token" => VaultAuth::Token(Sensitive::new(
            env.require(&VAULT_TOKEN, "with VAULT_AUTH=token")?,
        )),
        "aws-iam" => VaultAuth::AwsIam {
            role: env.get(&VAULT_AWS_ROLE),
            mount: env.string(&VAULT_AWS_MOUNT).unwrap_or_default(),
            server_id: env.get(&VAULT_AWS_SERVER_ID),
            sts_region: env.string(&VAULT_AWS_STS_REGION).unwrap_or_default(),
        },
        _ => VaultAuth::LambdaExtension,
    };
    let http_url =
        |v: &str| (v.starts_with("http://") || v.starts_with("https://")).then(|| v.to_string());
    let address = match &auth {
        // VAULT_ADDR is the extension's (the real Vault it logs in to and forwards to); the
        // function talks only to the extension's proxy.
        VaultAuth::LambdaExtension => env.parse_with(&VAULT_PROXY_ADDR, http_url)?,
        _ => {
            let address = env.require(&VAULT_ADDR, "with SECRET_BACKEND=vault")?;
            VAULT_ADDR.check(address.trim(), http_url)?
        }
    };
    Ok(VaultConfig {
        address,
        mount: env.string(&VAULT_MOUNT).unwrap_or_default(),
        namespace: env.get(&VAULT_NAMESPACE),
        auth,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> Result<SecretsConfig, ConfigError> {
        SecretsConfig::read(&Env::from_pairs(pairs))
    }

    #[test]
    fn defaults_are_secrets_manager_in_team_scope() {
        let c = parse(&[]).unwrap();
        assert_eq!(c.scope, CredentialScope::Team);
        assert_eq!(c.cache_ttl, Duration::from_secs(300));
        match c.backend {
            Backend::SecretsManager(sm) => {
                assert_eq!(sm.prefix, "vm-api/");
                assert_eq!(sm.recovery_window_days, 0);
                assert_eq!(sm.kms_key_id, None);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn vault_settings() {
        let c = parse(&[
            ("SECRET_BACKEND", "vault"),
            ("VAULT_ADDR", "https://vault.example.com"),
            ("VAULT_TOKEN", "s.abc"),
            ("CREDENTIAL_SCOPE", "vm"),
        ])
        .unwrap();
        assert_eq!(c.scope, CredentialScope::Vm);
        let Backend::Vault(v) = c.backend else {
            panic!()
        };
        assert_eq!(v.mount, "enclaive-static");
        assert!(matches!(v.auth, VaultAuth::Token(_)));
        assert!(
            !format!("{v:?}").contains("s.abc"),
            "the token never shows in Debug"
        );

        // The extension's mode talks to its proxy, whatever VAULT_ADDR (the extension's own
        // setting: the real Vault) says.
        for (pairs, expected) in [
            (vec![], LAMBDA_EXTENSION_ADDR),
            (
                vec![("VAULT_ADDR", "https://vault.example.com")],
                LAMBDA_EXTENSION_ADDR,
            ),
            (
                vec![
                    ("VAULT_ADDR", "https://vault.example.com"),
                    ("VAULT_PROXY_ADDR", "http://127.0.0.1:8300"),
                ],
                "http://127.0.0.1:8300",
            ),
        ] {
            let mut all = vec![
                ("SECRET_BACKEND", "vault"),
                ("VAULT_AUTH", "lambda-extension"),
                ("VAULT_NAMESPACE", "team-a"),
            ];
            all.extend(pairs);
            let Backend::Vault(v) = parse(&all).unwrap().backend else {
                panic!()
            };
            assert_eq!(v.address, expected, "{all:?}");
            assert_eq!(v.namespace.as_deref(), Some("team-a"));
        }
    }

    #[test]
    fn bad_settings_are_named() {
        for (pairs, needle) in [
            (vec![("SECRET_BACKEND", "s3")], "SECRET_BACKEND"),
            (
                vec![("SECRET_BACKEND", "vault"), ("VAULT_TOKEN", "t")],
                "VAULT_ADDR",
            ),
            (
                vec![("SECRET_BACKEND", "vault"), ("VAULT_ADDR", "http://v")],
                "VAULT_TOKEN",
            ),
            (
                vec![("SECRETS_RECOVERY_WINDOW_DAYS", "3")],
                "SECRETS_RECOVERY_WINDOW_DAYS",
            ),
            (vec![("CREDENTIAL_SCOPE", "project")], "CREDENTIAL_SCOPE"),
            (vec![("SECRETS_PREFIX", "bad prefix")], "SECRETS_PREFIX"),
        ] {
            let e = parse(&pairs).unwrap_err().message;
            assert!(e.contains(needle), "{pairs:?}: {e}");
        }
    }
}
