//! A team's costs on DynamoDB Local: which VMs the team index yields for the month, what each
//! entry carries, who may read them. (The billing rule itself, over a clock the test sets, is
//! tested in shared/core/tests/service/costs.rs and shared/models/src/billing.rs.)

use std::collections::BTreeSet;

use serde_json::Value;
use vmapi_models::{Billing, Money, TeamId, Timestamp, VmStatus};
use vmapi_tests::*;

/// A seeded VM whose billing holds `price_seconds` (hourly price × seconds) closed in the
/// month of `month_of`.
fn billed(
    name: &str,
    status: VmStatus,
    month_of: Timestamp,
    price_seconds: &str,
) -> vmapi_models::VmRecord {
    let mut vm = demo_vm(name, status);
    vm.updated_at = month_of;
    vm.billing = Some(Billing {
        price_per_hour: Money::parse("0.04").unwrap(),
        currency_code: "EUR".into(),
        month: month_of.month(),
        price_seconds: Money::parse(price_seconds).unwrap(),
        running_since: None,
    });
    vm
}

fn ids(costs: &Value) -> BTreeSet<String> {
    costs["vms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["_id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn the_month_holds_live_vms_and_those_deleted_this_month() {
    let app = TestApp::spawn().await;
    let now = Timestamp::now();
    let last_month =
        Timestamp::from_unix_millis(now.month_start().unix_millis() - 86_400_000).unwrap();
    // 10 h at 0.04/h = 0.40; 5 h = 0.20.
    let stopped = billed("stopped", VmStatus::Stopped, now, "1440");
    let deleted_now = billed("deleted-now", VmStatus::Deleted, now, "720");
    let deleted_before = billed("deleted-before", VmStatus::Deleted, last_month, "1440");
    let mut foreign = billed("foreign", VmStatus::Stopped, now, "1440");
    foreign.team = TeamId::parse(OTHER_TEAM).unwrap();
    for vm in [&stopped, &deleted_now, &deleted_before, &foreign] {
        app.seed_vm(vm).await;
    }
    let made = app.create(OWNER, &["made"]).await.expect(201).json[0]["_id"]
        .as_str()
        .unwrap()
        .to_string();

    let before = app.dump().await;
    let costs = app
        .get(&format!("/api/teams/{TEAM}/costs"), OWNER)
        .await
        .expect(200)
        .json;
    assert_eq!(app.dump().await, before, "a read wrote");
    assert_eq!(
        ids(&costs),
        BTreeSet::from([
            stopped.id.to_string(),
            deleted_now.id.to_string(),
            made.clone()
        ])
    );
    assert_eq!(costs["total"], 0.6);
    assert_eq!(costs["totals"]["EUR"], 0.6);
    assert_eq!(costs["month"], now.month());
    assert_eq!(costs["apps"], serde_json::json!([]));
    assert_eq!(costs["k8s"], serde_json::json!([]));
    let entry = costs["vms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["_id"] == made.as_str())
        .unwrap();
    // A new VM is billed from when it runs: nothing yet; its price as an id.
    assert_eq!(entry["cost"], 0);
    assert_eq!(entry["status"], 0);
    assert_eq!(entry["name"], "made");
    assert_eq!(entry["price"], spec_create_request()["price"]);
    assert_eq!(entry["pricePerHour"], 0.04);
    assert_eq!(entry["currencyCode"], "EUR");
    // Highest cost first.
    assert_eq!(costs["vms"][0]["_id"], stopped.id.to_string());
}

#[tokio::test]
async fn only_members_read_a_teams_costs_and_bad_ids_are_400s() {
    let app = TestApp::spawn().await;
    app.get(&format!("/api/teams/{TEAM}/costs"), OTHER_OWNER)
        .await
        .expect_error(404, "TEAM_NOT_FOUND");
    app.get(&format!("/api/teams/{OTHER_TEAM}/costs"), OWNER)
        .await
        .expect_error(404, "TEAM_NOT_FOUND");
    let r = app
        .get("/api/teams/not-an-id/costs", OWNER)
        .await
        .expect_error(400, "INVALID_PARAMETER");
    assert!(r.json.to_string().contains("team"), "{}", r.json);
}
