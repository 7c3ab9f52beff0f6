//! Resize: another size (and price) for a VM, checked against its provider, location, image,
//! confidentiality and its team's vCPU quota; the cloud work is left to the provisioner.

use vmapi_models::{
    ActionResult, CloudKind, EventKind, OpKind, PendingOp, ResizeTarget, ResizeVmRequest, UserId,
    VmEvent, VmId, VmStatus,
};

use super::base::Service;
use super::writes::{concurrency_to_conflict, unreachable_conflict, IfMatch, WRITE_ATTEMPTS};
use crate::authz::{not_blocked, Need};
use crate::error::{ConflictCode, Error, Result};
use crate::ports::{NameChange, VcpuChange};
use crate::quota::Usage;

impl Service {
    /// Moves a running or stopped VM to `req`'s size and price, if `if_match` allows: the
    /// record keeps its size until the cloud confirms the new one (`resizeTo` and `pendingOp:
    /// resize` meanwhile), and a running VM runs again afterwards. Three round trips: the VM,
    /// its team with the sizes and the price, the write (which also adds a larger size's
    /// vCPUs to the team's quota usage, atomically).
    pub async fn resize_if(
        &self,
        caller: &UserId,
        id: VmId,
        req: &ResizeVmRequest,
        if_match: &IfMatch,
    ) -> Result<(ActionResult, u64)> {
        for attempt in 1..=WRITE_ATTEMPTS {
            let (vm, found) = self
                .load_for(caller, id, Need::Write, |vm, lookup| {
                    lookup.cloud_providers.insert(vm.cloud_provider);
                    lookup.sizes.insert(vm.size);
                    lookup.sizes.insert(req.size);
                    lookup.prices.insert(req.price);
                })
                .await?;
            let team = found.teams.get(&vm.team);
            if_match.check(id, vm.version)?;
            not_blocked(&vm, "a resize")?;
            if found
                .cloud_providers
                .get(&vm.cloud_provider)
                .and_then(CloudKind::of)
                .is_some_and(|k| !k.can_resize())
            {
                return Err(Error::UnsupportedByProvider(
                    "Kraud.Cloud cannot change a VM's size: a PVM's resources are set when it is launched; create a VM of the new size instead".into(),
                ));
            }
            if !matches!(vm.status, VmStatus::Running | VmStatus::Stopped)
                || vm.pending_op.is_some()
            {
                return Err(Error::conflict(
                    ConflictCode::IllegalTransition,
                    format!(
                        "cannot resize virtual machine {id} while it is {} (status {}){}; a running or stopped VM with nothing pending can be resized",
                        vm.status.name(),
                        vm.status.code(),
                        if vm.pending_op.is_some() { " with an operation pending" } else { "" }
                    ),
                ));
            }
            let location = &vm.region.datacenter.name;
            let size = found
                .sizes
                .get(&req.size)
                .filter(|s| s.provider == vm.provider && &s.location == location)
                .ok_or_else(|| {
                    Error::invalid_field(
                        "size",
                        format!(
                            "{} is not a size of the VM's provider {} at {location}",
                            req.size, vm.provider
                        ),
                    )
                })?;
            let price = found
                .prices
                .get(&req.price)
                .filter(|p| {
                    p.provider == vm.provider
                        && &p.location_name == location
                        && p.size_name == size.name
                        && p.image_name == vm.image.distribution
                })
                .ok_or_else(|| {
                    Error::invalid_field(
                        "price",
                        format!(
                            "{} is not the price of size {} for {} at {location}",
                            req.price, size.name, vm.image.distribution
                        ),
                    )
                })?;
            let old = found.sizes.get(&vm.size);
            if old.is_some_and(|o| o.confidential.is_some()) && size.confidential.is_none() {
                return Err(Error::invalid_field(
                    "size",
                    format!(
                        "the VM is confidential; {} is not a confidential size",
                        size.name
                    ),
                ));
            }
            if req.size == vm.size && req.price == vm.price {
                return Ok((ActionResult::new(id, vm.status), vm.version));
            }
            // While the resize runs, a counted VM counts the larger of its two sizes: a larger
            // size's extra vCPUs are taken now (and given back if the resize fails), a
            // smaller size frees vCPUs only when the cloud confirms it.
            let old_vcpus = vm.vcpus.or(old.map(|o| o.vcpus)).unwrap_or(0);
            let extra = size.vcpus.saturating_sub(old_vcpus);
            let reserve = vm.vcpus.is_some() && extra > 0;
            let names = if reserve {
                let limits = team.map_or(self.quotas, |t| self.quotas.for_team(t));
                let asked = Usage {
                    active_vms: 0,
                    vcpus: u64::from(extra),
                };
                let Some(room) = limits.room_before(asked) else {
                    return Err(limits.refusal(vm.team, None, asked));
                };
                NameChange {
                    vcpus: Some(VcpuChange {
                        delta: i64::from(extra),
                        room: Some(room),
                    }),
                    ..NameChange::default()
                }
            } else {
                NameChange::default()
            };
            let now = self.clock.now();
            let mut next = vm.clone();
            next.pending_op = Some(PendingOp::new(OpKind::Resize, now));
            next.resize_to = Some(ResizeTarget {
                size: size.id,
                size_name: size.name.clone(),
                vcpus: size.vcpus,
                price: price.id,
                price_per_hour: price.price_per_hour,
                currency_code: price.currency_code.clone(),
                from_vcpus: old_vcpus,
            });
            if reserve {
                next.vcpus = Some(size.vcpus);
            }
            next.status_reason = None;
            next.updated_at = now;
            next.version = vm.version + 1;
            let event = VmEvent::new(id, now, caller.to_string(), EventKind::Resize)
                .with_status(vm.status)
                .with_detail(format!(
                    "from {} to {}",
                    old.map_or(vm.size.to_string(), |o| o.name.clone()),
                    size.name
                ));
            match self
                .repo
                .replace_vm(&next, vm.version, &names, Some(&event))
                .await
            {
                Ok(()) => {
                    tracing::info!(vm = %id, size = %size.name, "virtual machine resize asked");
                    return Ok((ActionResult::resizing(id, vm.status), next.version));
                }
                Err(Error::VersionConflict) if if_match.is_conditional() => {
                    return Err(if_match.lost(id))
                }
                Err(Error::VersionConflict) if attempt < WRITE_ATTEMPTS => continue,
                Err(e) => return Err(concurrency_to_conflict(e)),
            }
        }
        unreachable_conflict()
    }
}
