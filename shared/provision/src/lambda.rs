//! The provisioner as a Lambda function on the table's DynamoDB Stream.

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use lambda_runtime::LambdaEvent;
use vmapi_core::{Provisioner, WorkItem};
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

/// Handles one batch: every VM with a pending operation is moved on; the sequence numbers of
/// the records that failed are reported, so Lambda retries from there (`ReportBatchItemFailures`).
pub async fn handle(
    provisioner: &Provisioner,
    event: LambdaEvent<Event>,
) -> Result<DynamoDbEventResponse, lambda_runtime::Error> {
    let items: Vec<WorkItem> = event.payload.records.iter().filter_map(work_item).collect();
    let failed = provisioner.process_batch(&items).await;
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
    let table = std::env::var("TABLE_NAME").unwrap_or_else(|_| "vm-api".into());
    let secrets_config = vmapi_secrets::SecretsConfig::from_env()?;
    let config = crate::ProvisionConfig::from_env()?;
    let sdk = vmapi_aws::sdk_config().await;
    let repo = std::sync::Arc::new(vmapi_store_dynamodb::DynamoRepository::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        table,
        vmapi_store_dynamodb::RepositoryOptions::default(),
    ));
    let secrets = vmapi_secrets::build(&secrets_config, &sdk);
    let provisioner = crate::provisioner(&config, &sdk, repo, secrets).await?;
    let provisioner = &provisioner;
    lambda_runtime::run(lambda_runtime::service_fn(move |event| {
        handle(provisioner, event)
    }))
    .await
}
