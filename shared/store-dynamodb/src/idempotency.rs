//! Idempotency records in the single table: `pk = IDEM#{userId}`, `sk = KEY#{key}` (the user and
//! the key in separate attributes, so no user id and key can spell another pair's item).
//!
//! Taking a key is one conditional `PutItem` that succeeds when the item is absent, expired
//! (`expiresAtEpoch`, the table's TTL attribute: DynamoDB deletes late and DynamoDB Local never)
//! or the same request's lease ran out; when it fails, the item comes back with the failure
//! (`ReturnValuesOnConditionCheckFailure = ALL_OLD`, a `GetItem` otherwise) and
//! [`vmapi_core::idempotency::verdict`] says what it means. Finishing is a conditional
//! `UpdateItem`, abandoning a conditional `DeleteItem`, both on the holder's token.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use vmapi_core::idempotency::verdict;
use vmapi_core::{
    Begin, Error, IdempotencyKey, IdempotencyRecord, IdempotencyStore, Lease, RecordState, Result,
    StoredResponse,
};
use vmapi_models::{Timestamp, UserId};

use crate::errors::{condition_refused, map_sdk};
use crate::keys::{s, Key};
use crate::table::{PK, SK, TTL_ATTRIBUTE};
use crate::DynamoRepository;

const IN_FLIGHT: &str = "in-flight";
const DONE: &str = "done";
/// Attempts of `begin` when the item changes between the failed write and its reading.
const BEGIN_ATTEMPTS: usize = 3;

/// The item key of `user`'s `key`.
fn idempotency_key(user: &UserId, key: &IdempotencyKey) -> Key {
    HashMap::from([
        (PK.to_string(), s(format!("IDEM#{user}"))),
        (SK.to_string(), s(format!("KEY#{key}"))),
    ])
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn to_item(user: &UserId, key: &IdempotencyKey, r: &IdempotencyRecord) -> Key {
    let mut item = idempotency_key(user, key);
    item.insert("entity".into(), s("idempotency"));
    item.insert("requestHash".into(), s(&r.request_hash));
    item.insert("token".into(), s(&r.token));
    item.insert("createdAt".into(), s(r.created_at.to_string()));
    item.insert(TTL_ATTRIBUTE.into(), n(r.expires_at_epoch));
    match &r.state {
        RecordState::InFlight { lease_until } => {
            item.insert("state".into(), s(IN_FLIGHT));
            item.insert("leaseUntil".into(), n(lease_until.unix_millis()));
        }
        RecordState::Done(resp) => {
            item.insert("state".into(), s(DONE));
            let (status, body, headers) = response_attributes(resp);
            item.insert("status".into(), status);
            item.insert("body".into(), body);
            if let Some(headers) = headers {
                item.insert("headers".into(), headers);
            }
        }
    }
    item
}

/// The kept answer's attributes. Headers are a map only when there are any: an empty map is
/// what DynamoDB Local's stream renders as `{}` (no type), which no SDK can decode, and an
/// absent attribute says the same.
fn response_attributes(
    resp: &StoredResponse,
) -> (AttributeValue, AttributeValue, Option<AttributeValue>) {
    let headers = (!resp.headers.is_empty()).then(|| {
        AttributeValue::M(
            resp.headers
                .iter()
                .map(|(k, v)| (k.clone(), s(v)))
                .collect(),
        )
    });
    (n(resp.status.into()), s(&resp.body), headers)
}

fn from_item(item: &Key) -> Result<IdempotencyRecord> {
    let bad = |what: &str| Error::internal("decoding an idempotency record", what.to_string());
    let text = |name: &str| -> Result<&String> {
        item.get(name)
            .and_then(|v| v.as_s().ok())
            .ok_or_else(|| bad(name))
    };
    let number = |name: &str| -> Result<i64> {
        item.get(name)
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| bad(name))
    };
    let state = match text("state")?.as_str() {
        IN_FLIGHT => RecordState::InFlight {
            lease_until: Timestamp::from_unix_millis(number("leaseUntil")?)
                .map_err(|_| bad("leaseUntil"))?,
        },
        DONE => RecordState::Done(StoredResponse {
            status: u16::try_from(number("status")?).map_err(|_| bad("status"))?,
            body: text("body")?.clone(),
            headers: item
                .get("headers")
                .and_then(|v| v.as_m().ok())
                .map(|m| {
                    let mut headers: Vec<(String, String)> = m
                        .iter()
                        .filter_map(|(k, v)| Some((k.clone(), v.as_s().ok()?.clone())))
                        .collect();
                    headers.sort();
                    headers
                })
                .unwrap_or_default(),
        }),
        _ => return Err(bad("state")),
    };
    Ok(IdempotencyRecord {
        request_hash: text("requestHash")?.clone(),
        token: text("token")?.clone(),
        created_at: Timestamp::parse(text("createdAt")?).map_err(|_| bad("createdAt"))?,
        expires_at_epoch: number(TTL_ATTRIBUTE)?,
        state,
    })
}

impl DynamoRepository {
    /// Stores an idempotency record as given (tests: expired records, runs out of lease).
    pub async fn put_idempotency_record_unchecked(
        &self,
        user: &UserId,
        key: &IdempotencyKey,
        record: &IdempotencyRecord,
    ) -> Result<()> {
        self.client()
            .put_item()
            .table_name(self.table())
            .set_item(Some(to_item(user, key, record)))
            .send()
            .await
            .map_err(|e| map_sdk("PutItem", e))?;
        Ok(())
    }

    /// The stored idempotency record of a key, expired or not (tests, operator).
    pub async fn idempotency_record(
        &self,
        user: &UserId,
        key: &IdempotencyKey,
    ) -> Result<Option<IdempotencyRecord>> {
        let out = self
            .client()
            .get_item()
            .table_name(self.table())
            .set_key(Some(idempotency_key(user, key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| map_sdk("GetItem", e))?;
        out.item.as_ref().map(from_item).transpose()
    }
}

#[async_trait]
impl IdempotencyStore for DynamoRepository {
    async fn begin(
        &self,
        user: &UserId,
        key: &IdempotencyKey,
        request_hash: &str,
        now: Timestamp,
    ) -> Result<Begin> {
        for _ in 0..BEGIN_ATTEMPTS {
            let record = IdempotencyRecord::started(request_hash, now);
            let result = self
                .client()
                .put_item()
                .table_name(self.table())
                .set_item(Some(to_item(user, key, &record)))
                // Absent, expired, or this same request's lease ran out: see `verdict`.
                .condition_expression(format!(
                    "attribute_not_exists({PK}) OR {TTL_ATTRIBUTE} <= :nowSecs \
                     OR (#state = :inFlight AND leaseUntil <= :nowMillis AND requestHash = :hash)"
                ))
                .expression_attribute_names("#state", "state")
                .expression_attribute_values(":nowSecs", n(now.unix_millis().div_euclid(1000)))
                .expression_attribute_values(":nowMillis", n(now.unix_millis()))
                .expression_attribute_values(":inFlight", s(IN_FLIGHT))
                .expression_attribute_values(":hash", s(request_hash))
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                )
                .send()
                .await;
            let existing = match result {
                Ok(_) => {
                    return Ok(Begin::Started(Lease {
                        token: record.token,
                    }))
                }
                Err(e) => match e.as_service_error() {
                    Some(PutItemError::ConditionalCheckFailedException(failed)) => {
                        match failed.item() {
                            Some(item) => Some(from_item(item)?),
                            None => self.idempotency_record(user, key).await?,
                        }
                    }
                    _ => return Err(map_sdk("PutItem", e)),
                },
            };
            // Changed between the write and the read (abandoned, or at a boundary): try again.
            if let Some(found) = existing.and_then(|r| verdict(&r, request_hash, now)) {
                return Ok(found);
            }
        }
        Ok(Begin::InFlight)
    }

    async fn finish(
        &self,
        user: &UserId,
        key: &IdempotencyKey,
        lease: &Lease,
        response: &StoredResponse,
    ) -> Result<()> {
        let (status, body, headers) = response_attributes(response);
        let (set_headers, remove) = match headers {
            Some(_) => (", #headers = :headers", "REMOVE leaseUntil"),
            None => ("", "REMOVE leaseUntil, #headers"),
        };
        let result = self
            .client()
            .update_item()
            .table_name(self.table())
            .set_key(Some(idempotency_key(user, key)))
            .update_expression(format!(
                "SET #state = :done, #status = :status, #body = :body{set_headers} {remove}"
            ))
            .condition_expression("#token = :token")
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#body", "body")
            .expression_attribute_names("#headers", "headers")
            .expression_attribute_names("#token", "token")
            .set_expression_attribute_values(Some(
                [
                    (":done", s(DONE)),
                    (":status", status),
                    (":body", body),
                    (":token", s(&lease.token)),
                ]
                .into_iter()
                .chain(headers.map(|h| (":headers", h)))
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            ))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if condition_refused(&e) => {
                tracing::warn!(%key, "the idempotency key was taken over before its answer was stored");
                Ok(())
            }
            Err(e) => Err(map_sdk("UpdateItem", e)),
        }
    }

    async fn abandon(&self, user: &UserId, key: &IdempotencyKey, lease: &Lease) -> Result<()> {
        let result = self
            .client()
            .delete_item()
            .table_name(self.table())
            .set_key(Some(idempotency_key(user, key)))
            .condition_expression("#token = :token")
            .expression_attribute_names("#token", "token")
            .expression_attribute_values(":token", s(&lease.token))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if condition_refused(&e) => Ok(()),
            Err(e) => Err(map_sdk("DeleteItem", e)),
        }
    }
}
