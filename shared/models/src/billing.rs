//! What a VM's charge for the current calendar month is computed from (docs/costs.md): kept on
//! the VM record and brought up to date at each status change, so a cost estimate reads the
//! record alone, whatever the VM's history.

use std::collections::BTreeMap;

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

use crate::{HostName, Money, Price, PriceId, Timestamp, VmId, VmStatus};

/// A VM's billing state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Billing {
    /// The hourly price the VM is billed at (its price's, taken at create).
    pub price_per_hour: Money,
    /// ISO 4217 currency of `price_per_hour`.
    pub currency_code: String,
    /// The UTC calendar month (`YYYY-MM`) `price_seconds` belongs to.
    pub month: String,
    /// The billed seconds of the intervals closed in `month`, each times the hourly price it
    /// ran at (exact; divided by 3600 only when a cost is asked).
    pub price_seconds: Money,
    /// When the VM last became running, while it is billed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running_since: Option<Timestamp>,
}

impl Billing {
    /// The state of a new VM billed at `price`, created at `at` (nothing billed yet).
    pub fn new(price: &Price, at: Timestamp) -> Self {
        Billing {
            price_per_hour: price.price_per_hour,
            currency_code: price.currency_code.clone(),
            month: at.month(),
            price_seconds: Money::default(),
            running_since: None,
        }
    }

    /// Brings the state up to a status change at `at`: becoming running opens the billed
    /// interval; becoming stopped, deleted or failed closes it.
    pub fn status_changed(&mut self, to: VmStatus, at: Timestamp) {
        match to {
            VmStatus::Running if self.running_since.is_none() => {
                self.running_since = Some(at);
            }
            VmStatus::Stopped | VmStatus::Deleted | VmStatus::Failed => {
                if let Some(since) = self.running_since.take() {
                    if self.month != at.month() {
                        self.month = at.month();
                        self.price_seconds = Money::default();
                    }
                    let seconds = Self::billed_seconds(since, at);
                    self.price_seconds = Money(
                        self.price_seconds.0 + self.price_per_hour.0 * Decimal::from(seconds),
                    );
                }
            }
            _ => {}
        }
    }

    /// Bills at `per_hour` from `at` on: an open stretch is closed at the old price and
    /// reopened at the new one (a resize).
    pub fn reprice(&mut self, per_hour: Money, currency_code: &str, at: Timestamp) {
        let running = self.running_since.is_some();
        if running {
            self.status_changed(VmStatus::Stopped, at);
        }
        if self.currency_code != currency_code {
            // Amounts of two currencies do not add up: the month so far is kept in the old
            // one only until the month ends (a catalog change of currency is not expected).
            self.price_seconds = Money::default();
            self.currency_code = currency_code.to_string();
        }
        self.price_per_hour = per_hour;
        if running {
            self.status_changed(VmStatus::Running, at);
        }
    }

    /// The charge for `now`'s calendar month up to `now`, rounded to cents (half away from
    /// zero) once, at the end.
    pub fn cost_at(&self, now: Timestamp) -> Money {
        let closed = if self.month == now.month() {
            self.price_seconds.0
        } else {
            Decimal::ZERO
        };
        let open = self.running_since.map_or(Decimal::ZERO, |since| {
            self.price_per_hour.0 * Decimal::from(Self::billed_seconds(since, now))
        });
        Money(
            ((closed + open) / Decimal::from(3600))
                .round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
                .normalize(),
        )
    }

    /// The whole seconds of `[since, until)` that fall in `until`'s calendar month.
    fn billed_seconds(since: Timestamp, until: Timestamp) -> u64 {
        until.whole_seconds_since(since.max(until.month_start()))
    }
}

/// One VM's estimated charge in a team's cost estimate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct VmCost {
    /// The VM.
    #[serde(rename = "_id")]
    pub id: VmId,
    /// Its status now.
    pub status: VmStatus,
    /// Its host name.
    pub name: HostName,
    /// Its price's id (as in an unpopulated VM).
    pub price: PriceId,
    /// The charge this month so far, rounded to cents.
    pub cost: Money,
    /// The hourly price it is billed at.
    pub price_per_hour: Money,
    /// ISO 4217 currency of `cost` and `pricePerHour`.
    pub currency_code: String,
}

/// A team's estimated charges for the current calendar month (UTC), the platform's shape.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct TeamCosts {
    /// The sum of `vms[].cost` when they share one currency (0 without VMs); `null` when
    /// they do not (see `totals`).
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub total: Option<Money>,
    /// The sum per currency.
    #[cfg_attr(feature = "openapi", schema(value_type = std::collections::BTreeMap<String, f64>))]
    pub totals: BTreeMap<String, Money>,
    /// The calendar month (`YYYY-MM`, UTC) the estimate is for.
    pub month: String,
    /// The instant the estimate was computed at.
    pub as_of: Timestamp,
    /// The team's VMs billed this month: every VM not deleted, and those deleted this month.
    pub vms: Vec<VmCost>,
    /// Apps (none: this service runs VMs only).
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Object>))]
    pub apps: Vec<serde_json::Value>,
    /// Databases (none).
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Object>))]
    pub dbs: Vec<serde_json::Value>,
    /// Kubernetes clusters (none).
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Object>))]
    pub k8s: Vec<serde_json::Value>,
}

impl TeamCosts {
    /// The estimate of `vms` for `now`'s month: `total` only when one currency (or none).
    pub fn new(vms: Vec<VmCost>, now: Timestamp) -> Self {
        let mut totals: BTreeMap<String, Money> = BTreeMap::new();
        for vm in &vms {
            let sum = totals.entry(vm.currency_code.clone()).or_default();
            *sum = Money((sum.0 + vm.cost.0).normalize());
        }
        let total = match totals.len() {
            0 => Some(Money::default()),
            1 => totals.values().next().copied(),
            _ => None,
        };
        TeamCosts {
            total,
            totals,
            month: now.month(),
            as_of: now,
            vms,
            apps: Vec::new(),
            dbs: Vec::new(),
            k8s: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        Timestamp::parse(s).unwrap()
    }

    fn billing(per_hour: &str, created: &str) -> Billing {
        Billing {
            price_per_hour: Money::parse(per_hour).unwrap(),
            currency_code: "EUR".into(),
            month: at(created).month(),
            price_seconds: Money::default(),
            running_since: None,
        }
    }

    #[test]
    fn total_is_null_with_two_currencies() {
        let now = at("2026-12-03T00:00:00Z");
        let vm = |cost: &str, currency: &str| VmCost {
            id: VmId::new(),
            status: VmStatus::Running,
            name: HostName::parse("a").unwrap(),
            price: PriceId::parse("6453d2e5cd1ca4a4cc0d0a3f").unwrap(),
            cost: Money::parse(cost).unwrap(),
            price_per_hour: Money::parse("0.04").unwrap(),
            currency_code: currency.into(),
        };
        let one = TeamCosts::new(vec![vm("0.4", "EUR"), vm("0.25", "EUR")], now);
        assert_eq!(one.total.unwrap().to_string(), "0.65");
        let two = TeamCosts::new(vec![vm("0.4", "EUR"), vm("1", "USD")], now);
        assert_eq!(two.total, None);
        assert_eq!(two.totals["USD"].to_string(), "1");
        assert_eq!(TeamCosts::new(vec![], now).total, Some(Money::default()));
    }

    #[test]
    fn ten_hours_running_at_four_cents_costs_forty_cents() {
        let mut b = billing("0.04", "2026-12-03T08:00:00Z");
        b.status_changed(VmStatus::Running, at("2026-12-03T08:00:00Z"));
        assert_eq!(b.cost_at(at("2026-12-03T18:00:00Z")).to_string(), "0.4");
        b.status_changed(VmStatus::Stopped, at("2026-12-03T18:00:00Z"));
        assert_eq!(b.cost_at(at("2026-12-20T00:00:00Z")).to_string(), "0.4");
    }

    #[test]
    fn a_stopped_vm_costs_nothing_while_stopped_and_restarts_add_up() {
        let mut b = billing("0.04", "2026-12-01T00:00:00Z");
        b.status_changed(VmStatus::Running, at("2026-12-01T00:00:00Z"));
        b.status_changed(VmStatus::Stopping, at("2026-12-01T05:00:00Z"));
        b.status_changed(VmStatus::Stopped, at("2026-12-01T05:00:00Z"));
        assert_eq!(b.cost_at(at("2026-12-10T00:00:00Z")).to_string(), "0.2");
        b.status_changed(VmStatus::Starting, at("2026-12-10T00:00:00Z"));
        b.status_changed(VmStatus::Running, at("2026-12-10T00:00:10Z"));
        // A second "running" write (e.g. after a reboot) does not restart the interval.
        b.status_changed(VmStatus::Running, at("2026-12-10T03:00:00Z"));
        assert_eq!(b.cost_at(at("2026-12-10T05:00:10Z")).to_string(), "0.4");
    }

    #[test]
    fn a_vm_deleted_mid_month_keeps_its_cost_and_a_new_month_starts_at_zero() {
        let mut b = billing("0.04", "2026-11-30T20:00:00Z");
        b.status_changed(VmStatus::Running, at("2026-11-30T20:00:00Z"));
        // Running across the month boundary: December counts from midnight.
        assert_eq!(b.cost_at(at("2026-12-01T00:00:00Z")).to_string(), "0");
        assert_eq!(b.cost_at(at("2026-12-01T10:00:00Z")).to_string(), "0.4");
        b.status_changed(VmStatus::Deleting, at("2026-12-01T10:00:00Z"));
        b.status_changed(VmStatus::Deleted, at("2026-12-01T10:00:00Z"));
        assert_eq!(b.cost_at(at("2026-12-31T23:59:59Z")).to_string(), "0.4");
        assert_eq!(b.cost_at(at("2027-01-01T00:00:00Z")).to_string(), "0");
    }

    #[test]
    fn a_resize_bills_each_stretch_at_its_own_price() {
        let mut b = billing("0.04", "2026-12-01T00:00:00Z");
        b.status_changed(VmStatus::Running, at("2026-12-01T00:00:00Z"));
        b.reprice(
            Money::parse("0.08").unwrap(),
            "EUR",
            at("2026-12-01T10:00:00Z"),
        );
        // 10 h at 0.04 and 5 h at 0.08.
        assert_eq!(b.cost_at(at("2026-12-01T15:00:00Z")).to_string(), "0.8");
        // A stopped VM changes price without a stretch.
        b.status_changed(VmStatus::Stopped, at("2026-12-01T15:00:00Z"));
        b.reprice(
            Money::parse("0.02").unwrap(),
            "EUR",
            at("2026-12-02T00:00:00Z"),
        );
        assert_eq!(b.running_since, None);
        assert_eq!(b.cost_at(at("2026-12-03T00:00:00Z")).to_string(), "0.8");
    }

    #[test]
    fn seconds_are_billed_whole_and_the_sum_is_rounded_once() {
        // 360.9 s at 0.05/h: 360 whole seconds, 0.005 exactly, rounded half away to 0.01.
        let mut b = billing("0.05", "2026-12-01T00:00:00Z");
        b.status_changed(VmStatus::Running, at("2026-12-01T00:00:00.000Z"));
        b.status_changed(VmStatus::Stopped, at("2026-12-01T00:06:00.900Z"));
        assert_eq!(b.price_seconds, Money::parse("18").unwrap());
        assert_eq!(b.cost_at(at("2026-12-02T00:00:00Z")).to_string(), "0.01");
        // Two intervals of 0.00417 each (300 s) round once: 0.00833 → 0.01, not 0.00 + 0.00.
        let mut b = billing("0.05", "2026-12-01T00:00:00Z");
        for (from, to) in [
            ("2026-12-01T01:00:00Z", "2026-12-01T01:05:00Z"),
            ("2026-12-01T02:00:00Z", "2026-12-01T02:05:00Z"),
        ] {
            b.status_changed(VmStatus::Running, at(from));
            b.status_changed(VmStatus::Stopped, at(to));
        }
        assert_eq!(b.cost_at(at("2026-12-02T00:00:00Z")).to_string(), "0.01");
    }
}
