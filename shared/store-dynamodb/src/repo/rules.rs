//! Security rules: a VM's rule set written with its rule pointers, and a rule's owner.

use vmapi_core::{Error, Result, RuleChange, RuleOwner};
use vmapi_models::TeamId;
use vmapi_models::{SecurityRuleId, VmEvent, VmId, VmRecord};

use super::base::DynamoRepository;
use super::transact::{condition_failed, Condition, TxFailure};
use crate::errors::map_sdk;
use crate::keys::{key, Kind};

pub(super) async fn replace_vm_rules(
    repo: &DynamoRepository,
    vm: &VmRecord,
    expected_version: u64,
    change: RuleChange,
    event: &VmEvent,
) -> Result<()> {
    let pointer = match change {
        RuleChange::Added(rule) => repo.put_rule_pointer_write(rule, vm),
        RuleChange::Removed(rule) => repo.delete_rule_pointer_write(rule, vm.id),
    };
    let writes = vec![
        repo.put_vm_write(vm, Some(Condition::version_is(expected_version)))?,
        pointer,
        repo.put_event_write(event)?,
    ];
    match repo.transact(writes).await {
        Ok(()) => Ok(()),
        Err(TxFailure::Other(e)) => Err(e),
        Err(TxFailure::Conditions(reasons)) => {
            if reasons.first().is_some_and(condition_failed) {
                Err(Error::VersionConflict)
            } else {
                Err(Error::internal(
                    "changing a VM's security rules",
                    "the rule's pointer already existed or belongs to another VM",
                ))
            }
        }
    }
}

pub(super) async fn rule_owner(
    repo: &DynamoRepository,
    rule: SecurityRuleId,
) -> Result<Option<RuleOwner>> {
    let out = repo
        .client
        .get_item()
        .table_name(&repo.table)
        .set_key(Some(key(Kind::Rule, &rule.to_string())))
        // Written in the same transaction as its VM: read what that transaction wrote.
        .consistent_read(true)
        .send()
        .await
        .map_err(|e| map_sdk("GetItem", e))?;
    let Some(item) = out.item else {
        return Ok(None);
    };
    let field = |name: &str| item.get(name).and_then(|v| v.as_s().ok());
    match (
        field("vmId").and_then(|v| VmId::parse(v).ok()),
        field("teamId").and_then(|t| t.parse::<TeamId>().ok()),
    ) {
        (Some(vm), Some(team)) => Ok(Some(RuleOwner { vm, team })),
        _ => Err(Error::internal(
            "reading a security rule's pointer",
            "the pointer item lacks vmId or teamId",
        )),
    }
}
