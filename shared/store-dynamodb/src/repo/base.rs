//! The repository itself: its options, client and table, the limits of DynamoDB calls, and
//! items to and from records.

use std::time::Duration;

use aws_sdk_dynamodb::Client;
use serde::de::DeserializeOwned;
use serde::Serialize;
use vmapi_core::{Error, Result};

use crate::cache::CatalogCache;
use crate::keys::Key;

/// Index items a filtered list page reads at least (one request; `Limit` applies before the
/// filter).
pub(super) const FILTERED_READ: usize = 250;

/// Most keys one BatchGetItem may carry.
pub(super) const BATCH_GET_MAX: usize = 100;

/// Most requests one BatchWriteItem may carry.
pub(super) const BATCH_WRITE_MAX: usize = 25;

/// Retries of unprocessed keys before giving up with a 503.
pub(super) const UNPROCESSED_RETRIES: u32 = 5;

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
    pub(super) cache: CatalogCache,
    /// Read capacity units consumed by the stale-index queries and VM reads, in thousandths.
    pub(super) consumed_milli: std::sync::atomic::AtomicU64,
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

impl DynamoRepository {
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

    pub(super) fn count_capacity(&self, c: Option<&aws_sdk_dynamodb::types::ConsumedCapacity>) {
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
}
