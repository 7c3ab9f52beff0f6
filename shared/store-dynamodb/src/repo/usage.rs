//! Per-team usage counters (VMs, vCPUs) for quotas, written in the same transaction as the VMs.

use aws_sdk_dynamodb::types::{
    AttributeValue, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use vmapi_core::Result;
use vmapi_core::Usage;
use vmapi_models::TeamId;

use super::base::DynamoRepository;
use crate::errors::map_sdk;
use crate::keys::usage_key;
use crate::keys::{s, Key};

/// Attribute of the usage item: the team's active VMs.
const USAGE_VMS: &str = "activeVms";

/// Attribute of the usage item: their vCPUs.
const USAGE_VCPUS: &str = "vcpus";

/// The usage an item records (absent attributes are 0).
pub(super) fn usage_of(item: &Key) -> Usage {
    let n = |k: &str| {
        item.get(k)
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse::<i64>().ok())
            .map_or(0, |n| n.max(0) as u64)
    };
    Usage {
        active_vms: n(USAGE_VMS),
        vcpus: n(USAGE_VCPUS),
    }
}

impl DynamoRepository {
    /// An update of a team's quota usage item: `ADD` the deltas; with `room`, only if the
    /// usage before is at most `room` (the limits minus what is added), returning the old
    /// item when not.
    pub(super) fn usage_write(
        &self,
        team: TeamId,
        vms: i64,
        vcpus: i64,
        room: Option<Usage>,
    ) -> TransactWriteItem {
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(usage_key(team)))
            .update_expression("SET #entity = :entity ADD #vms :vms, #vcpus :vcpus")
            .expression_attribute_names("#entity", "entity")
            .expression_attribute_names("#vms", USAGE_VMS)
            .expression_attribute_names("#vcpus", USAGE_VCPUS)
            .expression_attribute_values(":entity", s("usage"))
            .expression_attribute_values(":vms", AttributeValue::N(vms.to_string()))
            .expression_attribute_values(":vcpus", AttributeValue::N(vcpus.to_string()));
        if let Some(room) = room {
            update = update
                .condition_expression(
                    "attribute_not_exists(#vms) OR (#vms <= :maxVms AND #vcpus <= :maxVcpus)",
                )
                .expression_attribute_values(
                    ":maxVms",
                    AttributeValue::N(room.active_vms.to_string()),
                )
                .expression_attribute_values(":maxVcpus", AttributeValue::N(room.vcpus.to_string()))
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                );
        }
        TransactWriteItem::builder()
            .update(update.build().expect("update is complete"))
            .build()
    }

    /// A team's quota usage as stored (a strongly consistent read; `None` when it has none).
    pub async fn usage(&self, team: TeamId) -> Result<Option<Usage>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(usage_key(team)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| map_sdk("GetItem", e))?;
        Ok(out.item.as_ref().map(usage_of))
    }
}
