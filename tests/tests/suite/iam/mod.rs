//! Each function's IAM role allows every AWS call its code makes and nothing beyond: the calls
//! are recorded by an SDK interceptor while the function's code runs against DynamoDB Local and
//! moto, and compared with the role as CloudFormation deploys it (the SAM-transformed template,
//! [`policy`]). The statements' conditions and fences are checked in [`fences`].

mod fences;
mod policy;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use reqwest::Method;
use serde_json::{json, Value};
use vmapi_core::Drivers;
use vmapi_drivers::aws::AwsDriver;
use vmapi_models::{CloudKind, CredentialScope, VmStatus};
use vmapi_secrets::config::SecretsManagerConfig;
use vmapi_secrets::SecretsManagerStore;
use vmapi_tests::*;

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
    const EC2: [&str; 14] = [
        "RunInstances",
        "DescribeInstances",
        "StartInstances",
        "StopInstances",
        "RebootInstances",
        "TerminateInstances",
        "ModifyInstanceAttribute",
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

/// The calls recorded per function.
#[derive(Default)]
struct Recorded(BTreeMap<String, BTreeSet<String>>);

impl Recorded {
    /// Records `ops` for `binary` and checks that its role allows each.
    #[track_caller]
    fn cover(&mut self, binary: &str, ops: &[String]) {
        assert!(!ops.is_empty(), "{binary}: nothing was recorded");
        let allowed = policy::role_of(binary).actions();
        let mine = self.0.entry(binary.to_string()).or_default();
        for op in ops {
            for action in needed(op, service_of(op)) {
                assert!(
                    allowed.contains(&action),
                    "{binary} calls {op} but its role lacks {action}; it has {allowed:?}"
                );
                mine.insert(action);
            }
        }
    }

    /// Checks that no role grants an action its function was not seen to need, beyond the
    /// listed ones, each with its reason.
    #[track_caller]
    fn nothing_beyond(&self) {
        // (function, action, why it is granted though the run does not record it)
        const UNRECORDED: &[(&str, &str, &str)] = &[
            ("create-vm", "secretsmanager:TagResource", "CreateSecret with tags is also authorized as TagResource"),
            ("create-vm", "kms:Decrypt", "a customer KMS key (SecretsKmsKeyId): CreateSecret needs Decrypt and GenerateDataKey on it"),
            ("create-vm", "kms:GenerateDataKey", "a customer KMS key: encrypting a new login"),
            ("get-credentials", "kms:Decrypt", "a customer KMS key: reading a login"),
            ("provisioner", "kms:Decrypt", "a customer KMS key: reading a login or the clouds' credentials"),
            ("cleanup", "kms:Decrypt", "a customer KMS key: reading the clouds' credentials"),
            ("provisioner", "dynamodb:DescribeStream", "the event source mapping reads the stream with the function's role"),
            ("provisioner", "dynamodb:GetRecords", "the event source mapping"),
            ("provisioner", "dynamodb:GetShardIterator", "the event source mapping"),
            ("provisioner", "dynamodb:ListStreams", "the event source mapping"),
            ("provisioner", "sqs:SendMessage", "the event source mapping's on-failure destination"),
            ("provisioner", "dynamodb:BatchGetItem", "catalog lookups (cloud, size, image): in this run the repository's catalog cache, filled by the server in the same process, answers them"),
            ("provisioner", "ec2:CreateTags", "the tags of RunInstances and CreateSecurityGroup are authorized as CreateTags"),
        ];
        // Only with VaultSubnetIds (`VaultVpcPolicy`): Lambda makes the network interfaces of a
        // function in a VPC with the function's role.
        const IN_A_VPC: [&str; 4] = ["create-vm", "get-credentials", "provisioner", "cleanup"];
        const VPC_ACTIONS: [&str; 6] = [
            "ec2:CreateNetworkInterface",
            "ec2:DescribeNetworkInterfaces",
            "ec2:DescribeSubnets",
            "ec2:DeleteNetworkInterface",
            "ec2:AssignPrivateIpAddresses",
            "ec2:UnassignPrivateIpAddresses",
        ];
        let seen_by = |binary: &str| -> BTreeSet<String> {
            let mut seen = self.0.get(binary).cloned().unwrap_or_default();
            seen.extend(
                UNRECORDED
                    .iter()
                    .filter(|(b, ..)| *b == binary)
                    .map(|(_, a, _)| a.to_string()),
            );
            if IN_A_VPC.contains(&binary) {
                seen.extend(VPC_ACTIONS.iter().map(|a| a.to_string()));
            }
            seen
        };
        for binary in policy::binaries() {
            let mut seen = seen_by(&binary);
            if binary == "cleanup" {
                // Its repairs run the provisioner's steps (`Cleanup::drive`).
                seen.extend(seen_by("provisioner"));
            }
            let beyond: Vec<String> = policy::role_of(&binary)
                .actions()
                .into_iter()
                .filter(|a| !seen.contains(a))
                .collect();
            assert!(
                beyond.is_empty(),
                "{binary}'s role grants {beyond:?}, which its code was not seen to call"
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
async fn every_role_allows_the_calls_its_code_makes_and_nothing_beyond() {
    let mut rec = Recorded::default();
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
        // Every login read reaches moto, so it is recorded.
        login_cache: std::time::Duration::ZERO,
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
    rec.cover("create-vm", &counter.take());

    app.get(
        &format!("/api/teams/{TEAM}/projects/{PROJECT}/virtual-machines"),
        OWNER,
    )
    .await
    .expect(200);
    rec.cover("list-vms", &counter.take());
    app.get(&format!("/api/virtual-machines/{id}"), OWNER)
        .await
        .expect(200);
    rec.cover("get-vm", &counter.take());
    app.call(
        Method::PATCH,
        &format!("/api/virtual-machines/{id}"),
        Some(OWNER),
        Some(&json!({"name": "iam-renamed", "tags": ["a"]})),
    )
    .await
    .expect(200);
    rec.cover("update-vm", &counter.take());
    app.get(&format!("/api/virtual-machines/{id}/credentials"), OWNER)
        .await
        .expect(200);
    rec.cover("get-credentials", &counter.take());
    app.get(&format!("/api/virtual-machines/{id}/activity"), OWNER)
        .await
        .expect(200);
    rec.cover("get-activity", &counter.take());

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
    rec.cover("create-security-rule", &counter.take());
    app.get(&format!("/api/virtual-machines/{id}/security-rules"), OWNER)
        .await
        .expect(200);
    rec.cover("list-security-rules", &counter.take());
    // Catalog discovery.
    for (function, path) in [
        ("list-cloud-providers", "/api/cloud-providers".to_string()),
        (
            "list-providers",
            format!("/api/cloud-providers/{CLOUD}/providers"),
        ),
        (
            "list-locations",
            format!("/api/providers/{PROVIDER}/locations"),
        ),
        (
            "list-images",
            format!("/api/providers/{PROVIDER}/locations/berlin/images"),
        ),
        (
            "list-prices",
            format!("/api/providers/{PROVIDER}/locations/berlin/images/Ubuntu/prices"),
        ),
        ("get-team-costs", format!("/api/teams/{TEAM}/costs")),
    ] {
        app.get(&path, OWNER).await.expect(200);
        rec.cover(function, &counter.take());
    }
    // The admin API, with a key of its own.
    let admin_vm = app.create(OWNER, &["iam-admin"]).await.expect(201).json[0]["_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, admin_key) = app.admin_key("iam").await;
    counter.take();
    for (function, method, path) in [
        (
            "admin-list-team-vms",
            Method::GET,
            format!("/admin/api/teams/{TEAM}/virtual-machines"),
        ),
        (
            "admin-block-vm",
            Method::PUT,
            format!("/admin/api/virtual-machines/{admin_vm}/block"),
        ),
        (
            "admin-unblock-vm",
            Method::PUT,
            format!("/admin/api/virtual-machines/{admin_vm}/unblock"),
        ),
        (
            "admin-delete-vm",
            Method::DELETE,
            format!("/admin/api/virtual-machines/{admin_vm}"),
        ),
    ] {
        app.as_admin(method, &path, &admin_key).await.expect(200);
        rec.cover(function, &counter.take());
    }
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
    rec.cover("delete-security-rule", &deletes);

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
        rec.cover(&format!("{action}-vm"), &counter.take());
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
    rec.cover("delete-vm", &counter.take());

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
        "region": aws.locations[0].region, "image": aws.images[0], "authMethod": 0
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
    for action in ["stop", "start", "reboot"] {
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
    // A resize (resize-vm, with keys), which the provisioner carries out: stop, change, start.
    counter.take();
    let resize = json!({"size": "6548a383e2442d14b6bf9747", "price": "6548a383e2442d14b6bf970d"});
    with_keys(
        &app,
        Method::PUT,
        (
            &format!("/api/virtual-machines/{aws_id}/resize"),
            Some(&resize),
            200,
        ),
        ("/api/virtual-machines/bad/resize", Some(&resize)),
    )
    .await;
    rec.cover("resize-vm", &counter.take());
    app.settle(&p, &aws_id).await;
    ops.extend(counter.take());
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
        "RebootInstances",
        "TerminateInstances",
        "ModifyInstanceAttribute",
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
    rec.cover("provisioner", &ops);

    // cleanup: a purge, an expiry and a repair.
    let mut expired = demo_vm("iam-expired", VmStatus::Running);
    expired.expires_at = Some(vmapi_models::Timestamp::from_unix_millis(0).unwrap());
    // Counted against the team's quota, so its deletion updates the usage item too.
    expired.vcpus = Some(1);
    app.seed_vm(&expired).await;
    let mut old = demo_vm("iam-old-deleted", VmStatus::Deleted);
    old.updated_at = vmapi_models::Timestamp::from_unix_millis(0).unwrap();
    app.seed_vm(&old).await;
    {
        // With its activity, which the purge removes in batches.
        use vmapi_core::Repository;
        let event = vmapi_models::VmEvent::new(
            old.id,
            vmapi_models::Timestamp::now(),
            "iam",
            vmapi_models::EventKind::Create,
        );
        app.repo.record_event(&event).await.unwrap();
    }
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
    rec.cover("cleanup", &counter.take());
    // health makes no AWS call: its role must grant none.
    rec.0.entry("health".into()).or_default();
    rec.nothing_beyond();
}
