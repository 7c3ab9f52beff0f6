//! Conditional multi-item writes (TransactWriteItems): the writes they are made of, their
//! conditions, and retrying a transaction that lost to another.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, CancellationReason, Delete, Put, TransactWriteItem};
use vmapi_core::{ConflictCode, Error, Gone, Repository, Result, Tombstone};
use vmapi_models::{ProjectId, SecurityRuleId, Timestamp, VmId, VmRecord};

use super::base::{to_item, DynamoRepository};
use crate::errors::{map_sdk, unavailable};
use crate::keys::{key, name_key, s, vm_item_keys, Kind};
use crate::table::PK;

pub(super) fn condition_failed(reason: &CancellationReason) -> bool {
    reason.code() == Some("ConditionalCheckFailed")
}

/// Cancelled because a concurrent transaction touched the same items (real DynamoDB under
/// contention; DynamoDB Local serialises transactions instead).
fn conflicted(reason: &CancellationReason) -> bool {
    reason.code() == Some("TransactionConflict")
}

/// Attempts of a transaction cancelled by conflicts with concurrent ones.
const TRANSACTION_ATTEMPTS: u32 = 6;

/// The wait after conflicted attempt `attempt`: 20 ms doubling up to 320 ms, less a random
/// part of up to half (so conflicting requests spread out).
fn conflict_backoff(attempt: u32) -> Duration {
    let full = 20u64 << attempt.clamp(1, 5).saturating_sub(1);
    let mut r = [0u8; 2];
    // Only spreading: a failing random source just waits the full time.
    let jitter = match getrandom::fill(&mut r) {
        Ok(()) => u64::from(u16::from_le_bytes(r)) * (full / 2) / u64::from(u16::MAX),
        Err(_) => 0,
    };
    Duration::from_millis(full - jitter)
}

/// A condition expression with its values.
pub(super) struct Condition {
    pub(super) expression: String,
    pub(super) values: Option<HashMap<String, AttributeValue>>,
}

impl Condition {
    /// The item must not exist yet.
    pub(super) fn new_item() -> Self {
        Condition {
            expression: format!("attribute_not_exists({PK})"),
            values: None,
        }
    }

    /// The stored version must be `v` (optimistic locking).
    pub(super) fn version_is(v: u64) -> Self {
        Condition {
            expression: "version = :expected".into(),
            values: Some(HashMap::from([(
                ":expected".to_string(),
                AttributeValue::N(v.to_string()),
            )])),
        }
    }
}

pub(crate) enum TxFailure {
    Conditions(Vec<CancellationReason>),
    Other(Error),
}

impl DynamoRepository {
    /// Removes a team's or project's record as the platform would, and notes its tombstone so
    /// the cleanup job deletes its VMs (operator tool and tests; in production the stream
    /// notes removals made by the platform).
    pub async fn remove_owner(&self, gone: Gone, at: Timestamp) -> Result<()> {
        let record = match gone {
            Gone::Team(t) => key(Kind::Team, &t.to_string()),
            Gone::Project(p) => key(Kind::Project, &p.to_string()),
        };
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(record))
            .send()
            .await
            .map_err(|e| map_sdk("DeleteItem", e))?;
        self.put_tombstone(&Tombstone { gone, at }).await
    }

    pub(super) fn put_vm_write(
        &self,
        vm: &VmRecord,
        condition: Option<Condition>,
    ) -> Result<TransactWriteItem> {
        let mut item = to_item(vm)?;
        vm_item_keys(vm, &mut item);
        let mut put = Put::builder().table_name(&self.table).set_item(Some(item));
        if let Some(c) = condition {
            put = put
                .condition_expression(c.expression)
                .set_expression_attribute_values(c.values);
        }
        Ok(TransactWriteItem::builder()
            .put(put.build().expect("put is complete"))
            .build())
    }

    /// A transaction put of an item that must not exist yet.
    pub(super) fn put_new_write(&self, item: HashMap<String, AttributeValue>) -> TransactWriteItem {
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
    }

    /// The pointer of a security rule to its VM (`pk = RULE#id`, `sk = RULE`), which
    /// `DELETE /api/security-rules/{id}` reads; new ids only.
    pub(super) fn put_rule_pointer_write(
        &self,
        rule: SecurityRuleId,
        vm: &VmRecord,
    ) -> TransactWriteItem {
        let mut item = key(Kind::Rule, &rule.to_string());
        item.insert("entity".into(), s("rule"));
        item.insert("vmId".into(), s(vm.id.to_string()));
        item.insert("teamId".into(), s(vm.team.to_string()));
        self.put_new_write(item)
    }

    /// Removes a security rule's pointer (unless it points at another VM).
    pub(super) fn delete_rule_pointer_write(
        &self,
        rule: SecurityRuleId,
        vm: VmId,
    ) -> TransactWriteItem {
        TransactWriteItem::builder()
            .delete(
                Delete::builder()
                    .table_name(&self.table)
                    .set_key(Some(key(Kind::Rule, &rule.to_string())))
                    .condition_expression(format!("attribute_not_exists({PK}) OR vmId = :id"))
                    .expression_attribute_values(":id", s(vm.to_string()))
                    .build()
                    .expect("delete is complete"),
            )
            .build()
    }

    pub(super) fn put_claim_write(&self, project: ProjectId, vm: &VmRecord) -> TransactWriteItem {
        let mut item = name_key(project, &vm.name);
        item.insert("entity".into(), s("name"));
        item.insert("vmId".into(), s(vm.id.to_string()));
        self.put_new_write(item)
    }

    /// Runs a transaction. One that DynamoDB cancels only because a concurrent transaction
    /// touched the same items (`TransactionConflict`, e.g. two creates of a team updating its
    /// quota usage) wrote nothing and is sent again, up to [`TRANSACTION_ATTEMPTS`] times with
    /// jittered backoff; then it is a 409 `CONCURRENT_MODIFICATION`.
    pub(crate) async fn transact(
        &self,
        writes: Vec<TransactWriteItem>,
    ) -> std::result::Result<(), TxFailure> {
        let mut attempt = 1;
        loop {
            let err = match self
                .client
                .transact_write_items()
                .set_transact_items(Some(writes.clone()))
                .send()
                .await
            {
                Ok(_) => return Ok(()),
                Err(err) => err,
            };
            let Some(TransactWriteItemsError::TransactionCanceledException(e)) =
                err.as_service_error()
            else {
                return Err(TxFailure::Other(map_sdk("TransactWriteItems", err)));
            };
            let reasons = e.cancellation_reasons().to_vec();
            if reasons.iter().any(condition_failed) {
                return Err(TxFailure::Conditions(reasons));
            }
            if !reasons.iter().any(conflicted) {
                return Err(TxFailure::Other(unavailable("TransactWriteItems", err)));
            }
            if attempt >= TRANSACTION_ATTEMPTS {
                tracing::warn!(
                    attempts = attempt,
                    "a transaction kept conflicting with concurrent ones"
                );
                return Err(TxFailure::Other(Error::conflict(
                    ConflictCode::ConcurrentModification,
                    "concurrent requests kept changing the same records; retry the request",
                )));
            }
            tracing::debug!(attempt, "transaction conflict; retrying");
            tokio::time::sleep(conflict_backoff(attempt)).await;
            attempt += 1;
        }
    }
}
