//! A team's estimated charges for the current month, from the billing state on its VM records
//! (docs/costs.md).

use vmapi_models::{Billing, Money, TeamCosts, TeamId, UserId, VmCost, VmRecord, VmStatus};

use super::base::Service;
use crate::authz::{authorize, Need};
use crate::error::{Error, NotFoundKind, Result};
use crate::ports::{Lookup, TeamVms};

impl Service {
    /// The team's charges this month so far, for its members (others: 404). At most
    /// 2 + ⌈VMs/100⌉ round trips: the team (for authorization) together with its VM ids from
    /// the team index, then the records in one batch read (plus one catalog read, only for
    /// VMs made before billing existed whose prices are not cached).
    pub async fn team_costs(&self, caller: &UserId, team: TeamId) -> Result<TeamCosts> {
        let now = self.clock.now();
        let mut lookup = Lookup::default();
        lookup.teams.insert(team);
        let (found, ids) = futures_util::future::join(
            self.repo.lookup(&lookup),
            self.repo
                .team_vms(team, TeamVms::BilledSince(now.month_start())),
        )
        .await;
        authorize(found?.teams.get(&team), caller, Need::Read, || {
            Error::not_found(NotFoundKind::Team, team)
        })?;
        let ids: Vec<_> = ids?.into_iter().map(|r| r.id).collect();
        let vms: Vec<VmRecord> = self
            .repo
            .get_vms_with(&ids, &Lookup::default())
            .await?
            .0
            .into_iter()
            .filter(|vm| vm.team == team)
            .collect();
        // VMs made before billing existed: their price from the catalog, running counted from
        // their last change (docs/costs.md).
        let mut legacy = Lookup::default();
        for vm in vms.iter().filter(|vm| vm.billing.is_none()) {
            legacy.prices.insert(vm.price);
        }
        let prices = if legacy.is_empty() {
            Default::default()
        } else {
            self.repo.lookup(&legacy).await?.prices
        };
        let mut costs: Vec<VmCost> = vms
            .iter()
            .filter_map(|vm| {
                let billing = match &vm.billing {
                    Some(b) => b.clone(),
                    None => {
                        let mut b = Billing::new(prices.get(&vm.price)?, vm.updated_at);
                        if vm.status == VmStatus::Running {
                            b.running_since = Some(vm.updated_at);
                        }
                        b
                    }
                };
                let cost = billing.cost_at(now);
                if vm.status == VmStatus::Deleted && cost == Money::default() {
                    return None;
                }
                Some(VmCost {
                    id: vm.id,
                    status: vm.status,
                    name: vm.name.clone(),
                    price: vm.price,
                    cost,
                    price_per_hour: billing.price_per_hour,
                    currency_code: billing.currency_code,
                })
            })
            .collect();
        costs.sort_by(|a, b| b.cost.cmp(&a.cost).then(a.id.cmp(&b.id)));
        Ok(TeamCosts::new(costs, now))
    }
}
