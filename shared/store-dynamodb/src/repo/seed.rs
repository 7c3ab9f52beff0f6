//! Loading demo data and VMs without conditions (the local run's seed).

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
use vmapi_core::Result;
use vmapi_models::{ProviderId, Seed, VmRecord};

use super::base::{to_item, DynamoRepository, BATCH_WRITE_MAX, UNPROCESSED_RETRIES};
use crate::errors::{map_sdk, unavailable};
use crate::keys::{
    catalog_sk, cloud_provider_copy_key, key, s, vm_item_keys, Key, Kind, CATALOG_PK,
};
use crate::table::{GSI1_PK, GSI1_SK};

impl DynamoRepository {
    /// Writes catalog entries, teams and projects (overwriting same ids). Operator use only.
    pub async fn load_seed(&self, seed: &Seed) -> Result<usize> {
        let mut items: Vec<Key> = Vec::new();
        let mut push = |kind: Kind, id: String, mut item: Key, provider: Option<ProviderId>| {
            item.extend(key(kind, &id));
            if kind.is_catalog() {
                // The catalog's own index (`vmctl catalog list`, the catalog lookups).
                item.insert(GSI1_PK.into(), s(CATALOG_PK));
                item.insert(GSI1_SK.into(), s(catalog_sk(kind, &id, provider)));
            }
            item.insert("entity".into(), s(kind.prefix().to_ascii_lowercase()));
            items.push(item);
        };
        for c in &seed.cloud_providers {
            push(Kind::Cloud, c.id.to_string(), to_item(c)?, None);
        }
        for p in &seed.providers {
            push(Kind::Provider, p.id.to_string(), to_item(p)?, None);
        }
        for z in &seed.sizes {
            push(Kind::Size, z.id.to_string(), to_item(z)?, Some(z.provider));
        }
        for p in &seed.prices {
            push(Kind::Price, p.id.to_string(), to_item(p)?, Some(p.provider));
        }
        for t in &seed.teams {
            push(Kind::Team, t.id.to_string(), to_item(t)?, None);
        }
        for p in &seed.projects {
            push(Kind::Project, p.id.to_string(), to_item(p)?, None);
        }
        // Entries written, not counting the providers' copies below.
        let count = items.len();
        // Each provider's copy in its cloud provider's partition (not in the catalog index).
        for p in &seed.providers {
            let mut item = to_item(p)?;
            item.extend(cloud_provider_copy_key(p.cloud_provider, p.id));
            item.insert("entity".into(), s("cloud-provider-copy"));
            items.push(item);
        }
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
}
