//! A VM's activity events: their items, the history page, and recording one.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::TransactWriteItem;
use vmapi_core::{EventPage, Result};
use vmapi_models::{VmEvent, VmId};

use super::base::{from_item, to_item, DynamoRepository};
use crate::errors::map_sdk;
use crate::keys::{event_key, s, Key};
use crate::table::{PK, SK};

/// The item of an event in its VM's partition.
fn event_item(event: &VmEvent) -> Result<Key> {
    let mut item = to_item(event)?;
    item.extend(event_key(event.vm_id, &event.at.to_string()));
    item.insert("entity".into(), s("event"));
    Ok(item)
}

impl DynamoRepository {
    pub(super) fn put_event_write(&self, event: &VmEvent) -> Result<TransactWriteItem> {
        Ok(self.put_new_write(event_item(event)?))
    }
}

pub(super) async fn vm_events(
    repo: &DynamoRepository,
    id: VmId,
    limit: usize,
    after: Option<&str>,
) -> Result<EventPage> {
    let pk = format!("VM#{id}");
    let start = after.map(|sk| {
        HashMap::from([
            (PK.to_string(), s(pk.clone())),
            (SK.to_string(), s(sk.to_string())),
        ])
    });
    let limit = limit.clamp(1, 1000);
    let out = repo
        .client
        .query()
        .table_name(&repo.table)
        .key_condition_expression(format!("{PK} = :pk AND begins_with({SK}, :prefix)"))
        .expression_attribute_values(":pk", s(pk))
        .expression_attribute_values(":prefix", s("EVENT#"))
        .scan_index_forward(false)
        .limit(limit as i32)
        .set_exclusive_start_key(start)
        .send()
        .await
        .map_err(|e| map_sdk("Query", e))?;
    let items: Vec<VmEvent> = out
        .items()
        .iter()
        .map(|item| from_item(item.clone()))
        .collect::<Result<_>>()?;
    // A full page may be the last one; the next (empty) page then says so.
    let next = out
        .last_evaluated_key()
        .filter(|_| items.len() == limit)
        .and_then(|k| k.get(SK)?.as_s().ok().cloned());
    Ok(EventPage { items, next })
}

pub(super) async fn record_event(repo: &DynamoRepository, event: &VmEvent) -> Result<()> {
    let item = event_item(event)?;
    repo.client
        .put_item()
        .table_name(&repo.table)
        .set_item(Some(item))
        .condition_expression(format!("attribute_not_exists({PK})"))
        .send()
        .await
        .map_err(|e| map_sdk("PutItem", e))?;
    Ok(())
}
