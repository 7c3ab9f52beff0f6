//! The matrix cell by cell: every endpoint for every caller, with the write and leak checks.

use super::*;

#[tokio::test]
async fn every_endpoint_for_every_caller() {
    let app = TestApp::spawn_opts(Options {
        scope: vmapi_models::CredentialScope::Vm,
        ..Options::default()
    })
    .await;
    let (team, project) = seed_matrix_team(&app).await;
    let (_sim, provisioner) = app.simulated();

    // The VM that read-only cells look at: created through the API by a member (so it has a
    // login), and provisioned (so it has addresses).
    let mut create_body = spec_create_request();
    create_body["team"] = json!(team.to_string());
    create_body["project"] = json!(project.to_string());
    create_body["hostNames"] = json!(["authz-main-vm"]);
    let r = app
        .call(
            Method::POST,
            "/api/virtual-machines",
            Some(VM_OWNER),
            Some(&create_body),
        )
        .await
        .expect(201);
    let main_id = r.json[0]["_id"].as_str().unwrap().to_string();
    app.settle(&provisioner, &main_id).await;
    let main_json = app
        .get(&format!("/api/virtual-machines/{main_id}"), TEAM_OWNER)
        .await
        .expect(200)
        .json;
    assert_eq!(main_json["status"], 3, "provisioned: {main_json}");
    assert_eq!(main_json["owner"], VM_OWNER);
    let main = Secrets::of_json(&main_json);
    assert!(!main.addresses.is_empty(), "the VM has addresses");

    let list_path = format!("/api/teams/{team}/projects/{project}/virtual-machines");
    let mut failures: Vec<String> = Vec::new();
    let mut cells = 0;
    let mut n: u8 = 0;
    assert_eq!(
        MATRIX.map(|(ep, _)| ep),
        Ep::ALL,
        "the matrix has a row for every endpoint, in the table's order"
    );
    for (ep, row) in MATRIX {
        for (caller, expected) in CALLERS.into_iter().zip(row) {
            cells += 1;
            n += 1;
            let here = format!("{ep:?} × {caller:?}");
            // Mutating cells get a VM of their own, in a status where the action is a change.
            let own = match ep {
                Ep::UpdateVm | Ep::StopVm | Ep::RebootVm | Ep::DeleteVm | Ep::ResizeVm => {
                    Some(matrix_vm(
                        team,
                        project,
                        &format!("authz-cell-{n}"),
                        VmStatus::Running,
                        n,
                    ))
                }
                Ep::StartVm => Some(matrix_vm(
                    team,
                    project,
                    &format!("authz-cell-{n}"),
                    VmStatus::Stopped,
                    n,
                )),
                _ => None,
            };
            if let Some(vm) = &own {
                app.seed_vm(vm).await;
            }
            let target = own
                .as_ref()
                .map(|vm| vm.id.to_string())
                .unwrap_or_else(|| main_id.clone());
            let vm_path = format!("/api/virtual-machines/{target}");
            // A rule of the main VM for the delete cells, made by the team's owner.
            let own_rule = if ep == Ep::DeleteSecurityRule {
                let made = app
                    .call(
                        Method::POST,
                        "/api/security-rules",
                        Some(TEAM_OWNER),
                        Some(
                            &json!({"virtualMachine": main_id, "name": format!("doomed-{n}"),
                            "protocol": "*", "portRange": "*", "access": "Deny"}),
                        ),
                    )
                    .await
                    .expect(201);
                made.json["_id"].as_str().unwrap().to_string()
            } else {
                String::new()
            };
            let mut cell_create = create_body.clone();
            cell_create["hostNames"] = json!([format!("authz-new-{n}")]);
            let (method, path, body) = match ep {
                Ep::Health => (Method::GET, "/health".to_string(), None),
                Ep::CreateVm => (
                    Method::POST,
                    "/api/virtual-machines".to_string(),
                    Some(cell_create),
                ),
                Ep::ListVms => (Method::GET, list_path.clone(), None),
                Ep::GetVm => (Method::GET, vm_path.clone(), None),
                Ep::UpdateVm => (
                    Method::PATCH,
                    vm_path.clone(),
                    Some(json!({"tags": [format!("cell-{n}")]})),
                ),
                Ep::StartVm => (Method::PUT, format!("{vm_path}/start"), None),
                Ep::StopVm => (Method::PUT, format!("{vm_path}/stop"), None),
                Ep::RebootVm => (Method::PUT, format!("{vm_path}/reboot"), None),
                Ep::GetActivity => (Method::GET, format!("{vm_path}/activity"), None),
                Ep::DeleteVm => (Method::DELETE, vm_path.clone(), None),
                Ep::GetCredentials => (Method::GET, format!("{vm_path}/credentials"), None),
                Ep::CreateSecurityRule => (
                    Method::POST,
                    "/api/security-rules".to_string(),
                    Some(
                        json!({"virtualMachine": main_id, "name": format!("cell-{n}"),
                        "protocol": "*", "portRange": "*", "access": "Deny"}),
                    ),
                ),
                Ep::ListSecurityRules => (Method::GET, format!("{vm_path}/security-rules"), None),
                Ep::DeleteSecurityRule => (
                    Method::DELETE,
                    format!("/api/security-rules/{own_rule}"),
                    None,
                ),
                Ep::ListCloudProviders => (Method::GET, "/api/cloud-providers".into(), None),
                Ep::ListProviders => (
                    Method::GET,
                    format!("/api/cloud-providers/{CLOUD}/providers"),
                    None,
                ),
                Ep::ListLocations => (
                    Method::GET,
                    format!("/api/providers/{PROVIDER}/locations"),
                    None,
                ),
                Ep::ListImages => (
                    Method::GET,
                    format!("/api/providers/{PROVIDER}/locations/berlin/images"),
                    None,
                ),
                Ep::ListPrices => (
                    Method::GET,
                    format!("/api/providers/{PROVIDER}/locations/berlin/images/Ubuntu/prices"),
                    None,
                ),
                Ep::GetTeamCosts => (Method::GET, format!("/api/teams/{team}/costs"), None),
                Ep::ResizeVm => (
                    Method::PUT,
                    format!("{vm_path}/resize"),
                    Some(
                        json!({"size": "6548a383e2442d14b6bf9747", "price": "6548a383e2442d14b6bf970d"}),
                    ),
                ),
                Ep::AdminListTeamVms => (
                    Method::GET,
                    format!("/admin/api/teams/{team}/virtual-machines"),
                    None,
                ),
                Ep::AdminDeleteVm => (
                    Method::DELETE,
                    format!("/admin/api/virtual-machines/{main_id}"),
                    None,
                ),
                Ep::AdminBlockVm => (
                    Method::PUT,
                    format!("/admin/api/virtual-machines/{main_id}/block"),
                    None,
                ),
                Ep::AdminUnblockVm => (
                    Method::PUT,
                    format!("/admin/api/virtual-machines/{main_id}/unblock"),
                    None,
                ),
            };

            let before = app.dump().await;
            let mut req = app.http.request(method, format!("{}{path}", app.base));
            if let Some(auth) = authorization(&app, caller) {
                req = req.header("authorization", auth);
            }
            if let Some(b) = &body {
                req = req.json(b);
            }
            let r = TestApp::read(req.send().await.expect("request sent")).await;
            let after = app.dump().await;
            let status = r.status.as_u16();

            match expected {
                Cell::Ok(want) => {
                    if status != want {
                        failures.push(format!("{here}: expected {want}, got {status}: {}", r.json));
                        continue;
                    }
                    // The accepted request did what it says.
                    let problem = match ep {
                        Ep::Health => (r.json != json!({"status": "ok"})).then_some("health body"),
                        Ep::CreateVm => (r.json[0]["owner"] != user_of(caller)
                            || after.len() <= before.len())
                        .then_some("created VM not owned by the caller or not stored"),
                        Ep::ListVms => (!r
                            .json
                            .as_array()
                            .is_some_and(|l| l.iter().any(|v| v["_id"] == main_id.as_str())))
                        .then_some("list does not show the VM"),
                        Ep::GetVm => (r.json["_id"] != main_id.as_str() || before != after)
                            .then_some("wrong VM, or a read wrote"),
                        Ep::GetActivity => (!r.json.is_object() && !r.json.is_array()
                            || before != after)
                            .then_some("no history, or a read wrote"),
                        Ep::CreateSecurityRule => (r.json["virtualMachine"] != main_id.as_str()
                            || after.len() != before.len() + 2)
                            .then_some("the rule (and its pointer and event) is not stored"),
                        Ep::ListSecurityRules => (!r
                            .json
                            .as_array()
                            .is_some_and(|l| l.iter().any(|x| x["name"] == "AllowAnyInbound"))
                            || before != after)
                            .then_some("the list lacks the default rule, or a read wrote"),
                        Ep::DeleteSecurityRule => (r.json["ruleId"] != own_rule.as_str()
                            || after.len() != before.len())
                        .then_some("the rule's pointer is not replaced by the delete's event"),
                        Ep::GetCredentials => {
                            let new_events = after.len() as i64 - before.len() as i64;
                            (r.json["vmId"] != main_id.as_str()
                                || !r.json["privateKey"].is_string()
                                || new_events != 1)
                                .then_some("no key, or the read was not recorded exactly once")
                        }
                        Ep::ListCloudProviders
                        | Ep::ListProviders
                        | Ep::ListLocations
                        | Ep::ListImages
                        | Ep::ListPrices => (r.json.as_array().is_none_or(Vec::is_empty)
                            || before != after)
                            .then_some("an empty catalog answer, or the read wrote"),
                        Ep::ResizeVm
                        | Ep::AdminListTeamVms
                        | Ep::AdminDeleteVm
                        | Ep::AdminBlockVm
                        | Ep::AdminUnblockVm => Some("a user token passed an admin route"),
                        Ep::GetTeamCosts => (!r.json["vms"]
                            .as_array()
                            .is_some_and(|l| l.iter().any(|v| v["_id"] == main_id.as_str()))
                            || before != after)
                            .then_some("the costs lack the VM, or the read wrote"),
                        Ep::UpdateVm | Ep::StartVm | Ep::StopVm | Ep::RebootVm | Ep::DeleteVm => {
                            let now = app.get(&vm_path, TEAM_OWNER).await.json;
                            let want_status = match ep {
                                Ep::StartVm => 2,
                                Ep::StopVm => 4,
                                Ep::DeleteVm => 5,
                                _ => 3,
                            };
                            let tags_ok =
                                ep != Ep::UpdateVm || now["tags"] == json!([format!("cell-{n}")]);
                            (now["status"] != want_status || !tags_ok || before == after)
                                .then_some("the change is not stored")
                        }
                    };
                    if let Some(p) = problem {
                        failures.push(format!("{here}: {p}: {}", r.json));
                    }
                }
                Cell::Err(want, code) => {
                    if status != want || r.json["code"] != code || r.json["statusCode"] != want {
                        failures.push(format!(
                            "{here}: expected {want} {code}, got {status}: {}",
                            r.json
                        ));
                    }
                    if !(r.json["error"].is_string() && r.json["message"].is_string()) {
                        failures.push(format!("{here}: not the error shape: {}", r.json));
                    }
                    if want == 401 && r.headers.get("www-authenticate").is_none() {
                        failures.push(format!("{here}: 401 without WWW-Authenticate"));
                    }
                    if before != after {
                        failures.push(format!("{here}: a refused request wrote to the table"));
                    }
                    // What the caller sent may be echoed: the path and, for a rule, the VM id in
                    // the body.
                    let sent = match &body {
                        Some(b) if ep == Ep::CreateSecurityRule => format!("{path} {b}"),
                        _ => path.clone(),
                    };
                    let mut leaks = main.leaks(&r.json, &sent);
                    if let Some(vm) = &own {
                        leaks.extend(Secrets::of_record(vm).leaks(&r.json, &path));
                    }
                    for leak in leaks {
                        failures.push(format!("{here}: {leak}"));
                    }
                }
            }
        }
    }
    assert_eq!(
        cells,
        Ep::ALL.len() * CALLERS.len(),
        "every endpoint × every caller"
    );
    assert!(
        failures.is_empty(),
        "{} of {cells} cells differ from the policy:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The user id a caller authenticates as (for checking `owner` of what it creates).
fn user_of(caller: Caller) -> &'static str {
    match caller {
        Caller::VmOwner => VM_OWNER,
        Caller::TeamOwner => TEAM_OWNER,
        Caller::Admin => ADMIN,
        Caller::Member => MEMBER,
        Caller::Viewer => VIEWER,
        Caller::OtherTeamOwner => OTHER_OWNER,
        _ => "",
    }
}
