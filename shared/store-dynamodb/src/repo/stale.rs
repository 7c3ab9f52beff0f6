//! What the cleanup job reads and removes: stale VMs by the sparse index, tombstones of
//! removed teams and projects, and purging a deleted VM.

use aws_sdk_dynamodb::types::{ReturnConsumedCapacity, WriteRequest};
use vmapi_core::{Error, Gone, Result, Tombstone};
use vmapi_models::{ProjectId, StaleCategory, Timestamp, VmId, VmRecord};

use super::base::{from_item, DynamoRepository, BATCH_WRITE_MAX};
use super::transact::Condition;
use crate::errors::{condition_refused, map_sdk};
use crate::keys::{
    key, parse_tombstone_sk, s, stale_pk, stale_range, tombstone_key, Key, Kind, STALE_SHARDS,
    TEAM_PROJECT_PREFIX, TOMBSTONES_PK,
};
use crate::table::{GSI2, GSI2_PK, GSI2_SK, PK, SK};

pub(super) async fn stale_vms(
    repo: &DynamoRepository,
    category: StaleCategory,
    older_than: Timestamp,
    limit: usize,
) -> Result<Vec<VmId>> {
    let (from, to) = stale_range(category, older_than);
    let queries = (0..STALE_SHARDS).map(|shard| {
        repo.client
            .query()
            .table_name(&repo.table)
            .index_name(GSI2)
            .key_condition_expression(format!(
                "{GSI2_PK} = :pk AND {GSI2_SK} BETWEEN :from AND :to"
            ))
            .expression_attribute_values(":pk", s(stale_pk(shard)))
            .expression_attribute_values(":from", s(from.clone()))
            .expression_attribute_values(":to", s(to.clone()))
            .limit(limit.clamp(1, 1000) as i32)
            .return_consumed_capacity(ReturnConsumedCapacity::Indexes)
            .send()
    });
    let mut found: Vec<(String, VmId)> = Vec::new();
    for out in futures_util::future::join_all(queries).await {
        let out = out.map_err(|e| map_sdk("Query", e))?;
        repo.count_capacity(out.consumed_capacity());
        for item in out.items() {
            let sk = item
                .get(GSI2_SK)
                .and_then(|v| v.as_s().ok())
                .cloned()
                .unwrap_or_default();
            let id = item
                .get(PK)
                .and_then(|v| v.as_s().ok())
                .and_then(|pk| pk.strip_prefix("VM#"))
                .and_then(|id| VmId::parse(id).ok());
            if let Some(id) = id {
                found.push((sk, id));
            }
        }
    }
    found.sort();
    Ok(found.into_iter().take(limit).map(|(_, id)| id).collect())
}

pub(super) async fn purge_vm(
    repo: &DynamoRepository,
    id: VmId,
    expected_version: u64,
) -> Result<()> {
    let condition = Condition::version_is(expected_version);
    let old = match repo
        .client
        .delete_item()
        .table_name(&repo.table)
        .set_key(Some(key(Kind::Vm, &id.to_string())))
        .condition_expression(condition.expression)
        .set_expression_attribute_values(condition.values)
        .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
        .send()
        .await
    {
        Ok(out) => out.attributes,
        Err(e) if condition_refused(&e) => return Err(Error::VersionConflict),
        Err(e) => return Err(map_sdk("DeleteItem", e)),
    };
    // The VM's history lives in its partition: remove it too.
    let out = repo
        .client
        .query()
        .table_name(&repo.table)
        .key_condition_expression(format!("{PK} = :pk"))
        .expression_attribute_values(":pk", s(format!("VM#{id}")))
        .projection_expression(format!("{PK}, {SK}"))
        .send()
        .await
        .map_err(|e| map_sdk("Query", e))?;
    // Its security rules' pointers, named by the record just removed.
    let rules = match old {
        Some(item) => from_item::<VmRecord>(item)?.rules,
        None => Vec::new(),
    };
    let pointers: Vec<Key> = rules
        .iter()
        .map(|r| key(Kind::Rule, &r.id.to_string()))
        .collect();
    let deletes: Vec<WriteRequest> = out
        .items()
        .iter()
        .chain(pointers.iter())
        .map(|k| {
            WriteRequest::builder()
                .delete_request(
                    aws_sdk_dynamodb::types::DeleteRequest::builder()
                        .set_key(Some(k.clone()))
                        .build()
                        .expect("delete request is complete"),
                )
                .build()
        })
        .collect();
    for chunk in deletes.chunks(BATCH_WRITE_MAX) {
        repo.client
            .batch_write_item()
            .request_items(&repo.table, chunk.to_vec())
            .send()
            .await
            .map_err(|e| map_sdk("BatchWriteItem", e))?;
    }
    Ok(())
}

pub(super) async fn team_projects(
    repo: &DynamoRepository,
    team: vmapi_models::TeamId,
) -> Result<Vec<ProjectId>> {
    let mut projects = Vec::new();
    let mut start: Option<Key> = None;
    loop {
        let out = repo
            .client
            .query()
            .table_name(&repo.table)
            .key_condition_expression(format!("{PK} = :pk AND begins_with({SK}, :prefix)"))
            .expression_attribute_values(":pk", s(format!("TEAM#{team}")))
            .expression_attribute_values(":prefix", s(TEAM_PROJECT_PREFIX))
            .projection_expression(format!("{PK}, {SK}"))
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .map_err(|e| map_sdk("Query", e))?;
        projects.extend(out.items().iter().filter_map(|item| {
            item.get(SK)?
                .as_s()
                .ok()?
                .strip_prefix(TEAM_PROJECT_PREFIX)?
                .parse::<ProjectId>()
                .ok()
        }));
        match out.last_evaluated_key() {
            Some(k) if !k.is_empty() => start = Some(k.clone()),
            _ => break,
        }
    }
    Ok(projects)
}

pub(super) async fn put_tombstone(repo: &DynamoRepository, tombstone: &Tombstone) -> Result<()> {
    let mut item = tombstone_key(tombstone.gone);
    item.insert("entity".into(), s("tombstone"));
    item.insert("at".into(), s(tombstone.at.to_string()));
    match repo
        .client
        .put_item()
        .table_name(&repo.table)
        .set_item(Some(item))
        // The first sighting's time is kept.
        .condition_expression(format!("attribute_not_exists({PK})"))
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if condition_refused(&e) => Ok(()),
        Err(e) => Err(map_sdk("PutItem", e)),
    }
}

pub(super) async fn tombstones(repo: &DynamoRepository, limit: usize) -> Result<Vec<Tombstone>> {
    let out = repo
        .client
        .query()
        .table_name(&repo.table)
        .key_condition_expression(format!("{PK} = :pk"))
        .expression_attribute_values(":pk", s(TOMBSTONES_PK))
        .limit(limit.clamp(1, 1000) as i32)
        .send()
        .await
        .map_err(|e| map_sdk("Query", e))?;
    let mut found: Vec<Tombstone> = out
        .items()
        .iter()
        .filter_map(|item| {
            let gone = parse_tombstone_sk(item.get(SK)?.as_s().ok()?)?;
            let at = Timestamp::parse(item.get("at")?.as_s().ok()?).ok()?;
            Some(Tombstone { gone, at })
        })
        .collect();
    found.sort_by_key(|t| (t.at, t.gone));
    Ok(found)
}

pub(super) async fn clear_tombstone(repo: &DynamoRepository, gone: Gone) -> Result<()> {
    repo.client
        .delete_item()
        .table_name(&repo.table)
        .set_key(Some(tombstone_key(gone)))
        .send()
        .await
        .map_err(|e| map_sdk("DeleteItem", e))?;
    Ok(())
}
