//! Changing a VM: PATCH, start and stop, delete, and `If-Match` against lost updates.

use reqwest::Method;
use serde_json::{json, Value};
use vmapi_models::{VmId, VmStatus};
use vmapi_tests::*;

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
