//! Black-box tests of every endpoint over HTTP against DynamoDB Local.

use reqwest::Method;
use serde_json::{json, Value};
use vmapi_models::{Timestamp, VmId, VmStatus};
use vmapi_tests::*;

fn id_of(v: &Value) -> String {
    v["_id"].as_str().expect("an _id").to_string()
}

#[tokio::test]
async fn health_needs_no_token() {
    let app = TestApp::spawn().await;
    let r = app
        .call(Method::GET, "/health", None, None)
        .await
        .expect(200);
    assert_eq!(r.json["status"], "ok");
}

#[tokio::test]
async fn spec_create_request_verbatim_flat_and_wrapped() {
    let app = TestApp::spawn().await;
    let spec = spec_create_request();
    let r = app
        .call(
            Method::POST,
            "/api/virtual-machines",
            Some(OWNER),
            Some(&spec),
        )
        .await
        .expect(201);
    let vms = r.json.as_array().expect("an array");
    assert_eq!(vms.len(), 1);
    let vm = &vms[0];
    assert_eq!(vm["name"], "kraud-cloud-ubuntu-1vcpu-4gb-berlin-01");
    assert_eq!(vm["status"], 0);
    assert_eq!(vm["statusName"], "creating");
    assert_eq!(vm["owner"], OWNER);
    assert_eq!(vm["team"], TEAM);
    assert_eq!(vm["project"], PROJECT);
    assert_eq!(vm["provider"], spec["provider"]);
    assert_eq!(vm["size"], spec["size"]);
    assert_eq!(vm["price"], spec["price"]);
    assert_eq!(vm["region"], spec["region"]);
    assert_eq!(vm["image"], spec["image"]);
    assert_eq!(vm["subscription"], Value::Null);
    assert_eq!(vm["access"], Value::Null);
    assert_eq!(vm["ipConfigurations"], json!([]));
    assert_eq!(vm["isBlocked"], false);
    let id = id_of(vm);
    assert!(
        id.len() == 24 && id.chars().all(|c| c.is_ascii_hexdigit()),
        "{id}"
    );
    let att = uuid::Uuid::parse_str(vm["attestationId"].as_str().unwrap()).unwrap();
    assert_eq!(att.get_version_num(), 4);
    assert_eq!(vm["createdAt"], vm["updatedAt"]);
    assert!(Timestamp::parse(vm["createdAt"].as_str().unwrap()).is_ok());

    // The same body wrapped as {"data": {...}} (another host name: names are unique per project).
    let mut inner = spec.clone();
    inner["hostNames"] = json!(["kraud-cloud-ubuntu-1vcpu-4gb-berlin-02"]);
    let wrapped = json!({ "data": inner });
    let r = app
        .call(
            Method::POST,
            "/api/virtual-machines",
            Some(OWNER),
            Some(&wrapped),
        )
        .await
        .expect(201);
    assert_eq!(r.json[0]["name"], "kraud-cloud-ubuntu-1vcpu-4gb-berlin-02");

    // Sending the verbatim request again: the host name is taken.
    let before = app.dump().await;
    app.call(
        Method::POST,
        "/api/virtual-machines",
        Some(OWNER),
        Some(&spec),
    )
    .await
    .expect_error(409, "HOST_NAME_TAKEN");
    assert_eq!(app.dump().await, before);
}

#[tokio::test]
async fn get_populates_every_reference_as_the_spec_page_shows() {
    let app = TestApp::spawn().await;
    let created = app.create(OWNER, &["web-1"]).await.expect(201).json;
    let id = id_of(&created[0]);
    let got = app
        .get(&format!("/api/virtual-machines/{id}"), OWNER)
        .await
        .expect(200)
        .json;
    let spec: Value =
        serde_json::from_str(&read("shared/models/tests/fixtures/get-response.json")).unwrap();
    for field in [
        "provider", "size", "price", "project", "team", "region", "image",
    ] {
        assert_eq!(got[field], spec[field], "{field} as on the spec page");
    }
    assert_eq!(got["statusName"], "creating");
    assert_eq!(got["attestation"], Value::Null);
    assert_eq!(got["_id"], id.as_str());

    app.get("/api/virtual-machines/654a11e60b23ef1b0f36d44e", OWNER)
        .await
        .expect_error(404, "VM_NOT_FOUND");
    let r = app
        .get("/api/virtual-machines/not-an-id", OWNER)
        .await
        .expect_error(400, "INVALID_PARAMETER");
    assert_eq!(r.json["details"][0]["field"], "id");
}

#[tokio::test]
async fn list_populates_catalog_and_leaves_owners_as_ids_newest_first() {
    let app = TestApp::spawn().await;
    app.create(OWNER, &["a-1"]).await.expect(201);
    app.create(OWNER, &["a-2"]).await.expect(201);
    let path = format!("/api/teams/{TEAM}/projects/{PROJECT}/virtual-machines");
    let list = app.get(&path, OWNER).await.expect(200).json;
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a-2", "a-1"]);
    let spec: Value =
        serde_json::from_str(&read("shared/models/tests/fixtures/list-response.json")).unwrap();
    for field in ["provider", "size", "price"] {
        assert_eq!(
            list[0][field], spec[0][field],
            "{field} as on the spec page"
        );
    }
    assert_eq!(list[0]["project"], PROJECT);
    assert_eq!(list[0]["team"], TEAM);
    assert!(
        app.get(&path, OWNER).await.headers.get("link").is_none(),
        "no next page"
    );
}

#[tokio::test]
async fn list_pages_with_signed_cursors() {
    let app = TestApp::spawn().await;
    let names: Vec<String> = (0..7).map(|i| format!("page-{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    app.create(OWNER, &refs).await.expect(201);
    let base = format!("/api/teams/{TEAM}/projects/{PROJECT}/virtual-machines");
    let mut seen = Vec::new();
    let mut next = format!("{base}?limit=3");
    let mut pages = Vec::new();
    loop {
        let r = app.get(&next, OWNER).await.expect(200);
        let items = r.json.as_array().unwrap().clone();
        pages.push(items.len());
        seen.extend(
            items
                .iter()
                .map(|v| v["name"].as_str().unwrap().to_string()),
        );
        let Some(link) = r.headers.get("link") else {
            assert!(r.headers.get("x-next-cursor").is_none());
            break;
        };
        let link = link.to_str().unwrap();
        let cursor = r.headers["x-next-cursor"].to_str().unwrap();
        assert!(
            link.ends_with("; rel=\"next\"") && link.contains(cursor),
            "{link}"
        );
        next = link
            .trim_start_matches('<')
            .split('>')
            .next()
            .unwrap()
            .to_string();
    }
    assert_eq!(pages, [3, 3, 1]);
    let mut expected = names.clone();
    expected.reverse();
    assert_eq!(seen, expected, "newest first, each once");

    for bad in [
        "limit=0",
        "limit=201",
        "limit=abc",
        "cursor=abc",
        "cursor=",
        "color=red",
    ] {
        app.get(&format!("{base}?{bad}"), OWNER)
            .await
            .expect_error(400, "INVALID_PARAMETER");
    }
    // A cursor is bound to its list: the other team's owner cannot use it on their project.
    let r = app.get(&format!("{base}?limit=1"), OWNER).await.expect(200);
    let cursor = r.headers["x-next-cursor"].to_str().unwrap().to_string();
    let other = format!(
        "/api/teams/{OTHER_TEAM}/projects/{OTHER_PROJECT}/virtual-machines?cursor={cursor}"
    );
    app.get(&other, OTHER_OWNER)
        .await
        .expect_error(400, "INVALID_PARAMETER");
    // Tampering is detected.
    let mut tampered = cursor.into_bytes();
    tampered[2] = if tampered[2] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    app.get(&format!("{base}?cursor={tampered}"), OWNER)
        .await
        .expect_error(400, "INVALID_PARAMETER");
    // The largest page is accepted.
    app.get(&format!("{base}?limit=200"), OWNER)
        .await
        .expect(200);
}

#[tokio::test]
async fn patch_renames_and_retags_and_refuses_other_fields() {
    let app = TestApp::spawn().await;
    let id = id_of(&app.create(OWNER, &["old-name"]).await.expect(201).json[0]);
    app.create(OWNER, &["taken"]).await.expect(201);
    let path = format!("/api/virtual-machines/{id}");
    let r = app
        .call(
            Method::PATCH,
            &path,
            Some(OWNER),
            Some(&json!({"name": "new-name", "tags": ["env:dev", "team-a"]})),
        )
        .await
        .expect(200);
    assert_eq!(r.json["name"], "new-name");
    assert_eq!(r.json["tags"], json!(["env:dev", "team-a"]));
    assert!(r.json["team"].is_object(), "answers as GET does");
    assert_eq!(app.get(&path, OWNER).await.json["name"], "new-name");
    // The old name is free again, the new one is taken.
    app.create(OWNER, &["old-name"]).await.expect(201);
    app.create(OWNER, &["new-name"])
        .await
        .expect_error(409, "HOST_NAME_TAKEN");

    let before = app.dump().await;
    app.call(
        Method::PATCH,
        &path,
        Some(OWNER),
        Some(&json!({"name": "taken"})),
    )
    .await
    .expect_error(409, "HOST_NAME_TAKEN");
    for (body, field) in [
        (json!({"status": 3}), "status"),
        (json!({"name": "Bad_Name"}), "name"),
        (json!({"tags": [""]}), "tags[0]"),
        (json!({"tags": "x"}), "tags"),
        (
            json!({"tags": (0..21).map(|i| i.to_string()).collect::<Vec<_>>()}),
            "tags",
        ),
        (json!({}), "body"),
    ] {
        let r = app
            .call(Method::PATCH, &path, Some(OWNER), Some(&body))
            .await
            .expect_error(400, "VALIDATION_FAILED");
        assert_eq!(r.json["details"][0]["field"], field, "{body}: {}", r.json);
    }
    assert_eq!(app.dump().await, before, "refused updates wrote nothing");
}

#[tokio::test]
async fn start_and_stop_follow_the_state_table() {
    let app = TestApp::spawn().await;
    let running = demo_vm("running-1", VmStatus::Running);
    let stopped = demo_vm("stopped-1", VmStatus::Stopped);
    let creating = demo_vm("creating-1", VmStatus::Creating);
    for vm in [&running, &stopped, &creating] {
        app.seed_vm(vm).await;
    }
    let act = |id: VmId, action: &'static str| {
        let app = &app;
        async move {
            app.call(
                Method::PUT,
                &format!("/api/virtual-machines/{id}/{action}"),
                Some(OWNER),
                None,
            )
            .await
        }
    };
    let r = act(running.id, "stop").await.expect(200);
    assert_eq!(
        r.json,
        json!({"message": "Virtual machine is stopping", "vmId": running.id.to_string(), "status": 4, "statusName": "stopping"})
    );
    let r = act(running.id, "stop").await.expect(200);
    assert_eq!(r.json["status"], 4, "stop while stopping is a no-op");
    act(running.id, "start")
        .await
        .expect_error(409, "ILLEGAL_TRANSITION");

    let r = act(stopped.id, "start").await.expect(200);
    assert_eq!(r.json["message"], "Virtual machine is starting");
    assert_eq!(r.json["statusName"], "starting");
    assert_eq!(act(stopped.id, "start").await.expect(200).json["status"], 2);
    let r = act(stopped.id, "stop")
        .await
        .expect_error(409, "ILLEGAL_TRANSITION");
    assert!(r.json["message"].as_str().unwrap().contains("starting"));

    let before = app.dump().await;
    act(creating.id, "start")
        .await
        .expect_error(409, "ILLEGAL_TRANSITION");
    act(creating.id, "stop")
        .await
        .expect_error(409, "ILLEGAL_TRANSITION");
    assert_eq!(app.dump().await, before);
    let got = app
        .get(&format!("/api/virtual-machines/{}", running.id), OWNER)
        .await
        .json;
    assert_eq!(got["status"], 4);
    act(VmId::new(), "start")
        .await
        .expect_error(404, "VM_NOT_FOUND");
}

#[tokio::test]
async fn delete_goes_through_deleting_and_frees_the_name() {
    let app = TestApp::spawn().await;
    let (_sim, provisioner) = app.simulated();
    let id = id_of(&app.create(OWNER, &["doomed"]).await.expect(201).json[0]);
    let running = demo_vm("running-doomed", VmStatus::Running);
    app.seed_vm(&running).await;
    let path = format!("/api/virtual-machines/{id}");
    let r = app
        .call(Method::DELETE, &path, Some(OWNER), None)
        .await
        .expect(200);
    assert_eq!(
        r.json,
        json!({"message": "Virtual machine is deleting", "vmId": id, "status": 5, "statusName": "deleting"})
    );
    // Until the cloud teardown is done, GET shows the VM as deleting; a second delete is a no-op.
    assert_eq!(app.get(&path, OWNER).await.expect(200).json["status"], 5);
    app.call(Method::DELETE, &path, Some(OWNER), None)
        .await
        .expect(200);
    app.call(Method::PUT, &format!("{path}/start"), Some(OWNER), None)
        .await
        .expect_error(409, "ILLEGAL_TRANSITION");
    app.settle(&provisioner, &id).await;
    app.get(&path, OWNER)
        .await
        .expect_error(404, "VM_NOT_FOUND");
    app.call(Method::DELETE, &path, Some(OWNER), None)
        .await
        .expect_error(404, "VM_NOT_FOUND");
    app.call(Method::PUT, &format!("{path}/start"), Some(OWNER), None)
        .await
        .expect_error(404, "VM_NOT_FOUND");
    app.call(
        Method::DELETE,
        &format!("/api/virtual-machines/{}", running.id),
        Some(OWNER),
        None,
    )
    .await
    .expect(200);
    let list = app
        .get(
            &format!("/api/teams/{TEAM}/projects/{PROJECT}/virtual-machines"),
            OWNER,
        )
        .await
        .expect(200)
        .json;
    assert_eq!(list, json!([]), "deleted VMs leave the list");
    app.create(OWNER, &["doomed"]).await.expect(201);
}

#[tokio::test]
async fn unauthenticated_requests_get_401() {
    let app = TestApp::spawn().await;
    let id = id_of(&app.create(OWNER, &["guarded"]).await.expect(201).json[0]);
    let paths = [
        (Method::POST, "/api/virtual-machines".to_string()),
        (
            Method::GET,
            format!("/api/teams/{TEAM}/projects/{PROJECT}/virtual-machines"),
        ),
        (Method::GET, format!("/api/virtual-machines/{id}")),
        (Method::PATCH, format!("/api/virtual-machines/{id}")),
        (Method::PUT, format!("/api/virtual-machines/{id}/start")),
        (Method::PUT, format!("/api/virtual-machines/{id}/stop")),
        (Method::DELETE, format!("/api/virtual-machines/{id}")),
    ];
    let now = jsonwebtoken::get_current_timestamp();
    let hs = |claims: Value, secret: &str| {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    };
    let b64 = |v: Value| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let bad_tokens = [
        ("no token", None),
        ("garbage", Some("not.a.token".to_string())),
        (
            "other key",
            Some(hs(
                json!({"sub": OWNER, "exp": now + 600}),
                "another-secret",
            )),
        ),
        (
            "expired",
            Some(hs(json!({"sub": OWNER, "exp": now - 60}), SECRET)),
        ),
        ("no exp", Some(hs(json!({"sub": OWNER}), SECRET))),
        ("no sub", Some(hs(json!({"exp": now + 600}), SECRET))),
        (
            "empty sub",
            Some(hs(json!({"sub": "", "exp": now + 600}), SECRET)),
        ),
        (
            "long sub",
            Some(hs(
                json!({"sub": "x".repeat(129), "exp": now + 600}),
                SECRET,
            )),
        ),
        (
            "alg none",
            Some(format!(
                "{}.{}.",
                b64(json!({"alg": "none", "typ": "JWT"})),
                b64(json!({"sub": OWNER, "exp": now + 600}))
            )),
        ),
    ];
    let before = app.dump().await;
    for (method, path) in &paths {
        for (what, token) in &bad_tokens {
            let mut req = app
                .http
                .request(method.clone(), format!("{}{path}", app.base));
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            let r = TestApp::read(req.json(&spec_create_request()).send().await.unwrap()).await;
            assert_eq!(
                r.status.as_u16(),
                401,
                "{what} on {method} {path}: {}",
                r.json
            );
            assert_eq!(r.json["code"], "UNAUTHORIZED");
            assert_eq!(r.headers["www-authenticate"], "Bearer");
        }
    }
    assert_eq!(app.dump().await, before, "refused requests wrote nothing");
}

#[tokio::test]
async fn other_teams_see_404_and_viewers_cannot_write() {
    let app = TestApp::spawn().await;
    let created = app.create(OWNER, &["private-1"]).await.expect(201).json;
    let id = id_of(&created[0]);
    let before = app.dump().await;
    let vm = format!("/api/virtual-machines/{id}");
    for (method, path) in [
        (Method::GET, vm.clone()),
        (Method::PATCH, vm.clone()),
        (Method::PUT, format!("{vm}/start")),
        (Method::PUT, format!("{vm}/stop")),
        (Method::DELETE, vm.clone()),
    ] {
        let r = app
            .call(
                method.clone(),
                &path,
                Some(OTHER_OWNER),
                Some(&json!({"name": "stolen"})),
            )
            .await;
        let r = r.expect_error(404, "VM_NOT_FOUND");
        assert!(
            !r.json.to_string().contains("private-1"),
            "no VM data leaks: {}",
            r.json
        );
    }
    app.get(
        &format!("/api/teams/{TEAM}/projects/{PROJECT}/virtual-machines"),
        OTHER_OWNER,
    )
    .await
    .expect_error(404, "TEAM_NOT_FOUND");
    // A project of another team, under one's own team: 404 too.
    app.get(
        &format!("/api/teams/{OTHER_TEAM}/projects/{PROJECT}/virtual-machines"),
        OTHER_OWNER,
    )
    .await
    .expect_error(404, "PROJECT_NOT_FOUND");
    // Creating in another team's project.
    app.call(
        Method::POST,
        "/api/virtual-machines",
        Some(OTHER_OWNER),
        Some(&spec_create_request()),
    )
    .await
    .expect_error(404, "TEAM_NOT_FOUND");
    let mut body = spec_create_request();
    body["team"] = json!(OTHER_TEAM);
    app.call(
        Method::POST,
        "/api/virtual-machines",
        Some(OTHER_OWNER),
        Some(&body),
    )
    .await
    .expect_error(404, "PROJECT_NOT_FOUND");
    assert_eq!(app.dump().await, before);

    // Roles: everyone reads, viewers cannot change anything.
    let (team, project) = app.seed_roles_team().await;
    let mut body = spec_create_request();
    body["team"] = json!(team);
    body["project"] = json!(project);
    let r = app
        .call(
            Method::POST,
            "/api/virtual-machines",
            Some("role-member"),
            Some(&body),
        )
        .await
        .expect(201);
    let id = id_of(&r.json[0]);
    let vm = format!("/api/virtual-machines/{id}");
    for user in ["role-owner", "role-admin", "role-member", "role-viewer"] {
        app.get(&vm, user).await.expect(200);
        app.get(
            &format!("/api/teams/{team}/projects/{project}/virtual-machines"),
            user,
        )
        .await
        .expect(200);
    }
    let before = app.dump().await;
    body["hostNames"] = json!(["viewer-made"]);
    for (method, path, b) in [
        (
            Method::POST,
            "/api/virtual-machines".to_string(),
            Some(body.clone()),
        ),
        (Method::PATCH, vm.clone(), Some(json!({"tags": ["x"]}))),
        (Method::PUT, format!("{vm}/start"), None),
        (Method::PUT, format!("{vm}/stop"), None),
        (Method::DELETE, vm.clone(), None),
    ] {
        app.call(method, &path, Some("role-viewer"), b.as_ref())
            .await
            .expect_error(403, "FORBIDDEN");
    }
    assert_eq!(app.dump().await, before, "viewers changed nothing");
    app.call(
        Method::PATCH,
        &vm,
        Some("role-admin"),
        Some(&json!({"tags": ["ok"]})),
    )
    .await
    .expect(200);
    app.call(Method::DELETE, &vm, Some("role-owner"), None)
        .await
        .expect(200);
}

#[tokio::test]
async fn bad_input_is_a_clear_4xx_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let before = app.dump().await;
    let spec = spec_create_request();
    let with = |key: &str, value: Value| {
        let mut b = spec.clone();
        b[key] = value;
        b
    };
    let cases: Vec<(Value, u16, &str, Option<&str>)> = vec![
        (
            with("team", json!("xyz")),
            400,
            "VALIDATION_FAILED",
            Some("team"),
        ),
        (
            with("team", json!(12)),
            400,
            "VALIDATION_FAILED",
            Some("team"),
        ),
        (
            with("authMethod", json!(7)),
            400,
            "VALIDATION_FAILED",
            Some("authMethod"),
        ),
        (
            with("authMethod", json!("1")),
            400,
            "VALIDATION_FAILED",
            Some("authMethod"),
        ),
        (
            with("hostNames", json!([])),
            400,
            "VALIDATION_FAILED",
            Some("hostNames"),
        ),
        (
            with("hostNames", json!(["UPPER"])),
            400,
            "VALIDATION_FAILED",
            Some("hostNames[0]"),
        ),
        (
            with("hostNames", json!(["a", "b-", "c"])),
            400,
            "VALIDATION_FAILED",
            Some("hostNames[1]"),
        ),
        (
            with(
                "hostNames",
                json!((0..11).map(|i| format!("h{i}")).collect::<Vec<_>>()),
            ),
            400,
            "VALIDATION_FAILED",
            Some("hostNames"),
        ),
        (
            with("quantity", json!(2)),
            400,
            "VALIDATION_FAILED",
            Some("quantity"),
        ),
        (
            with("quantity", json!(-1)),
            400,
            "VALIDATION_FAILED",
            Some("quantity"),
        ),
        (
            with("quantity", json!(1e40)),
            400,
            "VALIDATION_FAILED",
            Some("quantity"),
        ),
        (
            with("password", json!("hunter2")),
            400,
            "VALIDATION_FAILED",
            Some("password"),
        ),
        (
            with("access", json!({"password": "x"})),
            400,
            "VALIDATION_FAILED",
            Some("access.password"),
        ),
        (
            with("access", json!({"sshPublicKey": "hello world"})),
            400,
            "VALIDATION_FAILED",
            Some("access.sshPublicKey"),
        ),
        (
            with("tags", json!([1])),
            400,
            "VALIDATION_FAILED",
            Some("tags[0]"),
        ),
        (
            with("size", json!("6548a383e2442d14b6bf9746")),
            400,
            "VALIDATION_FAILED",
            Some("size"),
        ),
        (
            with("size", json!("000000000000000000000000")),
            400,
            "VALIDATION_FAILED",
            Some("size"),
        ),
        (
            with("price", json!("6548a383e2442d14b6bf970c")),
            400,
            "VALIDATION_FAILED",
            Some("price"),
        ),
        (
            with("provider", json!("6548a383e2442d14b6bf968c")),
            400,
            "VALIDATION_FAILED",
            None,
        ),
        (
            with("cloudProvider", json!("6548a383e2442d14b6bf9686")),
            400,
            "VALIDATION_FAILED",
            Some("provider"),
        ),
        (
            with(
                "region",
                json!({"physicalLocation": "France", "datacenter": {"name": "berlin", "displayName": "Berlin"}}),
            ),
            400,
            "VALIDATION_FAILED",
            Some("region"),
        ),
        (
            with(
                "image",
                json!({"distribution": "Debian", "version": {"name": "12", "displayName": "12"}}),
            ),
            400,
            "VALIDATION_FAILED",
            Some("image"),
        ),
        (
            {
                let mut b = with("hostNames", json!(["twin", "twin"]));
                b["quantity"] = json!(2);
                b
            },
            409,
            "DUPLICATE_HOST_NAME",
            None,
        ),
        (json!([1, 2]), 400, "VALIDATION_FAILED", Some("body")),
        (json!({"data": 5}), 400, "VALIDATION_FAILED", Some("body")),
        (
            with("team", json!("6548a41f38406c14db33b6ff")),
            404,
            "TEAM_NOT_FOUND",
            None,
        ),
        (
            with("project", json!("6548a41f38406c14db33b6ff")),
            404,
            "PROJECT_NOT_FOUND",
            None,
        ),
    ];
    for (body, status, code, field) in cases {
        let r = app
            .call(
                Method::POST,
                "/api/virtual-machines",
                Some(OWNER),
                Some(&body),
            )
            .await
            .expect_error(status, code);
        if let Some(field) = field {
            assert_eq!(r.json["details"][0]["field"], field, "{}", r.json);
        }
    }

    let url = format!("{}/api/virtual-machines", app.base);
    let token = app.token(OWNER);
    let raw = |body: Vec<u8>, content_type: Option<&str>| {
        let mut req = app.http.post(&url).bearer_auth(&token).body(body);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        req
    };
    for (req, status, code) in [
        (
            raw(b"{\"team\": ".to_vec(), Some("application/json")),
            400,
            "INVALID_JSON",
        ),
        (
            raw(b"".to_vec(), Some("application/json")),
            400,
            "INVALID_JSON",
        ),
        (
            raw(b"null".to_vec(), Some("application/json")),
            400,
            "VALIDATION_FAILED",
        ),
        (
            raw(spec.to_string().into_bytes(), Some("text/plain")),
            415,
            "UNSUPPORTED_MEDIA_TYPE",
        ),
        (
            raw(spec.to_string().into_bytes(), None),
            415,
            "UNSUPPORTED_MEDIA_TYPE",
        ),
        (
            raw(vec![b' '; 64 * 1024 + 1], Some("application/json")),
            413,
            "PAYLOAD_TOO_LARGE",
        ),
        (
            raw("[".repeat(100_000).into_bytes(), Some("application/json")),
            413,
            "PAYLOAD_TOO_LARGE",
        ),
        (
            raw("[".repeat(60_000).into_bytes(), Some("application/json")),
            400,
            "INVALID_JSON",
        ),
    ] {
        TestApp::read(req.send().await.unwrap())
            .await
            .expect_error(status, code);
    }
    // A JSON content type with parameters is fine.
    let mut ok = spec.clone();
    ok["hostNames"] = json!(["charset-ok"]);
    let r = TestApp::read(
        raw(
            ok.to_string().into_bytes(),
            Some("application/json; charset=utf-8"),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    let created = r.expect(201).json;
    app.call(
        Method::DELETE,
        &format!("/api/virtual-machines/{}", id_of(&created[0])),
        Some(OWNER),
        None,
    )
    .await
    .expect(200);

    app.call(Method::GET, "/api/nothing-here", Some(OWNER), None)
        .await
        .expect_error(404, "ROUTE_NOT_FOUND");
    app.call(
        Method::POST,
        "/api/virtual-machines/654a11e60b23ef1b0f36d44e",
        Some(OWNER),
        None,
    )
    .await
    .expect_error(405, "METHOD_NOT_ALLOWED");
    app.call(Method::GET, "/api/virtual-machines", Some(OWNER), None)
        .await
        .expect_error(405, "METHOD_NOT_ALLOWED");
    app.get(
        &format!("/api/teams/x/projects/{PROJECT}/virtual-machines"),
        OWNER,
    )
    .await
    .expect_error(400, "INVALID_PARAMETER");

    // Only the VM created and deleted above changed the table: its record (status 8), its two
    // events (create, delete), its default security rule's pointer, the team's note of the
    // project it used and the team's quota usage item (back to 0) are all that is new.
    let after = app.dump().await;
    let new: Vec<String> = after
        .iter()
        .filter(|i| !before.contains(i))
        .filter_map(|i| i.get("entity").and_then(|e| e.as_s().ok()).cloned())
        .collect();
    assert_eq!(
        new,
        ["rule", "usage", "team-project", "event", "event", "vm"],
        "only the deleted VM's record remains"
    );
    for item in &before {
        assert!(after.contains(item));
    }
}

#[tokio::test]
async fn quantity_above_one_is_all_or_nothing() {
    let app = TestApp::spawn().await;
    app.create(OWNER, &["b"]).await.expect(201);
    let before = app.dump().await;
    let r = app
        .create(OWNER, &["a", "b", "c"])
        .await
        .expect_error(409, "HOST_NAME_TAKEN");
    assert!(
        r.json["message"].as_str().unwrap().contains("'b'"),
        "{}",
        r.json
    );
    assert_eq!(app.dump().await, before, "neither a nor c was written");
    let r = app.create(OWNER, &["a", "c", "d"]).await.expect(201);
    let vms = r.json.as_array().unwrap();
    assert_eq!(vms.len(), 3);
    let ids: std::collections::HashSet<&str> =
        vms.iter().map(|v| v["_id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 3);
    let list = app
        .get(
            &format!("/api/teams/{TEAM}/projects/{PROJECT}/virtual-machines"),
            OWNER,
        )
        .await
        .json;
    assert_eq!(list.as_array().unwrap().len(), 4);
}

#[tokio::test]
async fn server_errors_carry_a_request_id_and_hide_internals() {
    // A table that does not exist: every database call fails.
    let repo = std::sync::Arc::new(vmapi_store_dynamodb::DynamoRepository::new(
        local_client().await,
        "no-such-table",
        Default::default(),
    ));
    let (status, headers, body) = direct_get(
        repo,
        "/api/virtual-machines/654a11e60b23ef1b0f36d44e",
        OWNER,
    )
    .await;
    assert_eq!(status, 500);
    assert_eq!(body["code"], "INTERNAL_ERROR");
    assert_eq!(body["requestId"], headers["x-request-id"].to_str().unwrap());
    let text = body.to_string();
    assert!(
        !text.contains("ResourceNotFound") && !text.contains("no-such-table"),
        "{text}"
    );
}

#[tokio::test]
async fn unreachable_database_is_a_503_with_retry_after() {
    // A DynamoDB endpoint where nothing listens.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let conf = local_client()
        .await
        .config()
        .to_builder()
        .endpoint_url(endpoint)
        .build();
    let repo = std::sync::Arc::new(vmapi_store_dynamodb::DynamoRepository::new(
        aws_sdk_dynamodb::Client::from_conf(conf),
        "vm-api",
        Default::default(),
    ));
    let (status, headers, body) = direct_get(
        repo,
        &format!("/api/teams/{TEAM}/projects/{PROJECT}/virtual-machines"),
        OWNER,
    )
    .await;
    assert_eq!(status, 503);
    assert_eq!(headers["retry-after"], "2");
    assert_eq!(body["code"], "SERVICE_UNAVAILABLE");
    assert!(
        body["message"].as_str().unwrap().contains("retry"),
        "{body}"
    );
    assert!(body["requestId"].is_string());
    assert!(
        !body.to_string().contains("127.0.0.1"),
        "no internals: {body}"
    );
}

/// GET answers the VM's version as an `ETag`; PATCH and the actions honour `If-Match`.
#[tokio::test]
async fn etags_and_if_match_guard_against_lost_updates() {
    let app = TestApp::spawn().await;
    let r = app.create(OWNER, &["etag-vm"]).await.expect(201);
    let id = r.json[0]["_id"].as_str().unwrap().to_string();
    let (_sim, provisioner) = app.simulated();
    app.settle(&provisioner, &id).await;
    let path = format!("/api/virtual-machines/{id}");
    let etag_of = |r: &Reply| {
        r.headers
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .expect("an ETag")
    };
    let conditional = |method: Method, path: String, if_match: &str, body: Option<Value>| {
        let mut req = app
            .http
            .request(method, format!("{}{path}", app.base))
            .bearer_auth(app.token(OWNER))
            .header("If-Match", if_match);
        if let Some(b) = body {
            req = req.json(&b);
        }
        async move { TestApp::read(req.send().await.unwrap()).await }
    };
    let first = etag_of(&app.get(&path, OWNER).await.expect(200));
    assert!(first.starts_with('"') && first.ends_with('"'), "{first}");

    // A PATCH at the current version goes through and answers the next ETag.
    let patched = conditional(
        Method::PATCH,
        path.clone(),
        &first,
        Some(json!({"tags": ["a"]})),
    )
    .await
    .expect(200);
    let second = etag_of(&patched);
    assert_ne!(first, second);
    assert_eq!(etag_of(&app.get(&path, OWNER).await), second);

    // The stale version (and a weak or malformed tag) is refused with 412 and changes nothing.
    let before = app.dump().await;
    for stale in [first.as_str(), &format!("W/{second}"), "7x", "\"\""] {
        conditional(
            Method::PATCH,
            path.clone(),
            stale,
            Some(json!({"tags": ["b"]})),
        )
        .await
        .expect_error(412, "PRECONDITION_FAILED");
        for action in ["start", "stop"] {
            conditional(Method::PUT, format!("{path}/{action}"), stale, None)
                .await
                .expect_error(412, "PRECONDITION_FAILED");
        }
        conditional(Method::DELETE, path.clone(), stale, None)
            .await
            .expect_error(412, "PRECONDITION_FAILED");
    }
    assert_eq!(
        app.dump().await,
        before,
        "a failed precondition writes nothing"
    );

    // Any of several tags, or `*`, matches.
    let listed = format!("{first}, {second}");
    let stopped = conditional(Method::PUT, format!("{path}/stop"), &listed, None)
        .await
        .expect(200);
    let third = etag_of(&stopped);
    assert_ne!(third, second);
    conditional(
        Method::PATCH,
        path.clone(),
        "*",
        Some(json!({"tags": ["c"]})),
    )
    .await
    .expect(200);
    // Without If-Match nothing changes for existing clients.
    app.call(
        Method::PATCH,
        &path,
        Some(OWNER),
        Some(&json!({"tags": ["d"]})),
    )
    .await
    .expect(200);
}

/// A VM's history: who did what, when, with the status after, newest first, paged like the list.
#[tokio::test]
async fn activity_tells_who_did_what_newest_first_in_pages() {
    let app = TestApp::spawn().await;
    let (_sim, provisioner) = app.simulated();
    let r = app.create(OWNER, &["history"]).await.expect(201);
    let id = r.json[0]["_id"].as_str().unwrap().to_string();
    app.settle(&provisioner, &id).await;
    let path = format!("/api/virtual-machines/{id}");
    app.call(
        Method::PATCH,
        &path,
        Some(OWNER),
        Some(&json!({"tags": ["x"]})),
    )
    .await
    .expect(200);
    app.call(Method::PUT, &format!("{path}/stop"), Some(OWNER), None)
        .await
        .expect(200);
    app.settle(&provisioner, &id).await;
    app.get(&format!("{path}/credentials"), OWNER)
        .await
        .expect(200);

    let all = app
        .get(&format!("{path}/activity"), OWNER)
        .await
        .expect(200)
        .json;
    let kinds: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "credentials.read",
            "provisioning.done",
            "vm.stop",
            "vm.update",
            "provisioning.done",
            "vm.create"
        ],
        "{all}"
    );
    let events = all.as_array().unwrap();
    assert_eq!(events[5]["actor"], OWNER);
    assert_eq!(events[5]["status"], 0, "created in status 0");
    assert_eq!(events[4]["actor"], "system:provisioner");
    assert_eq!(events[4]["status"], 3, "provisioned: running");
    assert_eq!(events[2]["status"], 4, "stop asked: stopping");
    assert_eq!(events[1]["status"], 7, "stopped");
    assert_eq!(events[3]["detail"], "changed tags");
    let times: Vec<&str> = events.iter().map(|e| e["at"].as_str().unwrap()).collect();
    let mut sorted = times.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(times, sorted, "newest first");

    // Pages of 4: the same events, with a signed cursor bound to this VM.
    let first = app
        .get(&format!("{path}/activity?limit=4"), OWNER)
        .await
        .expect(200);
    assert_eq!(first.json.as_array().unwrap().len(), 4);
    let cursor = first.headers["x-next-cursor"].to_str().unwrap().to_string();
    let rest = app
        .get(&format!("{path}/activity?limit=4&cursor={cursor}"), OWNER)
        .await
        .expect(200);
    assert!(rest.headers.get("x-next-cursor").is_none(), "last page");
    let paged: Vec<Value> = first
        .json
        .as_array()
        .unwrap()
        .iter()
        .chain(rest.json.as_array().unwrap())
        .cloned()
        .collect();
    assert_eq!(&paged, events);
    // Another VM's cursor, a tampered one, a bad limit: 400.
    let other = app.create(OWNER, &["other-history"]).await.expect(201);
    let other_id = other.json[0]["_id"].as_str().unwrap();
    app.get(
        &format!("/api/virtual-machines/{other_id}/activity?cursor={cursor}"),
        OWNER,
    )
    .await
    .expect_error(400, "INVALID_PARAMETER");
    app.get(&format!("{path}/activity?limit=0"), OWNER)
        .await
        .expect_error(400, "INVALID_PARAMETER");
    // Other teams see nothing.
    app.get(&format!("{path}/activity"), OTHER_OWNER)
        .await
        .expect_error(404, "VM_NOT_FOUND");
}

/// The list filters by status, tag and name prefix in the same single Query, with paging.
#[tokio::test]
async fn list_filters_by_status_tag_and_name_with_paging() {
    use vmapi_models::{Tag, Tags};
    let app = TestApp::spawn().await;
    // 300 VMs: every 50th a "web-" one, every 3rd tagged "blue", statuses running/stopped/failed.
    let mut vms = Vec::new();
    for i in 0..300 {
        let status = match i % 3 {
            0 => VmStatus::Running,
            1 => VmStatus::Stopped,
            _ => VmStatus::Failed,
        };
        let name = if i % 50 == 0 {
            format!("web-{i}")
        } else {
            format!("db-{i}")
        };
        let mut vm = demo_vm(&name, status);
        vm.created_at =
            Timestamp::from_unix_millis(Timestamp::now().unix_millis() - i as i64 * 1000).unwrap();
        if i % 3 == 0 {
            vm.tags = Tags::new(vec![Tag::parse("blue").unwrap()]).unwrap();
        }
        vms.push(vm);
    }
    app.repo.put_vms_unchecked(&vms).await.unwrap();
    let list = format!("/api/teams/{TEAM}/projects/{PROJECT}/virtual-machines");
    // Follows the cursors and returns every name seen, checking each page's size.
    let all_pages = |query: String| {
        let app = &app;
        let list = list.clone();
        async move {
            let mut names = Vec::new();
            let mut url = format!("{list}?{query}");
            for _ in 0..100 {
                let r = app.get(&url, OWNER).await.expect(200);
                let page = r.json.as_array().unwrap().clone();
                assert!(page.len() <= 50);
                names.extend(page.iter().map(|v| v["name"].as_str().unwrap().to_string()));
                let Some(link) = r.headers.get("link") else {
                    return names;
                };
                let link = link.to_str().unwrap();
                let next = link.trim_start_matches('<').split('>').next().unwrap();
                // The next page keeps the filters.
                for pair in query.split('&').filter(|p| !p.is_empty()) {
                    let key = pair.split('=').next().unwrap();
                    assert!(next.contains(&format!("&{key}=")), "{link}");
                }
                url = next.to_string();
            }
            panic!("too many pages");
        }
    };
    let expect = |f: &dyn Fn(usize) -> bool| -> Vec<String> {
        (0..300)
            .filter(|i| f(*i))
            .map(|i| vms[i].name.to_string())
            .collect()
    };

    assert_eq!(all_pages("status=3".into()).await, expect(&|i| i % 3 == 0));
    assert_eq!(
        all_pages("status=3,7".into()).await,
        expect(&|i| i % 3 != 2),
        "codes, comma-separated"
    );
    assert_eq!(
        all_pages("status=running&status=failed".into()).await,
        expect(&|i| i % 3 != 1),
        "names, repeated"
    );
    assert_eq!(all_pages("tag=blue".into()).await, expect(&|i| i % 3 == 0));
    // A rare match: pages may be short (even empty) while the cursor goes on.
    assert_eq!(
        all_pages("name=web-".into()).await,
        expect(&|i| i % 50 == 0)
    );
    assert_eq!(
        all_pages("name=web-&status=7".into()).await,
        expect(&|i| i % 50 == 0 && i % 3 == 1)
    );
    assert_eq!(all_pages(String::new()).await.len(), 300);

    for (query, field) in [
        ("status=8", "status"),
        ("status=5", "status"),
        ("status=sleeping", "status"),
        ("tag=a&tag=b", "tag"),
        ("name=Web", "name"),
        ("limit=5&limit=6", "limit"),
        ("colour=blue", "colour"),
    ] {
        let r = app
            .get(&format!("{list}?{query}"), OWNER)
            .await
            .expect_error(400, "INVALID_PARAMETER");
        assert_eq!(r.json["details"][0]["field"], field, "{query}: {}", r.json);
    }
}
