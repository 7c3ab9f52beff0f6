//! The provisioner as a Lambda function on the table's DynamoDB Stream.

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use lambda_runtime::LambdaEvent;
use vmapi_core::{Gone, Provisioner, WorkItem};
use vmapi_models::VmId;

/// The VM a stream record is about, when it is a VM with a pending operation.
pub fn work_item(record: &EventRecord) -> Option<WorkItem> {
    use serde_dynamo::AttributeValue as A;
    let text = |item: &serde_dynamo::Item, k: &str| match item.get(k) {
        Some(A::S(s)) => Some(s.clone()),
        _ => None,
    };
    let keys = &record.change.keys;
    if text(keys, "sk").as_deref() != Some("VM") {
        return None;
    }
    if !record.change.new_image.contains_key("pendingOp") {
        return None;
    }
    let vm = VmId::parse(text(keys, "pk")?.strip_prefix("VM#")?).ok()?;
    Some(WorkItem {
        sequence: record.change.sequence_number.clone().unwrap_or_default(),
        vm,
    })
}

/// The team or project whose item a `REMOVE` record is about (the platform removed it).
pub fn removed(event_name: &str, pk: &str, sk: &str) -> Option<Gone> {
    if event_name != "REMOVE" {
        return None;
    }
    match (sk, pk.split_once('#')?) {
        ("TEAM", ("TEAM", id)) => id.parse().ok().map(Gone::Team),
        ("PROJECT", ("PROJECT", id)) => id.parse().ok().map(Gone::Project),
        _ => None,
    }
}

fn removed_of(record: &EventRecord) -> Option<Gone> {
    use serde_dynamo::AttributeValue as A;
    let text = |k: &str| match record.change.keys.get(k) {
        Some(A::S(s)) => Some(s.as_str()),
        _ => None,
    };
    removed(&record.event_name, text("pk")?, text("sk")?)
}

/// Writes a tombstone for each removed team or project; returns the sequence numbers of the
/// records whose tombstone could not be written.
pub async fn note_removed<'a>(
    provisioner: &Provisioner,
    removed: impl IntoIterator<Item = (&'a str, Gone)>,
) -> Vec<String> {
    let mut failed = Vec::new();
    for (sequence, gone) in removed {
        if let Err(e) = provisioner.note_gone(gone).await {
            tracing::warn!(gone = %gone, error = %vmapi_core::ErrorChain(&e), "could not note a removal; the stream retries");
            failed.push(sequence.to_string());
        }
    }
    failed
}

/// Handles one batch: every VM with a pending operation is moved on, and every removed team or
/// project gets a tombstone; the sequence numbers of the records that failed are reported, so
/// Lambda retries from there (`ReportBatchItemFailures`).
pub async fn handle(
    provisioner: &Provisioner,
    event: LambdaEvent<Event>,
) -> Result<DynamoDbEventResponse, lambda_runtime::Error> {
    let items: Vec<WorkItem> = event.payload.records.iter().filter_map(work_item).collect();
    let mut failed = provisioner.process_batch(&items).await;
    let gone: Vec<(&str, Gone)> = event
        .payload
        .records
        .iter()
        .filter_map(|r| {
            Some((
                r.change.sequence_number.as_deref().unwrap_or_default(),
                removed_of(r)?,
            ))
        })
        .collect();
    failed.extend(note_removed(provisioner, gone).await);
    tracing::info!(
        records = event.payload.records.len(),
        vms = items.len(),
        failed = failed.len(),
        "stream batch processed"
    );
    let mut response = DynamoDbEventResponse::default();
    response.batch_item_failures = failed
        .into_iter()
        .map(|seq| {
            let mut f = DynamoDbBatchItemFailure::default();
            f.item_identifier = Some(seq);
            f
        })
        .collect();
    Ok(response)
}

/// Builds everything once per cold start and serves stream batches until the runtime stops.
pub async fn run() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let (_, provisioner) = crate::from_env(&vmapi_config::Env::process()).await?;
    let provisioner =
        provisioner.with_metrics(std::sync::Arc::new(vmapi_aws::emf::Emf::from_env()));
    let provisioner = &provisioner;
    vmapi_aws::runtime::quiet_on_close(
        lambda_runtime::run(lambda_runtime::service_fn(move |event| {
            handle(provisioner, event)
        }))
        .await,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_removals_of_team_and_project_records_are_tombstones() {
        let team = "6548a41f38406c14db33b61e";
        assert_eq!(
            removed("REMOVE", &format!("TEAM#{team}"), "TEAM"),
            Some(Gone::Team(team.parse().unwrap()))
        );
        assert_eq!(
            removed("REMOVE", &format!("PROJECT#{team}"), "PROJECT"),
            Some(Gone::Project(team.parse().unwrap()))
        );
        // Not a removal, not the record itself, not a team or project, not an id.
        assert_eq!(removed("MODIFY", &format!("TEAM#{team}"), "TEAM"), None);
        assert_eq!(
            removed("REMOVE", &format!("TEAM#{team}"), &format!("USES#{team}")),
            None
        );
        assert_eq!(removed("REMOVE", &format!("VM#{team}"), "VM"), None);
        assert_eq!(removed("REMOVE", "TEAM#nope", "TEAM"), None);
    }
}
