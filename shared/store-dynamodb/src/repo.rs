//! The repository over DynamoDB.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, CancellationReason, Delete, KeysAndAttributes, Put, PutRequest,
    ReturnConsumedCapacity, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
    WriteRequest,
};
use aws_sdk_dynamodb::Client;
use serde::de::DeserializeOwned;
use serde::Serialize;
use vmapi_core::{
    ConflictCode, Error, EventPage, Found, Gone, Lookup, NameChange, PageKey, Repository, Result,
    RuleChange, RuleOwner, Tombstone, VmFilter, VmPage,
};
use vmapi_models::{
    ProjectId, SecurityRuleId, Seed, StaleCategory, Timestamp, VmEvent, VmId, VmRecord,
};

use vmapi_core::{QuotaLimits, Usage};
use vmapi_models::TeamId;

use crate::cache::CatalogCache;
use crate::errors::{map_sdk, unavailable};
use crate::keys::usage_key;
use crate::keys::{
    event_key, gsi_start_key, key, name_key, parse_project_vms_sk, parse_tombstone_sk,
    project_vms_pk, s, stale_pk, stale_range, team_project_key, tombstone_key, vm_item_keys, Key,
    Kind, CATALOG_PK, STALE_SHARDS, TEAM_PROJECT_PREFIX, TOMBSTONES_PK,
};
use crate::table::{GSI1, GSI1_PK, GSI1_SK, GSI2, GSI2_PK, GSI2_SK, PK, SK};

/// The item of an event in its VM's partition.
fn event_item(event: &VmEvent) -> Result<Key> {
    let mut item = to_item(event)?;
    item.extend(event_key(event.vm_id, &event.at.to_string()));
    item.insert("entity".into(), s("event"));
    Ok(item)
}

/// Index items a filtered list page reads at least (one request; `Limit` applies before the
/// filter).
const FILTERED_READ: usize = 250;

/// Most keys one BatchGetItem may carry.
const BATCH_GET_MAX: usize = 100;
/// Most requests one BatchWriteItem may carry.
const BATCH_WRITE_MAX: usize = 25;
/// Retries of unprocessed keys before giving up with a 503.
const UNPROCESSED_RETRIES: u32 = 5;

/// Tunables of the adapter.
#[derive(Clone, Debug)]
pub struct RepositoryOptions {
    /// How long catalog items are served from the container's cache (0 disables it).
    pub catalog_ttl: Duration,
}

impl Default for RepositoryOptions {
    fn default() -> Self {
        RepositoryOptions {
            catalog_ttl: Duration::from_secs(300),
        }
    }
}

/// The DynamoDB repository. Build once per container; it holds the catalog cache.
pub struct DynamoRepository {
    pub(crate) client: Client,
    pub(crate) table: String,
    cache: CatalogCache,
    /// Read capacity units consumed by the stale-index queries and VM reads, in thousandths.
    consumed_milli: std::sync::atomic::AtomicU64,
}

pub(crate) fn to_item<T: Serialize>(value: &T) -> Result<Key> {
    serde_dynamo::to_item(value).map_err(|e| Error::internal("encoding an item", e))
}

/// Decodes an item. Each attribute is converted once, moved into serde_dynamo's own value
/// (`serde_dynamo::from_item` builds its `Item` and then a second map from it, rehashing every
/// top-level name: a list of 50 VMs spent a third of its decoding there).
pub(crate) fn from_item<T: DeserializeOwned>(item: Key) -> Result<T> {
    let map = item.into_iter().map(|(k, v)| (k, v.into())).collect();
    serde_dynamo::from_attribute_value(serde_dynamo::AttributeValue::M(map))
        .map_err(|e| Error::internal("decoding an item", e))
}

fn condition_failed(reason: &CancellationReason) -> bool {
    reason.code() == Some("ConditionalCheckFailed")
}

/// Cancelled because a concurrent transaction touched the same items (real DynamoDB under
/// contention; DynamoDB Local serialises transactions instead).
fn conflicted(reason: &CancellationReason) -> bool {
    reason.code() == Some("TransactionConflict")
}

/// Attempts of a transaction cancelled by conflicts with concurrent ones.
const TRANSACTION_ATTEMPTS: u32 = 6;

/// The wait after conflicted attempt `attempt`: 20 ms doubling up to 320 ms, less a random
/// part of up to half (so conflicting requests spread out).
fn conflict_backoff(attempt: u32) -> Duration {
    let full = 20u64 << attempt.clamp(1, 5).saturating_sub(1);
    let mut r = [0u8; 2];
    // Only spreading: a failing random source just waits the full time.
    let jitter = match getrandom::fill(&mut r) {
        Ok(()) => u64::from(u16::from_le_bytes(r)) * (full / 2) / u64::from(u16::MAX),
        Err(_) => 0,
    };
    Duration::from_millis(full - jitter)
}

/// Attribute of the usage item: the team's active VMs.
const USAGE_VMS: &str = "activeVms";
/// Attribute of the usage item: their vCPUs.
const USAGE_VCPUS: &str = "vcpus";

/// The usage an item records (absent attributes are 0).
fn usage_of(item: &Key) -> Usage {
    let n = |k: &str| {
        item.get(k)
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse::<i64>().ok())
            .map_or(0, |n| n.max(0) as u64)
    };
    Usage {
        active_vms: n(USAGE_VMS),
        vcpus: n(USAGE_VCPUS),
    }
}

impl DynamoRepository {
    /// Removes a team's or project's record as the platform would, and notes its tombstone so
    /// the cleanup job deletes its VMs (operator tool and tests; in production the stream
    /// notes removals made by the platform).
    pub async fn remove_owner(&self, gone: Gone, at: Timestamp) -> Result<()> {
        let record = match gone {
            Gone::Team(t) => key(Kind::Team, &t.to_string()),
            Gone::Project(p) => key(Kind::Project, &p.to_string()),
        };
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(record))
            .send()
            .await
            .map_err(|e| map_sdk("DeleteItem", e))?;
        self.put_tombstone(&Tombstone { gone, at }).await
    }

    /// A repository on `table`.
    pub fn new(client: Client, table: impl Into<String>, options: RepositoryOptions) -> Self {
        DynamoRepository {
            client,
            table: table.into(),
            cache: CatalogCache::new(options.catalog_ttl),
            consumed_milli: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Read capacity units consumed so far by VM reads and stale-index queries.
    pub fn consumed_read_capacity(&self) -> f64 {
        self.consumed_milli
            .load(std::sync::atomic::Ordering::Relaxed) as f64
            / 1000.0
    }

    fn count_capacity(&self, c: Option<&aws_sdk_dynamodb::types::ConsumedCapacity>) {
        if let Some(units) = c.and_then(|c| c.capacity_units()) {
            self.consumed_milli.fetch_add(
                (units * 1000.0).round() as u64,
                std::sync::atomic::Ordering::Relaxed,
            );
        }
    }

    /// The SDK client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The table name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// Writes catalog entries, teams and projects (overwriting same ids). Operator use only.
    pub async fn load_seed(&self, seed: &Seed) -> Result<usize> {
        let mut items: Vec<Key> = Vec::new();
        let mut push = |kind: Kind, id: String, mut item: Key| {
            item.extend(key(kind, &id));
            if kind.is_catalog() {
                // The catalog's own index (`vmctl catalog list`), in the list index.
                item.insert(GSI1_PK.into(), s(CATALOG_PK));
                item.insert(GSI1_SK.into(), s(format!("{}#{id}", kind.prefix())));
            }
            item.insert("entity".into(), s(kind.prefix().to_ascii_lowercase()));
            items.push(item);
        };
        for c in &seed.cloud_providers {
            push(Kind::Cloud, c.id.to_string(), to_item(c)?);
        }
        for p in &seed.providers {
            push(Kind::Provider, p.id.to_string(), to_item(p)?);
        }
        for z in &seed.sizes {
            push(Kind::Size, z.id.to_string(), to_item(z)?);
        }
        for p in &seed.prices {
            push(Kind::Price, p.id.to_string(), to_item(p)?);
        }
        for t in &seed.teams {
            push(Kind::Team, t.id.to_string(), to_item(t)?);
        }
        for p in &seed.projects {
            push(Kind::Project, p.id.to_string(), to_item(p)?);
        }
        let count = items.len();
        for chunk in items.chunks(BATCH_WRITE_MAX) {
            let mut pending: Vec<WriteRequest> = chunk
                .iter()
                .map(|item| {
                    WriteRequest::builder()
                        .put_request(
                            PutRequest::builder()
                                .set_item(Some(item.clone()))
                                .build()
                                .expect("item set"),
                        )
                        .build()
                })
                .collect();
            for attempt in 0..=UNPROCESSED_RETRIES {
                if pending.is_empty() {
                    break;
                }
                if attempt == UNPROCESSED_RETRIES {
                    return Err(unavailable(
                        "BatchWriteItem",
                        "unprocessed items remained after retries",
                    ));
                }
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, pending)
                    .send()
                    .await
                    .map_err(|e| map_sdk("BatchWriteItem", e))?;
                pending = out
                    .unprocessed_items
                    .and_then(|mut m| m.remove(&self.table))
                    .unwrap_or_default();
                if !pending.is_empty() {
                    tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
                }
            }
        }
        Ok(count)
    }

    /// Stores a VM as given, with its host-name claim when active. For seeding tests and demos.
    pub async fn put_vm_unchecked(&self, vm: &VmRecord) -> Result<()> {
        let mut writes = vec![self.put_vm_write(vm, None)?];
        if vm.status.is_active() {
            writes.push(self.put_claim_write(vm.project, vm));
        }
        writes.extend(
            vm.rules
                .iter()
                .map(|r| self.put_rule_pointer_write(r.id, vm)),
        );
        self.client
            .transact_write_items()
            .set_transact_items(Some(writes))
            .send()
            .await
            .map_err(|e| map_sdk("TransactWriteItems", e))?;
        Ok(())
    }

    /// Stores many VM records as they are, 25 per `BatchWriteItem` (seeding and load tests; no
    /// host-name claims, no conditions).
    pub async fn put_vms_unchecked(&self, vms: &[VmRecord]) -> Result<()> {
        for chunk in vms.chunks(BATCH_WRITE_MAX) {
            let mut requests = Vec::with_capacity(chunk.len());
            for vm in chunk {
                let mut item = to_item(vm)?;
                vm_item_keys(vm, &mut item);
                requests.push(
                    WriteRequest::builder()
                        .put_request(
                            PutRequest::builder()
                                .set_item(Some(item))
                                .build()
                                .expect("put request is complete"),
                        )
                        .build(),
                );
            }
            let mut pending = Some(HashMap::from([(self.table.clone(), requests)]));
            for attempt in 0..=UNPROCESSED_RETRIES {
                let Some(items) = pending.take().filter(|m| !m.is_empty()) else {
                    break;
                };
                if attempt > 0 {
                    tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
                }
                let out = self
                    .client
                    .batch_write_item()
                    .set_request_items(Some(items))
                    .send()
                    .await
                    .map_err(|e| map_sdk("BatchWriteItem", e))?;
                pending = out.unprocessed_items;
            }
        }
        Ok(())
    }

    fn put_vm_write(
        &self,
        vm: &VmRecord,
        condition: Option<Condition>,
    ) -> Result<TransactWriteItem> {
        let mut item = to_item(vm)?;
        vm_item_keys(vm, &mut item);
        let mut put = Put::builder().table_name(&self.table).set_item(Some(item));
        if let Some(c) = condition {
            put = put
                .condition_expression(c.expression)
                .set_expression_attribute_values(c.values);
        }
        Ok(TransactWriteItem::builder()
            .put(put.build().expect("put is complete"))
            .build())
    }

    fn put_event_write(&self, event: &VmEvent) -> Result<TransactWriteItem> {
        Ok(self.put_new_write(event_item(event)?))
    }

    /// A transaction put of an item that must not exist yet.
    fn put_new_write(&self, item: HashMap<String, AttributeValue>) -> TransactWriteItem {
        TransactWriteItem::builder()
            .put(
                Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(item))
                    .condition_expression(format!("attribute_not_exists({PK})"))
                    .build()
                    .expect("put is complete"),
            )
            .build()
    }

    /// The pointer of a security rule to its VM (`pk = RULE#id`, `sk = RULE`), which
    /// `DELETE /api/security-rules/{id}` reads; new ids only.
    fn put_rule_pointer_write(&self, rule: SecurityRuleId, vm: &VmRecord) -> TransactWriteItem {
        let mut item = key(Kind::Rule, &rule.to_string());
        item.insert("entity".into(), s("rule"));
        item.insert("vmId".into(), s(vm.id.to_string()));
        item.insert("teamId".into(), s(vm.team.to_string()));
        self.put_new_write(item)
    }

    /// Removes a security rule's pointer (unless it points at another VM).
    fn delete_rule_pointer_write(&self, rule: SecurityRuleId, vm: VmId) -> TransactWriteItem {
        TransactWriteItem::builder()
            .delete(
                Delete::builder()
                    .table_name(&self.table)
                    .set_key(Some(key(Kind::Rule, &rule.to_string())))
                    .condition_expression(format!("attribute_not_exists({PK}) OR vmId = :id"))
                    .expression_attribute_values(":id", s(vm.to_string()))
                    .build()
                    .expect("delete is complete"),
            )
            .build()
    }

    fn put_claim_write(&self, project: ProjectId, vm: &VmRecord) -> TransactWriteItem {
        let mut item = name_key(project, &vm.name);
        item.insert("entity".into(), s("name"));
        item.insert("vmId".into(), s(vm.id.to_string()));
        self.put_new_write(item)
    }

    /// Runs a transaction. One that DynamoDB cancels only because a concurrent transaction
    /// touched the same items (`TransactionConflict`, e.g. two creates of a team updating its
    /// quota usage) wrote nothing and is sent again, up to [`TRANSACTION_ATTEMPTS`] times with
    /// jittered backoff; then it is a 409 `CONCURRENT_MODIFICATION`.
    pub(crate) async fn transact(
        &self,
        writes: Vec<TransactWriteItem>,
    ) -> std::result::Result<(), TxFailure> {
        let mut attempt = 1;
        loop {
            let err = match self
                .client
                .transact_write_items()
                .set_transact_items(Some(writes.clone()))
                .send()
                .await
            {
                Ok(_) => return Ok(()),
                Err(err) => err,
            };
            let Some(TransactWriteItemsError::TransactionCanceledException(e)) =
                err.as_service_error()
            else {
                return Err(TxFailure::Other(map_sdk("TransactWriteItems", err)));
            };
            let reasons = e.cancellation_reasons().to_vec();
            if reasons.iter().any(condition_failed) {
                return Err(TxFailure::Conditions(reasons));
            }
            if !reasons.iter().any(conflicted) {
                return Err(TxFailure::Other(unavailable("TransactWriteItems", err)));
            }
            if attempt >= TRANSACTION_ATTEMPTS {
                tracing::warn!(
                    attempts = attempt,
                    "a transaction kept conflicting with concurrent ones"
                );
                return Err(TxFailure::Other(Error::conflict(
                    ConflictCode::ConcurrentModification,
                    "concurrent requests kept changing the same records; retry the request",
                )));
            }
            tracing::debug!(attempt, "transaction conflict; retrying");
            tokio::time::sleep(conflict_backoff(attempt)).await;
            attempt += 1;
        }
    }

    /// An update of a team's quota usage item: `ADD` the deltas; with `room`, only if the
    /// usage before is at most `room` (the limits minus what is added), returning the old
    /// item when not.
    fn usage_write(
        &self,
        team: TeamId,
        vms: i64,
        vcpus: i64,
        room: Option<Usage>,
    ) -> TransactWriteItem {
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(usage_key(team)))
            .update_expression("SET #entity = :entity ADD #vms :vms, #vcpus :vcpus")
            .expression_attribute_names("#entity", "entity")
            .expression_attribute_names("#vms", USAGE_VMS)
            .expression_attribute_names("#vcpus", USAGE_VCPUS)
            .expression_attribute_values(":entity", s("usage"))
            .expression_attribute_values(":vms", AttributeValue::N(vms.to_string()))
            .expression_attribute_values(":vcpus", AttributeValue::N(vcpus.to_string()));
        if let Some(room) = room {
            update = update
                .condition_expression(
                    "attribute_not_exists(#vms) OR (#vms <= :maxVms AND #vcpus <= :maxVcpus)",
                )
                .expression_attribute_values(
                    ":maxVms",
                    AttributeValue::N(room.active_vms.to_string()),
                )
                .expression_attribute_values(":maxVcpus", AttributeValue::N(room.vcpus.to_string()))
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                );
        }
        TransactWriteItem::builder()
            .update(update.build().expect("update is complete"))
            .build()
    }

    /// A team's quota usage as stored (a strongly consistent read; `None` when it has none).
    pub async fn usage(&self, team: TeamId) -> Result<Option<Usage>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(usage_key(team)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| map_sdk("GetItem", e))?;
        Ok(out.item.as_ref().map(usage_of))
    }

    /// What `lookup` names that the catalog cache holds; the keys of the rest are pushed
    /// onto `keys`.
    fn lookup_cached(&self, lookup: &Lookup, keys: &mut Vec<Key>) -> Result<Found> {
        let mut found = Found::default();
        let mut wanted: Vec<(Kind, String)> = Vec::with_capacity(lookup.len());
        wanted.extend(lookup.teams.iter().map(|id| (Kind::Team, id.to_string())));
        wanted.extend(
            lookup
                .projects
                .iter()
                .map(|id| (Kind::Project, id.to_string())),
        );
        wanted.extend(
            lookup
                .cloud_providers
                .iter()
                .map(|id| (Kind::Cloud, id.to_string())),
        );
        wanted.extend(
            lookup
                .providers
                .iter()
                .map(|id| (Kind::Provider, id.to_string())),
        );
        wanted.extend(lookup.sizes.iter().map(|id| (Kind::Size, id.to_string())));
        wanted.extend(lookup.prices.iter().map(|id| (Kind::Price, id.to_string())));

        for (kind, id) in wanted {
            if kind.is_catalog() {
                if let Some(item) = self.cache.get(kind, &id) {
                    insert_found(&mut found, kind, item)?;
                    continue;
                }
            }
            keys.push(key(kind, &id));
        }
        Ok(found)
    }

    /// One BatchGetItem round (chunks of 100 sent together), retrying unprocessed keys.
    async fn batch_get(&self, keys: Vec<Key>) -> Result<Vec<Key>> {
        let mut tasks = tokio::task::JoinSet::new();
        for chunk in keys.chunks(BATCH_GET_MAX) {
            let client = self.client.clone();
            let table = self.table.clone();
            let chunk = chunk.to_vec();
            tasks.spawn(async move { batch_get_chunk(client, table, chunk).await });
        }
        let mut items = Vec::with_capacity(keys.len());
        while let Some(joined) = tasks.join_next().await {
            items.extend(joined.map_err(|e| Error::internal("BatchGetItem task", e))??);
        }
        Ok(items)
    }
}

async fn batch_get_chunk(client: Client, table: String, keys: Vec<Key>) -> Result<Vec<Key>> {
    let mut items = Vec::with_capacity(keys.len());
    let mut pending = KeysAndAttributes::builder()
        .set_keys(Some(keys))
        .build()
        .expect("keys set");
    for attempt in 0..=UNPROCESSED_RETRIES {
        let out = client
            .batch_get_item()
            .request_items(&table, pending)
            .send()
            .await
            .map_err(|e| map_sdk("BatchGetItem", e))?;
        if let Some(mut responses) = out.responses {
            items.extend(responses.remove(&table).unwrap_or_default());
        }
        match out.unprocessed_keys.and_then(|mut m| m.remove(&table)) {
            Some(rest) if !rest.keys().is_empty() => {
                if attempt == UNPROCESSED_RETRIES {
                    break;
                }
                pending = rest;
                tokio::time::sleep(Duration::from_millis(25 << attempt)).await;
            }
            _ => return Ok(items),
        }
    }
    Err(unavailable(
        "BatchGetItem",
        "unprocessed keys remained after retries",
    ))
}

/// A condition expression with its values.
struct Condition {
    expression: String,
    values: Option<HashMap<String, AttributeValue>>,
}

impl Condition {
    /// The item must not exist yet.
    fn new_item() -> Self {
        Condition {
            expression: format!("attribute_not_exists({PK})"),
            values: None,
        }
    }

    /// The stored version must be `v` (optimistic locking).
    fn version_is(v: u64) -> Self {
        Condition {
            expression: "version = :expected".into(),
            values: Some(HashMap::from([(
                ":expected".to_string(),
                AttributeValue::N(v.to_string()),
            )])),
        }
    }
}

pub(crate) enum TxFailure {
    Conditions(Vec<CancellationReason>),
    Other(Error),
}

fn pk_of(item: &Key) -> Option<(Kind, String)> {
    let AttributeValue::S(pk) = item.get(PK)? else {
        return None;
    };
    let (prefix, id) = pk.split_once('#')?;
    let kind = [
        Kind::Team,
        Kind::Project,
        Kind::Cloud,
        Kind::Provider,
        Kind::Size,
        Kind::Price,
    ]
    .into_iter()
    .find(|k| k.prefix() == prefix)?;
    Some((kind, id.to_string()))
}

fn insert_found(found: &mut Found, kind: Kind, item: Key) -> Result<()> {
    match kind {
        Kind::Team => {
            let t: vmapi_models::Team = from_item(item)?;
            found.teams.insert(t.id, t);
        }
        Kind::Project => {
            let p: vmapi_models::Project = from_item(item)?;
            found.projects.insert(p.id, p);
        }
        Kind::Cloud => {
            let c: vmapi_models::CloudProvider = from_item(item)?;
            found.cloud_providers.insert(c.id, c);
        }
        Kind::Provider => {
            let p: vmapi_models::ProviderRecord = from_item(item)?;
            found.providers.insert(p.id, p);
        }
        Kind::Size => {
            let z: vmapi_models::Size = from_item(item)?;
            found.sizes.insert(z.id, z);
        }
        Kind::Price => {
            let p: vmapi_models::Price = from_item(item)?;
            found.prices.insert(p.id, p);
        }
        Kind::Vm | Kind::Name | Kind::Rule => {}
    }
    Ok(())
}

#[async_trait]
impl Repository for DynamoRepository {
    async fn lookup(&self, lookup: &Lookup) -> Result<Found> {
        let mut keys = Vec::new();
        let mut found = self.lookup_cached(lookup, &mut keys)?;
        if keys.is_empty() {
            return Ok(found);
        }
        for item in self.batch_get(keys).await? {
            let Some((kind, id)) = pk_of(&item) else {
                continue;
            };
            if kind.is_catalog() {
                self.cache.put(kind, id, item.clone());
            }
            insert_found(&mut found, kind, item)?;
        }
        Ok(found)
    }

    async fn get_vm(&self, id: VmId) -> Result<Option<VmRecord>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(Kind::Vm, &id.to_string())))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(|e| map_sdk("GetItem", e))?;
        self.count_capacity(out.consumed_capacity());
        let vm: Option<VmRecord> = out.item.map(from_item).transpose()?;
        // DynamoDB removes expired items late (and DynamoDB Local never): expired is absent.
        let now = vmapi_models::Timestamp::now().unix_millis() / 1000;
        Ok(vm.filter(|v| v.purge_after_epoch.is_none_or(|at| at > now)))
    }

    async fn stale_vms(
        &self,
        category: StaleCategory,
        older_than: Timestamp,
        limit: usize,
    ) -> Result<Vec<VmId>> {
        let (from, to) = stale_range(category, older_than);
        let queries = (0..STALE_SHARDS).map(|shard| {
            self.client
                .query()
                .table_name(&self.table)
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
            self.count_capacity(out.consumed_capacity());
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

    async fn purge_vm(&self, id: VmId, expected_version: u64) -> Result<()> {
        let condition = Condition::version_is(expected_version);
        let old = match self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(Kind::Vm, &id.to_string())))
            .condition_expression(condition.expression)
            .set_expression_attribute_values(condition.values)
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await
        {
            Ok(out) => out.attributes,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_conditional_check_failed_exception()) =>
            {
                return Err(Error::VersionConflict)
            }
            Err(e) => return Err(map_sdk("DeleteItem", e)),
        };
        // The VM's history lives in its partition: remove it too.
        let out = self
            .client
            .query()
            .table_name(&self.table)
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
            self.client
                .batch_write_item()
                .request_items(&self.table, chunk.to_vec())
                .send()
                .await
                .map_err(|e| map_sdk("BatchWriteItem", e))?;
        }
        Ok(())
    }

    async fn team_projects(&self, team: vmapi_models::TeamId) -> Result<Vec<ProjectId>> {
        let mut projects = Vec::new();
        let mut start: Option<Key> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
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

    async fn put_tombstone(&self, tombstone: &Tombstone) -> Result<()> {
        let mut item = tombstone_key(tombstone.gone);
        item.insert("entity".into(), s("tombstone"));
        item.insert("at".into(), s(tombstone.at.to_string()));
        match self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            // The first sighting's time is kept.
            .condition_expression(format!("attribute_not_exists({PK})"))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_conditional_check_failed_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(map_sdk("PutItem", e)),
        }
    }

    async fn tombstones(&self, limit: usize) -> Result<Vec<Tombstone>> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
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

    async fn clear_tombstone(&self, gone: Gone) -> Result<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(tombstone_key(gone)))
            .send()
            .await
            .map_err(|e| map_sdk("DeleteItem", e))?;
        Ok(())
    }

    async fn list_project_vms(
        &self,
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
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
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
                query = query.expression_attribute_values(
                    name,
                    AttributeValue::N(status.code().to_string()),
                );
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

    async fn insert_vms(
        &self,
        vms: &[VmRecord],
        events: &[VmEvent],
        limits: &QuotaLimits,
    ) -> Result<()> {
        let Some(team) = vms.first().map(|vm| vm.team) else {
            return Ok(());
        };
        let mut writes = Vec::with_capacity(vms.len() * 3 + 2);
        for vm in vms {
            writes.push(self.put_vm_write(vm, Some(Condition::new_item()))?);
            writes.push(self.put_claim_write(vm.project, vm));
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
            writes.push(self.usage_write(
                team,
                add.active_vms as i64,
                add.vcpus as i64,
                Some(room),
            ));
        }
        // The events and the team's note of the project come after the items above, whose
        // positions the cancellation reasons are read by. One note per team and project.
        for event in events {
            writes.push(self.put_event_write(event)?);
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
                                .table_name(&self.table)
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
                    .map(|r| self.put_rule_pointer_write(r.id, vm)),
            );
        }
        match self.transact(writes).await {
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
                        None => self.usage(team).await.ok().flatten(),
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

    async fn replace_vm(
        &self,
        vm: &VmRecord,
        expected_version: u64,
        names: &NameChange,
        event: Option<&VmEvent>,
    ) -> Result<()> {
        let condition = Condition::version_is(expected_version);
        // A VM leaving the active statuses leaves its team's quota usage (counted VMs only).
        let freed = vm.vcpus.filter(|_| names.release_quota);
        if names.release.is_none() && names.claim.is_none() && event.is_none() && freed.is_none() {
            let mut item = to_item(vm)?;
            vm_item_keys(vm, &mut item);
            return match self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression(condition.expression)
                .set_expression_attribute_values(condition.values)
                .send()
                .await
            {
                Ok(_) => Ok(()),
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|se| se.is_conditional_check_failed_exception()) =>
                {
                    Err(Error::VersionConflict)
                }
                Err(e) => Err(map_sdk("PutItem", e)),
            };
        }
        let mut writes = vec![self.put_vm_write(vm, Some(condition))?];
        if let Some(old) = &names.release {
            writes.push(
                TransactWriteItem::builder()
                    .delete(
                        Delete::builder()
                            .table_name(&self.table)
                            .set_key(Some(name_key(vm.project, old)))
                            .condition_expression(format!(
                                "attribute_not_exists({PK}) OR vmId = :id"
                            ))
                            .expression_attribute_values(":id", s(vm.id.to_string()))
                            .build()
                            .expect("delete is complete"),
                    )
                    .build(),
            );
        }
        let claim_index = writes.len();
        if names.claim.is_some() {
            writes.push(self.put_claim_write(vm.project, vm));
        }
        if let Some(event) = event {
            writes.push(self.put_event_write(event)?);
        }
        if let Some(vcpus) = freed {
            // Unconditional: the VM's version condition above makes it happen once.
            writes.push(self.usage_write(vm.team, -1, -i64::from(vcpus), None));
        }
        match self.transact(writes).await {
            Ok(()) => Ok(()),
            Err(TxFailure::Other(e)) => Err(e),
            Err(TxFailure::Conditions(reasons)) => {
                if reasons.first().is_some_and(condition_failed) {
                    Err(Error::VersionConflict)
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

    async fn replace_vm_rules(
        &self,
        vm: &VmRecord,
        expected_version: u64,
        change: RuleChange,
        event: &VmEvent,
    ) -> Result<()> {
        let pointer = match change {
            RuleChange::Added(rule) => self.put_rule_pointer_write(rule, vm),
            RuleChange::Removed(rule) => self.delete_rule_pointer_write(rule, vm.id),
        };
        let writes = vec![
            self.put_vm_write(vm, Some(Condition::version_is(expected_version)))?,
            pointer,
            self.put_event_write(event)?,
        ];
        match self.transact(writes).await {
            Ok(()) => Ok(()),
            Err(TxFailure::Other(e)) => Err(e),
            Err(TxFailure::Conditions(reasons)) => {
                if reasons.first().is_some_and(condition_failed) {
                    Err(Error::VersionConflict)
                } else {
                    Err(Error::internal(
                        "changing a VM's security rules",
                        "the rule's pointer already existed or belongs to another VM",
                    ))
                }
            }
        }
    }

    async fn rule_owner(&self, rule: SecurityRuleId) -> Result<Option<RuleOwner>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(Kind::Rule, &rule.to_string())))
            // Written in the same transaction as its VM: read what that transaction wrote.
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| map_sdk("GetItem", e))?;
        let Some(item) = out.item else {
            return Ok(None);
        };
        let field = |name: &str| item.get(name).and_then(|v| v.as_s().ok());
        match (
            field("vmId").and_then(|v| VmId::parse(v).ok()),
            field("teamId").and_then(|t| t.parse::<TeamId>().ok()),
        ) {
            (Some(vm), Some(team)) => Ok(Some(RuleOwner { vm, team })),
            _ => Err(Error::internal(
                "reading a security rule's pointer",
                "the pointer item lacks vmId or teamId",
            )),
        }
    }

    async fn get_vm_with(&self, id: VmId, lookup: &Lookup) -> Result<(Option<VmRecord>, Found)> {
        if lookup.len() > BATCH_GET_MAX - 1 {
            let vm = self.get_vm(id).await?;
            return Ok((vm, self.lookup(lookup).await?));
        }
        let vm_key = key(Kind::Vm, &id.to_string());
        let mut keys = vec![vm_key.clone()];
        let mut found = self.lookup_cached(lookup, &mut keys)?;
        let mut vm = None;
        for item in self.batch_get(keys).await? {
            if item.get(PK) == vm_key.get(PK) {
                vm = Some(from_item::<VmRecord>(item)?);
                continue;
            }
            let Some((kind, key_id)) = pk_of(&item) else {
                continue;
            };
            if kind.is_catalog() {
                self.cache.put(kind, key_id, item.clone());
            }
            insert_found(&mut found, kind, item)?;
        }
        // DynamoDB removes expired items late (and DynamoDB Local never): expired is absent.
        let now = vmapi_models::Timestamp::now().unix_millis() / 1000;
        Ok((
            vm.filter(|v| v.purge_after_epoch.is_none_or(|at| at > now)),
            found,
        ))
    }

    async fn vm_events(&self, id: VmId, limit: usize, after: Option<&str>) -> Result<EventPage> {
        let pk = format!("VM#{id}");
        let start = after.map(|sk| {
            HashMap::from([
                (PK.to_string(), s(pk.clone())),
                (SK.to_string(), s(sk.to_string())),
            ])
        });
        let limit = limit.clamp(1, 1000);
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression(format!("{PK} = :pk AND begins_with({SK}, :prefix)"))
            .expression_attribute_values(":pk", s(pk))
            .expression_attribute_values(":prefix", s("EVENT#"))
            .scan_index_forward(false)
            .limit(limit as i32)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| map_sdk("Query", e))?;
        let items: Vec<VmEvent> = out
            .items()
            .iter()
            .map(|item| from_item(item.clone()))
            .collect::<Result<_>>()?;
        // A full page may be the last one; the next (empty) page then says so.
        let next = out
            .last_evaluated_key()
            .filter(|_| items.len() == limit)
            .and_then(|k| k.get(SK)?.as_s().ok().cloned());
        Ok(EventPage { items, next })
    }

    async fn record_event(&self, event: &VmEvent) -> Result<()> {
        let item = event_item(event)?;
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(format!("attribute_not_exists({PK})"))
            .send()
            .await
            .map_err(|e| map_sdk("PutItem", e))?;
        Ok(())
    }
}
