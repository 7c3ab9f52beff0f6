//! Each function's IAM policy in template.yaml covers every AWS call its code makes: the calls
//! are recorded by an SDK interceptor while the function's code runs against DynamoDB Local and
//! moto, and each must be allowed by an action of that function's policy.

use std::collections::BTreeSet;
use std::sync::Arc;

use reqwest::Method;
use serde_json::{json, Value};
use vmapi_core::Drivers;
use vmapi_drivers::aws::AwsDriver;
use vmapi_models::{CloudKind, CredentialScope, VmStatus};
use vmapi_secrets::config::SecretsManagerConfig;
use vmapi_secrets::SecretsManagerStore;
use vmapi_tests::*;

/// Every IAM action in the policies of the function that builds `binary`.
fn actions_of(binary: &str) -> BTreeSet<String> {
    fn collect(v: &Value, out: &mut BTreeSet<String>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    if k == "Action" {
                        match v {
                            Value::String(s) => {
                                out.insert(s.clone());
                            }
                            Value::Array(a) => {
                                out.extend(a.iter().filter_map(|x| x.as_str().map(str::to_string)))
                            }
                            _ => {}
                        }
                    } else {
                        collect(v, out);
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|x| collect(x, out)),
            _ => {}
        }
    }
    let t = template_json();
    let (_, f) = t["Resources"]
        .as_object()
        .unwrap()
        .iter()
        .find(|(_, r)| r["Metadata"]["BuildProperties"]["Binary"] == binary)
        .unwrap_or_else(|| panic!("no function builds {binary}"));
    let mut out = BTreeSet::new();
    collect(&f["Properties"]["Policies"], &mut out);
    out
}

/// The IAM actions a recorded call needs.
fn needed(op: &str, service: &str) -> Vec<String> {
    if let Some(items) = op
        .strip_prefix("TransactWriteItems[")
        .and_then(|s| s.strip_suffix(']'))
    {
        return items
            .split(',')
            .filter(|s| !s.is_empty())
            .map(|a| format!("dynamodb:{a}"))
            .collect();
    }
    vec![format!("{service}:{op}")]
}

fn service_of(op: &str) -> &'static str {
    const SM: [&str; 6] = [
        "ListSecrets",
        "CreateSecret",
        "GetSecretValue",
        "DeleteSecret",
        "DescribeSecret",
        "PutSecretValue",
    ];
    const EC2: [&str; 13] = [
        "RunInstances",
        "DescribeInstances",
        "StartInstances",
        "StopInstances",
        "RebootInstances",
        "TerminateInstances",
        "DescribeVpcs",
        "DescribeSecurityGroups",
        "DescribeSecurityGroupRules",
        "CreateSecurityGroup",
        "AuthorizeSecurityGroupIngress",
        "RevokeSecurityGroupIngress",
        "DeleteSecurityGroup",
    ];
    if SM.contains(&op) {
        "secretsmanager"
    } else if EC2.contains(&op) {
        "ec2"
    } else {
        "dynamodb"
    }
}

#[track_caller]
fn assert_covered(binary: &str, ops: &[String]) {
    assert!(!ops.is_empty(), "{binary}: nothing was recorded");
    let allowed = actions_of(binary);
    for op in ops {
        for action in needed(op, service_of(op)) {
            assert!(
                allowed.contains(&action),
                "{binary} calls {op} but its policy lacks {action}; it has {allowed:?}"
            );
        }
    }
}

/// What an `Idempotency-Key` adds to a function's calls: the request with a key (its record is
/// put, then updated) and again (the replay), and a malformed request with a key (its record is
/// put, then deleted).
async fn with_keys(
    app: &TestApp,
    method: Method,
    (path, body, status): (&str, Option<&Value>, u16),
    (bad_path, bad_body): (&str, Option<&Value>),
) {
    let key = format!("{method}{path}");
    for _ in 0..2 {
        app.call_with(
            method.clone(),
            path,
            Some(OWNER),
            body,
            &[("Idempotency-Key", key.as_bytes())],
        )
        .await
        .expect(status);
    }
    app.call_with(
        method.clone(),
        bad_path,
        Some(OWNER),
        bad_body,
        &[("Idempotency-Key", format!("bad-{key}").as_bytes())],
    )
    .await
    .expect(400);
}

#[tokio::test]
async fn every_function_policy_covers_the_calls_its_code_makes() {
    let counter = RequestCounter::default();
    let sm = SecretsManagerStore::new(
        counter.secretsmanager_client().await,
        SecretsManagerConfig {
            prefix: format!("iam-{}/", vmapi_models::ObjectId::new()),
            kms_key_id: None,
            recovery_window_days: 0,
        },
        vmapi_models::DeploymentId::local(),
    );
    let app = TestApp::spawn_opts(Options {
        client: Some(counter.client().await),
        scope: CredentialScope::Vm,
        logins: Logins::Store(Arc::new(sm)),
        quotas: GENEROUS_QUOTAS,
    })
    .await;
    counter.take();

    // create-vm: a create, and one whose names are taken (its new logins are removed again).
    let r = app.create(OWNER, &["iam-1"]).await.expect(201);
    let id = r.json[0]["_id"].as_str().unwrap().to_string();
    app.create(OWNER, &["iam-2", "iam-1"]).await.expect(409);
    let mut keyed = spec_create_request();
    keyed["hostNames"] = json!(["iam-keyed"]);
    keyed["quantity"] = json!(1);
    let mut malformed = keyed.clone();
    malformed["authMethod"] = json!(7);
    let create = "/api/virtual-machines";
    with_keys(
        &app,
        Method::POST,
        (create, Some(&keyed), 201),
        (create, Some(&malformed)),
    )
    .await;
    assert_covered("create-vm", &counter.take());

    app.get(
        &format!("/api/teams/{TEAM}/projects/{PROJECT}/virtual-machines"),
        OWNER,
    )
    .await
    .expect(200);
    assert_covered("list-vms", &counter.take());
    app.get(&format!("/api/virtual-machines/{id}"), OWNER)
        .await
        .expect(200);
    assert_covered("get-vm", &counter.take());
    app.call(
        Method::PATCH,
        &format!("/api/virtual-machines/{id}"),
        Some(OWNER),
        Some(&json!({"name": "iam-renamed", "tags": ["a"]})),
    )
    .await
    .expect(200);
    assert_covered("update-vm", &counter.take());
    app.get(&format!("/api/virtual-machines/{id}/credentials"), OWNER)
        .await
        .expect(200);
    assert_covered("get-credentials", &counter.take());
    app.get(&format!("/api/virtual-machines/{id}/activity"), OWNER)
        .await
        .expect(200);
    assert_covered("get-activity", &counter.take());

    // Security rules: create (plain and with keys), list, delete (plain and with keys).
    let rules = "/api/security-rules";
    let rule_body = |name: &str| {
        json!({"virtualMachine": id, "name": name, "protocol": "*", "portRange": "*",
            "access": "Deny"})
    };
    let made = app
        .call(
            Method::POST,
            rules,
            Some(OWNER),
            Some(&rule_body("iam-rule")),
        )
        .await
        .expect(201);
    let bad_rule = json!({"virtualMachine": id, "name": "-bad"});
    with_keys(
        &app,
        Method::POST,
        (rules, Some(&rule_body("iam-keyed-rule")), 201),
        (rules, Some(&bad_rule)),
    )
    .await;
    assert_covered("create-security-rule", &counter.take());
    app.get(&format!("/api/virtual-machines/{id}/security-rules"), OWNER)
        .await
        .expect(200);
    assert_covered("list-security-rules", &counter.take());
    let rule_path = format!("{rules}/{}", made.json["_id"].as_str().unwrap());
    app.call(Method::DELETE, &rule_path, Some(OWNER), None)
        .await
        .expect(200);
    let mut deletes = counter.take();
    let keyed = app
        .call(
            Method::POST,
            rules,
            Some(OWNER),
            Some(&rule_body("iam-rule-2")),
        )
        .await
        .expect(201);
    counter.take();
    with_keys(
        &app,
        Method::DELETE,
        (
            &format!("{rules}/{}", keyed.json["_id"].as_str().unwrap()),
            None,
            200,
        ),
        (&format!("{rules}/bad"), None),
    )
    .await;
    deletes.extend(counter.take());
    assert_covered("delete-security-rule", &deletes);

    // Each action on a VM in a status that allows it, once plain and once with keys.
    for (action, status) in [
        ("stop", VmStatus::Running),
        ("reboot", VmStatus::Running),
        ("start", VmStatus::Stopped),
    ] {
        let vm = demo_vm(&format!("iam-{action}"), status);
        app.seed_vm(&vm).await;
        counter.take();
        let path = format!("/api/virtual-machines/{}/{action}", vm.id);
        app.call(Method::PUT, &path, Some(OWNER), None)
            .await
            .expect(200);
        with_keys(
            &app,
            Method::PUT,
            (&path, None, 200),
            (&format!("/api/virtual-machines/bad/{action}"), None),
        )
        .await;
        assert_covered(&format!("{action}-vm"), &counter.take());
    }
    app.call(
        Method::DELETE,
        &format!("/api/virtual-machines/{id}"),
        Some(OWNER),
        None,
    )
    .await
    .expect(200);
    with_keys(
        &app,
        Method::DELETE,
        (&format!("/api/virtual-machines/{id}"), None, 200),
        ("/api/virtual-machines/bad", None),
    )
    .await;
    assert_covered("delete-vm", &counter.take());

    // provisioner: the teardown of the deleted VM (login removal) and an AWS VM's lifecycle on moto.
    let sdk = vmapi_aws::sdk_config().await;
    let drivers = Drivers::new()
        .with(
            CloudKind::Kraud,
            Arc::new(vmapi_drivers::SimulatedDriver::new(
                std::time::Duration::ZERO,
            )),
        )
        .with(
            CloudKind::Aws,
            Arc::new(AwsDriver::with_client(
                sdk,
                "eu-west-1",
                counter.ec2_client("eu-west-1").await,
            )),
        );
    let p = app.provisioner(drivers);
    app.settle(&p, &id).await;
    let mut ops = counter.take();
    let seed = demo_seed();
    let aws = seed
        .providers
        .iter()
        .find(|p| p.id.to_string().ends_with("968c"))
        .unwrap();
    let body = json!({
        "cloudProvider": aws.cloud_provider, "team": TEAM, "project": PROJECT, "hostNames": ["iam-aws"],
        "provider": aws.id, "size": "6548a383e2442d14b6bf9746", "price": "6548a383e2442d14b6bf970c",
        "region": aws.locations[0], "image": aws.images[0], "authMethod": 0
    });
    let r = app
        .call(
            Method::POST,
            "/api/virtual-machines",
            Some(OWNER),
            Some(&body),
        )
        .await
        .expect(201);
    let aws_id = r.json[0]["_id"].as_str().unwrap().to_string();
    counter.take();
    app.settle(&p, &aws_id).await;
    ops.extend(counter.take());
    for action in ["stop", "start"] {
        app.call(
            Method::PUT,
            &format!("/api/virtual-machines/{aws_id}/{action}"),
            Some(OWNER),
            None,
        )
        .await
        .expect(200);
        counter.take();
        app.settle(&p, &aws_id).await;
        ops.extend(counter.take());
    }
    // Its security rules changed twice (as rule changes write them): ingress authorized, then
    // revoked, on its security group.
    for port in ["22", "443"] {
        use vmapi_core::Repository;
        let vm_id = vmapi_models::VmId::parse(&aws_id).unwrap();
        let vm = app.repo.get_vm(vm_id).await.unwrap().unwrap();
        let now = vmapi_models::Timestamp::now();
        let mut rule = vmapi_models::SecurityRule::default_for(
            Some(CloudKind::Aws),
            vm.rules_revision + 1,
            now,
        );
        rule.port_range = vmapi_models::Ports::parse(&[port]).unwrap();
        let mut next = vm.clone();
        next.rules = vec![rule];
        next.rules_revision = vm.rules_revision + 1;
        next.pending_op = Some(vmapi_models::PendingOp::new(
            vmapi_models::OpKind::ApplyRules,
            now,
        ));
        next.version = vm.version + 1;
        app.repo
            .replace_vm(&next, vm.version, &vmapi_core::NameChange::default(), None)
            .await
            .unwrap();
        counter.take();
        app.settle(&p, &aws_id).await;
        ops.extend(counter.take());
    }
    app.call(
        Method::DELETE,
        &format!("/api/virtual-machines/{aws_id}"),
        Some(OWNER),
        None,
    )
    .await
    .expect(200);
    counter.take();
    app.settle(&p, &aws_id).await;
    ops.extend(counter.take());
    for must in [
        "RunInstances",
        "DescribeInstances",
        "StopInstances",
        "StartInstances",
        "TerminateInstances",
        "CreateSecurityGroup",
        "AuthorizeSecurityGroupIngress",
        "RevokeSecurityGroupIngress",
        "DeleteSecurityGroup",
        "DeleteSecret",
    ] {
        assert!(
            ops.iter().any(|o| o == must),
            "the provisioner run made no {must}: {ops:?}"
        );
    }
    assert_covered("provisioner", &ops);

    // cleanup: a purge, an expiry and a repair.
    let mut expired = demo_vm("iam-expired", VmStatus::Running);
    expired.expires_at = Some(vmapi_models::Timestamp::from_unix_millis(0).unwrap());
    // Counted against the team's quota, so its deletion updates the usage item too.
    expired.vcpus = Some(1);
    app.seed_vm(&expired).await;
    let mut old = demo_vm("iam-old-deleted", VmStatus::Deleted);
    old.updated_at = vmapi_models::Timestamp::from_unix_millis(0).unwrap();
    app.seed_vm(&old).await;
    let mut stuck = demo_vm("iam-stuck", VmStatus::Creating);
    stuck.updated_at = vmapi_models::Timestamp::from_unix_millis(0).unwrap();
    app.seed_vm(&stuck).await;
    counter.take();
    let summary = vmapi_core::Cleanup::new(
        app.repo.clone(),
        Arc::new(vmapi_core::SystemClock),
        Some(p),
        vmapi_core::CleanupPolicy::default(),
    )
    .run()
    .await
    .unwrap();
    assert!(
        summary.deleted >= 1 && summary.purged >= 1 && summary.repaired >= 1,
        "{summary:#?}"
    );
    assert_covered("cleanup", &counter.take());
}

/// Each function's Secrets Manager statements: (actions, resource) pairs.
fn secret_grants(binary: &str) -> Vec<(Vec<String>, String)> {
    let t = template_json();
    let (_, f) = t["Resources"]
        .as_object()
        .unwrap()
        .iter()
        .find(|(_, r)| r["Metadata"]["BuildProperties"]["Binary"] == binary)
        .unwrap_or_else(|| panic!("no function builds {binary}"));
    let mut out = Vec::new();
    let mut stack = vec![f["Properties"]["Policies"].clone()];
    while let Some(v) = stack.pop() {
        match v {
            Value::Array(a) => stack.extend(a),
            Value::Object(m) if m.contains_key("Action") => {
                let actions: Vec<String> = match &m["Action"] {
                    Value::String(s) => vec![s.clone()],
                    Value::Array(a) => a
                        .iter()
                        .filter_map(|x| x.as_str().map(String::from))
                        .collect(),
                    _ => vec![],
                };
                if actions.iter().any(|a| a.starts_with("secretsmanager:")) {
                    out.push((actions, m["Resource"].to_string()));
                }
            }
            Value::Object(m) => stack.extend(m.into_iter().map(|(_, v)| v)),
            _ => {}
        }
    }
    out
}

/// The clouds' own credentials (the Azure service principal, the Kraud.Cloud token) sit under
/// their own prefix, and only the provisioner and cleanup may read them; get-credentials only
/// reads logins, and nothing but ListSecrets (which has no resource-level permissions) is
/// granted on every secret.
#[test]
fn only_the_provisioner_and_cleanup_reach_the_clouds_credentials() {
    let t = template_json();
    let binaries: Vec<String> = t["Resources"]
        .as_object()
        .unwrap()
        .values()
        .filter_map(|r| {
            r["Metadata"]["BuildProperties"]["Binary"]
                .as_str()
                .map(String::from)
        })
        .collect();
    let mut readers = Vec::new();
    for binary in &binaries {
        for (actions, resource) in secret_grants(binary) {
            if resource.contains("${CloudSecretsPrefix}") {
                assert_eq!(
                    actions,
                    ["secretsmanager:GetSecretValue"],
                    "{binary}: {resource}"
                );
                readers.push(binary.clone());
            } else if resource == "\"*\"" {
                assert_eq!(actions, ["secretsmanager:ListSecrets"], "{binary}");
            } else {
                assert!(
                    resource.contains("${SecretsPrefix}"),
                    "{binary}: a secret grant outside the two prefixes: {resource}"
                );
            }
        }
    }
    readers.sort();
    assert_eq!(readers, ["cleanup", "provisioner"]);
    let creds = secret_grants("get-credentials");
    assert!(
        creds
            .iter()
            .all(|(a, _)| a == &["secretsmanager:GetSecretValue"]),
        "get-credentials only reads: {creds:?}"
    );
    // The two prefixes cannot overlap: no login name starts with the clouds' prefix.
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
