//! The variables every function shares: the table, the deployment, the AWS SDK's environment
//! and the metrics namespace (names and meanings in docs/configuration.md, generated from here).

use vmapi_config::{ConfigError, Env, Reader, Var, ALL};
use vmapi_models::DeploymentId;

use Reader::{Cleanup, Http, Logins, Provisioner, Vmctl};

/// The DynamoDB table.
pub const TABLE_NAME: Var = Var::new("TABLE_NAME", ALL, "DynamoDB table").default("vm-api");

/// This deployment's id.
pub const DEPLOYMENT_ID: Var = Var::new(
    DeploymentId::ENV,
    ALL,
    "this deployment's id, carried by everything it creates as the tag, label or Vault \
     `custom_metadata` entry `vm-api-deployment`; cleanup and the IAM conditions touch only \
     what carries it (docs/cleanup.md); template parameter `DeploymentId`, empty for the stack \
     name",
)
.default(DeploymentId::LOCAL)
.note("required in Lambda")
.values("1–63 ASCII letters, digits, `-`, `_` or `.`, first a letter or digit");

/// The SDK's region.
pub const AWS_REGION: Var = Var::new(
    "AWS_REGION",
    ALL,
    "the AWS region (Lambda sets it); else the SDK's default chain",
)
.note("SDK defaults");

/// The SDK's credentials, with [`AWS_SECRET_ACCESS_KEY`].
pub const AWS_ACCESS_KEY_ID: Var = Var::new(
    "AWS_ACCESS_KEY_ID",
    ALL,
    "AWS credentials (Lambda sets them, with `AWS_SESSION_TOKEN`): with \
     `AWS_SECRET_ACCESS_KEY` taken directly, else the SDK's default chain",
)
.note("SDK defaults");

/// See [`AWS_ACCESS_KEY_ID`].
pub const AWS_SECRET_ACCESS_KEY: Var = Var::new(
    "AWS_SECRET_ACCESS_KEY",
    ALL,
    "the secret of `AWS_ACCESS_KEY_ID`",
)
.note("SDK defaults");

/// The SDK's timeout per attempt.
pub const SDK_ATTEMPT_TIMEOUT_SECONDS: Var = Var::new(
    "SDK_ATTEMPT_TIMEOUT_SECONDS",
    ALL,
    "AWS SDK timeout per attempt, so a slow dependency answers 503 instead of hanging; the \
     test command raises it to 20 for its shared DynamoDB Local",
)
.default("4")
.values("a whole number of seconds from 1 (else the default)");

/// The SDK's timeout per operation, retries included.
pub const SDK_OPERATION_TIMEOUT_SECONDS: Var = Var::new(
    "SDK_OPERATION_TIMEOUT_SECONDS",
    ALL,
    "AWS SDK timeout per operation (with retries); the test command raises it to 60",
)
.default("10")
.values("a whole number of seconds from 1 (else the default)");

/// Which TLS roots the SDK trusts.
pub const AWS_TRUST_STORE: Var = Var::new(
    "AWS_TRUST_STORE",
    ALL,
    "`native` trusts the system's CA roots instead of the bundled Amazon Trust Services roots \
     (an HTTPS endpoint override with another CA)",
)
.default("amazon")
.values("`amazon` or `native`");

/// DynamoDB endpoint override.
pub const AWS_ENDPOINT_URL_DYNAMODB: Var = Var::new(
    "AWS_ENDPOINT_URL_DYNAMODB",
    ALL,
    "DynamoDB endpoint override (DynamoDB Local); empty is unset (the template declares the \
     endpoint variables empty, for `sam local`)",
)
.values("a URL");

/// Secrets Manager endpoint override.
pub const AWS_ENDPOINT_URL_SECRETS_MANAGER: Var = Var::new(
    "AWS_ENDPOINT_URL_SECRETS_MANAGER",
    &[Logins, Provisioner, Cleanup, Vmctl],
    "Secrets Manager endpoint override (moto); empty is unset",
)
.values("a URL");

/// EC2 endpoint override.
pub const AWS_ENDPOINT_URL_EC2: Var = Var::new(
    "AWS_ENDPOINT_URL_EC2",
    &[Provisioner, Cleanup, Vmctl],
    "EC2 endpoint override (moto); empty is unset",
)
.values("a URL");

/// CloudFormation endpoint override.
pub const AWS_ENDPOINT_URL_CLOUDFORMATION: Var = Var::new(
    "AWS_ENDPOINT_URL_CLOUDFORMATION",
    &[Vmctl],
    "CloudFormation endpoint override (`vmctl --stack` against a stand-in); empty is unset",
)
.values("a URL");

/// The CloudWatch namespace of the EMF metrics.
pub const METRICS_NAMESPACE: Var = Var::new(
    "METRICS_NAMESPACE",
    &[Http, Provisioner],
    "CloudWatch namespace of the functions' EMF metrics (written in Lambda only; docs/deploy.md \
     \"Watching it\")",
)
.default("VmApi");

/// The variables of this crate.
pub const VARS: &[Var] = &[
    TABLE_NAME,
    DEPLOYMENT_ID,
    METRICS_NAMESPACE,
    AWS_REGION,
    AWS_ACCESS_KEY_ID,
    AWS_SECRET_ACCESS_KEY,
    SDK_ATTEMPT_TIMEOUT_SECONDS,
    SDK_OPERATION_TIMEOUT_SECONDS,
    AWS_TRUST_STORE,
    AWS_ENDPOINT_URL_DYNAMODB,
    AWS_ENDPOINT_URL_SECRETS_MANAGER,
    AWS_ENDPOINT_URL_EC2,
    AWS_ENDPOINT_URL_CLOUDFORMATION,
];

/// [`DEPLOYMENT_ID`]: required in Lambda, `local` elsewhere when unset.
pub fn deployment(env: &Env) -> Result<DeploymentId, ConfigError> {
    DeploymentId::from_setting(env.get(&DEPLOYMENT_ID).as_deref(), env.in_lambda()).map_err(|e| {
        let name = DEPLOYMENT_ID.name;
        if e.0.contains(name) {
            DEPLOYMENT_ID.error(e.0)
        } else {
            DEPLOYMENT_ID.error(format!("{name}: {}", e.0))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deployment_is_required_in_lambda_and_named_in_errors() {
        let lambda = ("AWS_LAMBDA_FUNCTION_NAME", "get-vm");
        assert_eq!(deployment(&Env::from_pairs(&[])).unwrap().as_str(), "local");
        let e = deployment(&Env::from_pairs(&[lambda])).unwrap_err();
        assert!(
            e.message.starts_with("DEPLOYMENT_ID must be set in Lambda"),
            "{e}"
        );
        let e = deployment(&Env::from_pairs(&[("DEPLOYMENT_ID", "-x")])).unwrap_err();
        assert!(
            e.message.starts_with("DEPLOYMENT_ID: deployment id '-x'"),
            "{e}"
        );
        let id = deployment(&Env::from_pairs(&[lambda, ("DEPLOYMENT_ID", "prod")])).unwrap();
        assert_eq!(id.as_str(), "prod");
    }
}
