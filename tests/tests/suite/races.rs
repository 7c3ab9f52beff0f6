//! Races: many concurrent requests on one VM over HTTP against DynamoDB Local.
//!
//! The API answers a conflict with 409 (`ILLEGAL_TRANSITION` when the status forbids the action,
//! `CONCURRENT_MODIFICATION` when the conditional write lost three times in a row); it does not
//! honour `If-Match` yet, so there is no 412. Every write of a VM is conditional on its
//! `version` and sets `version + 1` (`Service::act`, `Service::update`, the provisioner), so
//! "no lost update" is: the final version is the initial one plus the number of accepted writes.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use vmapi_core::cloud::{CloudDriver, CloudState, CloudTarget};
use vmapi_core::Drivers;
use vmapi_drivers::SimulatedDriver;
use vmapi_models::{CloudKind, VmId, VmRecord, VmStatus};
use vmapi_tests::*;

const CONCURRENCY: usize = 50;

/// A running VM of the demo project, created through the API and provisioned.
async fn running_vm(app: &TestApp, name: &str) -> VmId {
    let (_sim, provisioner) = app.simulated();
    let created = app.create(OWNER, &[name]).await.expect(201).json;
    let id = created[0]["_id"].as_str().unwrap().to_string();
    app.settle(&provisioner, &id).await;
    let id = VmId::parse(&id).unwrap();
    let vm = record(app, id).await;
    assert_eq!(vm.status, VmStatus::Running);
    assert!(vm.pending_op.is_none());
    id
}

async fn record(app: &TestApp, id: VmId) -> VmRecord {
    use vmapi_core::Repository;
    app.repo.get_vm(id).await.unwrap().expect("the VM exists")
}

/// The request of the `i`-th racer, by kind.
fn request(kind: &str, id: VmId, i: usize) -> (Method, String, Option<Value>) {
    let vm = format!("/api/virtual-machines/{id}");
    match kind {
        "start" => (Method::PUT, format!("{vm}/start"), None),
        "stop" => (Method::PUT, format!("{vm}/stop"), None),
        "delete" => (Method::DELETE, vm, None),
        "patch" => (Method::PATCH, vm, Some(json!({"tags": [format!("w{i}")]}))),
        other => unreachable!("{other}"),
    }
}

/// Fires every request at once; returns (kind, index, reply) in index order.
async fn storm(
    app: &Arc<TestApp>,
    id: VmId,
    kinds: &[&'static str],
) -> Vec<(&'static str, usize, Reply)> {
    let barrier = Arc::new(tokio::sync::Barrier::new(kinds.len()));
    let mut set = tokio::task::JoinSet::new();
    for (i, kind) in kinds.iter().copied().enumerate() {
        let app = app.clone();
        let barrier = barrier.clone();
        set.spawn(async move {
            let (method, path, body) = request(kind, id, i);
            barrier.wait().await;
            let r = app.call(method, &path, Some(OWNER), body.as_ref()).await;
            (kind, i, r)
        });
    }
    let mut out = Vec::new();
    while let Some(r) = set.join_next().await {
        out.push(r.expect("racer"));
    }
    out.sort_by_key(|(_, i, _)| *i);
    out
}

/// Every answer is 200, or 409 with one of the two conflict codes; returns the problems.
fn only_200_or_409(replies: &[(&str, usize, Reply)]) -> Vec<String> {
    replies
        .iter()
        .filter_map(|(kind, i, r)| match r.status.as_u16() {
            200 => None,
            409 if ["ILLEGAL_TRANSITION", "CONCURRENT_MODIFICATION"]
                .contains(&r.json["code"].as_str().unwrap_or("")) =>
            {
                None
            }
            s => Some(format!("{kind} #{i}: {s} {}", r.json)),
        })
        .collect()
}

fn tally(replies: &[(&str, usize, Reply)]) -> String {
    let mut counts = std::collections::BTreeMap::new();
    for (kind, _, r) in replies {
        let code = r.json["code"].as_str().unwrap_or("ok").to_string();
        *counts
            .entry(format!("{kind} {} {code}", r.status.as_u16()))
            .or_insert(0) += 1;
    }
    format!("{counts:?}")
}

/// Statuses answered with 200 by the start/stop/delete racers.
fn accepted_action_statuses(replies: &[(&str, usize, Reply)]) -> BTreeSet<u64> {
    replies
        .iter()
        .filter(|(kind, _, r)| *kind != "patch" && r.status == 200)
        .map(|(_, _, r)| {
            r.json["status"]
                .as_u64()
                .expect("an action answer has a status")
        })
        .collect()
}

/// Checks the name claim of a VM after the race: released exactly when it is deleting.
async fn check_name(app: &TestApp, name: &str, deleting: bool) {
    let listed = app
        .get(
            &format!("/api/teams/{TEAM}/projects/{PROJECT}/virtual-machines"),
            OWNER,
        )
        .await
        .expect(200)
        .json;
    let in_list = listed.as_array().unwrap().iter().any(|v| v["name"] == name);
    assert_eq!(in_list, !deleting, "listed iff not deleting: {listed}");
    let r = app.create(OWNER, &[name]).await;
    if deleting {
        r.expect(201);
    } else {
        r.expect_error(409, "HOST_NAME_TAKEN");
    }
}

/// 50 concurrent start/stop/delete requests on one running VM (no provisioner running, so the
/// only writes are the users'). From running, a stop can write once (3 → 4) and a delete once
/// (3 or 4 → 5); nothing leads back without the provisioner, and a start never writes (no-op
/// while running, 409 while stopping or deleting). Every accepted write answers 200 with the
/// status it wrote and a no-op answers 200 with a status some write made, so the distinct
/// statuses in the 200 answers (other than the initial 3) are exactly the writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_start_stop_delete_end_consistent() {
    let app = Arc::new(TestApp::spawn().await);
    let id = running_vm(&app, "race-actions").await;
    let initial = record(&app, id).await;

    let kinds: Vec<&'static str> = (0..CONCURRENCY)
        .map(|i| ["stop", "start", "delete", "stop", "start"][i % 5])
        .collect();
    let replies = storm(&app, id, &kinds).await;
    eprintln!("start/stop/delete race: {}", tally(&replies));
    let problems = only_200_or_409(&replies);
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    let statuses = accepted_action_statuses(&replies);
    assert!(
        statuses.is_subset(&BTreeSet::from([3, 4, 5])),
        "answered statuses {statuses:?}"
    );
    let writes: BTreeSet<u64> = statuses.iter().copied().filter(|s| *s != 3).collect();
    let last = record(&app, id).await;
    assert_eq!(
        last.version,
        initial.version + writes.len() as u64,
        "one version per accepted write ({writes:?}); final {last:?}"
    );
    let expected = if writes.contains(&5) {
        VmStatus::Deleting
    } else if writes.contains(&4) {
        VmStatus::Stopping
    } else {
        VmStatus::Running
    };
    assert_eq!(last.status, expected, "{last:?}");
    let pending = last.pending_op.as_ref().map(|p| p.op.name());
    match expected {
        VmStatus::Deleting => assert_eq!(pending, Some("delete")),
        VmStatus::Stopping => assert_eq!(pending, Some("stop")),
        _ => assert_eq!(pending, None),
    }
    // A delete was sent 10 times and is legal from running and stopping: one must have won.
    assert!(
        writes.contains(&5),
        "no delete was accepted: {}",
        tally(&replies)
    );
    // Every stop answered 200 saw the VM running or stopping; every start answered 200 saw it
    // running (a start is a no-op only while running or starting).
    for (kind, i, r) in &replies {
        if r.status == 200 {
            let s = r.json["status"].as_u64().unwrap();
            let ok = match *kind {
                "start" => s == 3,
                "stop" => s == 4,
                "delete" => s == 5,
                _ => true,
            };
            assert!(ok, "{kind} #{i} answered {}", r.json);
        }
    }
    // GET agrees with the record, and the name is free exactly when the VM is deleting.
    let got = app
        .get(&format!("/api/virtual-machines/{id}"), OWNER)
        .await
        .expect(200)
        .json;
    assert_eq!(got["status"], expected.code());
    check_name(&app, "race-actions", expected == VmStatus::Deleting).await;
}

/// 50 concurrent requests that all write when accepted: 40 PATCHes of distinct tags, and
/// stops and starts. Each accepted PATCH is exactly one write (an update always writes), the
/// actions write at most once (3 → 4) as above; so the final version is the initial one plus the
/// accepted PATCHes plus that, and the final tags are those of an accepted PATCH.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_patches_and_actions_lose_no_update() {
    let app = Arc::new(TestApp::spawn().await);
    let id = running_vm(&app, "race-patches").await;
    let initial = record(&app, id).await;

    let kinds: Vec<&'static str> = (0..CONCURRENCY)
        .map(|i| match i % 10 {
            3 => "stop",
            7 => "start",
            _ => "patch",
        })
        .collect();
    let replies = storm(&app, id, &kinds).await;
    eprintln!("PATCH race: {}", tally(&replies));
    let problems = only_200_or_409(&replies);
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    let accepted_patches: Vec<Value> = replies
        .iter()
        .filter(|(kind, _, r)| *kind == "patch" && r.status == 200)
        .map(|(_, i, _)| json!([format!("w{i}")]))
        .collect();
    let refused_patches: Vec<Value> = replies
        .iter()
        .filter(|(kind, _, r)| *kind == "patch" && r.status != 200)
        .map(|(_, i, _)| json!([format!("w{i}")]))
        .collect();
    assert!(!accepted_patches.is_empty(), "{}", tally(&replies));
    let statuses = accepted_action_statuses(&replies);
    assert!(statuses.is_subset(&BTreeSet::from([3, 4])), "{statuses:?}");
    let action_writes = statuses.iter().filter(|s| **s != 3).count() as u64;

    let last = record(&app, id).await;
    assert_eq!(
        last.version,
        initial.version + accepted_patches.len() as u64 + action_writes,
        "{} accepted PATCHes and {action_writes} action writes; final {last:?}",
        accepted_patches.len()
    );
    let tags = serde_json::to_value(&last.tags).unwrap();
    assert!(
        accepted_patches.contains(&tags),
        "final tags {tags} are an accepted PATCH's"
    );
    assert!(
        !refused_patches.contains(&tags),
        "a refused PATCH's tags were stored"
    );
    let expected = if action_writes == 1 {
        VmStatus::Stopping
    } else {
        VmStatus::Running
    };
    assert_eq!(last.status, expected);
    // The name and every other field are untouched.
    assert_eq!(last.name, initial.name);
    assert_eq!(last.ip_configurations, initial.ip_configurations);
    assert_eq!(last.login, initial.login);
    check_name(&app, "race-patches", false).await;
}

/// 50 start and stop requests in waves while the provisioner (on the table's stream, simulated
/// cloud with a delay) moves the VM: every answer 200 or 409, and once the requests stop the VM
/// settles with nothing pending, in the state the cloud is in.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn actions_racing_the_provisioner_settle_where_the_cloud_is() {
    let app = Arc::new(TestApp::spawn().await);
    let sim = Arc::new(SimulatedDriver::new(Duration::from_millis(150)));
    let drivers = Drivers::new()
        .with(CloudKind::Kraud, sim.clone())
        .with(CloudKind::Azure, sim.clone())
        .with(CloudKind::Aws, sim.clone());
    let _stream = app.stream_provisioner(app.provisioner(drivers)).await;
    let created = app.create(OWNER, &["race-cloud"]).await.expect(201).json;
    let id = VmId::parse(created[0]["_id"].as_str().unwrap()).unwrap();
    let r = app
        .wait_for(&id.to_string(), OWNER, 30, |r| r.json["status"] == 3)
        .await;
    assert_eq!(r.json["status"], 3, "provisioned: {}", r.json);

    let mut replies = Vec::new();
    for wave in 0..5 {
        let kinds: Vec<&'static str> = (0..CONCURRENCY / 5)
            .map(|i| if (i + wave) % 2 == 0 { "stop" } else { "start" })
            .collect();
        replies.extend(storm(&app, id, &kinds).await);
        tokio::time::sleep(Duration::from_millis(120)).await;
    }
    assert_eq!(replies.len(), CONCURRENCY);
    eprintln!("provisioner race: {}", tally(&replies));
    let problems = only_200_or_409(&replies);
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    // Settles: nothing pending, running or stopped, as the cloud.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let last = loop {
        let vm = record(&app, id).await;
        if vm.pending_op.is_none() || std::time::Instant::now() > deadline {
            break vm;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(last.pending_op.is_none(), "never settled: {last:?}");
    assert!(
        matches!(last.status, VmStatus::Running | VmStatus::Stopped),
        "{last:?}"
    );
    let cloud = sim
        .get(&CloudTarget {
            vm_id: id,
            region: last.region.datacenter.name.clone(),
            provider_id: last.cloud.as_ref().map(|c| c.id.clone()),
        })
        .await
        .unwrap()
        .expect("the VM exists in the cloud");
    let want = if last.status == VmStatus::Running {
        CloudState::Running
    } else {
        CloudState::Stopped
    };
    assert_eq!(cloud.state, want, "record {last:?}");
    assert!(last.version > 1);
    // The API shows the same, and public addresses exactly when running.
    let got = app
        .get(&format!("/api/virtual-machines/{id}"), OWNER)
        .await
        .expect(200)
        .json;
    assert_eq!(got["status"], last.status.code());
    let public = got["ipConfigurations"]
        .as_array()
        .unwrap()
        .iter()
        .any(|ip| ip["type"] == "public");
    assert_eq!(public, last.status == VmStatus::Running, "{got}");
}
