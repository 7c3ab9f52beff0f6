//! Provisioner and cleanup configuration from environment variables (docs/configuration.md's
//! table is generated from the declarations here).

use std::time::Duration;

use vmapi_aws::settings::{deployment, AWS_REGION};
use vmapi_config::{ConfigError, Env, Reader, Var};
use vmapi_core::ProvisionerOptions;
use vmapi_models::CloudKind;

use Reader::{Cleanup, Provisioner, Vmctl};

/// Who reads the provisioner's settings (cleanup runs the provisioner too).
const PROVISIONING: &[Reader] = &[Provisioner, Cleanup, Vmctl];
/// Who reads the cleanup job's settings.
const CLEANUP: &[Reader] = &[Cleanup, Vmctl];
/// Only the local server reads these.
const LOCAL: &[Reader] = &[Vmctl];

/// The cloud's real API, or the simulated one.
const fn driver(name: &'static str, real: &'static str, values: &'static str) -> Var {
    Var::new(
        name,
        PROVISIONING,
        "provisioner: the cloud's real API, or `simulated` (local development only; `make run` \
         simulates Kraud.Cloud and Azure)",
    )
    .default(real)
    .values(values)
}

/// Kraud.Cloud driver.
pub const KRAUD_DRIVER: Var = driver("KRAUD_DRIVER", "kraud", "`kraud` or `simulated`");
/// Azure driver.
pub const AZURE_DRIVER: Var = driver("AZURE_DRIVER", "azure", "`azure` or `simulated`");
/// AWS driver.
pub const AWS_DRIVER: Var = driver("AWS_DRIVER", "aws", "`aws` or `simulated`");
/// How long a simulated VM takes per transition.
pub const SIMULATED_DELAY_MS: Var = Var::new(
    "SIMULATED_DELAY_MS",
    PROVISIONING,
    "how long a simulated VM takes per transition",
)
.default("1500")
.values("a whole number of milliseconds");
/// Where the clouds' own credentials live.
pub const CLOUD_SECRETS_PREFIX: Var = Var::new(
    "CLOUD_SECRETS_PREFIX",
    PROVISIONING,
    "where the clouds' own credentials live (Secrets Manager name prefix, or path prefix in the \
     Vault mount), apart from the logins",
)
.default(DEFAULT_CLOUD_SECRETS_PREFIX);
/// The Azure service principal's name below the prefix.
pub const AZURE_CREDENTIALS_SECRET: Var = Var::new(
    "AZURE_CREDENTIALS_SECRET",
    PROVISIONING,
    "name below `CLOUD_SECRETS_PREFIX` of the service's Azure service principal (JSON; see \
     docs/providers.md); never environment variables",
)
.default("azure");
/// The Kraud.Cloud token's name below the prefix.
pub const KRAUD_CREDENTIALS_SECRET: Var = Var::new(
    "KRAUD_CREDENTIALS_SECRET",
    PROVISIONING,
    "name below `CLOUD_SECRETS_PREFIX` of the service's Kraud.Cloud token (JSON; see \
     docs/providers.md); never environment variables",
)
.default("kraud");

/// Time a provisioner run waits for a cloud.
pub const PROVISIONER_POLL_BUDGET_SECONDS: Var = Var::new(
    "PROVISIONER_POLL_BUDGET_SECONDS",
    PROVISIONING,
    "how long one provisioner run waits for a cloud before handing the VM to the next run",
)
.default("20")
.values("a whole number of seconds");
/// How often it looks.
pub const PROVISIONER_POLL_INTERVAL_SECONDS: Var = Var::new(
    "PROVISIONER_POLL_INTERVAL_SECONDS",
    PROVISIONING,
    "how often a provisioner run looks at the cloud",
)
.default("2")
.values("a whole number of seconds");
/// Deadline of an operation.
pub const PROVISIONER_OP_DEADLINE_SECONDS: Var = Var::new(
    "PROVISIONER_OP_DEADLINE_SECONDS",
    PROVISIONING,
    "after this, an unfinished operation fails with a reason",
)
.default("1800")
.values("a whole number of seconds");
/// Deadline of a deletion.
pub const PROVISIONER_DELETE_DEADLINE_SECONDS: Var = Var::new(
    "PROVISIONER_DELETE_DEADLINE_SECONDS",
    PROVISIONING,
    "after this, an unfinished deletion fails with a reason",
)
.default("1800")
.values("a whole number of seconds");
/// When a transitional status is stuck.
pub const CLEANUP_TRANSITIONAL_MINUTES: Var = Var::new(
    "CLEANUP_TRANSITIONAL_MINUTES",
    CLEANUP,
    "cleanup: a transitional status or pending operation older than this is stuck",
)
.default("60")
.values("a whole number of minutes");
/// Retention of failed VMs.
pub const CLEANUP_FAILED_RETENTION_DAYS: Var = Var::new(
    "CLEANUP_FAILED_RETENTION_DAYS",
    CLEANUP,
    "cleanup: failed VMs are deleted after this",
)
.default("7")
.values("a whole number of days");
/// Retention of deleted records.
pub const CLEANUP_DELETED_RETENTION_DAYS: Var = Var::new(
    "CLEANUP_DELETED_RETENTION_DAYS",
    PROVISIONING,
    "deleted VM records are purged after this, and not before the end of the month they were deleted in (the provisioner sets their expiry)",
)
.default("30")
.values("a whole number of days");
/// Report only.
pub const CLEANUP_DRY_RUN: Var = Var::new("CLEANUP_DRY_RUN", CLEANUP, "cleanup: only report")
    .default("false")
    .values("`true` or `false` (`1` or `0`)");
/// Grace of orphans.
pub const CLEANUP_ORPHAN_GRACE_MINUTES: Var = Var::new(
    "CLEANUP_ORPHAN_GRACE_MINUTES",
    CLEANUP,
    "cleanup: logins and cloud VMs of ours with no VM record are removed only when older than \
     this",
)
.default("60")
.values("a whole number of minutes");
/// VMs handled at once.
pub const CLEANUP_CONCURRENCY: Var = Var::new(
    "CLEANUP_CONCURRENCY",
    CLEANUP,
    "cleanup: VMs handled at once",
)
.default("8")
.values("a whole number, held to 1–64");
/// Candidates per category and run.
pub const CLEANUP_MAX_CANDIDATES: Var = Var::new(
    "CLEANUP_MAX_CANDIDATES",
    CLEANUP,
    "cleanup: VMs per category and run",
)
.default("500")
.values("a whole number, held to 1–10000");
/// Time budget of a run.
pub const CLEANUP_TIME_BUDGET_SECONDS: Var = Var::new(
    "CLEANUP_TIME_BUDGET_SECONDS",
    CLEANUP,
    "cleanup: the time budget of a run (in Lambda also the invocation's deadline minus 15 s)",
)
.default("240")
.values("a whole number of seconds");
/// The clouds and regions reconciled.
pub const CLEANUP_CLOUD_REGIONS: Var = Var::new(
    "CLEANUP_CLOUD_REGIONS",
    CLEANUP,
    "cleanup: the clouds and regions whose VMs are reconciled against the table",
)
.note("the function's `AWS_REGION`, plus Azure and Kraud.Cloud")
.values("`cloud=region` pairs separated by commas (`aws=eu-west-1,aws=us-east-1,azure=,kraud=`)");
/// How often the local server runs the cleanup job.
pub const CLEANUP_INTERVAL_SECONDS: Var = Var::new(
    "CLEANUP_INTERVAL_SECONDS",
    LOCAL,
    "how often the local server runs the cleanup job",
)
.default("60")
.note("`30` in `make run`")
.values("a whole number of seconds (else the default)");
/// Where the local stream consumer reads the stream.
pub const AWS_ENDPOINT_URL_DYNAMODB_STREAMS: Var = Var::new(
    "AWS_ENDPOINT_URL_DYNAMODB_STREAMS",
    LOCAL,
    "where the local server's stream consumer reads the table's stream (DynamoDB Local serves \
     both on one port); empty is unset",
)
.note("`AWS_ENDPOINT_URL_DYNAMODB`")
.values("a URL");
/// The local stream consumer's checkpoints.
pub const STREAM_CHECKPOINT_FILE: Var = Var::new(
    "STREAM_CHECKPOINT_FILE",
    LOCAL,
    "the local stream consumer's checkpoint per shard (docs/local-run.md)",
)
.default(".local/stream-consumer.json")
.values("a path");
/// The local stream consumer's on-failure destination.
pub const STREAM_FAILURE_FILE: Var = Var::new(
    "STREAM_FAILURE_FILE",
    LOCAL,
    "the local stream consumer's on-failure destination, one JSON line per record given up on",
)
.default(".local/stream-failures.jsonl")
.values("a path");

/// The variables of this crate.
pub const VARS: &[Var] = &[
    KRAUD_DRIVER,
    AZURE_DRIVER,
    AWS_DRIVER,
    SIMULATED_DELAY_MS,
    CLOUD_SECRETS_PREFIX,
    AZURE_CREDENTIALS_SECRET,
    KRAUD_CREDENTIALS_SECRET,
    PROVISIONER_POLL_BUDGET_SECONDS,
    PROVISIONER_POLL_INTERVAL_SECONDS,
    PROVISIONER_OP_DEADLINE_SECONDS,
    PROVISIONER_DELETE_DEADLINE_SECONDS,
    CLEANUP_TRANSITIONAL_MINUTES,
    CLEANUP_FAILED_RETENTION_DAYS,
    CLEANUP_DELETED_RETENTION_DAYS,
    CLEANUP_DRY_RUN,
    CLEANUP_ORPHAN_GRACE_MINUTES,
    CLEANUP_CLOUD_REGIONS,
    CLEANUP_CONCURRENCY,
    CLEANUP_MAX_CANDIDATES,
    CLEANUP_TIME_BUDGET_SECONDS,
    CLEANUP_INTERVAL_SECONDS,
    AWS_ENDPOINT_URL_DYNAMODB_STREAMS,
    STREAM_CHECKPOINT_FILE,
    STREAM_FAILURE_FILE,
];

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
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::read(&Env::process())
    }

    /// Reads settings from `env` (the process environment, or a stand-in).
    pub fn read(env: &Env) -> Result<Self, ConfigError> {
        let choice = |var: &Var| {
            env.parse_with(var, |v| match v {
                "simulated" => Some(Choice::Simulated),
                v if Some(v) == var.default => Some(Choice::Real),
                _ => None,
            })
        };
        let string = |var: &Var| env.string(var).unwrap_or_default();
        Ok(ProvisionConfig {
            kraud: choice(&KRAUD_DRIVER)?,
            azure: choice(&AZURE_DRIVER)?,
            aws: choice(&AWS_DRIVER)?,
            simulated_delay: env.parse(&SIMULATED_DELAY_MS).map(Duration::from_millis)?,
            cloud_secrets_prefix: string(&CLOUD_SECRETS_PREFIX),
            azure_credentials_secret: string(&AZURE_CREDENTIALS_SECRET),
            kraud_credentials_secret: string(&KRAUD_CREDENTIALS_SECRET),
            options: ProvisionerOptions {
                poll_budget: env.secs(&PROVISIONER_POLL_BUDGET_SECONDS)?,
                poll_interval: env.secs(&PROVISIONER_POLL_INTERVAL_SECONDS)?,
                op_deadline: env.secs(&PROVISIONER_OP_DEADLINE_SECONDS)?,
                delete_deadline: env.secs(&PROVISIONER_DELETE_DEADLINE_SECONDS)?,
                deleted_retention: days(env, &CLEANUP_DELETED_RETENTION_DAYS)?,
            },
            deployment: deployment(env)?,
        })
    }
}

/// A whole number of days.
fn days(env: &Env, var: &Var) -> Result<Duration, ConfigError> {
    env.parse::<u64>(var)
        .map(|d| Duration::from_secs(d * 24 * 3600))
}

/// A whole number of minutes.
fn minutes(env: &Env, var: &Var) -> Result<Duration, ConfigError> {
    env.parse::<u64>(var).map(|m| Duration::from_secs(m * 60))
}

/// The cleanup job's settings (docs/cleanup.md).
pub fn cleanup_policy(env: &Env) -> Result<vmapi_core::CleanupPolicy, ConfigError> {
    Ok(vmapi_core::CleanupPolicy {
        transitional_after: minutes(env, &CLEANUP_TRANSITIONAL_MINUTES)?,
        failed_retention: days(env, &CLEANUP_FAILED_RETENTION_DAYS)?,
        deleted_retention: days(env, &CLEANUP_DELETED_RETENTION_DAYS)?,
        dry_run: env.bool(&CLEANUP_DRY_RUN)?,
        concurrency: env.parse::<usize>(&CLEANUP_CONCURRENCY)?.clamp(1, 64),
        time_budget: env.secs(&CLEANUP_TIME_BUDGET_SECONDS)?,
        max_candidates: env
            .parse::<usize>(&CLEANUP_MAX_CANDIDATES)?
            .clamp(1, 10_000),
        orphan_grace: minutes(env, &CLEANUP_ORPHAN_GRACE_MINUTES)?,
        regions: cloud_regions(env.get(&CLEANUP_CLOUD_REGIONS), env.get(&AWS_REGION))?,
        deployment: deployment(env)?,
    })
}

/// How often the local server runs the cleanup job ([`CLEANUP_INTERVAL_SECONDS`]; a value
/// that is not a whole number falls back to the default).
pub fn cleanup_interval(env: &Env) -> Duration {
    Duration::from_secs(env.lenient(&CLEANUP_INTERVAL_SECONDS, |_: &u64| true))
}

/// The clouds and regions to reconcile: [`CLEANUP_CLOUD_REGIONS`]; by default the function's
/// own AWS region and the (not regional) Azure and Kraud.Cloud listings.
fn cloud_regions(
    spec: Option<String>,
    aws_region: Option<String>,
) -> Result<Vec<(CloudKind, String)>, ConfigError> {
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
                    return Err(CLEANUP_CLOUD_REGIONS.error(format!(
                        "CLEANUP_CLOUD_REGIONS: unknown cloud '{other}' (aws, azure or kraud)"
                    )))
                }
            };
            if cloud == CloudKind::Aws && region.trim().is_empty() {
                return Err(CLEANUP_CLOUD_REGIONS
                    .error("CLEANUP_CLOUD_REGIONS: aws needs a region (aws=eu-west-1)"));
            }
            Ok((cloud, region.trim().to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> Result<ProvisionConfig, ConfigError> {
        ProvisionConfig::read(&Env::from_pairs(pairs))
    }

    fn policy(pairs: &[(&str, &str)]) -> Result<vmapi_core::CleanupPolicy, ConfigError> {
        cleanup_policy(&Env::from_pairs(pairs))
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
            .message
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
        assert_eq!(
            parse(&[("AWS_DRIVER", "fake")]).unwrap_err().message,
            "AWS_DRIVER must be `aws` or `simulated`, got 'fake'"
        );
        // The defaults are the core's.
        let options = parse(&[]).unwrap().options;
        let core = ProvisionerOptions::default();
        assert_eq!(
            (options.poll_budget, options.poll_interval),
            (core.poll_budget, core.poll_interval)
        );
        assert_eq!(
            (
                options.op_deadline,
                options.delete_deadline,
                options.deleted_retention
            ),
            (
                core.op_deadline,
                core.delete_deadline,
                core.deleted_retention
            )
        );
    }

    #[test]
    fn cleanup_policy_defaults_and_errors() {
        // The defaults are the core's.
        let p = policy(&[]).unwrap();
        let core = vmapi_core::CleanupPolicy::default();
        assert_eq!(
            (
                p.transitional_after,
                p.failed_retention,
                p.deleted_retention
            ),
            (
                core.transitional_after,
                core.failed_retention,
                core.deleted_retention
            )
        );
        assert_eq!(
            (p.dry_run, p.concurrency, p.time_budget, p.max_candidates),
            (
                core.dry_run,
                core.concurrency,
                core.time_budget,
                core.max_candidates
            )
        );
        assert_eq!(p.orphan_grace, core.orphan_grace);
        assert!(policy(&[("CLEANUP_DRY_RUN", "true")]).unwrap().dry_run);
        assert_eq!(
            policy(&[("CLEANUP_CONCURRENCY", "500")])
                .unwrap()
                .concurrency,
            64
        );
        let e = policy(&[("CLEANUP_FAILED_RETENTION_DAYS", "a week")]).unwrap_err();
        assert_eq!(
            e.message,
            "CLEANUP_FAILED_RETENTION_DAYS must be a whole number of days, got 'a week'"
        );
        let e = policy(&[("CLEANUP_DRY_RUN", "yes")]).unwrap_err();
        assert!(
            e.message
                .contains("CLEANUP_DRY_RUN must be `true` or `false`"),
            "{e}"
        );
    }
}
