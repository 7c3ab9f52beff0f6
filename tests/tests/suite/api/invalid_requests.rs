//! Bad input: a clear 4xx, and nothing written.

use reqwest::Method;
use serde_json::{json, Value};
use vmapi_tests::*;

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
