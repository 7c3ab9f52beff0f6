//! Admin keys: one item per key, keyed by the key's hash (what a request's check reads), its
//! name claimed by a second item in the same transaction, listed through the catalog's index
//! partition `ADMINKEYS`.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
use vmapi_core::{AdminKeyStore, Error, Result};
use vmapi_models::{AdminKeyName, AdminKeyRecord, Timestamp};

use crate::errors::{condition_refused, map_sdk};
use crate::keys::{key, s, Kind};
use crate::repo::{from_item, to_item, DynamoRepository, TxFailure};
use crate::table::{GSI1, GSI1_PK, GSI1_SK, PK};

/// The index partition listing every admin key.
const ADMIN_KEYS_PK: &str = "ADMINKEYS";

#[async_trait]
impl AdminKeyStore for DynamoRepository {
    async fn insert_admin_key(&self, record: &AdminKeyRecord) -> Result<()> {
        let mut item = to_item(record)?;
        item.extend(key(Kind::AdminKey, &record.key_hash));
        item.insert("entity".into(), s("admin-key"));
        item.insert(GSI1_PK.into(), s(ADMIN_KEYS_PK));
        item.insert(GSI1_SK.into(), s(record.name.as_str()));
        let mut claim = key(Kind::AdminKeyName, record.name.as_str());
        claim.insert("entity".into(), s("admin-key-name"));
        claim.insert("keyHash".into(), s(&record.key_hash));
        let put = |item| {
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
        };
        match self.transact(vec![put(claim), put(item)]).await {
            Ok(()) => Ok(()),
            Err(TxFailure::Conditions(_)) => Err(Error::invalid_field(
                "name",
                format!(
                    "an admin key named '{}' (or with the same key) exists already",
                    record.name
                ),
            )),
            Err(TxFailure::Other(e)) => Err(e),
        }
    }

    async fn admin_key_by_hash(&self, key_hash: &str) -> Result<Option<AdminKeyRecord>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(Kind::AdminKey, key_hash)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| map_sdk("GetItem", e))?;
        out.item.map(from_item).transpose()
    }

    async fn admin_keys(&self) -> Result<Vec<AdminKeyRecord>> {
        let mut keys = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(GSI1)
                .key_condition_expression(format!("{GSI1_PK} = :pk"))
                .expression_attribute_values(":pk", s(ADMIN_KEYS_PK))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| map_sdk("Query", e))?;
            for item in out.items.unwrap_or_default() {
                keys.push(from_item::<AdminKeyRecord>(item)?);
            }
            match out.last_evaluated_key {
                Some(last) if !last.is_empty() => start = Some(last),
                _ => return Ok(keys),
            }
        }
    }

    async fn revoke_admin_key(&self, name: &AdminKeyName, at: Timestamp) -> Result<bool> {
        let claim = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(Kind::AdminKeyName, name.as_str())))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| map_sdk("GetItem", e))?;
        let Some(hash) = claim
            .item
            .as_ref()
            .and_then(|i| i.get("keyHash"))
            .and_then(|v| v.as_s().ok())
            .cloned()
        else {
            return Ok(false);
        };
        match self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(Kind::AdminKey, &hash)))
            .update_expression("SET revokedAt = :at")
            .condition_expression(format!(
                "attribute_exists({PK}) AND attribute_not_exists(revokedAt)"
            ))
            .expression_attribute_values(":at", s(at.to_string()))
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if condition_refused(&e) => Ok(false),
            Err(e) => Err(map_sdk("UpdateItem", e)),
        }
    }
}
