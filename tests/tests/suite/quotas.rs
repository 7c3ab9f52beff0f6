//! Per-team quotas on DynamoDB Local: the usage item is checked and updated in the create's own
//! transaction (so concurrent creates never exceed a limit), a delete frees its share in the
//! delete's transaction, refusals are 409 `QUOTA_EXCEEDED` naming the limit and write nothing.
//! (Real DynamoDB's `TransactionConflict` under contention, which DynamoDB Local never answers,
//! is covered by shared/store-dynamodb/tests/transaction_conflict.rs.)

use std::sync::Arc;

use reqwest::Method;
use serde_json::{json, Value};
use vmapi_core::{QuotaLimits, Usage};
use vmapi_models::{TeamId, TeamQuotas};
use vmapi_tests::*;

fn team() -> TeamId {
    TEAM.parse().unwrap()
}

/// Gives the demo team its own limits (as an operator would in its record).
async fn set_team_quotas(app: &TestApp, quotas: TeamQuotas) {
    let mut seed = demo_seed();
    seed.teams.retain(|t| t.id == team());
    seed.teams[0].quotas = Some(quotas);
    seed.projects.clear();
    seed.cloud_providers.clear();
    seed.providers.clear();
    seed.sizes.clear();
    seed.prices.clear();
    app.repo.load_seed(&seed).await.unwrap();
}

fn vms(max: u32) -> TeamQuotas {
    TeamQuotas {
        max_active_vms: Some(max),
        max_vcpus: None,
    }
}

/// VM items of the table.
async fn vm_items(app: &TestApp) -> usize {
    app.dump()
        .await
        .iter()
        .filter(|i| {
            i.get("entity")
                .and_then(|v| v.as_s().ok())
                .map(String::as_str)
                == Some("vm")
        })
        .count()
}

async fn delete(app: &TestApp, id: &str) {
    app.call(
        Method::DELETE,
        &format!("/api/virtual-machines/{id}"),
        Some(OWNER),
        None,
    )
    .await
    .expect(200);
}

fn id_of(r: &Reply) -> String {
    r.json[0]["_id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn fifty_concurrent_creates_against_a_limit_of_ten_make_exactly_ten() {
    let app = Arc::new(TestApp::spawn().await);
    set_team_quotas(&app, vms(10)).await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..50 {
        let app = app.clone();
        tasks.spawn(async move { app.create(OWNER, &[&format!("race-{i}")]).await });
    }
    let (mut created, mut refused) = (0, 0);
    while let Some(r) = tasks.join_next().await {
        let r = r.unwrap();
        match r.status.as_u16() {
            201 => created += 1,
            409 => {
                let r = r.expect_error(409, "QUOTA_EXCEEDED");
                let message = r.json["message"].as_str().unwrap();
                assert!(
                    message.contains(&format!("team {TEAM} may have at most 10 active VMs; it has 10 and asked for 1 more")),
                    "{message}"
                );
                refused += 1;
            }
            other => panic!("unexpected {other}: {}", r.json),
        }
    }
    assert_eq!((created, refused), (10, 40));
    assert_eq!(vm_items(&app).await, 10);
    assert_eq!(
        app.repo.usage(team()).await.unwrap(),
        Some(Usage {
            active_vms: 10,
            vcpus: 10
        }),
        "the spec's size has 1 vCPU"
    );
    let list = app
        .get(
            &format!("/api/teams/{TEAM}/projects/{PROJECT}/virtual-machines"),
            OWNER,
        )
        .await
        .expect(200);
    assert_eq!(list.json.as_array().unwrap().len(), 10);
}

#[tokio::test]
async fn the_vcpu_limit_counts_size_times_count_and_is_named() {
    let app = TestApp::spawn().await;
    set_team_quotas(
        &app,
        TeamQuotas {
            max_active_vms: None,
            max_vcpus: Some(5),
        },
    )
    .await;
    // The spec's size: 1 vCPU.
    app.create(OWNER, &["small"]).await.expect(201);
    // Two m6a.large (2 vCPUs each): 1 + 4 = 5, the limit.
    let seed = demo_seed();
    let aws = seed
        .providers
        .iter()
        .find(|p| p.id.to_string().ends_with("968c"))
        .unwrap();
    let body = |names: &[&str]| -> Value {
        json!({
            "cloudProvider": aws.cloud_provider, "team": TEAM, "project": PROJECT,
            "hostNames": names, "quantity": names.len(),
            "provider": aws.id, "size": "6548a383e2442d14b6bf9746", "price": "6548a383e2442d14b6bf970c",
            "region": aws.locations[0].region, "image": aws.images[0], "authMethod": 1
        })
    };
    app.call(
        Method::POST,
        "/api/virtual-machines",
        Some(OWNER),
        Some(&body(&["large-1", "large-2"])),
    )
    .await
    .expect(201);
    assert_eq!(
        app.repo.usage(team()).await.unwrap(),
        Some(Usage {
            active_vms: 3,
            vcpus: 5
        })
    );
    let before = app.dump().await;
    let r = app
        .call(
            Method::POST,
            "/api/virtual-machines",
            Some(OWNER),
            Some(&body(&["large-3"])),
        )
        .await
        .expect_error(409, "QUOTA_EXCEEDED");
    let message = r.json["message"].as_str().unwrap();
    assert!(
        message.contains("may have at most 5 vCPUs in active VMs; it has 5 and asked for 2 more"),
        "{message}"
    );
    assert_eq!(
        message.matches("at most").count(),
        1,
        "only the vCPU limit: {message}"
    );
    assert_eq!(app.dump().await, before, "nothing was written");
}

#[tokio::test]
async fn a_delete_frees_its_share_once() {
    let app = TestApp::spawn().await;
    set_team_quotas(&app, vms(2)).await;
    let a = id_of(&app.create(OWNER, &["a"]).await.expect(201));
    app.create(OWNER, &["b"]).await.expect(201);
    app.create(OWNER, &["c"])
        .await
        .expect_error(409, "QUOTA_EXCEEDED");

    delete(&app, &a).await;
    assert_eq!(
        app.repo.usage(team()).await.unwrap(),
        Some(Usage {
            active_vms: 1,
            vcpus: 1
        })
    );
    // A repeated delete (still deleting) and the teardown (5 -> 8) free nothing more.
    delete(&app, &a).await;
    let (_sim, provisioner) = app.simulated();
    app.settle(&provisioner, &a).await;
    app.get(&format!("/api/virtual-machines/{a}"), OWNER)
        .await
        .expect_error(404, "VM_NOT_FOUND");
    assert_eq!(
        app.repo.usage(team()).await.unwrap(),
        Some(Usage {
            active_vms: 1,
            vcpus: 1
        })
    );

    app.create(OWNER, &["c"]).await.expect(201);
    app.create(OWNER, &["d"])
        .await
        .expect_error(409, "QUOTA_EXCEEDED");
    assert_eq!(app.repo.usage(team()).await.unwrap().unwrap().active_vms, 2);
}

#[tokio::test]
async fn a_multi_vm_create_counts_every_vm_and_writes_nothing_when_refused() {
    let app = TestApp::spawn().await;
    set_team_quotas(&app, vms(3)).await;
    app.create(OWNER, &["one"]).await.expect(201);
    let before = app.dump().await;

    // Three more do not fit next to the one (the transaction's condition refuses them).
    let r = app
        .create(OWNER, &["two", "three", "four"])
        .await
        .expect_error(409, "QUOTA_EXCEEDED");
    assert!(
        r.json["message"]
            .as_str()
            .unwrap()
            .contains("at most 3 active VMs; it has 1 and asked for 3 more"),
        "{}",
        r.json
    );
    assert_eq!(app.dump().await, before, "nothing was written");

    // More than the whole quota is refused before the database is asked.
    set_team_quotas(&app, vms(2)).await;
    let before = app.dump().await;
    let r = app
        .create(OWNER, &["two", "three", "four"])
        .await
        .expect_error(409, "QUOTA_EXCEEDED");
    assert!(
        r.json["message"]
            .as_str()
            .unwrap()
            .contains("at most 2 active VMs; the request asks for 3"),
        "{}",
        r.json
    );
    assert_eq!(app.dump().await, before, "nothing was written");

    // Two fit exactly at the limit of 3.
    set_team_quotas(&app, vms(3)).await;
    let r = app.create(OWNER, &["two", "three"]).await.expect(201);
    assert_eq!(r.json.as_array().unwrap().len(), 2);
    assert_eq!(app.repo.usage(team()).await.unwrap().unwrap().active_vms, 3);
}

#[tokio::test]
async fn the_configured_default_applies_to_teams_without_their_own() {
    let app = TestApp::spawn_opts(Options {
        quotas: QuotaLimits {
            max_active_vms: 2,
            max_vcpus: 100,
        },
        ..Options::default()
    })
    .await;
    app.create(OWNER, &["d-1", "d-2"]).await.expect(201);
    let r = app
        .create(OWNER, &["d-3"])
        .await
        .expect_error(409, "QUOTA_EXCEEDED");
    assert!(
        r.json["message"]
            .as_str()
            .unwrap()
            .contains("at most 2 active VMs; it has 2 and asked for 1 more"),
        "{}",
        r.json
    );
    // Another team has its own usage.
    let mut body = spec_create_request();
    body["team"] = json!(OTHER_TEAM);
    body["project"] = json!(OTHER_PROJECT);
    body["hostNames"] = json!(["d-1"]);
    body["quantity"] = json!(1);
    app.call(
        Method::POST,
        "/api/virtual-machines",
        Some(OTHER_OWNER),
        Some(&body),
    )
    .await
    .expect(201);
    // A team's own limit overrides the default.
    set_team_quotas(&app, vms(3)).await;
    app.create(OWNER, &["d-3"]).await.expect(201);
}
