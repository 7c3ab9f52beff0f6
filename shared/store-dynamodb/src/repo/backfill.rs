//! An operator's one-off after an upgrade: VM records written before the team index (`gsi3`)
//! existed get its keys, the ones their next write would give them.

use aws_sdk_dynamodb::types::AttributeValue;
use vmapi_core::{Error, Result};
use vmapi_models::{VmId, VmRecord};

use super::base::{from_item, DynamoRepository};
use crate::errors::{condition_refused, map_sdk};
use crate::keys::{key, vm_item_keys, Key, Kind};
use crate::table::{GSI3_PK, GSI3_SK};

/// What [`DynamoRepository::backfill_team_index`] found and did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Backfill {
    /// VM records without team-index keys.
    pub missing: Vec<VmId>,
    /// Of those, the ones given the keys (none in a dry run).
    pub added: usize,
    /// Of those, the ones written by someone else meanwhile (that write gave them the keys).
    pub changed_meanwhile: usize,
}

impl DynamoRepository {
    /// Gives every VM record without team-index keys the keys it would get on its next write,
    /// so it shows in the admin list and the team's costs. A Scan of the whole table (never on a
    /// request path: `vmctl vms backfill` runs it once after the upgrade of docs/deploy.md),
    /// then per record one UpdateItem, on condition that the record still has the version read
    /// and no keys. With `dry_run` nothing is written.
    pub async fn backfill_team_index(&self, dry_run: bool) -> Result<Backfill> {
        let mut done = Backfill::default();
        let mut start: Option<Key> = None;
        loop {
            let out = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression("entity = :vm AND attribute_not_exists(#gsi3pk)")
                .expression_attribute_names("#gsi3pk", GSI3_PK)
                .expression_attribute_values(":vm", AttributeValue::S("vm".into()))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| map_sdk("Scan", e))?;
            for item in out.items.unwrap_or_default() {
                let vm: VmRecord = from_item(item)?;
                done.missing.push(vm.id);
                if dry_run {
                    continue;
                }
                if self.add_team_keys(&vm).await? {
                    done.added += 1;
                } else {
                    done.changed_meanwhile += 1;
                }
            }
            match out.last_evaluated_key {
                Some(last) => start = Some(last),
                None => break,
            }
        }
        Ok(done)
    }

    /// Sets `vm`'s team-index keys unless it changed since it was read; whether it did.
    async fn add_team_keys(&self, vm: &VmRecord) -> Result<bool> {
        let mut keys = Key::new();
        vm_item_keys(vm, &mut keys);
        let (Some(pk), Some(sk)) = (keys.remove(GSI3_PK), keys.remove(GSI3_SK)) else {
            return Err(Error::Internal {
                context: "the item keys of a VM have no team-index keys".into(),
                source: None,
            });
        };
        match self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(Kind::Vm, &vm.id.to_string())))
            .update_expression("SET #pk = :pk, #sk = :sk")
            .condition_expression("version = :version AND attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", GSI3_PK)
            .expression_attribute_names("#sk", GSI3_SK)
            .expression_attribute_values(":pk", pk)
            .expression_attribute_values(":sk", sk)
            .expression_attribute_values(":version", AttributeValue::N(vm.version.to_string()))
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if condition_refused(&e) => Ok(false),
            Err(e) => Err(map_sdk("UpdateItem", e)),
        }
    }
}
