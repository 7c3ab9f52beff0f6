//! Reading what VMs refer to (teams, projects, the catalog) in one BatchGetItem, through the
//! catalog cache.

use std::time::Duration;

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use aws_sdk_dynamodb::Client;
use vmapi_core::{Error, Found, Lookup, Repository, Result};
use vmapi_models::{VmId, VmRecord};

use super::base::{from_item, DynamoRepository, BATCH_GET_MAX, UNPROCESSED_RETRIES};
use crate::errors::{map_sdk, unavailable};
use crate::keys::{key, Key, Kind};
use crate::table::PK;

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
        Kind::Vm | Kind::Name | Kind::Rule | Kind::AdminKey | Kind::AdminKeyName => {}
    }
    Ok(())
}

impl DynamoRepository {
    /// What `lookup` names that the catalog cache holds; the keys of the rest are pushed
    /// onto `keys`.
    pub(super) fn lookup_cached(&self, lookup: &Lookup, keys: &mut Vec<Key>) -> Result<Found> {
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

    /// Puts an item a batch read returned into `found` (and a catalog item into the cache).
    pub(super) fn found_item(&self, found: &mut Found, item: Key) -> Result<()> {
        let Some((kind, id)) = pk_of(&item) else {
            return Ok(());
        };
        if kind.is_catalog() {
            self.cache.put(kind, id, item.clone());
        }
        insert_found(found, kind, item)
    }

    /// One BatchGetItem round (chunks of 100 sent together), retrying unprocessed keys.
    pub(super) async fn batch_get(&self, keys: Vec<Key>) -> Result<Vec<Key>> {
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

pub(super) async fn lookup(repo: &DynamoRepository, lookup: &Lookup) -> Result<Found> {
    let mut keys = Vec::new();
    let mut found = repo.lookup_cached(lookup, &mut keys)?;
    if keys.is_empty() {
        return Ok(found);
    }
    for item in repo.batch_get(keys).await? {
        repo.found_item(&mut found, item)?;
    }
    Ok(found)
}

pub(super) async fn get_vm_with(
    repo: &DynamoRepository,
    id: VmId,
    lookup: &Lookup,
) -> Result<(Option<VmRecord>, Found)> {
    if lookup.len() > BATCH_GET_MAX - 1 {
        let vm = repo.get_vm(id).await?;
        return Ok((vm, repo.lookup(lookup).await?));
    }
    let vm_key = key(Kind::Vm, &id.to_string());
    let mut keys = vec![vm_key.clone()];
    let mut found = repo.lookup_cached(lookup, &mut keys)?;
    let mut vm = None;
    for item in repo.batch_get(keys).await? {
        if item.get(PK) == vm_key.get(PK) {
            vm = Some(from_item::<VmRecord>(item)?);
            continue;
        }
        let Some((kind, key_id)) = pk_of(&item) else {
            continue;
        };
        if kind.is_catalog() {
            repo.cache.put(kind, key_id, item.clone());
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
