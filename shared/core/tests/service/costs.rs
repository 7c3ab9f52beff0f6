//! A team's cost estimate over a clock the test sets: the billing rule of docs/costs.md.

use std::sync::Arc;

use vmapi_core::{Action, Error, NotFoundKind, Provisioner};
use vmapi_models::*;

use crate::cloud::InstantCloud;
use crate::fixtures::*;

struct Bench {
    clock: Arc<ManualClock>,
    svc: vmapi_core::Service,
    provisioner: Provisioner,
}

impl Bench {
    fn at(start: &str) -> Self {
        let clock = ManualClock::at(start);
        let (repo, store, svc) = setup_with_clock(CredentialScope::Team, clock.clone());
        let provisioner = provisioner_with(
            repo,
            clock.clone(),
            CloudKind::Kraud,
            Arc::new(InstantCloud::default()),
            store,
        );
        Bench {
            clock,
            svc,
            provisioner,
        }
    }

    async fn running(&self, name: &str) -> VmId {
        running(&self.svc, &self.provisioner, name).await
    }

    async fn act(&self, id: VmId, action: Action) -> VmStatus {
        self.svc.act(&user("owner"), id, action).await.unwrap();
        settled_status(&self.provisioner, id).await
    }

    async fn costs(&self, at: &str) -> TeamCosts {
        self.clock.set(at);
        self.svc
            .team_costs(&user("viewer"), TeamId::parse(TEAM).unwrap())
            .await
            .unwrap()
    }
}

fn cost_of(costs: &TeamCosts, id: VmId) -> Option<String> {
    costs
        .vms
        .iter()
        .find(|v| v.id == id)
        .map(|v| v.cost.to_string())
}

#[tokio::test]
async fn ten_hours_running_at_four_cents_an_hour_cost_forty_cents() {
    let b = Bench::at("2026-12-03T08:00:00Z");
    let vm = b.running("web-1").await;
    let costs = b.costs("2026-12-03T18:00:00Z").await;
    assert_eq!(cost_of(&costs, vm).as_deref(), Some("0.4"));
    assert_eq!(costs.total.unwrap().to_string(), "0.4");
    assert_eq!(costs.totals["EUR"].to_string(), "0.4");
    assert_eq!(costs.month, "2026-12");
    let entry = &costs.vms[0];
    assert_eq!(entry.price, PriceId::parse(PRICE).unwrap());
    assert_eq!(entry.price_per_hour.to_string(), "0.04");
    assert_eq!(entry.currency_code, "EUR");
    assert_eq!(entry.status, VmStatus::Running);
    assert!(costs.apps.is_empty() && costs.dbs.is_empty() && costs.k8s.is_empty());
}

#[tokio::test]
async fn a_stopped_vm_costs_nothing_while_stopped() {
    let b = Bench::at("2026-12-03T08:00:00Z");
    let vm = b.running("web-1").await;
    b.clock.set("2026-12-03T13:00:00Z");
    assert_eq!(b.act(vm, Action::Stop).await, VmStatus::Stopped);
    let costs = b.costs("2026-12-25T00:00:00Z").await;
    assert_eq!(cost_of(&costs, vm).as_deref(), Some("0.2"));
    // Started again: the second stretch adds to the first.
    assert_eq!(b.act(vm, Action::Start).await, VmStatus::Running);
    let costs = b.costs("2026-12-25T05:00:00Z").await;
    assert_eq!(cost_of(&costs, vm).as_deref(), Some("0.4"));
}

#[tokio::test]
async fn a_vm_deleted_mid_month_keeps_its_cost_in_that_month_and_a_new_month_starts_at_zero() {
    let b = Bench::at("2026-12-01T00:00:00Z");
    let gone = b.running("gone").await;
    let stays = b.running("stays").await;
    b.clock.set("2026-12-01T10:00:00Z");
    assert_eq!(b.act(gone, Action::Delete).await, VmStatus::Deleted);
    let costs = b.costs("2026-12-31T23:59:59Z").await;
    assert_eq!(cost_of(&costs, gone).as_deref(), Some("0.4"));
    assert_eq!(cost_of(&costs, stays).as_deref(), Some("29.76"));
    assert_eq!(costs.total.unwrap().to_string(), "30.16");
    // January: the running VM starts at zero, the deleted one is gone from the estimate.
    let costs = b.costs("2027-01-01T00:00:00Z").await;
    assert_eq!(cost_of(&costs, stays).as_deref(), Some("0"));
    assert_eq!(cost_of(&costs, gone), None);
    assert_eq!(costs.total.unwrap().to_string(), "0");
    let costs = b.costs("2027-01-02T00:00:00Z").await;
    assert_eq!(cost_of(&costs, stays).as_deref(), Some("0.96"));
}

#[tokio::test]
async fn only_members_see_a_teams_costs() {
    let b = Bench::at("2026-12-03T08:00:00Z");
    b.running("web-1").await;
    for outsider in ["stranger", "6548a41138406c14db33b700"] {
        let err = b
            .svc
            .team_costs(&user(outsider), TeamId::parse(TEAM).unwrap())
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::NotFound {
                    kind: NotFoundKind::Team,
                    ..
                }
            ),
            "{err:?}"
        );
    }
}
