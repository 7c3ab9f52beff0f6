//! Security rules over HTTP against DynamoDB Local: the platform's AWS and Azure bodies, the
//! neutral body, the default rule per cloud, what a cloud cannot express (422), bad bodies (400),
//! conflicts and the rule limit (409), authorization, the pending `apply-rules` contract with the
//! provisioner, delete with its pointer item, and concurrent creates.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use reqwest::Method;
use serde_json::{json, Value};
use vmapi_core::{NameChange, Repository};
use vmapi_models::{
    CloudKind, CloudProviderId, CreateRuleRequest, OpKind, PendingOp, SecurityRule, Timestamp,
    UserId, VmId, VmRecord, VmStatus,
};
use vmapi_tests::*;

const RULES: &str = "/api/security-rules";
/// Cloud providers of the demo data.
const AWS_CLOUD: &str = "6548a383e2442d14b6bf9686";
const AZURE_CLOUD: &str = "6548a383e2442d14b6bf9687";
/// Providers of the demo data.
const KRAUD_PROVIDER: &str = "968b";
const AWS_PROVIDER: &str = "968c";
const AZURE_PROVIDER: &str = "968d";

/// The platform's AWS example body, verbatim but for the VM id.
fn aws_example(vm: &str) -> Value {
    let mut body: Value = serde_json::from_str(
        r#"{ "protocol": "Tcp", "direction": "Inbound", "portRange": ["22"], "name": "SSH",
  "description": "", "source": "*", "cidrBlock": "0.0.0.0/0",
  "virtualMachine": "6549fc8570c99a149c79193f" }"#,
    )
    .unwrap();
    body["virtualMachine"] = json!(vm);
    body
}

/// The platform's Azure example body, verbatim but for the VM id.
fn azure_example(vm: &str) -> Value {
    let mut body: Value = serde_json::from_str(
        r#"{ "source": "*", "sourcePortRange": "*", "sourceAddressPrefix": "*",
  "destination": "*", "destinationPortRange": "8080", "destinationAddressPrefix": "*",
  "protocol": "*", "access": "Allow", "priority": 100, "direction": "Inbound",
  "name": "Any", "description": "", "virtualMachine": "6549fc7a70c99a149c7918e8" }"#,
    )
    .unwrap();
    body["virtualMachine"] = json!(vm);
    body
}

async fn vm_on(app: &TestApp, provider: &str, name: &str) -> String {
    app.vm_on(OWNER, provider, name).await
}

/// A VM record stored as is, on the cloud provider `cloud` (None: Kraud.Cloud), in `status`.
async fn seeded(app: &TestApp, name: &str, status: VmStatus, cloud: Option<&str>) -> VmRecord {
    let mut vm = demo_vm(name, status);
    if let Some(c) = cloud {
        vm.cloud_provider = CloudProviderId::parse(c).unwrap();
    }
    app.seed_vm(&vm).await;
    vm
}

async fn record(app: &TestApp, id: &str) -> VmRecord {
    app.repo
        .get_vm(VmId::parse(id).unwrap())
        .await
        .unwrap()
        .expect("the VM record")
}

async fn pointer(app: &TestApp, rule: &str) -> Option<HashMap<String, AttributeValue>> {
    app.repo
        .client()
        .get_item()
        .table_name(&app.table)
        .key("pk", AttributeValue::S(format!("RULE#{rule}")))
        .key("sk", AttributeValue::S("RULE".into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
}

async fn post(app: &TestApp, user: &str, body: &Value) -> Reply {
    app.call(Method::POST, RULES, Some(user), Some(body)).await
}

async fn list(app: &TestApp, user: &str, vm: &str) -> Reply {
    app.get(&format!("/api/virtual-machines/{vm}/security-rules"), user)
        .await
}

async fn delete(app: &TestApp, user: &str, rule: &str) -> Reply {
    app.call(Method::DELETE, &format!("{RULES}/{rule}"), Some(user), None)
        .await
}

fn names(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn the_platforms_bodies_create_rules_beside_the_default_one() {
    let app = TestApp::spawn().await;
    let aws = vm_on(&app, AWS_PROVIDER, "rules-aws").await;
    let azure = vm_on(&app, AZURE_PROVIDER, "rules-azure").await;
    let kraud = vm_on(&app, KRAUD_PROVIDER, "rules-kraud").await;

    // Every VM starts with one default rule, not yet applied.
    for (vm, name, protocol, ports) in [
        (&aws, "AllowAnySSHInbound", "Tcp", json!(["22"])),
        (&azure, "AllowAnySSHInbound", "Tcp", json!(["22"])),
        (&kraud, "AllowAnyInbound", "*", json!(["*"])),
    ] {
        let l = list(&app, OWNER, vm).await.expect(200).json;
        assert_eq!(l.as_array().unwrap().len(), 1, "{l}");
        let d = &l[0];
        assert_eq!(d["name"], name);
        assert_eq!(d["protocol"], protocol);
        assert_eq!(d["portRange"], ports);
        assert_eq!(d["direction"], "Inbound");
        assert_eq!(d["access"], "Allow");
        assert_eq!(d["cidrBlock"], "0.0.0.0/0");
        assert_eq!(d["source"], "*");
        assert_eq!(d["priority"], 1000);
        assert_eq!(d["applied"], false);
        assert_eq!(d["virtualMachine"], vm.as_str());
        assert_eq!(d["rule"], d["_id"]);
        let rec = record(&app, vm).await;
        assert_eq!((rec.rules_revision, rec.rules_applied), (1, 0));
        assert_eq!(rec.pending_op.unwrap().op, OpKind::Create);
        assert!(
            pointer(&app, d["_id"].as_str().unwrap()).await.is_some(),
            "the default rule's pointer is written with the VM"
        );
        // The VM itself does not show its rules.
        let got = app
            .get(&format!("/api/virtual-machines/{vm}"), OWNER)
            .await
            .expect(200)
            .json;
        for field in ["rules", "rulesRevision", "rulesApplied"] {
            assert!(got.get(field).is_none(), "{field} in {got}");
        }
    }

    // The AWS example on the AWS VM.
    let r = post(&app, OWNER, &aws_example(&aws)).await.expect(201).json;
    assert_eq!(r["name"], "SSH");
    assert_eq!(r["direction"], "Inbound");
    assert_eq!(r["description"], "");
    assert_eq!(r["virtualMachine"], aws.as_str());
    assert_eq!(r["protocol"], "Tcp");
    assert_eq!(r["portRange"], json!(["22"]));
    assert_eq!(r["cidrBlock"], "0.0.0.0/0");
    assert_eq!(r["source"], "*");
    assert_eq!(r["access"], "Allow");
    assert_eq!(
        r["priority"], 1010,
        "the next free priority after the default"
    );
    assert_eq!(r["applied"], false);
    assert_eq!(r["rule"], r["_id"]);
    assert!(r["createdAt"].is_string() && r["updatedAt"].is_string());
    assert_eq!(
        record(&app, &aws).await.rules_revision,
        2,
        "the change bumps the revision"
    );

    // The Azure example on the Azure VM, and a neutral body wrapped as `data`.
    let r = post(&app, OWNER, &azure_example(&azure))
        .await
        .expect(201)
        .json;
    assert_eq!(r["name"], "Any");
    assert_eq!(r["priority"], 100);
    assert_eq!(r["protocol"], "*");
    assert_eq!(r["portRange"], json!(["8080"]));
    let neutral = json!({"data": {
        "virtualMachine": azure, "name": "dns-out", "direction": "Outbound", "protocol": "udp",
        "portRange": ["53", "8000-8090"], "cidrBlock": "2001:db8::/32", "access": "Deny",
        "description": "resolvers (v6)"
    }});
    let r = post(&app, OWNER, &neutral).await.expect(201).json;
    assert_eq!(r["direction"], "Outbound");
    assert_eq!(r["protocol"], "Udp");
    assert_eq!(r["access"], "Deny");
    assert_eq!(r["portRange"], json!(["53", "8000-8090"]));
    assert_eq!(r["cidrBlock"], "2001:db8::/32");
    assert_eq!(r["source"], "2001:db8::/32");
    assert_eq!(r["priority"], 1000, "priorities are per direction");
    let https = json!({"virtualMachine": azure, "name": "https", "protocol": "Tcp",
        "portRange": "443", "source": "203.0.113.0/24", "priority": 2000});
    let r = post(&app, OWNER, &https).await.expect(201).json;
    assert_eq!(r["cidrBlock"], "203.0.113.0/24");
    assert_eq!(r["source"], "203.0.113.0/24");

    // Inbound first, then by priority.
    let l = list(&app, OWNER, &azure).await.expect(200).json;
    assert_eq!(
        names(&l),
        ["Any", "AllowAnySSHInbound", "https", "dns-out"],
        "{l}"
    );
    assert!(l.as_array().unwrap().iter().all(|r| r["applied"] == false));
    let aws_list = list(&app, OWNER, &aws).await.expect(200).json;
    assert_eq!(names(&aws_list), ["AllowAnySSHInbound", "SSH"]);

    // Once the provisioner has applied the revision, the rules show as applied.
    let mut rec = record(&app, &azure).await;
    rec.rules_applied = rec.rules_revision;
    rec.version += 1;
    app.repo
        .replace_vm(&rec, rec.version - 1, &NameChange::default(), None)
        .await
        .unwrap();
    let l = list(&app, OWNER, &azure).await.expect(200).json;
    assert!(l.as_array().unwrap().iter().all(|r| r["applied"] == true));

    // Each change is in the VM's history with the rule's name.
    let events = app
        .get(&format!("/api/virtual-machines/{azure}/activity"), OWNER)
        .await
        .expect(200)
        .json;
    let created: Vec<&Value> = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "rule.create")
        .collect();
    assert_eq!(created.len(), 3, "{events}");
    assert_eq!(created[0]["detail"], "https");
    assert_eq!(created[0]["actor"], OWNER);
}

#[tokio::test]
async fn what_a_cloud_cannot_express_is_a_422_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let kraud = vm_on(&app, KRAUD_PROVIDER, "unsupported-kraud").await;
    let aws = vm_on(&app, AWS_PROVIDER, "unsupported-aws").await;
    let before = app.dump().await;
    // A per-port rule on Kraud.Cloud (the platform's AWS example).
    let r = post(&app, OWNER, &aws_example(&kraud))
        .await
        .expect_error(422, "UNSUPPORTED_BY_PROVIDER");
    assert!(
        r.json["message"].as_str().unwrap().contains("Kraud.Cloud"),
        "{}",
        r.json
    );
    post(&app, OWNER, &azure_example(&kraud))
        .await
        .expect_error(422, "UNSUPPORTED_BY_PROVIDER");
    // Deny and outbound rules on AWS.
    let mut deny = aws_example(&aws);
    deny["access"] = json!("Deny");
    let r = post(&app, OWNER, &deny)
        .await
        .expect_error(422, "UNSUPPORTED_BY_PROVIDER");
    assert!(r.json["message"].as_str().unwrap().contains("Deny"));
    let mut outbound = aws_example(&aws);
    outbound["direction"] = json!("Outbound");
    outbound["name"] = json!("out");
    post(&app, OWNER, &outbound)
        .await
        .expect_error(422, "UNSUPPORTED_BY_PROVIDER");
    assert!(app.dump().await == before, "a refused rule wrote nothing");

    // What Kraud.Cloud can do: close (Deny) or open the address.
    let close = json!({"virtualMachine": kraud, "name": "close", "protocol": "*",
        "portRange": ["*"], "cidrBlock": "0.0.0.0/0", "access": "Deny"});
    post(&app, OWNER, &close).await.expect(201);
}

#[tokio::test]
async fn bad_bodies_are_400s_naming_every_field_and_write_nothing() {
    let app = TestApp::spawn().await;
    let vm = vm_on(&app, AZURE_PROVIDER, "bad-bodies").await;
    let valid =
        json!({"virtualMachine": vm, "name": "web", "protocol": "Tcp", "portRange": ["80"]});
    let with = |field: &str, value: Value| {
        let mut b = valid.clone();
        b[field] = value;
        b
    };
    let without = |field: &str| {
        let mut b = valid.clone();
        b.as_object_mut().unwrap().remove(field);
        b
    };
    let cases: Vec<(&str, Value, Vec<&str>)> = vec![
        ("no VM", without("virtualMachine"), vec!["virtualMachine"]),
        ("no name", without("name"), vec!["name"]),
        ("no protocol", without("protocol"), vec!["protocol"]),
        ("no ports", without("portRange"), vec!["portRange"]),
        (
            "bad VM id",
            with("virtualMachine", json!("xyz")),
            vec!["virtualMachine"],
        ),
        (
            "name with a space",
            with("name", json!("a b")),
            vec!["name"],
        ),
        (
            "name too long",
            with("name", json!("n".repeat(81))),
            vec!["name"],
        ),
        ("name a number", with("name", json!(5)), vec!["name"]),
        (
            "protocol gre",
            with("protocol", json!("gre")),
            vec!["protocol"],
        ),
        (
            "direction sideways",
            with("direction", json!("sideways")),
            vec!["direction"],
        ),
        (
            "access maybe",
            with("access", json!("maybe")),
            vec!["access"],
        ),
        ("port 0", with("portRange", json!(["0"])), vec!["portRange"]),
        (
            "port 70000",
            with("portRange", json!("70000")),
            vec!["portRange"],
        ),
        (
            "reversed range",
            with("portRange", json!(["90-80"])),
            vec!["portRange"],
        ),
        (
            "overlapping ranges",
            with("portRange", json!(["80-90", "85"])),
            vec!["portRange"],
        ),
        (
            "ports a number",
            with("portRange", json!(22)),
            vec!["portRange"],
        ),
        (
            "host bits",
            with("cidrBlock", json!("10.0.0.1/8")),
            vec!["cidrBlock"],
        ),
        (
            "prefix 33",
            with("cidrBlock", json!("10.0.0.0/33")),
            vec!["cidrBlock"],
        ),
        ("priority 99", with("priority", json!(99)), vec!["priority"]),
        (
            "priority 4097",
            with("priority", json!(4097)),
            vec!["priority"],
        ),
        (
            "priority negative",
            with("priority", json!(-1)),
            vec!["priority"],
        ),
        (
            "description é",
            with("description", json!("é")),
            vec!["description"],
        ),
        (
            "source port",
            with("sourcePortRange", json!("1024")),
            vec!["sourcePortRange"],
        ),
        (
            "ports twice",
            with("destinationPortRange", json!("80")),
            vec!["destinationPortRange"],
        ),
        (
            "unknown field",
            with("fromPort", json!(22)),
            vec!["fromPort"],
        ),
        (
            "several at once",
            json!({"virtualMachine": vm, "name": "-x", "protocol": "gre", "portRange": "0",
                "priority": 1}),
            vec!["name", "protocol", "portRange", "priority"],
        ),
    ];
    let before = app.dump().await;
    for (what, body, fields) in cases {
        let r = post(&app, OWNER, &body)
            .await
            .expect_error(400, "VALIDATION_FAILED");
        // Each detail's field (an unknown field is named in its message).
        let named: Vec<String> = r.json["details"]
            .as_array()
            .unwrap_or_else(|| panic!("{what}: no details: {}", r.json))
            .iter()
            .map(|d| format!("{} {}", d["field"], d["message"]))
            .collect();
        for f in fields {
            assert!(
                named.iter().any(|n| n.contains(f)),
                "{what}: {f} not named in {}",
                r.json
            );
        }
    }
    app.call(Method::POST, RULES, Some(OWNER), Some(&json!([valid])))
        .await
        .expect_error(400, "VALIDATION_FAILED");
    app.call_with(
        Method::POST,
        RULES,
        Some(OWNER),
        None,
        &[("content-type", b"application/json")],
    )
    .await
    .expect_error(400, "INVALID_JSON");
    for bad in [
        "nope",
        "654a11e60b23ef1b0f36d44",
        "654a11e60b23ef1b0f36d44eX",
    ] {
        delete(&app, OWNER, bad)
            .await
            .expect_error(400, "INVALID_PARAMETER");
        list(&app, OWNER, bad)
            .await
            .expect_error(400, "INVALID_PARAMETER");
    }
    assert!(app.dump().await == before, "bad requests wrote nothing");
    // Unknown VM: 404.
    let mut missing = valid.clone();
    missing["virtualMachine"] = json!(VmId::new().to_string());
    post(&app, OWNER, &missing)
        .await
        .expect_error(404, "VM_NOT_FOUND");
    assert!(app.dump().await == before);
}

#[tokio::test]
async fn names_and_priorities_are_unique_and_the_rule_set_is_bounded() {
    let app = TestApp::spawn().await;
    let vm = vm_on(&app, AZURE_PROVIDER, "conflicts").await;
    post(&app, OWNER, &azure_example(&vm)).await.expect(201);
    let before = app.dump().await;
    for name in ["any", "ANY", "allowanysshinbound"] {
        let mut body = azure_example(&vm);
        body["name"] = json!(name);
        body["priority"] = json!(300);
        post(&app, OWNER, &body)
            .await
            .expect_error(409, "RULE_NAME_TAKEN");
    }
    let mut same_priority = azure_example(&vm);
    same_priority["name"] = json!("other");
    post(&app, OWNER, &same_priority)
        .await
        .expect_error(409, "PRIORITY_TAKEN");
    let mut taken_default = azure_example(&vm);
    taken_default["name"] = json!("other");
    taken_default["priority"] = json!(1000);
    post(&app, OWNER, &taken_default)
        .await
        .expect_error(409, "PRIORITY_TAKEN");
    assert!(app.dump().await == before, "conflicts wrote nothing");
    // The same priority in the other direction is free.
    same_priority["direction"] = json!("Outbound");
    post(&app, OWNER, &same_priority).await.expect(201);

    // A VM with the most rules it may have.
    let mut full = demo_vm("full-of-rules", VmStatus::Running);
    full.cloud_provider = CloudProviderId::parse(AZURE_CLOUD).unwrap();
    let user = UserId::parse(OWNER).unwrap();
    let now = Timestamp::now();
    for i in 0..vmapi_models::rules::MAX_RULES_PER_VM {
        let body: CreateRuleRequest = serde_json::from_value(json!({
            "virtualMachine": full.id, "name": format!("r{i}"), "protocol": "Tcp",
            "portRange": [format!("{}", 1000 + i)]
        }))
        .unwrap();
        let rule = body
            .parse()
            .unwrap()
            .into_rule(&full.rules, &user, 1, now)
            .unwrap();
        full.rules.push(rule);
    }
    full.rules_revision = 1;
    app.seed_vm(&full).await;
    let before = app.dump().await;
    let body = json!({"virtualMachine": full.id, "name": "one-more", "protocol": "Tcp",
        "portRange": "22"});
    let r = post(&app, OWNER, &body)
        .await
        .expect_error(409, "RULE_LIMIT_REACHED");
    assert!(r.json["message"].as_str().unwrap().contains("50"));
    assert!(app.dump().await == before);
    // Deleting one makes room.
    let first = full.rules[0].id.to_string();
    delete(&app, OWNER, &first).await.expect(200);
    post(&app, OWNER, &body).await.expect(201);
}

#[tokio::test]
async fn viewers_get_403_and_other_teams_404_on_every_rule_endpoint() {
    let app = TestApp::spawn().await;
    let (team, project) = app.seed_roles_team().await;
    let mut vm = demo_vm("authz-rules", VmStatus::Running);
    vm.team = team.parse().unwrap();
    vm.project = project.parse().unwrap();
    vm.rules = vec![SecurityRule::default_for(
        Some(CloudKind::Kraud),
        1,
        Timestamp::now(),
    )];
    vm.rules_revision = 1;
    app.seed_vm(&vm).await;
    let rule = vm.rules[0].id.to_string();
    let id = vm.id.to_string();
    let body = json!({"virtualMachine": id, "name": "open", "protocol": "*", "portRange": "*",
        "access": "Deny"});
    let before = app.dump().await;

    post(&app, "role-viewer", &body)
        .await
        .expect_error(403, "FORBIDDEN");
    delete(&app, "role-viewer", &rule)
        .await
        .expect_error(403, "FORBIDDEN");
    for outsider in [OWNER, OTHER_OWNER] {
        let r = post(&app, outsider, &body)
            .await
            .expect_error(404, "VM_NOT_FOUND");
        assert!(!r.json.to_string().contains("authz-rules"));
        list(&app, outsider, &id)
            .await
            .expect_error(404, "VM_NOT_FOUND");
        // The same answer as for a rule that does not exist.
        let r = delete(&app, outsider, &rule)
            .await
            .expect_error(404, "SECURITY_RULE_NOT_FOUND");
        assert!(!r.json.to_string().contains(&id), "{}", r.json);
        delete(
            &app,
            outsider,
            &vmapi_models::SecurityRuleId::new().to_string(),
        )
        .await
        .expect_error(404, "SECURITY_RULE_NOT_FOUND");
    }
    assert!(app.dump().await == before, "refusals wrote nothing");

    // Every member reads; owners, admins and members change.
    for user in ["role-owner", "role-admin", "role-member", "role-viewer"] {
        let l = list(&app, user, &id).await.expect(200).json;
        assert_eq!(names(&l)[0], "AllowAnyInbound");
    }
    for (i, user) in ["role-owner", "role-admin", "role-member"]
        .iter()
        .enumerate()
    {
        let mut b = body.clone();
        b["name"] = json!(format!("open-{i}"));
        let made = post(&app, user, &b).await.expect(201).json;
        delete(&app, user, made["_id"].as_str().unwrap())
            .await
            .expect(200);
    }
}

#[tokio::test]
async fn a_change_asks_the_provisioner_to_apply_the_rules_unless_an_operation_is_pending() {
    let app = TestApp::spawn().await;
    let open = |vm: &VmRecord, name: &str| json!({"virtualMachine": vm.id, "name": name, "protocol": "Tcp", "portRange": "443"});
    // Running and stopped VMs with nothing pending: apply-rules, in the same write.
    for status in [VmStatus::Running, VmStatus::Stopped] {
        let vm = seeded(
            &app,
            &format!("apply-{}", status.code()),
            status,
            Some(AWS_CLOUD),
        )
        .await;
        post(&app, OWNER, &open(&vm, "https")).await.expect(201);
        let rec = record(&app, &vm.id.to_string()).await;
        assert_eq!(rec.pending_op.as_ref().unwrap().op, OpKind::ApplyRules);
        assert_eq!(rec.rules_revision, vm.rules_revision + 1);
        assert_eq!(rec.version, vm.version + 1);
        assert_eq!(rec.status, status);
        // A second change leaves the pending apply-rules and bumps the revision again.
        let r = post(&app, OWNER, &open(&vm, "https-2")).await.expect(201);
        let rec2 = record(&app, &vm.id.to_string()).await;
        assert_eq!(rec2.pending_op, rec.pending_op);
        assert_eq!(rec2.rules_revision, rec.rules_revision + 1);
        delete(&app, OWNER, r.json["_id"].as_str().unwrap())
            .await
            .expect(200);
        assert_eq!(
            record(&app, &vm.id.to_string()).await.rules_revision,
            rec.rules_revision + 2
        );
    }
    // A VM being created keeps its create operation (the provisioner applies the rules after it).
    let creating = vm_on(&app, AWS_PROVIDER, "apply-creating").await;
    let before = record(&app, &creating).await;
    post(&app, OWNER, &aws_example(&creating)).await.expect(201);
    let rec = record(&app, &creating).await;
    assert_eq!(rec.pending_op, before.pending_op);
    assert_eq!(rec.pending_op.unwrap().op, OpKind::Create);
    assert_eq!(rec.rules_revision, 2);
    // So does a VM with another operation pending.
    let mut stopping = demo_vm("apply-stopping", VmStatus::Stopping);
    stopping.cloud_provider = CloudProviderId::parse(AWS_CLOUD).unwrap();
    stopping.pending_op = Some(PendingOp::new(OpKind::Stop, Timestamp::now()));
    app.seed_vm(&stopping).await;
    post(&app, OWNER, &open(&stopping, "https"))
        .await
        .expect(201);
    let rec = record(&app, &stopping.id.to_string()).await;
    assert_eq!(rec.pending_op.unwrap().op, OpKind::Stop);

    // Failed and deleting VMs: 409; deleted ones: 404.
    for (status, code) in [
        (VmStatus::Failed, Some("ILLEGAL_TRANSITION")),
        (VmStatus::Deleting, Some("ILLEGAL_TRANSITION")),
        (VmStatus::Deleted, None),
    ] {
        let mut vm = demo_vm(&format!("apply-refused-{}", status.code()), status);
        vm.rules = vec![SecurityRule::default_for(
            Some(CloudKind::Kraud),
            1,
            Timestamp::now(),
        )];
        vm.rules_revision = 1;
        app.seed_vm(&vm).await;
        let before = app.dump().await;
        let body = json!({"virtualMachine": vm.id, "name": "open", "protocol": "*",
            "portRange": "*"});
        let rule = vm.rules[0].id.to_string();
        match code {
            Some(code) => {
                let r = post(&app, OWNER, &body).await.expect_error(409, code);
                assert!(
                    r.json["message"].as_str().unwrap().contains(status.name()),
                    "{}",
                    r.json
                );
                delete(&app, OWNER, &rule).await.expect_error(409, code);
            }
            None => {
                post(&app, OWNER, &body)
                    .await
                    .expect_error(404, "VM_NOT_FOUND");
                delete(&app, OWNER, &rule)
                    .await
                    .expect_error(404, "SECURITY_RULE_NOT_FOUND");
                list(&app, OWNER, &vm.id.to_string())
                    .await
                    .expect_error(404, "VM_NOT_FOUND");
            }
        }
        assert!(app.dump().await == before);
    }

    // The VM's own actions replace a pending apply-rules (the provisioner applies the rules
    // afterwards, as `rulesApplied < rulesRevision`).
    for (action, status, method, suffix, after) in [
        (
            "stop",
            VmStatus::Running,
            Method::PUT,
            "/stop",
            Some(OpKind::Stop),
        ),
        (
            "start",
            VmStatus::Stopped,
            Method::PUT,
            "/start",
            Some(OpKind::Start),
        ),
        (
            "reboot",
            VmStatus::Running,
            Method::PUT,
            "/reboot",
            Some(OpKind::Reboot),
        ),
        (
            "delete",
            VmStatus::Running,
            Method::DELETE,
            "",
            Some(OpKind::Delete),
        ),
        (
            "patch",
            VmStatus::Running,
            Method::PATCH,
            "",
            Some(OpKind::ApplyRules),
        ),
    ] {
        let vm = seeded(&app, &format!("then-{action}"), status, None).await;
        let body = json!({"virtualMachine": vm.id, "name": "close", "protocol": "*",
            "portRange": "*", "access": "Deny"});
        post(&app, OWNER, &body).await.expect(201);
        let patch = json!({"tags": ["x"]});
        app.call(
            method,
            &format!("/api/virtual-machines/{}{suffix}", vm.id),
            Some(OWNER),
            (action == "patch").then_some(&patch),
        )
        .await
        .expect(200);
        let rec = record(&app, &vm.id.to_string()).await;
        assert_eq!(rec.pending_op.map(|p| p.op), after, "{action}");
        assert!(rec.rules_applied < rec.rules_revision, "{action}");
    }
}

#[tokio::test]
async fn delete_answers_200_then_404_and_removes_the_pointer() {
    let app = TestApp::spawn().await;
    let vm = vm_on(&app, AWS_PROVIDER, "delete-rules").await;
    let made = post(&app, OWNER, &aws_example(&vm)).await.expect(201).json;
    let rule = made["_id"].as_str().unwrap().to_string();
    let default = list(&app, OWNER, &vm).await.json[0]["_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(pointer(&app, &rule).await.is_some());

    let r = delete(&app, OWNER, &rule).await.expect(200).json;
    assert_eq!(
        r,
        json!({"message": "Security rule deleted", "ruleId": rule, "vmId": vm})
    );
    assert!(
        pointer(&app, &rule).await.is_none(),
        "the pointer goes with the rule"
    );
    delete(&app, OWNER, &rule)
        .await
        .expect_error(404, "SECURITY_RULE_NOT_FOUND");
    // The default rule may go too.
    delete(&app, OWNER, &default).await.expect(200);
    let l = list(&app, OWNER, &vm).await.expect(200).json;
    assert_eq!(l, json!([]));
    let rec = record(&app, &vm).await;
    assert!(rec.rules.is_empty());
    assert_eq!(rec.rules_revision, 4);
    let events = app
        .get(&format!("/api/virtual-machines/{vm}/activity"), OWNER)
        .await
        .json;
    let deleted: Vec<&Value> = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "rule.delete")
        .collect();
    assert_eq!(deleted.len(), 2);
    assert_eq!(deleted[1]["detail"], "SSH");
    assert_eq!(deleted[0]["detail"], "AllowAnySSHInbound");

    // Purging a VM's record removes its rules' pointers.
    let mut gone = demo_vm("purged-rules", VmStatus::Deleted);
    gone.rules = vec![SecurityRule::default_for(
        Some(CloudKind::Kraud),
        1,
        Timestamp::now(),
    )];
    app.seed_vm(&gone).await;
    let rule = gone.rules[0].id.to_string();
    assert!(pointer(&app, &rule).await.is_some());
    app.repo.purge_vm(gone.id, gone.version).await.unwrap();
    assert!(pointer(&app, &rule).await.is_none());
}

#[tokio::test]
async fn concurrent_creates_of_one_name_make_exactly_one_rule() {
    let app = std::sync::Arc::new(TestApp::spawn().await);
    let vm = vm_on(&app, AZURE_PROVIDER, "race-rules").await;
    for round in 0..4 {
        let mut set = tokio::task::JoinSet::new();
        for i in 0..2 {
            let app = app.clone();
            let body = json!({"virtualMachine": vm, "name": format!("race-{round}"),
                "protocol": "Tcp", "portRange": [format!("{}", 2000 + round * 10 + i)]});
            set.spawn(async move { post(&app, OWNER, &body).await });
        }
        let mut statuses = Vec::new();
        while let Some(r) = set.join_next().await {
            let r = r.unwrap();
            if r.status.as_u16() == 409 {
                assert_eq!(r.json["code"], "RULE_NAME_TAKEN", "{}", r.json);
            }
            statuses.push(r.status.as_u16());
        }
        statuses.sort();
        assert_eq!(statuses, [201, 409], "round {round}");
    }
    let rec = record(&app, &vm).await;
    assert_eq!(rec.rules.len(), 5);
    assert_eq!(rec.rules_revision, 5);
}
