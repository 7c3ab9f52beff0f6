//! A team's VMs through the keys-only team index: their ids in one query, then the records in
//! one batch read.

use aws_sdk_dynamodb::types::ReturnConsumedCapacity;
use std::collections::HashMap;
use vmapi_core::{Result, TeamVms};
use vmapi_models::{TeamId, Timestamp, VmId, VmRecord};

use super::base::{from_item, DynamoRepository};
use crate::errors::map_sdk;
use crate::keys::{key, s, team_vms_pk, Kind, TEAM_DELETED_PREFIX, TEAM_LIVE_PREFIX};
use crate::table::{GSI3, GSI3_PK, GSI3_SK, PK};

pub(super) async fn team_vm_ids(
    repo: &DynamoRepository,
    team: TeamId,
    scope: TeamVms,
) -> Result<Vec<VmId>> {
    let (condition, from) = match scope {
        TeamVms::NotDeleted => (
            format!("{GSI3_PK} = :pk AND begins_with({GSI3_SK}, :from)"),
            TEAM_LIVE_PREFIX.to_string(),
        ),
        TeamVms::BilledSince(since) => (
            format!("{GSI3_PK} = :pk AND {GSI3_SK} >= :from"),
            format!("{TEAM_DELETED_PREFIX}{since}"),
        ),
    };
    let mut ids = Vec::new();
    let mut start = None;
    // One request: a page of a keys-only index holds thousands of keys (1 MB), far more than
    // a team's quota allows; the loop only guards against a team beyond that.
    loop {
        let out = repo
            .client
            .query()
            .table_name(&repo.table)
            .index_name(GSI3)
            .key_condition_expression(&condition)
            .expression_attribute_values(":pk", s(team_vms_pk(team)))
            .expression_attribute_values(":from", s(from.clone()))
            .scan_index_forward(false)
            .set_exclusive_start_key(start)
            .return_consumed_capacity(ReturnConsumedCapacity::Indexes)
            .send()
            .await
            .map_err(|e| map_sdk("Query", e))?;
        repo.count_capacity(out.consumed_capacity());
        ids.extend(out.items().iter().filter_map(|item| {
            item.get(PK)
                .and_then(|v| v.as_s().ok())
                .and_then(|pk| pk.strip_prefix("VM#"))
                .and_then(|id| VmId::parse(id).ok())
        }));
        match out.last_evaluated_key {
            Some(last) if !last.is_empty() => start = Some(last),
            _ => return Ok(ids),
        }
    }
}

pub(super) async fn get_vms(repo: &DynamoRepository, ids: &[VmId]) -> Result<Vec<VmRecord>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let unique: std::collections::BTreeSet<&VmId> = ids.iter().collect();
    let keys: Vec<_> = unique
        .into_iter()
        .map(|id| key(Kind::Vm, &id.to_string()))
        .collect();
    let mut by_id: HashMap<VmId, VmRecord> = HashMap::with_capacity(ids.len());
    for item in repo.batch_get(keys).await? {
        let vm: VmRecord = from_item(item)?;
        by_id.insert(vm.id, vm);
    }
    // DynamoDB removes expired items late (and DynamoDB Local never): expired is absent.
    let now = Timestamp::now().unix_millis() / 1000;
    Ok(ids
        .iter()
        .filter_map(|id| by_id.remove(id))
        .filter(|v| v.purge_after_epoch.is_none_or(|at| at > now))
        .collect())
}
