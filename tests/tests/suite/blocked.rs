//! Blocked VMs (`isBlocked`) and who sees a team's quotas, over HTTP against DynamoDB Local.
//!
//! A blocked VM can be read, stopped and deleted; a start, reboot, change, rule change or
//! credentials read is 409 `VM_BLOCKED` and writes nothing. Team quotas appear inside a VM's
//! `team` only for the team's owners and admins.

use std::sync::Arc;

use reqwest::Method;
use serde_json::{json, Value};
use vmapi_core::{Service, SystemClock};
use vmapi_models::{TeamQuotas, VmId};
use vmapi_tests::*;

fn service(app: &TestApp) -> Service {
    Service::new(app.repo.clone(), Arc::new(SystemClock))
}

/// A running Azure VM (simulated cloud) and the provisioner that keeps moving it.
async fn running_vm(app: &TestApp, name: &str) -> (VmId, vmapi_core::Provisioner) {
    let (_sim, p) = app.simulated();
    let id = app.vm_on(OWNER, "968d", name).await;
    app.settle(&p, &id).await;
    (VmId::parse(&id).unwrap(), p)
}

#[tokio::test]
async fn a_blocked_vm_may_be_read_stopped_and_deleted_and_nothing_else() {
    let app = TestApp::spawn().await;
    let (id, _p) = running_vm(&app, "blocked-a").await;
    let rule = app
        .call(
            Method::POST,
            "/api/security-rules",
            Some(OWNER),
            Some(
                &json!({"virtualMachine": id.to_string(), "name": "https", "protocol": "Tcp",
                "portRange": "443", "source": "203.0.113.0/24", "priority": 2000}),
            ),
        )
        .await
        .expect(201);
    let rule_id = rule.json["_id"].as_str().unwrap().to_string();
    assert!(service(&app)
        .set_blocked(id, true, "operator:test")
        .await
        .unwrap());
    assert!(
        !service(&app)
            .set_blocked(id, true, "operator:test")
            .await
            .unwrap(),
        "already"
    );

    let vm_path = format!("/api/virtual-machines/{id}");
    let before = app.dump().await;
    let refused: Vec<(Method, String, Option<Value>)> = vec![
        (Method::PUT, format!("{vm_path}/start"), None),
        (Method::PUT, format!("{vm_path}/reboot"), None),
        (
            Method::PATCH,
            vm_path.clone(),
            Some(json!({"name": "renamed"})),
        ),
        (Method::GET, format!("{vm_path}/credentials"), None),
        (
            Method::POST,
            "/api/security-rules".into(),
            Some(
                json!({"virtualMachine": id.to_string(), "name": "ssh2", "protocol": "Tcp",
                "portRange": "2222", "source": "203.0.113.0/24", "priority": 2100}),
            ),
        ),
        (
            Method::DELETE,
            format!("/api/security-rules/{rule_id}"),
            None,
        ),
    ];
    for (method, path, body) in refused {
        let r = app
            .call(method.clone(), &path, Some(OWNER), body.as_ref())
            .await;
        let r = r.expect_error(409, "VM_BLOCKED");
        assert!(
            r.json["message"].as_str().unwrap().contains("blocked"),
            "{method} {path}: {}",
            r.json
        );
    }
    assert_eq!(app.dump().await, before, "the refusals wrote nothing");

    // Reading stays possible, and says so.
    let got = app.get(&vm_path, OWNER).await.expect(200);
    assert_eq!(got.json["isBlocked"], true);
    app.get(&format!("{vm_path}/security-rules"), OWNER)
        .await
        .expect(200);
    let activity = app
        .get(&format!("{vm_path}/activity"), OWNER)
        .await
        .expect(200);
    let text = activity.json.to_string();
    assert!(
        text.contains("vm.block") && text.contains("operator:test"),
        "the block is in the VM's activity: {text}"
    );

    // Stop and delete go through.
    app.call(Method::PUT, &format!("{vm_path}/stop"), Some(OWNER), None)
        .await
        .expect(200);
    app.call(Method::DELETE, &vm_path, Some(OWNER), None)
        .await
        .expect(200);
}

#[tokio::test]
async fn an_unblocked_vm_starts_again() {
    let app = TestApp::spawn().await;
    let (id, p) = running_vm(&app, "blocked-b").await;
    let path = format!("/api/virtual-machines/{id}");
    service(&app)
        .set_blocked(id, true, "operator:test")
        .await
        .unwrap();
    app.call(Method::PUT, &format!("{path}/stop"), Some(OWNER), None)
        .await
        .expect(200);
    app.settle(&p, &id.to_string()).await;
    app.call(Method::PUT, &format!("{path}/start"), Some(OWNER), None)
        .await
        .expect_error(409, "VM_BLOCKED");
    assert!(service(&app)
        .set_blocked(id, false, "operator:test")
        .await
        .unwrap());
    app.call(Method::PUT, &format!("{path}/start"), Some(OWNER), None)
        .await
        .expect(200);
    assert_eq!(app.get(&path, OWNER).await.json["isBlocked"], false);
}

#[tokio::test]
async fn blocking_an_unknown_vm_is_not_found() {
    let app = TestApp::spawn().await;
    let e = service(&app)
        .set_blocked(VmId::new(), true, "operator:test")
        .await
        .unwrap_err();
    assert!(matches!(e, vmapi_core::Error::NotFound { .. }), "{e:?}");
}

#[tokio::test]
async fn only_owners_and_admins_see_the_teams_quotas_in_a_vm() {
    let app = TestApp::spawn().await;
    let quotas = TeamQuotas {
        max_active_vms: Some(7),
        max_vcpus: Some(30),
    };
    let (team, project) = app.seed_roles_team_with(Some(quotas)).await;
    let mut body = spec_create_request();
    body["team"] = json!(team);
    body["project"] = json!(project);
    body["hostNames"] = json!(["quota-view"]);
    let id = app.create_vm_as("role-member", &body).await;
    let path = format!("/api/virtual-machines/{id}");
    for (user, sees) in [
        ("role-owner", true),
        ("role-admin", true),
        ("role-member", false),
        ("role-viewer", false),
    ] {
        let r = app.get(&path, user).await.expect(200);
        let q = &r.json["team"]["quotas"];
        if sees {
            assert_eq!(q, &json!({"maxActiveVms": 7, "maxVcpus": 30}), "{user}");
        } else {
            assert!(q.is_null(), "{user} sees the quotas: {}", r.json["team"]);
        }
        // The same for the answer of a change.
        if user != "role-viewer" {
            let r = app
                .call(
                    Method::PATCH,
                    &path,
                    Some(user),
                    Some(&json!({"tags": [user]})),
                )
                .await
                .expect(200);
            assert_eq!(r.json["team"]["quotas"].is_null(), !sees, "PATCH as {user}");
        }
    }
}
