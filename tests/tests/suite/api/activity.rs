//! A VM's activity: who did what, newest first, in pages.

use reqwest::Method;
use serde_json::{json, Value};
use vmapi_tests::*;

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
