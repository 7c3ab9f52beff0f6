//! A team's VMs through the team index: their ids and references in one query, then the
//! records (with what they name) in one batch read.

use aws_sdk_dynamodb::types::ReturnConsumedCapacity;
use std::collections::HashMap;
use vmapi_core::{Found, Lookup, Result, TeamVmRef, TeamVms};
use vmapi_models::{
    CloudProviderId, PriceId, ProjectId, ProviderId, SizeId, TeamId, Timestamp, VmId, VmRecord,
};

use super::base::{from_item, DynamoRepository};
use crate::errors::map_sdk;
use crate::keys::{key, s, team_vms_pk, Kind, TEAM_DELETED_PREFIX, TEAM_LIVE_PREFIX};
use crate::table::{GSI3, GSI3_PK, GSI3_SK, PK};

/// The references the team index carries (its `INCLUDE` projection).
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Projected {
    #[serde(rename = "_id")]
    id: VmId,
    project: ProjectId,
    cloud_provider: CloudProviderId,
    provider: ProviderId,
    size: SizeId,
    price: PriceId,
}

pub(super) async fn team_vms(
    repo: &DynamoRepository,
    team: TeamId,
    scope: TeamVms,
) -> Result<Vec<TeamVmRef>> {
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
        for item in out.items.unwrap_or_default() {
            let p: Projected = from_item(item)?;
            ids.push(TeamVmRef {
                id: p.id,
                project: p.project,
                cloud_provider: p.cloud_provider,
                provider: p.provider,
                size: p.size,
                price: p.price,
            });
        }
        match out.last_evaluated_key {
            Some(last) if !last.is_empty() => start = Some(last),
            _ => return Ok(ids),
        }
    }
}

pub(super) async fn get_vms_with(
    repo: &DynamoRepository,
    ids: &[VmId],
    lookup: &Lookup,
) -> Result<(Vec<VmRecord>, Found)> {
    let unique: std::collections::BTreeSet<&VmId> = ids.iter().collect();
    let mut keys: Vec<_> = unique
        .into_iter()
        .map(|id| key(Kind::Vm, &id.to_string()))
        .collect();
    let vm_keys = keys.len();
    let mut found = repo.lookup_cached(lookup, &mut keys)?;
    if keys.is_empty() {
        return Ok((Vec::new(), found));
    }
    let mut by_id: HashMap<VmId, VmRecord> = HashMap::with_capacity(vm_keys);
    for item in repo.batch_get(keys).await? {
        if item
            .get(PK)
            .and_then(|v| v.as_s().ok())
            .is_some_and(|pk| pk.starts_with("VM#"))
        {
            let vm: VmRecord = from_item(item)?;
            by_id.insert(vm.id, vm);
        } else {
            repo.found_item(&mut found, item)?;
        }
    }
    // DynamoDB removes expired items late (and DynamoDB Local never): expired is absent.
    let now = Timestamp::now().unix_millis() / 1000;
    let vms = ids
        .iter()
        .filter_map(|id| by_id.remove(id))
        .filter(|v| v.purge_after_epoch.is_none_or(|at| at > now))
        .collect();
    Ok((vms, found))
}
