//! Ids of other teams and the credential scopes: what a caller outside a VM's team or credentials can reach.

use super::*;

/// The list of another team's project, asked for under one's own team id: the project check is
/// by team, not only by membership (404 `PROJECT_NOT_FOUND`, and nothing of the VM leaks); and a
/// VM id of another team under every VM route is the same 404 as an id that does not exist.
#[tokio::test]
async fn foreign_ids_are_indistinguishable_from_missing_ones() {
    let app = TestApp::spawn().await;
    let (team, project) = seed_matrix_team(&app).await;
    let vm = matrix_vm(team, project, "authz-probe", VmStatus::Running, 7);
    app.seed_vm(&vm).await;
    let secrets = Secrets::of_record(&vm);
    let missing = vmapi_models::VmId::new().to_string();
    let before = app.dump().await;
    for suffix in [
        "",
        "/start",
        "/stop",
        "/reboot",
        "/credentials",
        "/activity",
        "/security-rules",
    ] {
        for method in [Method::GET, Method::PUT, Method::PATCH, Method::DELETE] {
            let routed = matches!(
                (suffix, &method),
                ("", &Method::GET | &Method::PATCH | &Method::DELETE)
                    | ("/start" | "/stop" | "/reboot", &Method::PUT)
                    | (
                        "/credentials" | "/activity" | "/security-rules",
                        &Method::GET
                    )
            );
            if !routed {
                continue;
            }
            let body = json!({"tags": ["probe"]});
            let foreign = app
                .call(
                    method.clone(),
                    &format!("/api/virtual-machines/{}{suffix}", vm.id),
                    Some(OTHER_OWNER),
                    Some(&body),
                )
                .await
                .expect_error(404, "VM_NOT_FOUND");
            let absent = app
                .call(
                    method.clone(),
                    &format!("/api/virtual-machines/{missing}{suffix}"),
                    Some(OTHER_OWNER),
                    Some(&body),
                )
                .await
                .expect_error(404, "VM_NOT_FOUND");
            // The same answer but for the id that was asked for.
            let normalize = |v: &Value, id: &str| v.to_string().replace(id, "<id>");
            assert_eq!(
                normalize(&foreign.json, &vm.id.to_string()),
                normalize(&absent.json, &missing),
                "{method} {suffix}"
            );
            let leaks = secrets.leaks(&foreign.json, &format!("/{}", vm.id));
            assert!(leaks.is_empty(), "{leaks:?}");
        }
    }
    // A project of another team under one's own team.
    let r = app
        .get(
            &format!("/api/teams/{OTHER_TEAM}/projects/{project}/virtual-machines"),
            OTHER_OWNER,
        )
        .await
        .expect_error(404, "PROJECT_NOT_FOUND");
    assert!(secrets.leaks(&r.json, "").is_empty(), "{}", r.json);
    // Another team's project under that (foreign) team: the team is hidden.
    app.get(
        &format!("/api/teams/{team}/projects/{project}/virtual-machines"),
        OTHER_OWNER,
    )
    .await
    .expect_error(404, "TEAM_NOT_FOUND");
    // Creating into the matrix team's project while naming one's own team.
    let mut body = spec_create_request();
    body["team"] = json!(OTHER_TEAM);
    body["project"] = json!(project.to_string());
    app.call(
        Method::POST,
        "/api/virtual-machines",
        Some(OTHER_OWNER),
        Some(&body),
    )
    .await
    .expect_error(404, "PROJECT_NOT_FOUND");
    assert_eq!(app.dump().await, before, "probing wrote nothing");
}

/// What a member who may not read the credentials of the team owner's VM (403) gets through a VM
/// of their own, in a credential scope: (the owner VM's private key as its owner reads it, the
/// member VM's private key as the member reads it).
async fn keys_reachable_by_a_member(scope: vmapi_models::CredentialScope) -> (String, String) {
    let app = TestApp::spawn_opts(Options {
        scope,
        ..Options::default()
    })
    .await;
    let (team, project) = seed_matrix_team(&app).await;
    let mut body = spec_create_request();
    body["team"] = json!(team.to_string());
    body["project"] = json!(project.to_string());
    let mut ids = Vec::new();
    for (user, name) in [(TEAM_OWNER, "owners-vm"), (MEMBER, "members-vm")] {
        body["hostNames"] = json!([name]);
        let r = app
            .call(
                Method::POST,
                "/api/virtual-machines",
                Some(user),
                Some(&body),
            )
            .await
            .expect(201);
        ids.push(r.json[0]["_id"].as_str().unwrap().to_string());
    }
    let creds = |id: &str| format!("/api/virtual-machines/{id}/credentials");
    app.get(&creds(&ids[0]), MEMBER)
        .await
        .expect_error(403, "FORBIDDEN");
    let owners = app.get(&creds(&ids[0]), TEAM_OWNER).await.expect(200).json;
    let members = app.get(&creds(&ids[1]), MEMBER).await.expect(200).json;
    (
        owners["privateKey"].as_str().unwrap().to_string(),
        members["privateKey"].as_str().unwrap().to_string(),
    )
}

/// In `vm` scope each VM has its own login: the 403 on another member's VM credentials holds.
#[tokio::test]
async fn vm_scope_a_member_cannot_reach_another_vms_login_through_their_own() {
    let (owners, members) = keys_reachable_by_a_member(vmapi_models::CredentialScope::Vm).await;
    assert_ne!(owners, members);
}

/// The same in `team` scope (the default): every VM of a team shares the team's login
/// (`{teamId}/user/root`), so a member refused the credentials of the owner's VM (403) reads the
/// very same private key through any VM they create themselves.
#[tokio::test]
async fn team_scope_a_member_cannot_reach_the_shared_login_through_their_own_vm() {
    let app = TestApp::spawn_opts(Options {
        scope: vmapi_models::CredentialScope::Team,
        ..Options::default()
    })
    .await;
    let (team, project) = seed_matrix_team(&app).await;
    let mut body = spec_create_request();
    body["team"] = json!(team.to_string());
    body["project"] = json!(project.to_string());
    body["hostNames"] = json!(["members-vm"]);
    let r = app
        .call(
            Method::POST,
            "/api/virtual-machines",
            Some(MEMBER),
            Some(&body),
        )
        .await
        .expect(201);
    let id = r.json[0]["_id"].as_str().unwrap().to_string();
    let path = format!("/api/virtual-machines/{id}/credentials");
    // The team login opens every VM of the team: the member who created this one is refused,
    // with a message saying why and what to do instead; the team's owner reads it.
    let refused = app.get(&path, MEMBER).await.expect_error(403, "FORBIDDEN");
    let message = refused.json["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("shared login") && message.contains("sshPublicKey"),
        "{message}"
    );
    assert!(!refused.json.to_string().contains("PRIVATE KEY"));
    let owners = app.get(&path, TEAM_OWNER).await.expect(200).json;
    assert!(owners["privateKey"]
        .as_str()
        .is_some_and(|k| k.contains("PRIVATE KEY")));
}
