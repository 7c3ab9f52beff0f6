//! What the roles may touch, read from the SAM-transformed template ([`super::policy`]): the
//! exact condition of every guarded statement (this deployment's tags), Secrets Manager only
//! with that backend, network interfaces only for a Vault inside a VPC, no AWS managed policy
//! beyond basic execution and tracing, the clouds' credentials fenced from the request
//! functions; and the same fence in the shipped Vault policies.

use std::collections::BTreeSet;

use serde_json::{json, Value};
use vmapi_tests::*;

use super::policy::{binaries, role_of, Grant};

/// This deployment's id as the template writes it wherever a condition needs it.
fn deployment() -> Value {
    json!({"Fn::If": ["HasDeploymentId", {"Ref": "DeploymentId"}, {"Ref": "AWS::StackName"}]})
}

/// The condition a statement must carry, judged by its first action and its resources:
/// creates only with this deployment's tags, changes only of what carries them.
fn expected_condition(g: &Grant) -> Value {
    let first = g.actions[0].as_str();
    let on = |kind: &str| g.resource_text().iter().any(|r| r.contains(kind));
    let request_tags = json!({"StringEquals": {
        "aws:RequestTag/managed-by": "vm-api",
        "aws:RequestTag/vm-api-deployment": deployment(),
    }});
    let resource_tag = json!({"StringEquals": {"aws:ResourceTag/vm-api-deployment": deployment()}});
    match first {
        "ec2:RunInstances" if on(":instance/") => request_tags,
        "ec2:CreateSecurityGroup" if on(":security-group/") => request_tags,
        "secretsmanager:CreateSecret" => request_tags,
        "ec2:CreateTags" => json!({"StringEquals": {
            "ec2:CreateAction": ["RunInstances", "CreateSecurityGroup"],
        }}),
        "ec2:StartInstances"
        | "ec2:AuthorizeSecurityGroupIngress"
        | "secretsmanager:DeleteSecret" => resource_tag,
        _ => Value::Null,
    }
}

/// Every statement of every role carries exactly the condition listed for it, and the actions
/// that change or remove a resource appear only in statements that carry one.
#[test]
fn every_guarded_statement_carries_exactly_its_condition() {
    // Actions that must never be granted without a condition.
    const GUARDED: [&str; 10] = [
        "ec2:ModifyInstanceAttribute",
        "ec2:StartInstances",
        "ec2:StopInstances",
        "ec2:RebootInstances",
        "ec2:TerminateInstances",
        "ec2:AuthorizeSecurityGroupIngress",
        "ec2:RevokeSecurityGroupIngress",
        "ec2:DeleteSecurityGroup",
        "ec2:CreateTags",
        "secretsmanager:DeleteSecret",
    ];
    let mut checked = 0;
    for binary in binaries() {
        for g in role_of(&binary).grants {
            let want = expected_condition(&g);
            assert_eq!(
                g.condition, want,
                "{binary}: the statement {:?} on {:?} ({})",
                g.actions, g.resources, g.policy
            );
            if g.condition.is_null() {
                for a in &g.actions {
                    assert!(!GUARDED.contains(&a.as_str()), "{binary}: {a} unguarded");
                }
            } else {
                checked += 1;
            }
        }
    }
    assert!(checked >= 8, "only {checked} conditional statements found");
}

/// RunInstances: the instance and its volumes only with this deployment's tags; nothing but the
/// launch's inputs (image, subnet, interface, security group) without a condition; never `*`.
#[test]
fn instances_are_launched_only_with_this_deployments_tags() {
    let grants: Vec<Grant> = role_of("provisioner")
        .grants
        .into_iter()
        .filter(|g| g.actions.iter().any(|a| a == "ec2:RunInstances"))
        .collect();
    assert_eq!(grants.len(), 2, "{grants:#?}");
    for g in &grants {
        assert_eq!(g.actions, ["ec2:RunInstances"], "{g:#?}");
        let kinds: Vec<String> = g
            .resource_text()
            .iter()
            .map(|r| r.rsplit(':').next().unwrap().to_string())
            .collect();
        if g.condition.is_null() {
            assert_eq!(
                kinds,
                [
                    "image/*",
                    "subnet/*",
                    "network-interface/*",
                    "security-group/*"
                ]
            );
        } else {
            assert_eq!(kinds, ["instance/*", "volume/*"]);
        }
    }
}

/// `*` only for actions without resource-level permissions.
#[test]
fn only_actions_without_resource_permissions_are_granted_on_everything() {
    const UNSCOPED: [&str; 5] = [
        "ec2:DescribeInstances",
        "ec2:DescribeSecurityGroups",
        "ec2:DescribeSecurityGroupRules",
        "ec2:DescribeVpcs",
        "secretsmanager:ListSecrets",
    ];
    let mut in_a_vpc = BTreeSet::new();
    for binary in binaries() {
        for g in role_of(&binary).grants {
            if g.resources.iter().any(|r| r == "*") {
                for a in &g.actions {
                    // Lambda's network interfaces: only for a Vault inside a VPC.
                    if g.policy == "VaultVpcPolicy" {
                        assert_eq!(g.when.as_deref(), Some("HasVaultVpc"), "{binary}: {a}");
                        in_a_vpc.insert(binary.clone());
                        continue;
                    }
                    assert!(UNSCOPED.contains(&a.as_str()), "{binary}: {a} on *");
                }
            }
        }
    }
    // The functions that reach the secret store, and only they, may run in Vault's subnets.
    assert_eq!(
        in_a_vpc,
        BTreeSet::from(
            ["cleanup", "create-vm", "get-credentials", "provisioner"].map(String::from)
        )
    );
    let t = template_json();
    for (id, r) in t["Resources"].as_object().unwrap() {
        let vpc = &r["Properties"]["VpcConfig"];
        if r["Type"] == "AWS::Serverless::Function" && !vpc.is_null() {
            let binary = r["Metadata"]["BuildProperties"]["Binary"].as_str().unwrap();
            assert!(
                in_a_vpc.contains(binary),
                "{id} runs in a VPC without its rights"
            );
            assert_eq!(vpc[0], "HasVaultVpc", "{id}");
        }
    }
}

/// Secrets Manager and its KMS key only when the logins are kept there (`SecretBackend`).
#[test]
fn secrets_manager_is_granted_only_with_that_backend() {
    let mut seen = 0;
    for binary in binaries() {
        for g in role_of(&binary).grants {
            for a in &g.actions {
                let want = if a.starts_with("secretsmanager:") {
                    Some("UsesSecretsManager")
                } else if a.starts_with("kms:") {
                    Some("UsesSecretsManagerKms")
                } else {
                    None
                };
                if let Some(want) = want {
                    seen += 1;
                    assert_eq!(g.when.as_deref(), Some(want), "{binary}: {a}");
                }
            }
        }
    }
    assert!(seen > 0);
    let t = super::policy::transformed();
    assert_eq!(
        t["Conditions"]["UsesSecretsManager"]["Fn::Equals"],
        json!([{"Ref": "SecretBackend"}, "secretsmanager"]),
        "{}",
        t["Conditions"]
    );
}

/// Every role carries only AWS's basic execution policy (logs) and X-Ray's write-only policy
/// (traces; SAM adds it for `Tracing: Active`, the provisioner's explicit role names it); SAM's
/// stream policy (`AWSLambdaDynamoDBExecutionRole`, every stream of the account) is avoided by
/// the provisioner's explicit role.
#[test]
fn no_role_carries_aws_managed_policies_beyond_basic_execution_and_tracing() {
    for binary in binaries() {
        assert_eq!(
            role_of(&binary).aws_managed,
            [
                "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
                "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess"
            ],
            "{binary}"
        );
    }
}

/// The clouds' own credentials (the Azure service principal, the Kraud.Cloud token) sit under
/// their own prefix, and only the provisioner and cleanup may read them; get-credentials only
/// reads logins.
#[test]
fn only_the_provisioner_and_cleanup_reach_the_clouds_credentials() {
    let mut readers = Vec::new();
    for binary in binaries() {
        for g in role_of(&binary).grants {
            if !g.actions.iter().any(|a| a.starts_with("secretsmanager:")) {
                continue;
            }
            for resource in g.resource_text() {
                if resource.contains("${CloudSecretsPrefix}") {
                    assert_eq!(g.actions, ["secretsmanager:GetSecretValue"], "{binary}");
                    readers.push(binary.clone());
                } else if resource != "*" {
                    assert!(
                        resource.contains("${SecretsPrefix}"),
                        "{binary}: a secret grant outside the two prefixes: {resource}"
                    );
                }
            }
        }
    }
    readers.sort();
    assert_eq!(readers, ["cleanup", "provisioner"]);
    let creds = role_of("get-credentials").actions();
    assert!(
        creds
            .iter()
            .filter(|a| a.starts_with("secretsmanager:"))
            .all(|a| a == "secretsmanager:GetSecretValue"),
        "get-credentials only reads: {creds:?}"
    );
    // The two prefixes cannot overlap: no login name starts with the clouds' prefix.
    let t = template_json();
    let params = &t["Parameters"];
    let logins = params["SecretsPrefix"]["Default"].as_str().unwrap();
    let clouds = params["CloudSecretsPrefix"]["Default"].as_str().unwrap();
    assert!(!clouds.starts_with(logins) && !logins.starts_with(clouds));
}

/// The Vault policies shipped per function role (deploy/vault-policies): get-credentials only
/// reads, only the provisioner's and cleanup's reach the clouds' credentials, and every policy
/// names only the service's own login paths and that prefix. (Issue 12 loads them into OpenBao.)
#[test]
fn the_vault_policies_fence_the_clouds_credentials() {
    let dir = root().join("deploy/vault-policies");
    let mut seen = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        let text = std::fs::read_to_string(&path).unwrap();
        let paths: Vec<&str> = text
            .lines()
            .filter_map(|l| l.trim().strip_prefix("path \""))
            .map(|l| l.split('"').next().unwrap())
            .collect();
        assert!(!paths.is_empty(), "{name}");
        for p in &paths {
            let login = p.contains("/+/user")
                || p.contains("/+/vm")
                || ["enclaive-static/metadata/", "enclaive-static/metadata/+/"].contains(p);
            let clouds = p.starts_with("enclaive-static/data/vm-api-clouds/");
            assert!(login || clouds, "{name}: {p}");
            if clouds {
                assert!(
                    ["provisioner", "cleanup"].contains(&name.as_str()),
                    "{name} reads the clouds' credentials"
                );
            }
        }
        if name == "get-credentials" {
            let caps: Vec<&str> = text
                .lines()
                .filter_map(|l| l.trim().strip_prefix("capabilities = "))
                .collect();
            assert!(caps.iter().all(|c| *c == "[\"read\"]"), "{caps:?}");
        }
        seen.push(name);
    }
    seen.sort();
    assert_eq!(
        seen,
        ["cleanup", "create-vm", "get-credentials", "provisioner"]
    );
}
