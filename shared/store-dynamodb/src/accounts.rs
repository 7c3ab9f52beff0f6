//! The account store over DynamoDB: teams and projects (`pk = TEAM#id | PROJECT#id`) written
//! with conditions, and the catalog, which `load_seed` also indexes in the list index under
//! the `CATALOG` partition so it can be read back with one query.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{ConditionCheck, Put, TransactWriteItem};
use vmapi_core::{AccountStore, Error, NotFoundKind, Result};
use vmapi_models::{Catalog, Project, Seed, Team, Timestamp};

use crate::errors::{condition_refused, map_sdk};
use crate::keys::{key, s, Key, Kind, CATALOG_PK};
use crate::repo::{from_item, to_item, DynamoRepository, TxFailure};
use crate::table::{GSI1, GSI1_PK, PK};

fn item_of<T: serde::Serialize>(kind: Kind, id: &str, value: &T) -> Result<Key> {
    let mut item = to_item(value)?;
    item.extend(key(kind, id));
    item.insert("entity".into(), s(kind.prefix().to_ascii_lowercase()));
    Ok(item)
}

fn exists(what: &str, id: impl std::fmt::Display) -> Error {
    Error::invalid_field("_id", format!("{what} {id} exists already"))
}

#[async_trait]
impl AccountStore for DynamoRepository {
    async fn insert_team(&self, team: &Team) -> Result<()> {
        match self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item_of(Kind::Team, &team.id.to_string(), team)?))
            .condition_expression(format!("attribute_not_exists({PK})"))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if condition_refused(&e) => Err(exists("team", team.id)),
            Err(e) => Err(map_sdk("PutItem", e)),
        }
    }

    async fn replace_team(&self, team: &Team, expected_updated_at: Timestamp) -> Result<()> {
        match self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item_of(Kind::Team, &team.id.to_string(), team)?))
            .condition_expression(format!("attribute_exists({PK}) AND #updated = :expected"))
            .expression_attribute_names("#updated", "updatedAt")
            .expression_attribute_values(":expected", s(expected_updated_at.to_string()))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if condition_refused(&e) => {
                let found = self
                    .client
                    .get_item()
                    .table_name(&self.table)
                    .set_key(Some(key(Kind::Team, &team.id.to_string())))
                    .consistent_read(true)
                    .send()
                    .await
                    .map_err(|e| map_sdk("GetItem", e))?;
                Err(match found.item {
                    Some(_) => Error::VersionConflict,
                    None => Error::not_found(NotFoundKind::Team, team.id),
                })
            }
            Err(e) => Err(map_sdk("PutItem", e)),
        }
    }

    async fn insert_project(&self, project: &Project) -> Result<()> {
        let team_exists = TransactWriteItem::builder()
            .condition_check(
                ConditionCheck::builder()
                    .table_name(&self.table)
                    .set_key(Some(key(Kind::Team, &project.team.to_string())))
                    .condition_expression(format!("attribute_exists({PK})"))
                    .build()
                    .expect("condition check is complete"),
            )
            .build();
        let put = TransactWriteItem::builder()
            .put(
                Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(item_of(
                        Kind::Project,
                        &project.id.to_string(),
                        project,
                    )?))
                    .condition_expression(format!("attribute_not_exists({PK})"))
                    .build()
                    .expect("put is complete"),
            )
            .build();
        match self.transact(vec![team_exists, put]).await {
            Ok(()) => Ok(()),
            Err(TxFailure::Conditions(reasons)) => {
                let failed = |i: usize| {
                    reasons.get(i).and_then(|r| r.code()) == Some("ConditionalCheckFailed")
                };
                if failed(0) {
                    Err(Error::not_found(NotFoundKind::Team, project.team))
                } else {
                    Err(exists("project", project.id))
                }
            }
            Err(TxFailure::Other(e)) => Err(e),
        }
    }

    async fn put_catalog(&self, catalog: &Catalog) -> Result<usize> {
        let seed = Seed {
            cloud_providers: catalog.cloud_providers.clone(),
            providers: catalog.providers.clone(),
            sizes: catalog.sizes.clone(),
            prices: catalog.prices.clone(),
            ..Seed::default()
        };
        self.load_seed(&seed).await
    }

    async fn catalog(&self) -> Result<Catalog> {
        let mut catalog = Catalog::default();
        let mut start: Option<Key> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(GSI1)
                .key_condition_expression(format!("{GSI1_PK} = :pk"))
                .expression_attribute_values(":pk", s(CATALOG_PK))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| map_sdk("Query", e))?;
            for item in out.items.unwrap_or_default() {
                let kind = item
                    .get(PK)
                    .and_then(|v| v.as_s().ok())
                    .and_then(|pk| pk.split_once('#'))
                    .map(|(prefix, _)| prefix.to_string())
                    .unwrap_or_default();
                match kind.as_str() {
                    "CLOUD" => catalog.cloud_providers.push(from_item(item)?),
                    "PROVIDER" => catalog.providers.push(from_item(item)?),
                    "SIZE" => catalog.sizes.push(from_item(item)?),
                    "PRICE" => catalog.prices.push(from_item(item)?),
                    _ => {}
                }
            }
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        // The index sorts a provider's sizes and prices after it; the lists are in id order.
        catalog.sizes.sort_by_key(|z| z.id);
        catalog.prices.sort_by_key(|p| p.id);
        Ok(catalog)
    }
}
