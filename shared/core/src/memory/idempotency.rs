//! The in-memory idempotency store.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use vmapi_models::{Timestamp, UserId};

use crate::error::Result;

/// In-memory [`IdempotencyStore`](crate::idempotency::IdempotencyStore): the same rules as the
/// DynamoDB adapter ([`verdict`](crate::idempotency::verdict)), behind one lock.
#[derive(Default)]
pub struct MemoryIdempotencyStore {
    records: Mutex<HashMap<(UserId, String), crate::idempotency::IdempotencyRecord>>,
}

impl MemoryIdempotencyStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The record of a key, as stored (expired ones too).
    pub fn record(
        &self,
        user: &UserId,
        key: &crate::idempotency::IdempotencyKey,
    ) -> Option<crate::idempotency::IdempotencyRecord> {
        self.records
            .lock()
            .unwrap()
            .get(&(user.clone(), key.as_str().to_string()))
            .cloned()
    }

    /// Stores a record as given (to reach expired or abandoned states).
    pub fn put_record(
        &self,
        user: &UserId,
        key: &crate::idempotency::IdempotencyKey,
        record: crate::idempotency::IdempotencyRecord,
    ) {
        self.records
            .lock()
            .unwrap()
            .insert((user.clone(), key.as_str().to_string()), record);
    }
}

#[async_trait]
impl crate::idempotency::IdempotencyStore for MemoryIdempotencyStore {
    async fn begin(
        &self,
        user: &UserId,
        key: &crate::idempotency::IdempotencyKey,
        request_hash: &str,
        now: Timestamp,
    ) -> Result<crate::idempotency::Begin> {
        use crate::idempotency::{verdict, Begin, IdempotencyRecord, Lease};
        let mut records = self.records.lock().unwrap();
        let id = (user.clone(), key.as_str().to_string());
        if let Some(found) = records.get(&id).and_then(|r| verdict(r, request_hash, now)) {
            return Ok(found);
        }
        let record = IdempotencyRecord::started(request_hash, now);
        let lease = Lease {
            token: record.token.clone(),
        };
        records.insert(id, record);
        Ok(Begin::Started(lease))
    }

    async fn finish(
        &self,
        user: &UserId,
        key: &crate::idempotency::IdempotencyKey,
        lease: &crate::idempotency::Lease,
        response: &crate::idempotency::StoredResponse,
    ) -> Result<()> {
        let mut records = self.records.lock().unwrap();
        if let Some(r) = records.get_mut(&(user.clone(), key.as_str().to_string())) {
            if r.token == lease.token {
                r.state = crate::idempotency::RecordState::Done(response.clone());
            }
        }
        Ok(())
    }

    async fn abandon(
        &self,
        user: &UserId,
        key: &crate::idempotency::IdempotencyKey,
        lease: &crate::idempotency::Lease,
    ) -> Result<()> {
        let mut records = self.records.lock().unwrap();
        let id = (user.clone(), key.as_str().to_string());
        if records.get(&id).is_some_and(|r| r.token == lease.token) {
            records.remove(&id);
        }
        Ok(())
    }
}
