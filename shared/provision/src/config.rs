//! Provisioner configuration from environment variables (names in docs/configuration.md).

use std::time::Duration;

use vmapi_core::ProvisionerOptions;
use vmapi_models::CloudKind;

/// A configuration problem found at start-up.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ProvisionConfigError(pub String);

/// Which driver serves a cloud.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Choice {
    /// The cloud's real API.
    Real,
    /// The simulated cloud (local development only).
    Simulated,
}

/// Everything the provisioner reads from the environment.
#[derive(Clone, Debug)]
pub struct ProvisionConfig {
    /// Kraud.Cloud driver.
    pub kraud: Choice,
    /// Azure driver.
    pub azure: Choice,
    /// AWS driver.
    pub aws: Choice,
    /// How long the simulated cloud takes per transition.
    pub simulated_delay: Duration,
    /// Where the clouds' own credentials live, apart from the VM logins so that only the
    /// provisioner and cleanup may read them: the Secrets Manager name prefix, or the path
    /// prefix inside the Vault mount (default `vm-api-clouds/`).
    pub cloud_secrets_prefix: String,
    /// Name of the Azure service principal (JSON) below the prefix, default `azure`.
    pub azure_credentials_secret: String,
    /// Name of the Kraud.Cloud token (JSON) below the prefix, default `kraud`.
    pub kraud_credentials_secret: String,
    /// Timing.
    pub options: ProvisionerOptions,
    /// This deployment (`DEPLOYMENT_ID`; `local` outside Lambda when unset): the drivers tag
    /// what they make with it and find only what carries it.
    pub deployment: vmapi_models::DeploymentId,
}

/// `DEPLOYMENT_ID` through `get` (required in Lambda).
fn deployment(
    get: &impl Fn(&str) -> Option<String>,
) -> Result<vmapi_models::DeploymentId, ProvisionConfigError> {
    let var = |k: &str| get(k).filter(|v| !v.trim().is_empty());
    vmapi_models::DeploymentId::from_setting(
        var(vmapi_models::DeploymentId::ENV).as_deref(),
        var("AWS_LAMBDA_FUNCTION_NAME").is_some(),
    )
    .map_err(|e| ProvisionConfigError(e.0))
}

/// Default of `CLOUD_SECRETS_PREFIX`.
pub const DEFAULT_CLOUD_SECRETS_PREFIX: &str = "vm-api-clouds/";

impl ProvisionConfig {
    /// The full path of a cloud credential `name` in the cloud-credential store.
    pub fn cloud_secret_path(&self, name: &str) -> String {
        format!("{}{name}", self.cloud_secrets_prefix)
    }
}

impl ProvisionConfig {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ProvisionConfigError> {
        Self::from_vars(|k| std::env::var(k).ok())
    }

    /// Reads settings through `get`.
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Result<Self, ProvisionConfigError> {
        let var = |k: &str| get(k).filter(|v| !v.trim().is_empty());
        let choice = |k: &str, real: &str| -> Result<Choice, ProvisionConfigError> {
            match var(k).as_deref() {
                None => Ok(Choice::Real),
                Some(v) if v == real => Ok(Choice::Real),
                Some("simulated") => Ok(Choice::Simulated),
                Some(other) => Err(ProvisionConfigError(format!(
                    "{k} must be {real} or simulated, got '{other}'"
                ))),
            }
        };
        let secs = |k: &str, default: u64| -> Result<Duration, ProvisionConfigError> {
            match var(k) {
                None => Ok(Duration::from_secs(default)),
                Some(v) => v.parse().map(Duration::from_secs).map_err(|_| {
                    ProvisionConfigError(format!("{k} must be a number of seconds, got '{v}'"))
                }),
            }
        };
        let days = |k: &str, default: u64| -> Result<Duration, ProvisionConfigError> {
            match var(k) {
                None => Ok(Duration::from_secs(default * 24 * 3600)),
                Some(v) => v
                    .parse::<u64>()
                    .map(|d| Duration::from_secs(d * 24 * 3600))
                    .map_err(|_| {
                        ProvisionConfigError(format!("{k} must be a number of days, got '{v}'"))
                    }),
            }
        };
        let simulated_delay = match var("SIMULATED_DELAY_MS") {
            None => Duration::from_millis(1500),
            Some(v) => v.parse().map(Duration::from_millis).map_err(|_| {
                ProvisionConfigError(format!("SIMULATED_DELAY_MS must be a number, got '{v}'"))
            })?,
        };
        let defaults = ProvisionerOptions::default();
        Ok(ProvisionConfig {
            kraud: choice("KRAUD_DRIVER", "kraud")?,
            azure: choice("AZURE_DRIVER", "azure")?,
            aws: choice("AWS_DRIVER", "aws")?,
            simulated_delay,
            cloud_secrets_prefix: var("CLOUD_SECRETS_PREFIX")
                .unwrap_or_else(|| DEFAULT_CLOUD_SECRETS_PREFIX.into()),
            azure_credentials_secret: var("AZURE_CREDENTIALS_SECRET")
                .unwrap_or_else(|| "azure".into()),
            kraud_credentials_secret: var("KRAUD_CREDENTIALS_SECRET")
                .unwrap_or_else(|| "kraud".into()),
            options: ProvisionerOptions {
                poll_budget: secs(
                    "PROVISIONER_POLL_BUDGET_SECONDS",
                    defaults.poll_budget.as_secs(),
                )?,
                poll_interval: secs(
                    "PROVISIONER_POLL_INTERVAL_SECONDS",
                    defaults.poll_interval.as_secs(),
                )?,
                op_deadline: secs(
                    "PROVISIONER_OP_DEADLINE_SECONDS",
                    defaults.op_deadline.as_secs(),
                )?,
                delete_deadline: secs(
                    "PROVISIONER_DELETE_DEADLINE_SECONDS",
                    defaults.delete_deadline.as_secs(),
                )?,
                deleted_retention: days("CLEANUP_DELETED_RETENTION_DAYS", 30)?,
            },
            deployment: deployment(&get)?,
        })
    }
}

/// Cleanup settings from the environment (names in `docs/cleanup.md`).
pub fn cleanup_policy_from_vars(
    get: impl Fn(&str) -> Option<String>,
) -> Result<vmapi_core::CleanupPolicy, ProvisionConfigError> {
    let var = |k: &str| get(k).filter(|v| !v.trim().is_empty());
    let num = |k: &str, default: u64| -> Result<u64, ProvisionConfigError> {
        match var(k) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| {
                ProvisionConfigError(format!("{k} must be a whole number, got '{v}'"))
            }),
        }
    };
    let d = vmapi_core::CleanupPolicy::default();
    let dry_run = match var("CLEANUP_DRY_RUN").as_deref() {
        None | Some("false") | Some("0") => false,
        Some("true") | Some("1") => true,
        Some(other) => {
            return Err(ProvisionConfigError(format!(
                "CLEANUP_DRY_RUN must be true or false, got '{other}'"
            )))
        }
    };
    Ok(vmapi_core::CleanupPolicy {
        transitional_after: Duration::from_secs(60 * num("CLEANUP_TRANSITIONAL_MINUTES", 60)?),
        failed_retention: Duration::from_secs(24 * 3600 * num("CLEANUP_FAILED_RETENTION_DAYS", 7)?),
        deleted_retention: Duration::from_secs(
            24 * 3600 * num("CLEANUP_DELETED_RETENTION_DAYS", 30)?,
        ),
        dry_run,
        concurrency: num("CLEANUP_CONCURRENCY", d.concurrency as u64)?.clamp(1, 64) as usize,
        time_budget: Duration::from_secs(num(
            "CLEANUP_TIME_BUDGET_SECONDS",
            d.time_budget.as_secs(),
        )?),
        max_candidates: num("CLEANUP_MAX_CANDIDATES", d.max_candidates as u64)?.clamp(1, 10_000)
            as usize,
        orphan_grace: Duration::from_secs(60 * num("CLEANUP_ORPHAN_GRACE_MINUTES", 60)?),
        regions: cloud_regions(var("CLEANUP_CLOUD_REGIONS"), var("AWS_REGION"))?,
        deployment: deployment(&get)?,
    })
}

/// The clouds and regions to reconcile: `CLEANUP_CLOUD_REGIONS` as `cloud=region` pairs
/// separated by commas (`aws=eu-west-1,aws=us-east-1,azure=,kraud=`); by default the
/// function's own AWS region and the (not regional) Azure and Kraud.Cloud listings.
fn cloud_regions(
    spec: Option<String>,
    aws_region: Option<String>,
) -> Result<Vec<(CloudKind, String)>, ProvisionConfigError> {
    let Some(spec) = spec else {
        let mut regions = vec![
            (CloudKind::Azure, String::new()),
            (CloudKind::Kraud, String::new()),
        ];
        if let Some(r) = aws_region {
            regions.insert(0, (CloudKind::Aws, r));
        }
        return Ok(regions);
    };
    spec.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (cloud, region) = pair.split_once('=').unwrap_or((pair, ""));
            let cloud = match cloud.trim() {
                "aws" => CloudKind::Aws,
                "azure" => CloudKind::Azure,
                "kraud" => CloudKind::Kraud,
                other => {
                    return Err(ProvisionConfigError(format!(
                        "CLEANUP_CLOUD_REGIONS: unknown cloud '{other}' (aws, azure or kraud)"
                    )))
                }
            };
            if cloud == CloudKind::Aws && region.trim().is_empty() {
                return Err(ProvisionConfigError(
                    "CLEANUP_CLOUD_REGIONS: aws needs a region (aws=eu-west-1)".into(),
                ));
            }
            Ok((cloud, region.trim().to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> Result<ProvisionConfig, ProvisionConfigError> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ProvisionConfig::from_vars(|k| m.get(k).cloned())
    }

    #[test]
    fn cloud_regions_parse_and_default() {
        assert_eq!(
            cloud_regions(Some("aws=eu-west-1, azure=,kraud".into()), None).unwrap(),
            vec![
                (CloudKind::Aws, "eu-west-1".to_string()),
                (CloudKind::Azure, String::new()),
                (CloudKind::Kraud, String::new())
            ]
        );
        assert_eq!(
            cloud_regions(None, Some("us-east-1".into())).unwrap()[0],
            (CloudKind::Aws, "us-east-1".to_string())
        );
        assert!(cloud_regions(Some("gcp=x".into()), None)
            .unwrap_err()
            .0
            .contains("gcp"));
        assert!(cloud_regions(Some("aws=".into()), None).is_err());
    }

    #[test]
    fn real_drivers_unless_simulated_is_asked_for() {
        let c = parse(&[]).unwrap();
        assert_eq!(
            (c.kraud, c.azure, c.aws),
            (Choice::Real, Choice::Real, Choice::Real)
        );
        let c = parse(&[
            ("KRAUD_DRIVER", "simulated"),
            ("AZURE_DRIVER", "simulated"),
            ("SIMULATED_DELAY_MS", "0"),
        ])
        .unwrap();
        assert_eq!(
            (c.kraud, c.azure, c.aws),
            (Choice::Simulated, Choice::Simulated, Choice::Real)
        );
        assert_eq!(c.simulated_delay, Duration::ZERO);
        assert!(parse(&[("AWS_DRIVER", "fake")])
            .unwrap_err()
            .0
            .contains("AWS_DRIVER"));
    }

    #[test]
    fn cleanup_policy_defaults_and_errors() {
        let p = cleanup_policy_from_vars(|_| None).unwrap();
        assert_eq!(p.transitional_after, Duration::from_secs(3600));
        assert!(!p.dry_run);
        let p =
            cleanup_policy_from_vars(|k| (k == "CLEANUP_DRY_RUN").then(|| "true".into())).unwrap();
        assert!(p.dry_run);
        let e = cleanup_policy_from_vars(|k| {
            (k == "CLEANUP_FAILED_RETENTION_DAYS").then(|| "a week".into())
        })
        .unwrap_err();
        assert!(e.0.contains("CLEANUP_FAILED_RETENTION_DAYS"));
    }
}
