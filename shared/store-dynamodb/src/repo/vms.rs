//! VMs: one by id, a project's list, and the conditional writes that create and change them.

use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, Put, ReturnConsumedCapacity, TransactWriteItem,
};
use vmapi_core::{ConflictCode, Error, NameChange, PageKey, Result, VmFilter, VmPage};
use vmapi_core::{QuotaLimits, Usage};
use vmapi_models::{ProjectId, VmEvent, VmId, VmRecord};

use super::base::{from_item, to_item, DynamoRepository, FILTERED_READ};
use super::transact::{condition_failed, Condition, TxFailure};
use super::usage::usage_of;
use crate::errors::{condition_refused, map_sdk};
use crate::keys::{
    gsi_start_key, key, name_key, parse_project_vms_sk, project_vms_pk, s, team_project_key,
    vm_item_keys, Kind,
};
use crate::table::{GSI1, GSI1_PK, GSI1_SK, PK};

pub(super) async fn get_vm(repo: &DynamoRepository, id: VmId) -> Result<Option<VmRecord>> {
    let out = repo
        .client
        .get_item()
        .table_name(&repo.table)
        .set_key(Some(key(Kind::Vm, &id.to_string())))
        .return_consumed_capacity(ReturnConsumedCapacity::Total)
        .send()
        .await
        .map_err(|e| map_sdk("GetItem", e))?;
    repo.count_capacity(out.consumed_capacity());
    let vm: Option<VmRecord> = out.item.map(from_item).transpose()?;
    // DynamoDB removes expired items late (and DynamoDB Local never): expired is absent.
    let now = vmapi_models::Timestamp::now().unix_millis() / 1000;
    Ok(vm.filter(|v| v.purge_after_epoch.is_none_or(|at| at > now)))
}

pub(super) async fn list_project_vms(
    repo: &DynamoRepository,
    project: ProjectId,
    limit: usize,
    after: Option<&PageKey>,
    filter: &VmFilter,
) -> Result<VmPage> {
    let limit = limit.max(1);
    // With a filter, read a larger stretch of the index in the same request, so pages are
    // rarely short; DynamoDB applies `Limit` before the filter.
    let read = if filter.is_empty() {
        limit + 1
    } else {
        (limit + 1).max(FILTERED_READ)
    };
    let mut query = repo
        .client
        .query()
        .table_name(&repo.table)
        .index_name(GSI1)
        .key_condition_expression(format!("{GSI1_PK} = :p"))
        .expression_attribute_values(":p", s(project_vms_pk(project)))
        .scan_index_forward(false)
        .limit(read.min(i32::MAX as usize) as i32)
        .set_exclusive_start_key(after.map(|k| gsi_start_key(project, k.created_at, k.id)));
    let mut clauses = Vec::new();
    if !filter.statuses.is_empty() {
        let names: Vec<String> = (0..filter.statuses.len())
            .map(|i| format!(":st{i}"))
            .collect();
        for (name, status) in names.iter().zip(&filter.statuses) {
            query = query
                .expression_attribute_values(name, AttributeValue::N(status.code().to_string()));
        }
        query = query.expression_attribute_names("#status", "status");
        clauses.push(format!("#status IN ({})", names.join(", ")));
    }
    if let Some(tag) = &filter.tag {
        query = query
            .expression_attribute_names("#tags", "tags")
            .expression_attribute_values(":tag", s(tag.as_str()));
        clauses.push("contains(#tags, :tag)".to_string());
    }
    if let Some(prefix) = &filter.name_prefix {
        query = query
            .expression_attribute_names("#name", "name")
            .expression_attribute_values(":prefix", s(prefix.as_str()));
        clauses.push("begins_with(#name, :prefix)".to_string());
    }
    if !clauses.is_empty() {
        query = query.filter_expression(clauses.join(" AND "));
    }
    let out = query.send().await.map_err(|e| map_sdk("Query", e))?;
    // Where the read stopped (the last item it evaluated, matching or not).
    let stopped_at = out
        .last_evaluated_key
        .as_ref()
        .and_then(|k| k.get(GSI1_SK)?.as_s().ok().cloned())
        .and_then(|sk| parse_project_vms_sk(&sk));
    let mut items: Vec<VmRecord> = out
        .items
        .unwrap_or_default()
        .into_iter()
        .map(from_item)
        .collect::<Result<_>>()?;
    let next = if items.len() > limit {
        items.truncate(limit);
        items.last().map(PageKey::of)
    } else if out.last_evaluated_key.is_some() {
        // More of the index is left: the next page starts after what was read, even if
        // the filter let fewer than `limit` VMs through.
        stopped_at.or_else(|| items.last().map(PageKey::of))
    } else {
        None
    };
    Ok(VmPage { items, next })
}

pub(super) async fn insert_vms(
    repo: &DynamoRepository,
    vms: &[VmRecord],
    events: &[VmEvent],
    limits: &QuotaLimits,
) -> Result<()> {
    let Some(team) = vms.first().map(|vm| vm.team) else {
        return Ok(());
    };
    let mut writes = Vec::with_capacity(vms.len() * 3 + 2);
    for vm in vms {
        writes.push(repo.put_vm_write(vm, Some(Condition::new_item()))?);
        writes.push(repo.put_claim_write(vm.project, vm));
    }
    // Right after the pairs: the team's quota usage grows by the new VMs, if it stays
    // within the limits (the condition's thresholds are the limits minus what is added).
    let add = Usage::of(vms);
    let usage_index = writes.len();
    let counted = !add.is_zero();
    if counted {
        let room = limits
            .room_before(add)
            .ok_or_else(|| limits.refusal(team, None, add))?;
        writes.push(repo.usage_write(team, add.active_vms as i64, add.vcpus as i64, Some(room)));
    }
    // The events and the team's note of the project come after the items above, whose
    // positions the cancellation reasons are read by. One note per team and project.
    for event in events {
        writes.push(repo.put_event_write(event)?);
    }
    let mut noted: Vec<(vmapi_models::TeamId, ProjectId)> = Vec::new();
    for vm in vms {
        if !noted.contains(&(vm.team, vm.project)) {
            noted.push((vm.team, vm.project));
            let mut item = team_project_key(vm.team, vm.project);
            item.insert("entity".into(), s("team-project"));
            item.insert("at".into(), s(vm.created_at.to_string()));
            writes.push(
                TransactWriteItem::builder()
                    .put(
                        Put::builder()
                            .table_name(&repo.table)
                            .set_item(Some(item))
                            .build()
                            .expect("put is complete"),
                    )
                    .build(),
            );
        }
    }
    // Each VM's default security rule gets its pointer (last, like the events).
    for vm in vms {
        writes.extend(
            vm.rules
                .iter()
                .map(|r| repo.put_rule_pointer_write(r.id, vm)),
        );
    }
    match repo.transact(writes).await {
        Ok(()) => Ok(()),
        Err(TxFailure::Other(e)) => Err(e),
        Err(TxFailure::Conditions(reasons)) => {
            let taken: Vec<String> = reasons
                .iter()
                .enumerate()
                .take(vms.len() * 2)
                .filter(|(i, r)| i % 2 == 1 && condition_failed(r))
                .map(|(i, _)| vms[i / 2].name.to_string())
                .collect();
            let over_quota = counted && reasons.get(usage_index).is_some_and(condition_failed);
            if taken.is_empty() && over_quota {
                // The usage the condition saw comes back with the reason (ALL_OLD); a
                // store that does not return it is asked.
                let current = match reasons[usage_index].item() {
                    Some(old) => Some(usage_of(old)),
                    None => repo.usage(team).await.ok().flatten(),
                };
                return Err(limits.refusal(team, current, add));
            }
            if taken.is_empty() {
                return Err(Error::internal(
                    "inserting VMs",
                    "a new VM id already existed",
                ));
            }
            Err(Error::conflict(
                ConflictCode::HostNameTaken,
                format!(
                    "host name {} already used by an active virtual machine of project {}",
                    taken
                        .iter()
                        .map(|n| format!("'{n}'"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    vms[0].project
                ),
            ))
        }
    }
}

pub(super) async fn replace_vm(
    repo: &DynamoRepository,
    vm: &VmRecord,
    expected_version: u64,
    names: &NameChange,
    event: Option<&VmEvent>,
) -> Result<()> {
    let condition = Condition::version_is(expected_version);
    // A VM leaving the active statuses leaves its team's quota usage (counted VMs only).
    let freed = vm.vcpus.filter(|_| names.release_quota);
    if names.release.is_none()
        && names.claim.is_none()
        && event.is_none()
        && freed.is_none()
        && names.vcpus.is_none()
    {
        let mut item = to_item(vm)?;
        vm_item_keys(vm, &mut item);
        return match repo
            .client
            .put_item()
            .table_name(&repo.table)
            .set_item(Some(item))
            .condition_expression(condition.expression)
            .set_expression_attribute_values(condition.values)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if condition_refused(&e) => Err(Error::VersionConflict),
            Err(e) => Err(map_sdk("PutItem", e)),
        };
    }
    let mut writes = vec![repo.put_vm_write(vm, Some(condition))?];
    if let Some(old) = &names.release {
        writes.push(
            TransactWriteItem::builder()
                .delete(
                    Delete::builder()
                        .table_name(&repo.table)
                        .set_key(Some(name_key(vm.project, old)))
                        .condition_expression(format!("attribute_not_exists({PK}) OR vmId = :id"))
                        .expression_attribute_values(":id", s(vm.id.to_string()))
                        .build()
                        .expect("delete is complete"),
                )
                .build(),
        );
    }
    let claim_index = writes.len();
    if names.claim.is_some() {
        writes.push(repo.put_claim_write(vm.project, vm));
    }
    if let Some(event) = event {
        writes.push(repo.put_event_write(event)?);
    }
    if let Some(vcpus) = freed {
        // Unconditional: the VM's version condition above makes it happen once.
        writes.push(repo.usage_write(vm.team, -1, -i64::from(vcpus), None));
    }
    let usage_index = writes.len();
    if let Some(change) = names.vcpus {
        writes.push(repo.usage_write(vm.team, 0, change.delta, change.room));
    }
    match repo.transact(writes).await {
        Ok(()) => Ok(()),
        Err(TxFailure::Other(e)) => Err(e),
        Err(TxFailure::Conditions(reasons)) => {
            if reasons.first().is_some_and(condition_failed) {
                Err(Error::VersionConflict)
            } else if names.vcpus.is_some()
                && reasons.get(usage_index).is_some_and(condition_failed)
            {
                Err(Error::conflict(
                    ConflictCode::QuotaExceeded,
                    format!(
                        "the team's vCPU quota has no room for {} more vCPUs; nothing was changed",
                        names.vcpus.map_or(0, |c| c.delta)
                    ),
                ))
            } else if reasons.get(claim_index).is_some_and(condition_failed) {
                Err(Error::conflict(
                    ConflictCode::HostNameTaken,
                    format!(
                        "host name '{}' is already used by an active virtual machine of project {}",
                        vm.name, vm.project
                    ),
                ))
            } else {
                Err(Error::internal(
                    "replacing a VM",
                    "the old host-name claim belongs to another VM",
                ))
            }
        }
    }
}
