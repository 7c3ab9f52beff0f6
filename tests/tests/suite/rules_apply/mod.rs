//! How the provisioner applies a VM's security rules (`pendingOp` `apply-rules`): through the
//! simulated cloud (the op, the chain after other operations, failures, the cleanup job), and
//! the AWS driver's per-VM security group on a real moto server. Rule changes are written to
//! the records directly, as the rule endpoints do.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_ec2::types::Filter;
use reqwest::Method;
use vmapi_core::cloud::{CloudDriver, DriverError, LoginSpec, VmSpec};
use vmapi_core::{Cleanup, CleanupPolicy, NameChange, Repository, SystemClock};
use vmapi_drivers::aws::AwsDriver;
use vmapi_models::{
    CloudKind, Direction, EventKind, OpKind, PendingOp, Ports, Protocol, RuleAccess, RuleName,
    SecurityRule, TeamId, Timestamp, VmId, VmRecord, VmStatus,
};
use vmapi_tests::*;

fn rule(name: &str, protocol: Protocol, ports: &[&str], cidr: &str, revision: u32) -> SecurityRule {
    let mut r = SecurityRule::default_for(Some(CloudKind::Aws), revision, Timestamp::now());
    r.name = RuleName::parse(name).unwrap();
    r.protocol = protocol;
    r.port_range = Ports::parse(ports).unwrap();
    r.cidr_block = cidr.parse().unwrap();
    // Distinct enough per name (AWS ignores priorities; the simulated cloud keeps them).
    r.priority = 1000 + name.bytes().map(u16::from).sum::<u16>() % 3000;
    r
}

async fn stored(app: &TestApp, id: VmId) -> VmRecord {
    app.repo.get_vm(id).await.unwrap().expect("the VM")
}

/// Writes a rule change as the rule endpoints do: the new set, the revision bumped, and
/// `apply-rules` pending when the VM is running or stopped with nothing pending.
async fn change_rules(app: &TestApp, id: VmId, rules: Vec<SecurityRule>) -> VmRecord {
    let vm = stored(app, id).await;
    let mut next = vm.clone();
    next.rules = rules;
    next.rules_revision = vm.rules_revision + 1;
    if matches!(vm.status, VmStatus::Running | VmStatus::Stopped) && vm.pending_op.is_none() {
        next.pending_op = Some(PendingOp::new(OpKind::ApplyRules, Timestamp::now()));
    }
    next.version = vm.version + 1;
    app.repo
        .replace_vm(&next, vm.version, &NameChange::default(), None)
        .await
        .expect("rule change written");
    next
}

/// A new VM through the API, its record given the default rule at revision 1 (as the API does
/// for new VMs), settled by `p`.
async fn running_vm(app: &TestApp, p: &vmapi_core::Provisioner, name: &str) -> VmId {
    let r = app.create(OWNER, &[name]).await.expect(201);
    let id = VmId::parse(r.json[0]["_id"].as_str().unwrap()).unwrap();
    let vm = stored(app, id).await;
    if vm.rules_revision == 0 {
        let mut next = vm.clone();
        next.rules = vec![SecurityRule::default_for(None, 1, Timestamp::now())];
        next.rules_revision = 1;
        next.version = vm.version + 1;
        app.repo
            .replace_vm(&next, vm.version, &NameChange::default(), None)
            .await
            .unwrap();
    }
    app.settle(p, &id.to_string()).await;
    id
}

async fn events(app: &TestApp, id: VmId) -> Vec<String> {
    app.repo
        .vm_events(id, 50, None)
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.kind == EventKind::ProvisioningDone)
        .map(|e| e.detail.unwrap_or_default())
        .collect()
}

#[tokio::test]
async fn a_new_vm_gets_its_rules_with_the_create_and_changes_are_applied() {
    let app = TestApp::spawn().await;
    let (sim, p) = app.simulated();
    let id = running_vm(&app, &p, "rules-1").await;
    let vm = stored(&app, id).await;
    assert_eq!(vm.status, VmStatus::Running);
    assert_eq!((vm.rules_revision, vm.rules_applied), (1, 1), "{vm:?}");
    assert_eq!(
        sim.rules(id).unwrap(),
        vm.rules,
        "the create set the firewall up"
    );
    assert!(
        !sim.calls().contains(&format!("apply-rules {id}")),
        "nothing left to apply after the create: {:?}",
        sim.calls()
    );

    // A change of a running VM: applied, recorded, nothing pending.
    let wanted = vec![
        vm.rules[0].clone(),
        rule("Web", Protocol::Tcp, &["80", "443"], "0.0.0.0/0", 2),
    ];
    change_rules(&app, id, wanted.clone()).await;
    assert_eq!(
        app.settle(&p, &id.to_string()).await,
        vmapi_core::Outcome::Finished(VmStatus::Running)
    );
    let vm = stored(&app, id).await;
    assert_eq!((vm.rules_revision, vm.rules_applied), (2, 2));
    assert_eq!(
        (vm.status, vm.pending_op, vm.status_reason),
        (VmStatus::Running, None, None)
    );
    assert_eq!(sim.rules(id).unwrap(), wanted);
    assert_eq!(events(&app, id).await[0], "apply-rules");

    // A redelivered record finds nothing to do.
    let before = stored(&app, id).await.version;
    p.process(id).await.unwrap();
    assert_eq!(stored(&app, id).await.version, before);
}

#[tokio::test]
async fn rules_changed_during_another_operation_are_applied_right_after_it() {
    let app = TestApp::spawn().await;
    let (sim, p) = app.simulated();
    let id = running_vm(&app, &p, "rules-chain").await;

    // Changed while a stop is pending: the stop stays pending, apply-rules follows it.
    app.call(
        Method::PUT,
        &format!("/api/virtual-machines/{id}/stop"),
        Some(OWNER),
        None,
    )
    .await
    .expect(200);
    let wanted = vec![rule("Dns", Protocol::Udp, &["53"], "10.0.0.0/8", 2)];
    let written = change_rules(&app, id, wanted.clone()).await;
    assert_eq!(written.pending_op.unwrap().op, OpKind::Stop);
    app.settle(&p, &id.to_string()).await;
    let vm = stored(&app, id).await;
    assert_eq!(vm.status, VmStatus::Stopped);
    assert_eq!((vm.rules_applied, vm.pending_op), (2, None));
    assert_eq!(sim.rules(id).unwrap(), wanted);
    // Both operations are in the history, the stop first.
    assert_eq!(events(&app, id).await[..2], ["apply-rules", "stop"]);

    // Changed while the VM was being created (the create had used the older set): once it
    // runs, the newer set is applied.
    let mut vm = demo_vm("rules-late", VmStatus::Provisioning);
    vm.rules = vec![rule("Old", Protocol::Tcp, &["22"], "0.0.0.0/0", 1)];
    sim.create(&VmSpec {
        vm_id: vm.id,
        team: vm.team,
        name: "rules-late".into(),
        region: vm.region.datacenter.name.clone(),
        size: "s".into(),
        memory_gb: 1,
        vcpus: 1,
        disk_gb: 1,
        image: "i".into(),
        login: LoginSpec {
            username: "root".into(),
            public_keys: vec![],
            password_hash: None,
            password: None,
        },
        confidential: None,
        rules: vm.rules.clone(),
    })
    .await
    .unwrap();
    let newer = vec![rule("New", Protocol::Tcp, &["2222"], "0.0.0.0/0", 2)];
    vm.rules = newer.clone();
    vm.rules_revision = 2;
    vm.rules_applied = 1;
    vm.pending_op = Some(PendingOp::new(OpKind::Create, Timestamp::now()));
    app.seed_vm(&vm).await;
    app.settle(&p, &vm.id.to_string()).await;
    let done = stored(&app, vm.id).await;
    assert_eq!(done.status, VmStatus::Running);
    assert_eq!((done.rules_applied, done.pending_op), (2, None));
    assert_eq!(sim.rules(vm.id).unwrap(), newer);
    assert_eq!(events(&app, vm.id).await[..2], ["apply-rules", "create"]);
}

#[tokio::test]
async fn a_firewall_the_cloud_refuses_leaves_the_vm_as_it_was_with_a_reason() {
    let app = TestApp::spawn().await;
    let (sim, p) = app.simulated();
    let id = running_vm(&app, &p, "rules-fail").await;

    sim.fail_rules(Some(DriverError::InvalidSpec(
        "SecurityRuleConflict: two rules with one priority".into(),
    )));
    change_rules(
        &app,
        id,
        vec![rule("A", Protocol::Tcp, &["1"], "0.0.0.0/0", 2)],
    )
    .await;
    app.settle(&p, &id.to_string()).await;
    let vm = stored(&app, id).await;
    assert_eq!(
        (vm.status, vm.pending_op.clone()),
        (VmStatus::Running, None)
    );
    assert_eq!((vm.rules_revision, vm.rules_applied), (2, 1));
    assert_eq!(
        vm.status_reason.as_deref(),
        Some("security rules could not be applied: the cloud refused the request: SecurityRuleConflict: two rules with one priority")
    );
    let shown = app
        .get(&format!("/api/virtual-machines/{id}"), OWNER)
        .await
        .expect(200)
        .json;
    assert_eq!(shown["status"], 3, "{shown}");
    assert!(events(&app, id).await[0].starts_with("apply-rules: security rules could not"));

    // An unreachable cloud is retried (the stream redelivers), not a failure; past the
    // deadline it gives up the same way.
    sim.fail_rules(Some(DriverError::Unreachable("connection refused".into())));
    change_rules(
        &app,
        id,
        vec![rule("B", Protocol::Tcp, &["2"], "0.0.0.0/0", 3)],
    )
    .await;
    assert!(p.process(id).await.is_err());
    let vm = stored(&app, id).await;
    assert_eq!(
        vm.pending_op.as_ref().map(|p| p.op),
        Some(OpKind::ApplyRules)
    );

    // The cleanup job finds the overdue apply-rules and has the provisioner finish it: with
    // the cloud back, the rules are applied and the old reason goes.
    let mut overdue = vm.clone();
    overdue.pending_op.as_mut().unwrap().requested_at =
        Timestamp::from_unix_millis(Timestamp::now().unix_millis() - 2 * 3600 * 1000).unwrap();
    overdue.version = vm.version + 1;
    app.repo
        .replace_vm(&overdue, vm.version, &NameChange::default(), None)
        .await
        .unwrap();
    let still_down = Cleanup::new(
        app.repo.clone(),
        Arc::new(SystemClock),
        Some(p.clone()),
        CleanupPolicy::default(),
    );
    let summary = still_down.run().await.unwrap();
    assert!(
        summary
            .actions
            .iter()
            .any(|a| a.starts_with(&id.to_string())),
        "{summary:#?}"
    );
    let vm = stored(&app, id).await;
    assert_eq!(
        (vm.status, vm.pending_op.clone()),
        (VmStatus::Running, None)
    );
    assert_eq!(
        vm.status_reason.as_deref(),
        Some("security rules could not be applied: the cloud could not be reached")
    );

    sim.fail_rules(None);
    let wanted = vec![rule("C", Protocol::Icmp, &["*"], "0.0.0.0/0", 4)];
    change_rules(&app, id, wanted.clone()).await;
    app.settle(&p, &id.to_string()).await;
    let vm = stored(&app, id).await;
    assert_eq!((vm.rules_revision, vm.rules_applied), (4, 4));
    assert_eq!(vm.status_reason, None);
    assert_eq!(sim.rules(id).unwrap(), wanted);
}

mod aws;
