//! Health, the spec page's create request, GET and the list as the spec page shows them,
//! all-or-nothing creates.

use reqwest::Method;
use serde_json::{json, Value};
use vmapi_models::Timestamp;
use vmapi_tests::*;

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
