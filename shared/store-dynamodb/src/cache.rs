//! Per-container cache of catalog items (cloud providers, providers, sizes, prices).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;

use crate::keys::Kind;

type Item = HashMap<String, AttributeValue>;

/// Catalog items by (kind, id), each with its fetch time.
pub(crate) struct CatalogCache {
    ttl: Duration,
    items: Mutex<HashMap<(Kind, String), (Instant, Item)>>,
}

impl CatalogCache {
    pub(crate) fn new(ttl: Duration) -> Self {
        CatalogCache {
            ttl,
            items: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn get(&self, kind: Kind, id: &str) -> Option<Item> {
        if self.ttl.is_zero() {
            return None;
        }
        let items = self.items.lock().unwrap_or_else(|p| p.into_inner());
        items
            .get(&(kind, id.to_string()))
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, item)| item.clone())
    }

    pub(crate) fn put(&self, kind: Kind, id: String, item: Item) {
        if self.ttl.is_zero() {
            return;
        }
        let mut items = self.items.lock().unwrap_or_else(|p| p.into_inner());
        items.insert((kind, id), (Instant::now(), item));
    }
}
