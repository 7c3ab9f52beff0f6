//! The pending `apply-rules` contract with the provisioner.

use super::*;

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
