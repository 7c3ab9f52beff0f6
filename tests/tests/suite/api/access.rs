//! Who may call: no or bad tokens get 401, other teams 404, viewers cannot write.

use reqwest::Method;
use serde_json::{json, Value};
use vmapi_tests::*;

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
