//! The catalog lookups of the discovery endpoints, each one query: the cloud providers (the
//! catalog index's `CLOUD#` range), a cloud provider with its providers (its partition, which
//! holds a copy of each of its providers), a provider with its sizes and prices (the catalog
//! index's `PROVIDER#{id}` range).

use aws_sdk_dynamodb::types::AttributeValue;
use vmapi_core::{ProviderOffers, Result};
use vmapi_models::{CloudProvider, CloudProviderId, ProviderId, ProviderRecord};

use super::base::{from_item, DynamoRepository};
use crate::errors::map_sdk;
use crate::keys::{catalog_sk, s, Key, Kind, CATALOG_PK};
use crate::table::{GSI1, GSI1_PK, GSI1_SK, PK, SK};

impl DynamoRepository {
    /// Every item of one query, following pages (a catalog range is small: one page).
    async fn query_all(
        &self,
        index: Option<&str>,
        condition: String,
        values: &[(&str, AttributeValue)],
    ) -> Result<Vec<Key>> {
        let mut items = Vec::new();
        let mut start: Option<Key> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .set_index_name(index.map(str::to_string))
                .key_condition_expression(&condition)
                .set_expression_attribute_values(Some(
                    values
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.clone()))
                        .collect(),
                ))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| map_sdk("Query", e))?;
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(items),
            }
        }
    }
}

pub(super) async fn cloud_providers(repo: &DynamoRepository) -> Result<Vec<CloudProvider>> {
    repo.query_all(
        Some(GSI1),
        format!("{GSI1_PK} = :pk AND begins_with({GSI1_SK}, :prefix)"),
        &[
            (":pk", s(CATALOG_PK)),
            (":prefix", s(format!("{}#", Kind::Cloud.prefix()))),
        ],
    )
    .await?
    .into_iter()
    .map(from_item)
    .collect()
}

pub(super) async fn cloud_with_providers(
    repo: &DynamoRepository,
    id: CloudProviderId,
) -> Result<Option<(CloudProvider, Vec<ProviderRecord>)>> {
    let items = repo
        .query_all(
            None,
            format!("{PK} = :pk"),
            &[(":pk", s(format!("{}#{id}", Kind::Cloud.prefix())))],
        )
        .await?;
    let (mut cloud, mut providers) = (None, Vec::new());
    for item in items {
        match item.get(SK).and_then(|v| v.as_s().ok()).map(String::as_str) {
            Some(sk) if sk == Kind::Cloud.prefix() => cloud = Some(from_item(item)?),
            Some(sk) if sk.starts_with(Kind::Provider.prefix()) => {
                let provider: ProviderRecord = from_item(item)?;
                // A copy left behind by a provider that moved to another cloud provider.
                if provider.cloud_provider == id {
                    providers.push(provider);
                }
            }
            _ => {}
        }
    }
    Ok(cloud.map(|c| (c, providers)))
}

pub(super) async fn provider_offers(
    repo: &DynamoRepository,
    id: ProviderId,
) -> Result<ProviderOffers> {
    let items = repo
        .query_all(
            Some(GSI1),
            format!("{GSI1_PK} = :pk AND begins_with({GSI1_SK}, :prefix)"),
            &[
                (":pk", s(CATALOG_PK)),
                (
                    ":prefix",
                    s(catalog_sk(Kind::Provider, &id.to_string(), None)),
                ),
            ],
        )
        .await?;
    let mut offers = ProviderOffers::default();
    for item in items {
        let kind = item
            .get(PK)
            .and_then(|v| v.as_s().ok())
            .and_then(|pk| pk.split_once('#'))
            .map(|(prefix, _)| prefix.to_string());
        match kind.as_deref() {
            Some("PROVIDER") => offers.provider = Some(from_item(item)?),
            Some("SIZE") => offers.sizes.push(from_item(item)?),
            Some("PRICE") => offers.prices.push(from_item(item)?),
            _ => {}
        }
    }
    offers.sizes.sort_by_key(|z| z.id);
    offers.prices.sort_by_key(|p| p.id);
    Ok(offers)
}
