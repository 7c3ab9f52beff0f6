//! `Idempotency-Key` on create and the actions, against DynamoDB Local: replays, mismatches,
//! per-user scope, concurrent duplicates, expiry (DynamoDB Local never deletes expired items),
//! lease take-over, bad keys, kept refusals, freed keys after failures, and round trips.

use std::collections::HashMap;
use std::sync::Arc;

use aws_sdk_dynamodb::types::AttributeValue;
use reqwest::Method;
use serde_json::{json, Value};
use vmapi_core::memory::MemorySecretStore;
use vmapi_core::{IdempotencyKey, IdempotencyRecord, RecordState, StoredResponse};
use vmapi_models::{Timestamp, UserId, VmStatus};
use vmapi_tests::*;

const CREATE: &str = "/api/virtual-machines";
const KEY: &str = "Idempotency-Key";

fn create_body(names: &[&str]) -> Value {
    let mut body = spec_create_request();
    body["hostNames"] = json!(names);
    body["quantity"] = json!(names.len());
    body
}

async fn create_with_key(app: &TestApp, user: &str, key: &str, body: &Value) -> Reply {
    app.call_with(
        Method::POST,
        CREATE,
        Some(user),
        Some(body),
        &[(KEY, key.as_bytes())],
    )
    .await
}

async fn act_with_key(app: &TestApp, method: Method, path: &str, key: &str) -> Reply {
    app.call_with(method, path, Some(OWNER), None, &[(KEY, key.as_bytes())])
        .await
}

fn entity_count(items: &[HashMap<String, AttributeValue>], entity: &str) -> usize {
    items
        .iter()
        .filter(|i| {
            i.get("entity")
                .and_then(|v| v.as_s().ok())
                .map(String::as_str)
                == Some(entity)
        })
        .count()
}

fn replayed(r: &Reply) -> bool {
    r.headers
        .get("idempotent-replayed")
        .is_some_and(|v| v == "true")
}

fn owner() -> UserId {
    UserId::parse(OWNER).unwrap()
}

#[tokio::test]
async fn the_same_key_and_body_replay_the_first_answer_and_create_once() {
    let app = TestApp::spawn().await;
    let body = create_body(&["idem-1", "idem-2"]);
    let first = create_with_key(&app, OWNER, "create-1", &body)
        .await
        .expect(201);
    assert!(!replayed(&first), "the first answer is no replay");
    assert_eq!(first.json.as_array().unwrap().len(), 2);

    for _ in 0..2 {
        let again = create_with_key(&app, OWNER, "create-1", &body)
            .await
            .expect(201);
        assert!(replayed(&again), "{:?}", again.headers);
        assert_eq!(again.json, first.json, "the same body");
        assert_eq!(again.headers["content-type"], "application/json");
        assert!(again.headers.contains_key("x-request-id"));
    }
    let items = app.dump().await;
    assert_eq!(entity_count(&items, "vm"), 2, "created once");
    assert_eq!(entity_count(&items, "idempotency"), 1);

    // The record: the answer, a TTL a day ahead, in the user's partition.
    let record = app
        .repo
        .idempotency_record(&owner(), &IdempotencyKey::parse("create-1").unwrap())
        .await
        .unwrap()
        .expect("stored");
    let now = Timestamp::now().unix_millis() / 1000;
    assert!((record.expires_at_epoch - now - 24 * 3600).abs() < 60);
    let RecordState::Done(stored) = &record.state else {
        panic!("{record:?}")
    };
    assert_eq!(stored.status, 201);
    let item = items
        .iter()
        .find(|i| i["entity"].as_s().unwrap() == "idempotency")
        .unwrap();
    assert_eq!(item["pk"].as_s().unwrap(), &format!("IDEM#{OWNER}"));
    assert_eq!(item["sk"].as_s().unwrap(), "KEY#create-1");
    assert!(
        item["expiresAtEpoch"].as_n().is_ok(),
        "the table's TTL attribute"
    );

    // Without a key, the same body is a new request (the names are taken now).
    app.call(Method::POST, CREATE, Some(OWNER), Some(&body))
        .await
        .expect_error(409, "HOST_NAME_TAKEN");
}

#[tokio::test]
async fn the_same_key_with_another_request_is_a_422_that_writes_nothing() {
    let app = TestApp::spawn().await;
    create_with_key(&app, OWNER, "k", &create_body(&["mismatch-1"]))
        .await
        .expect(201);
    let before = app.dump().await;
    let r = create_with_key(&app, OWNER, "k", &create_body(&["mismatch-2"]))
        .await
        .expect_error(422, "IDEMPOTENCY_KEY_REUSED");
    assert!(
        r.json["message"]
            .as_str()
            .unwrap()
            .contains("different request"),
        "{}",
        r.json
    );
    assert!(!replayed(&r));
    // Another path or method with the key is another request too.
    let stopped = demo_vm("mismatch-stopped", VmStatus::Stopped);
    app.seed_vm(&stopped).await;
    let before_action = app.dump().await;
    act_with_key(
        &app,
        Method::PUT,
        &format!("/api/virtual-machines/{}/start", stopped.id),
        "k",
    )
    .await
    .expect_error(422, "IDEMPOTENCY_KEY_REUSED");
    assert_eq!(app.dump().await, before_action, "nothing written");
    assert_eq!(
        entity_count(&before, "vm") + 1,
        entity_count(&before_action, "vm")
    );
}

#[tokio::test]
async fn keys_are_scoped_to_the_caller() {
    let app = TestApp::spawn().await;
    let body = create_body(&["scoped"]);
    let mine = create_with_key(&app, OWNER, "shared-key", &body)
        .await
        .expect(201);
    // Another user's key of the same name is another key: their own request runs ...
    let mut theirs = create_body(&["scoped"]);
    theirs["team"] = json!(OTHER_TEAM);
    theirs["project"] = json!(OTHER_PROJECT);
    let other = create_with_key(&app, OTHER_OWNER, "shared-key", &theirs)
        .await
        .expect(201);
    assert!(!replayed(&other));
    assert_ne!(other.json[0]["_id"], mine.json[0]["_id"]);
    // ... and the first user's very request, with the first user's key, is no replay for them.
    let r = create_with_key(&app, OTHER_OWNER, "shared-key-2", &body).await;
    assert!(!replayed(&r));
    assert_eq!(r.status.as_u16(), 404, "{}", r.json);
    let r = create_with_key(&app, OTHER_OWNER, "shared-key", &body).await;
    assert!(!replayed(&r));
    assert_eq!(r.json["code"], "IDEMPOTENCY_KEY_REUSED", "{}", r.json);
    let items = app.dump().await;
    assert_eq!(entity_count(&items, "vm"), 2);
    assert_eq!(entity_count(&items, "idempotency"), 3);
}

#[tokio::test]
async fn concurrent_duplicates_create_exactly_once() {
    let app = Arc::new(TestApp::spawn().await);
    let body = create_body(&["concurrent-1", "concurrent-2"]);
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (app, body) = (app.clone(), body.clone());
            tokio::spawn(async move { create_with_key(&app, OWNER, "burst", &body).await })
        })
        .collect();
    let mut created: Vec<Value> = Vec::new();
    let mut in_progress = 0;
    for t in tasks {
        let r = t.await.unwrap();
        match r.status.as_u16() {
            201 => created.push(r.json),
            409 => {
                assert_eq!(r.json["code"], "IDEMPOTENCY_IN_PROGRESS", "{}", r.json);
                in_progress += 1;
            }
            other => panic!("unexpected {other}: {}", r.json),
        }
    }
    assert!(!created.is_empty(), "one request ran");
    assert!(
        created.iter().all(|b| *b == created[0]),
        "every 201 is the same answer"
    );
    assert_eq!(created.len() + in_progress, 16);
    let items = app.dump().await;
    assert_eq!(entity_count(&items, "vm"), 2, "one create of two VMs");
    // Afterwards every duplicate is a replay.
    let again = create_with_key(&app, OWNER, "burst", &body)
        .await
        .expect(201);
    assert!(replayed(&again));
    assert_eq!(again.json, created[0]);
}

#[tokio::test]
async fn an_expired_record_counts_as_absent() {
    let app = TestApp::spawn().await;
    let key = IdempotencyKey::parse("old-key").unwrap();
    let long_ago =
        Timestamp::from_unix_millis(Timestamp::now().unix_millis() - 25 * 3600 * 1000).unwrap();
    let mut record = IdempotencyRecord::started("another request's hash", long_ago);
    record.state = RecordState::Done(StoredResponse {
        status: 201,
        headers: vec![],
        body: "[]".into(),
    });
    assert!(record.is_expired(Timestamp::now()));
    app.repo
        .put_idempotency_record_unchecked(&owner(), &key, &record)
        .await
        .unwrap();
    // Neither a mismatch nor a replay of the stale answer: the request runs.
    let r = create_with_key(&app, OWNER, "old-key", &create_body(&["after-expiry"]))
        .await
        .expect(201);
    assert!(!replayed(&r));
    assert_eq!(r.json.as_array().unwrap().len(), 1);
    let again = create_with_key(&app, OWNER, "old-key", &create_body(&["after-expiry"]))
        .await
        .expect(201);
    assert!(replayed(&again));
    assert_eq!(again.json, r.json);
}

#[tokio::test]
async fn actions_replay_their_answer_and_a_lapsed_lease_is_taken_over() {
    let app = TestApp::spawn().await;
    let stopped = demo_vm("idem-start", VmStatus::Stopped);
    app.seed_vm(&stopped).await;
    let start = format!("/api/virtual-machines/{}/start", stopped.id);
    let first = act_with_key(&app, Method::PUT, &start, "start-1")
        .await
        .expect(200);
    assert_eq!(first.json["status"], 2);
    let etag = first.headers["etag"].clone();
    let after_first = app.dump().await;

    let again = act_with_key(&app, Method::PUT, &start, "start-1")
        .await
        .expect(200);
    assert!(replayed(&again));
    assert_eq!(again.json, first.json);
    assert_eq!(again.headers["etag"], etag, "the ETag is replayed too");
    assert_eq!(app.dump().await, after_first, "a replay writes nothing");

    // A request that is still running (its lease is current) blocks the key with a 409 ...
    let user = owner();
    let key = IdempotencyKey::parse("start-1").unwrap();
    let done = app
        .repo
        .idempotency_record(&user, &key)
        .await
        .unwrap()
        .unwrap();
    let now = Timestamp::now();
    let mut running = IdempotencyRecord::started(&done.request_hash, now);
    app.repo
        .put_idempotency_record_unchecked(&user, &key, &running)
        .await
        .unwrap();
    let blocked = act_with_key(&app, Method::PUT, &start, "start-1")
        .await
        .expect_error(409, "IDEMPOTENCY_IN_PROGRESS");
    assert!(!replayed(&blocked));
    // ... and another request with it is still a mismatch.
    act_with_key(
        &app,
        Method::PUT,
        &format!("/api/virtual-machines/{}/stop", stopped.id),
        "start-1",
    )
    .await
    .expect_error(422, "IDEMPOTENCY_KEY_REUSED");

    // Once its lease has run out (a crashed function), the same request takes the key over.
    running.state = RecordState::InFlight {
        lease_until: Timestamp::from_unix_millis(now.unix_millis() - 1).unwrap(),
    };
    app.repo
        .put_idempotency_record_unchecked(&user, &key, &running)
        .await
        .unwrap();
    let taken = act_with_key(&app, Method::PUT, &start, "start-1")
        .await
        .expect(200);
    assert!(!replayed(&taken), "it ran");
    assert_eq!(
        taken.json["status"], 2,
        "start while starting: 200, nothing changes"
    );
    let record = app
        .repo
        .idempotency_record(&user, &key)
        .await
        .unwrap()
        .unwrap();
    assert_ne!(record.token, running.token, "a new holder");
    assert!(matches!(
        record.state,
        RecordState::Done(StoredResponse { status: 200, .. })
    ));

    // DELETE honours the key as well.
    let path = format!("/api/virtual-machines/{}", stopped.id);
    let deleted = act_with_key(&app, Method::DELETE, &path, "delete-1")
        .await
        .expect(200);
    let again = act_with_key(&app, Method::DELETE, &path, "delete-1")
        .await
        .expect(200);
    assert!(replayed(&again) && again.json == deleted.json);
}

#[tokio::test]
async fn bad_keys_are_400s_that_write_nothing() {
    let app = TestApp::spawn().await;
    let before = app.dump().await;
    let body = create_body(&["bad-key"]);
    let long = "k".repeat(256);
    let bad: Vec<Vec<(&str, &[u8])>> = vec![
        vec![(KEY, b"")],
        vec![(KEY, long.as_bytes())],
        vec![(KEY, b"has space")],
        vec![(KEY, "caf\u{e9}".as_bytes())],
        vec![(KEY, b"one"), (KEY, b"two")],
    ];
    for headers in bad {
        let r = app
            .call_with(Method::POST, CREATE, Some(OWNER), Some(&body), &headers)
            .await
            .expect_error(400, "INVALID_PARAMETER");
        assert_eq!(r.json["details"][0]["field"], KEY, "{}", r.json);
    }
    let stopped = demo_vm("bad-key-stopped", VmStatus::Stopped);
    app.seed_vm(&stopped).await;
    let seeded = app.dump().await;
    act_with_key(
        &app,
        Method::PUT,
        &format!("/api/virtual-machines/{}/start", stopped.id),
        "tab\tkey",
    )
    .await
    .expect_error(400, "INVALID_PARAMETER");
    assert_eq!(app.dump().await, seeded, "nothing written");
    assert_eq!(entity_count(&before, "vm"), 0);
    // 255 characters are fine; a bad token is still a 401 first.
    create_with_key(&app, OWNER, &"k".repeat(255), &body)
        .await
        .expect(201);
    app.call_with(Method::POST, CREATE, None, Some(&body), &[(KEY, b"")])
        .await
        .expect_error(401, "UNAUTHORIZED");
}

#[tokio::test]
async fn refusals_are_replayed_and_malformed_requests_free_the_key() {
    let app = TestApp::spawn().await;
    app.create(OWNER, &["taken"]).await.expect(201);
    let body = create_body(&["taken"]);
    let refused = create_with_key(&app, OWNER, "conflict", &body)
        .await
        .expect_error(409, "HOST_NAME_TAKEN");
    // The key answers what it answered.
    let again = create_with_key(&app, OWNER, "conflict", &body)
        .await
        .expect_error(409, "HOST_NAME_TAKEN");
    assert!(replayed(&again));
    assert_eq!(again.json, refused.json);

    // A malformed request keeps nothing: the corrected request may use the key.
    let mut invalid = create_body(&["fixed"]);
    invalid["authMethod"] = json!(7);
    create_with_key(&app, OWNER, "malformed", &invalid)
        .await
        .expect_error(400, "VALIDATION_FAILED");
    assert!(app
        .repo
        .idempotency_record(&owner(), &IdempotencyKey::parse("malformed").unwrap())
        .await
        .unwrap()
        .is_none());
    let fixed = create_with_key(&app, OWNER, "malformed", &create_body(&["fixed"]))
        .await
        .expect(201);
    assert!(!replayed(&fixed));
}

#[tokio::test]
async fn a_failure_worth_retrying_frees_the_key() {
    let store = Arc::new(MemorySecretStore::new());
    let app = TestApp::spawn_opts(Options {
        logins: Logins::Store(store.clone()),
        ..Options::default()
    })
    .await;
    let body = create_body(&["after-outage"]);
    store.set_down(true);
    create_with_key(&app, OWNER, "retry-me", &body)
        .await
        .expect_error(503, "SERVICE_UNAVAILABLE");
    assert_eq!(
        entity_count(&app.dump().await, "idempotency"),
        0,
        "the key is free"
    );
    store.set_down(false);
    let r = create_with_key(&app, OWNER, "retry-me", &body)
        .await
        .expect(201);
    assert!(!replayed(&r), "the retry ran");
    assert_eq!(entity_count(&app.dump().await, "vm"), 1);
}

/// The same requests' DynamoDB calls with `Idempotency-Key`: a put before and an update after
/// whatever the request makes without one.
fn keyed(without: &[String]) -> Vec<String> {
    let mut ops = vec!["PutItem".to_string()];
    ops.extend_from_slice(without);
    ops.push("UpdateItem".into());
    ops
}

#[tokio::test]
async fn a_key_costs_two_round_trips_and_a_replay_one() {
    let counter = RequestCounter::default();
    let app = TestApp::spawn_with(counter.client().await).await;
    app.create(OWNER, &["rt-0"]).await.expect(201);
    counter.take();
    app.create(OWNER, &["rt-plain"]).await.expect(201);
    let plain_create = counter.take();
    let body = create_body(&["rt-1"]);
    create_with_key(&app, OWNER, "rt", &body).await.expect(201);
    assert_eq!(counter.take(), keyed(&plain_create), "create with a key");
    create_with_key(&app, OWNER, "rt", &body).await.expect(201);
    assert_eq!(
        counter.take(),
        ["PutItem"],
        "replay: the refused put returns the record"
    );
    create_with_key(&app, OWNER, "rt", &create_body(&["rt-2"]))
        .await
        .expect(422);
    assert_eq!(counter.take(), ["PutItem"], "mismatch");

    let plain = demo_vm("rt-plain-stopped", VmStatus::Stopped);
    let with_key = demo_vm("rt-stopped", VmStatus::Stopped);
    app.seed_vm(&plain).await;
    app.seed_vm(&with_key).await;
    counter.take();
    app.call(
        Method::PUT,
        &format!("/api/virtual-machines/{}/start", plain.id),
        Some(OWNER),
        None,
    )
    .await
    .expect(200);
    let plain_start = counter.take();
    act_with_key(
        &app,
        Method::PUT,
        &format!("/api/virtual-machines/{}/start", with_key.id),
        "rt-start",
    )
    .await
    .expect(200);
    assert_eq!(counter.take(), keyed(&plain_start), "start with a key");
}
