//! The admin API on DynamoDB Local: keys (hashed, revocable, never accepted on user routes),
//! a team's VMs page by page in two round trips, delete, block and unblock as `admin:{name}`.

use reqwest::Method;
use serde_json::Value;
use vmapi_models::AdminKeyName;
use vmapi_tests::*;

fn ids(page: &Value) -> Vec<String> {
    page["docs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["_id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn a_teams_vms_come_page_by_page_newest_first_in_two_round_trips() {
    let counter = RequestCounter::default();
    let app = TestApp::spawn_with(counter.client().await).await;
    let (_, key) = app.admin_key("ops").await;
    let names: Vec<String> = (0..12).map(|i| format!("adm-{i}")).collect();
    let mut made = Vec::new();
    for name in &names {
        made.push(
            app.create(OWNER, &[name]).await.expect(201).json[0]["_id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    made.reverse(); // newest first
    let list = format!("/admin/api/teams/{TEAM}/virtual-machines");
    counter.take();
    let first = app
        .as_admin(Method::GET, &format!("{list}?page=1&limit=5"), &key)
        .await
        .expect(200)
        .json;
    let mut ops = counter.take();
    ops.sort();
    assert_eq!(
        ops,
        ["BatchGetItem", "GetItem", "Query"],
        "key + index, then the page"
    );
    assert_eq!(ids(&first), made[..5]);
    assert_eq!(first["totalDocs"], 12);
    assert_eq!(first["limit"], 5);
    assert_eq!(first["page"], 1);
    assert_eq!(first["totalPages"], 3);
    assert_eq!(first["hasNextPage"], true);
    assert_eq!(first["hasPrevPage"], false);
    // Populated as in GET of a VM.
    let vm = &first["docs"][0];
    assert!(vm["provider"]["cloudProvider"]["name"].is_string(), "{vm}");
    assert!(vm["size"]["vCPUs"].is_number(), "{vm}");
    assert!(vm["price"]["pricePerHour"].is_number(), "{vm}");
    assert_eq!(vm["project"]["_id"], PROJECT);
    assert_eq!(vm["team"]["_id"], TEAM);
    let single = app
        .get(&format!("/api/virtual-machines/{}", made[0]), OWNER)
        .await
        .json;
    assert_eq!(vm["provider"], single["provider"]);
    assert_eq!(vm["status"], single["status"]);

    let last = app
        .as_admin(Method::GET, &format!("{list}?page=3&limit=5"), &key)
        .await
        .expect(200)
        .json;
    assert_eq!(ids(&last), made[10..]);
    assert_eq!(
        (last["hasNextPage"].clone(), last["hasPrevPage"].clone()),
        (false.into(), true.into())
    );
    let past = app
        .as_admin(Method::GET, &format!("{list}?page=9"), &key)
        .await
        .expect(200)
        .json;
    assert!(ids(&past).is_empty());
    assert_eq!(past["limit"], 10);
    assert_eq!(past["totalPages"], 2);

    // A deleted VM (status 8) is not listed; one being deleted (5) is.
    app.call(
        Method::DELETE,
        &format!("/api/virtual-machines/{}", made[0]),
        Some(OWNER),
        None,
    )
    .await
    .expect(200);
    let all = app
        .as_admin(Method::GET, &format!("{list}?limit=100"), &key)
        .await
        .expect(200)
        .json;
    assert_eq!(all["totalDocs"], 12);
    assert_eq!(all["docs"][0]["status"], 5);

    // Another team's list is its own (empty here).
    let other = app
        .as_admin(
            Method::GET,
            &format!("/admin/api/teams/{OTHER_TEAM}/virtual-machines"),
            &key,
        )
        .await
        .expect(200)
        .json;
    assert_eq!(other["totalDocs"], 0);
    assert_eq!(other["totalPages"], 1);
}

#[tokio::test]
async fn wrong_revoked_or_missing_keys_and_user_tokens_are_401s_that_change_nothing() {
    let app = TestApp::spawn().await;
    let (keys, key) = app.admin_key("ops").await;
    let vm = app.create(OWNER, &["target"]).await.expect(201).json[0]["_id"]
        .as_str()
        .unwrap()
        .to_string();
    let routes = [
        (
            Method::GET,
            format!("/admin/api/teams/{TEAM}/virtual-machines"),
        ),
        (
            Method::PUT,
            format!("/admin/api/virtual-machines/{vm}/block"),
        ),
        (
            Method::PUT,
            format!("/admin/api/virtual-machines/{vm}/unblock"),
        ),
        (Method::DELETE, format!("/admin/api/virtual-machines/{vm}")),
    ];
    let before = app.dump().await;
    let wrong = format!("{key}x");
    for (method, path) in &routes {
        for (what, headers) in [
            ("no key", vec![]),
            ("a wrong key", vec![("api-key", wrong.as_bytes())]),
            (
                "two keys",
                vec![("api-key", key.as_bytes()), ("api-key", key.as_bytes())],
            ),
        ] {
            let r = app
                .call_with(method.clone(), path, None, None, &headers)
                .await;
            assert_eq!(
                r.status.as_u16(),
                401,
                "{method} {path} with {what}: {}",
                r.json
            );
            assert_eq!(r.json["code"], "UNAUTHORIZED");
            assert_eq!(r.headers["www-authenticate"], "Api-Key", "{what}");
        }
        // A user's token (even the team owner's) is no admin key.
        let r = app.call(method.clone(), path, Some(OWNER), None).await;
        assert_eq!(
            r.status.as_u16(),
            401,
            "{method} {path} with a user token: {}",
            r.json
        );
        assert_eq!(r.headers["www-authenticate"], "Api-Key");
    }
    assert_eq!(app.dump().await, before, "a refused admin request wrote");

    // An admin key is no user token.
    let r = app
        .call_with(
            Method::GET,
            &format!("/api/virtual-machines/{vm}"),
            None,
            None,
            &[("api-key", key.as_bytes())],
        )
        .await;
    assert_eq!(r.status.as_u16(), 401, "{}", r.json);
    assert_eq!(r.headers["www-authenticate"], "Bearer");

    // Revoked: refused at once.
    app.as_admin(
        Method::PUT,
        &format!("/admin/api/virtual-machines/{vm}/block"),
        &key,
    )
    .await
    .expect(200);
    assert!(keys
        .revoke(&AdminKeyName::parse("ops").unwrap())
        .await
        .unwrap());
    let before = app.dump().await;
    app.as_admin(
        Method::PUT,
        &format!("/admin/api/virtual-machines/{vm}/unblock"),
        &key,
    )
    .await
    .expect_error(401, "UNAUTHORIZED");
    assert_eq!(app.dump().await, before);
    // The table holds the key's hash, never the key.
    assert!(!format!("{before:?}").contains(&key));
}

#[tokio::test]
async fn delete_block_and_unblock_are_recorded_as_the_admin() {
    let app = TestApp::spawn().await;
    let (_, key) = app.admin_key("night-shift").await;
    let vm = app.create(OWNER, &["target"]).await.expect(201).json[0]["_id"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("/admin/api/virtual-machines/{vm}");

    let r = app
        .as_admin(Method::PUT, &format!("{path}/block"), &key)
        .await
        .expect(200);
    assert_eq!(r.json["message"], "Virtual machine blocked");
    assert_eq!(r.json["vmId"], vm.as_str());
    let got = app
        .get(&format!("/api/virtual-machines/{vm}"), OWNER)
        .await
        .json;
    assert_eq!(got["isBlocked"], true);
    // Its users may no longer start or reboot it.
    app.call(
        Method::PUT,
        &format!("/api/virtual-machines/{vm}/reboot"),
        Some(OWNER),
        None,
    )
    .await
    .expect_error(409, "VM_BLOCKED");
    let r = app
        .as_admin(Method::PUT, &format!("{path}/unblock"), &key)
        .await
        .expect(200);
    assert_eq!(r.json["message"], "Virtual machine unblocked");
    assert_eq!(
        app.get(&format!("/api/virtual-machines/{vm}"), OWNER)
            .await
            .json["isBlocked"],
        false
    );

    let r = app.as_admin(Method::DELETE, &path, &key).await.expect(200);
    assert_eq!(
        r.json,
        serde_json::json!({"message": "Virtual machine deleted", "vmId": vm})
    );
    let got = app
        .get(&format!("/api/virtual-machines/{vm}"), OWNER)
        .await
        .json;
    assert_eq!(
        got["status"], 5,
        "the same teardown as a user's delete: {got}"
    );
    // Deleting again while the teardown runs answers 200 again.
    app.as_admin(Method::DELETE, &path, &key).await.expect(200);

    let activity = app
        .get(&format!("/api/virtual-machines/{vm}/activity"), OWNER)
        .await
        .json;
    let by_admin: Vec<&str> = activity
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["actor"] == "admin:night-shift")
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        by_admin,
        ["vm.delete", "vm.unblock", "vm.block"],
        "{activity}"
    );

    // Unknown VMs and bad ids.
    app.as_admin(
        Method::DELETE,
        "/admin/api/virtual-machines/6548a41f38406c14db33ffff",
        &key,
    )
    .await
    .expect_error(404, "VM_NOT_FOUND");
    app.as_admin(Method::PUT, "/admin/api/virtual-machines/nope/block", &key)
        .await
        .expect_error(400, "INVALID_PARAMETER");
}

#[tokio::test]
async fn bad_page_parameters_are_400s_naming_them() {
    let app = TestApp::spawn().await;
    let (_, key) = app.admin_key("ops").await;
    let list = format!("/admin/api/teams/{TEAM}/virtual-machines");
    for (query, field) in [
        ("page=0", "page"),
        ("page=x", "page"),
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=5&limit=6", "limit"),
        ("sort=name", "sort"),
    ] {
        let r = app
            .as_admin(Method::GET, &format!("{list}?{query}"), &key)
            .await
            .expect_error(400, "INVALID_PARAMETER");
        assert!(r.json.to_string().contains(field), "{query}: {}", r.json);
    }
    app.as_admin(
        Method::GET,
        "/admin/api/teams/not-a-team/virtual-machines",
        &key,
    )
    .await
    .expect_error(400, "INVALID_PARAMETER");
}
