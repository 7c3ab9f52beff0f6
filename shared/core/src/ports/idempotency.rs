//! Idempotency keys: a client's `Idempotency-Key` makes a write safe to retry. The first
//! request with a key (per user) runs and its answer is kept for [`RETENTION_SECS`]; the same
//! request again gets that answer without running; another request with the key is refused; a
//! request still running blocks the key for at most [`LEASE_MILLIS`] (a crashed function must not
//! lock a key for a day).
//!
//! The port is [`IdempotencyStore`]; [`verdict`] is the one rule of what a stored record means
//! for a new request, shared by every adapter.

use async_trait::async_trait;
use vmapi_models::{Timestamp, UserId};

use crate::error::Result;

/// How long an answer is kept (and replayed), from the first request: 24 hours.
pub const RETENTION_SECS: i64 = 24 * 60 * 60;

/// How long a request in flight blocks its key. Longer than any function's timeout, so a
/// request that is still running never loses its key; after it, a retry takes the key over.
pub const LEASE_MILLIS: i64 = 60_000;

/// A client's idempotency key: 1-255 visible ASCII characters (`!` to `~`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// Longest key.
    pub const MAX_LEN: usize = 255;

    /// Checks a key; the error says what is wrong with it.
    pub fn parse(raw: &str) -> std::result::Result<Self, String> {
        if raw.is_empty() {
            return Err("must not be empty".into());
        }
        if raw.len() > Self::MAX_LEN {
            return Err(format!(
                "must be at most {} characters, got {}",
                Self::MAX_LEN,
                raw.len()
            ));
        }
        if !raw.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("must consist of visible ASCII characters only (no spaces)".into());
        }
        Ok(IdempotencyKey(raw.to_string()))
    }

    /// The key as sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// An answer as kept for replays.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredResponse {
    /// HTTP status.
    pub status: u16,
    /// The headers worth replaying (e.g. `ETag`), lower-case names.
    pub headers: Vec<(String, String)>,
    /// The body (JSON text).
    pub body: String,
}

/// Where a key's request is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecordState {
    /// Running; blocks the key until `lease_until`.
    InFlight {
        /// End of the lease.
        lease_until: Timestamp,
    },
    /// Answered.
    Done(StoredResponse),
}

/// The stored record of a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotencyRecord {
    /// Fingerprint of the request that holds the key.
    pub request_hash: String,
    /// Identifies the request that holds it (see [`Lease`]).
    pub token: String,
    /// When the key was first used.
    pub created_at: Timestamp,
    /// Unix seconds after which the record counts as absent (the table's TTL attribute).
    pub expires_at_epoch: i64,
    /// Running or answered.
    pub state: RecordState,
}

impl IdempotencyRecord {
    /// The record a request writes when it takes a key at `now`.
    pub fn started(request_hash: &str, now: Timestamp) -> Self {
        IdempotencyRecord {
            request_hash: request_hash.to_string(),
            token: uuid::Uuid::new_v4().simple().to_string(),
            created_at: now,
            expires_at_epoch: now.unix_millis().div_euclid(1000) + RETENTION_SECS,
            state: RecordState::InFlight {
                lease_until: lease_end(now),
            },
        }
    }

    /// Whether the record has expired at `now` (then it is treated as absent).
    pub fn is_expired(&self, now: Timestamp) -> bool {
        self.expires_at_epoch <= now.unix_millis().div_euclid(1000)
    }
}

/// The end of a lease taken at `now`.
pub fn lease_end(now: Timestamp) -> Timestamp {
    Timestamp::from_unix_millis(now.unix_millis() + LEASE_MILLIS).unwrap_or(now)
}

/// Proof that a request holds a key: only its holder may finish or abandon the record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    /// The record's token.
    pub token: String,
}

/// What a request with a key may do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Begin {
    /// The key is now this request's: run it, then finish or abandon.
    Started(Lease),
    /// The same request was answered before: answer this again.
    Replay(StoredResponse),
    /// The same key's request is still running (409).
    InFlight,
    /// The key was used with another request (422).
    Mismatch,
}

/// What an existing record means for a request with fingerprint `request_hash` at `now`:
/// `None` when it does not stand in the way (expired, or the same request whose lease ran out),
/// so the request may take the key.
pub fn verdict(record: &IdempotencyRecord, request_hash: &str, now: Timestamp) -> Option<Begin> {
    if record.is_expired(now) {
        return None;
    }
    if record.request_hash != request_hash {
        return Some(Begin::Mismatch);
    }
    match &record.state {
        RecordState::Done(response) => Some(Begin::Replay(response.clone())),
        RecordState::InFlight { lease_until } if *lease_until > now => Some(Begin::InFlight),
        RecordState::InFlight { .. } => None,
    }
}

/// Storage of idempotency records, one per user and key.
#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    /// Takes `key` for `user`'s request with fingerprint `request_hash`, atomically: at most one
    /// concurrent caller gets [`Begin::Started`].
    async fn begin(
        &self,
        user: &UserId,
        key: &IdempotencyKey,
        request_hash: &str,
        now: Timestamp,
    ) -> Result<Begin>;

    /// Keeps the answer of the request holding `lease` (a lost lease changes nothing).
    async fn finish(
        &self,
        user: &UserId,
        key: &IdempotencyKey,
        lease: &Lease,
        response: &StoredResponse,
    ) -> Result<()>;

    /// Frees the key (the request failed in a way worth retrying); a lost lease changes nothing.
    async fn abandon(&self, user: &UserId, key: &IdempotencyKey, lease: &Lease) -> Result<()>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: i64) -> Timestamp {
        Timestamp::from_unix_millis(ms).unwrap()
    }

    fn done(hash: &str, now: Timestamp) -> IdempotencyRecord {
        let mut r = IdempotencyRecord::started(hash, now);
        r.state = RecordState::Done(StoredResponse {
            status: 201,
            headers: vec![],
            body: "[]".into(),
        });
        r
    }

    #[test]
    fn keys_are_visible_ascii_of_1_to_255() {
        assert!(IdempotencyKey::parse("a").is_ok());
        assert!(IdempotencyKey::parse(&"k".repeat(255)).is_ok());
        assert!(IdempotencyKey::parse("0b7c1f0e-4a7e-4f3e-9d6a-2f0c9b8e7d6a").is_ok());
        assert!(IdempotencyKey::parse("!~#{}").is_ok());
        for bad in ["", " ", "a b", "tab\t", "é", "\u{7f}"] {
            assert!(IdempotencyKey::parse(bad).is_err(), "{bad:?}");
        }
        assert!(IdempotencyKey::parse(&"k".repeat(256)).is_err());
    }

    #[test]
    fn a_new_record_expires_after_a_day_and_leases_for_a_minute() {
        let now = at(1_700_000_000_123);
        let r = IdempotencyRecord::started("h", now);
        assert_eq!(r.expires_at_epoch, 1_700_000_000 + RETENTION_SECS);
        assert_eq!(
            r.state,
            RecordState::InFlight {
                lease_until: at(1_700_000_060_123)
            }
        );
        assert!(!r.is_expired(now));
        assert!(r.is_expired(at((r.expires_at_epoch) * 1000)));
        assert_ne!(r.token, IdempotencyRecord::started("h", now).token);
    }

    #[test]
    fn verdicts() {
        let now = at(1_700_000_000_000);
        let later = at(1_700_000_030_000);
        let after_lease = at(1_700_000_060_000);
        let running = IdempotencyRecord::started("h", now);
        assert_eq!(verdict(&running, "h", later), Some(Begin::InFlight));
        assert_eq!(verdict(&running, "other", later), Some(Begin::Mismatch));
        assert_eq!(verdict(&running, "h", after_lease), None, "lease ran out");
        assert_eq!(
            verdict(&running, "other", after_lease),
            Some(Begin::Mismatch),
            "another request never takes over"
        );
        let answered = done("h", now);
        assert!(matches!(
            verdict(&answered, "h", after_lease),
            Some(Begin::Replay(StoredResponse { status: 201, .. }))
        ));
        assert_eq!(verdict(&answered, "other", later), Some(Begin::Mismatch));
        let day_later = at((answered.expires_at_epoch) * 1000);
        assert_eq!(verdict(&answered, "h", day_later), None, "expired");
        assert_eq!(verdict(&answered, "other", day_later), None, "expired");
    }

    fn user(u: &str) -> UserId {
        UserId::parse(u).unwrap()
    }

    fn response(status: u16) -> StoredResponse {
        StoredResponse {
            status,
            headers: vec![("etag".into(), "\"2\"".into())],
            body: format!("{{\"n\":{status}}}"),
        }
    }

    #[tokio::test]
    async fn memory_store_follows_the_rules() {
        use crate::memory::MemoryIdempotencyStore;
        let store = MemoryIdempotencyStore::new();
        let (alice, bob) = (user("alice"), user("bob"));
        let key = IdempotencyKey::parse("k-1").unwrap();
        let now = at(1_700_000_000_000);

        let Begin::Started(lease) = store.begin(&alice, &key, "h", now).await.unwrap() else {
            panic!("first use starts")
        };
        assert_eq!(
            store.begin(&alice, &key, "h", now).await.unwrap(),
            Begin::InFlight
        );
        assert_eq!(
            store.begin(&alice, &key, "x", now).await.unwrap(),
            Begin::Mismatch
        );
        // Another user's key of the same name is another key.
        assert!(matches!(
            store.begin(&bob, &key, "x", now).await.unwrap(),
            Begin::Started(_)
        ));
        store
            .finish(&alice, &key, &lease, &response(201))
            .await
            .unwrap();
        assert_eq!(
            store.begin(&alice, &key, "h", now).await.unwrap(),
            Begin::Replay(response(201))
        );
        assert_eq!(
            store.begin(&alice, &key, "x", now).await.unwrap(),
            Begin::Mismatch
        );

        // Abandoned: free again. A stale holder can neither finish nor abandon a taken-over key.
        let key2 = IdempotencyKey::parse("k-2").unwrap();
        let Begin::Started(first) = store.begin(&alice, &key2, "h", now).await.unwrap() else {
            panic!()
        };
        store.abandon(&alice, &key2, &first).await.unwrap();
        assert!(store.record(&alice, &key2).is_none());
        let Begin::Started(second) = store.begin(&alice, &key2, "h", now).await.unwrap() else {
            panic!("abandoned keys are free")
        };
        let after_lease = at(now.unix_millis() + LEASE_MILLIS);
        let Begin::Started(third) = store.begin(&alice, &key2, "h", after_lease).await.unwrap()
        else {
            panic!("a lease that ran out is taken over")
        };
        store
            .finish(&alice, &key2, &second, &response(500))
            .await
            .unwrap();
        store.abandon(&alice, &key2, &second).await.unwrap();
        assert!(matches!(
            store.record(&alice, &key2).unwrap().state,
            RecordState::InFlight { .. }
        ));
        store
            .finish(&alice, &key2, &third, &response(200))
            .await
            .unwrap();
        assert_eq!(
            store.begin(&alice, &key2, "h", after_lease).await.unwrap(),
            Begin::Replay(response(200))
        );
        // A day later the key is free, also for another request.
        let day_later = at(after_lease.unix_millis() + RETENTION_SECS * 1000);
        assert!(matches!(
            store.begin(&alice, &key2, "x", day_later).await.unwrap(),
            Begin::Started(_)
        ));
    }

    #[tokio::test]
    async fn concurrent_begins_start_once() {
        let store = std::sync::Arc::new(crate::memory::MemoryIdempotencyStore::new());
        let key = IdempotencyKey::parse("same").unwrap();
        let now = at(1_700_000_000_000);
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let (store, key) = (store.clone(), key.clone());
                tokio::spawn(async move { store.begin(&user("u"), &key, "h", now).await })
            })
            .collect();
        let mut started = 0;
        for t in tasks {
            match t.await.unwrap().unwrap() {
                Begin::Started(_) => started += 1,
                Begin::InFlight => {}
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(started, 1);
    }
}
