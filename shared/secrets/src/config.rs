//! Secret-store configuration from environment variables (names in docs/configuration.md).

use std::time::Duration;

use vmapi_models::{CredentialScope, DeploymentId, Sensitive};

/// A configuration problem found at start-up.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct SecretsConfigError(pub String);

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
    pub fn from_env() -> Result<Self, SecretsConfigError> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// Reads settings through `get` (the environment, or a map in tests).
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Result<Self, SecretsConfigError> {
        let var = |name: &str| get(name).filter(|v| !v.trim().is_empty());
        let err = |m: String| SecretsConfigError(m);
        let deployment = DeploymentId::from_setting(
            var(DeploymentId::ENV).as_deref(),
            var("AWS_LAMBDA_FUNCTION_NAME").is_some(),
        )
        .map_err(|e| err(e.0))?;
        let scope = match var("CREDENTIAL_SCOPE") {
            Some(v) => {
                CredentialScope::parse(&v).map_err(|e| err(format!("CREDENTIAL_SCOPE: {e}")))?
            }
            None => CredentialScope::Team,
        };
        let cache_ttl =
            match var("SECRETS_CACHE_SECONDS") {
                Some(v) => Duration::from_secs(v.parse().map_err(|_| {
                    err(format!("SECRETS_CACHE_SECONDS must be a number, got '{v}'"))
                })?),
                None => Duration::from_secs(300),
            };
        let backend = match var("SECRET_BACKEND")
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("secretsmanager") => {
                let recovery_window_days = match var("SECRETS_RECOVERY_WINDOW_DAYS") {
                    Some(v) => v
                        .parse::<u8>()
                        .ok()
                        .filter(|d| *d == 0 || (7..=30).contains(d))
                        .ok_or_else(|| {
                            err(format!(
                                "SECRETS_RECOVERY_WINDOW_DAYS must be 0 (delete at once) or 7 to 30, got '{v}'"
                            ))
                        })?,
                    None => 0,
                };
                let prefix = var("SECRETS_PREFIX").unwrap_or_else(|| DEFAULT_SECRETS_PREFIX.into());
                if !prefix
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "/_+=.@-".contains(c))
                {
                    return Err(err(format!(
                        "SECRETS_PREFIX may hold only letters, digits and /_+=.@-, got '{prefix}'"
                    )));
                }
                Backend::SecretsManager(SecretsManagerConfig {
                    prefix,
                    kms_key_id: var("SECRETS_KMS_KEY_ID"),
                    recovery_window_days,
                })
            }
            Some("vault") => {
                let auth = match var("VAULT_AUTH").as_deref().unwrap_or("token") {
                    "token" => VaultAuth::Token(Sensitive::new(
                        var("VAULT_TOKEN")
                            .ok_or_else(|| err("VAULT_AUTH=token needs VAULT_TOKEN".into()))?,
                    )),
                    "aws-iam" => VaultAuth::AwsIam {
                        role: var("VAULT_AWS_ROLE"),
                        mount: var("VAULT_AWS_MOUNT").unwrap_or_else(|| "aws".into()),
                        server_id: var("VAULT_AWS_SERVER_ID"),
                        sts_region: var("VAULT_AWS_STS_REGION")
                            .unwrap_or_else(|| "us-east-1".into()),
                    },
                    "lambda-extension" => VaultAuth::LambdaExtension,
                    other => {
                        return Err(err(format!(
                            "VAULT_AUTH must be token, aws-iam or lambda-extension, got '{other}'"
                        )))
                    }
                };
                let address = match &auth {
                    // VAULT_ADDR is the extension's (the real Vault it logs in to and forwards
                    // to); the function talks only to the extension's proxy.
                    VaultAuth::LambdaExtension => {
                        var("VAULT_PROXY_ADDR").unwrap_or_else(|| LAMBDA_EXTENSION_ADDR.into())
                    }
                    _ => var("VAULT_ADDR")
                        .ok_or_else(|| err("SECRET_BACKEND=vault needs VAULT_ADDR".into()))?,
                };
                if !(address.starts_with("http://") || address.starts_with("https://")) {
                    return Err(err(format!(
                        "VAULT_ADDR must be an http(s) URL, got '{address}'"
                    )));
                }
                Backend::Vault(VaultConfig {
                    address,
                    mount: var("VAULT_MOUNT").unwrap_or_else(|| DEFAULT_VAULT_MOUNT.into()),
                    namespace: var("VAULT_NAMESPACE"),
                    auth,
                })
            }
            Some(other) => {
                return Err(err(format!(
                    "SECRET_BACKEND must be secretsmanager or vault, got '{other}'"
                )))
            }
        };
        Ok(SecretsConfig {
            backend,
            scope,
            cache_ttl,
            deployment,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> Result<SecretsConfig, SecretsConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        SecretsConfig::from_vars(|k| map.get(k).cloned())
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
            let e = parse(&pairs).unwrap_err().0;
            assert!(e.contains(needle), "{pairs:?}: {e}");
        }
    }
}
