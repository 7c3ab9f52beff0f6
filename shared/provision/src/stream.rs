//! A DynamoDB Stream poller for local runs and tests: reads the table's stream (DynamoDB Local
//! serves one) and hands each batch to the same provisioner the Lambda function runs, so the
//! local run provisions through the same path, not a shortcut.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use aws_sdk_dynamodbstreams::types::{AttributeValue, Record, ShardIteratorType};
use vmapi_core::{Provisioner, WorkItem};
use vmapi_models::VmId;

/// A streams client for the endpoint DynamoDB uses (`AWS_ENDPOINT_URL_DYNAMODB_STREAMS`, else
/// `AWS_ENDPOINT_URL_DYNAMODB`: DynamoDB Local serves both on one port).
pub fn streams_client(sdk: &aws_config::SdkConfig) -> aws_sdk_dynamodbstreams::Client {
    let mut conf = aws_sdk_dynamodbstreams::config::Builder::from(sdk);
    if std::env::var("AWS_ENDPOINT_URL_DYNAMODB_STREAMS").is_err() {
        if let Ok(url) = std::env::var("AWS_ENDPOINT_URL_DYNAMODB") {
            conf = conf.endpoint_url(url);
        }
    }
    aws_sdk_dynamodbstreams::Client::from_conf(conf.build())
}

/// The VM a stream record is about, when it is a VM with a pending operation.
pub fn work_item(record: &Record) -> Option<WorkItem> {
    let change = record.dynamodb()?;
    let text = |m: Option<&HashMap<String, AttributeValue>>, k: &str| {
        m.and_then(|m| m.get(k))
            .and_then(|v| v.as_s().ok())
            .cloned()
    };
    if text(change.keys(), "sk").as_deref() != Some("VM") {
        return None;
    }
    if !change
        .new_image()
        .is_some_and(|i| i.contains_key("pendingOp"))
    {
        return None;
    }
    let vm = VmId::parse(text(change.keys(), "pk")?.strip_prefix("VM#")?).ok()?;
    Some(WorkItem {
        sequence: change.sequence_number().unwrap_or_default().to_string(),
        vm,
    })
}

/// The sequence number and the removed team or project of a `REMOVE` record.
fn removed_of(record: &Record) -> Option<(&str, vmapi_core::Gone)> {
    let change = record.dynamodb()?;
    let key = |k: &str| change.keys()?.get(k)?.as_s().ok().map(String::as_str);
    let gone = crate::lambda::removed(record.event_name()?.as_str(), key("pk")?, key("sk")?)?;
    Some((change.sequence_number().unwrap_or_default(), gone))
}

/// Polls the stream of `table` until `shutdown` completes, provisioning as records arrive.
pub async fn run(
    ddb: aws_sdk_dynamodb::Client,
    streams: aws_sdk_dynamodbstreams::Client,
    table: String,
    provisioner: Provisioner,
    shutdown: impl Future<Output = ()>,
) {
    tokio::select! {
        _ = shutdown => {}
        _ = poll_forever(&ddb, &streams, &table, &provisioner) => {}
    }
}

async fn poll_forever(
    ddb: &aws_sdk_dynamodb::Client,
    streams: &aws_sdk_dynamodbstreams::Client,
    table: &str,
    provisioner: &Provisioner,
) {
    let mut iterators: HashMap<String, Option<String>> = HashMap::new();
    let mut arn: Option<String> = None;
    let mut last_describe = tokio::time::Instant::now() - Duration::from_secs(60);
    loop {
        if arn.is_none() {
            match ddb.describe_table().table_name(table).send().await {
                Ok(out) => {
                    arn = out
                        .table()
                        .and_then(|t| t.latest_stream_arn())
                        .map(str::to_string)
                }
                Err(e) => tracing::warn!(error = %e, "stream poller: cannot describe the table"),
            }
            if arn.is_none() {
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        }
        let stream_arn = arn.clone().unwrap_or_default();
        // New shards appear over time; look for them now and then.
        if last_describe.elapsed() > Duration::from_secs(2) {
            last_describe = tokio::time::Instant::now();
            if let Ok(out) = streams
                .describe_stream()
                .stream_arn(&stream_arn)
                .send()
                .await
            {
                for shard in out
                    .stream_description()
                    .map(|d| d.shards())
                    .unwrap_or_default()
                {
                    let Some(id) = shard.shard_id() else { continue };
                    if iterators.contains_key(id) {
                        continue;
                    }
                    let it = streams
                        .get_shard_iterator()
                        .stream_arn(&stream_arn)
                        .shard_id(id)
                        .shard_iterator_type(ShardIteratorType::TrimHorizon)
                        .send()
                        .await
                        .ok()
                        .and_then(|o| o.shard_iterator().map(str::to_string));
                    iterators.insert(id.to_string(), it);
                }
            }
        }
        let mut idle = true;
        let shard_ids: Vec<String> = iterators.keys().cloned().collect();
        for shard in shard_ids {
            let Some(Some(iterator)) = iterators.get(&shard).cloned() else {
                continue;
            };
            match streams.get_records().shard_iterator(&iterator).send().await {
                Ok(out) => {
                    let items: Vec<WorkItem> = out.records().iter().filter_map(work_item).collect();
                    let gone: Vec<(&str, vmapi_core::Gone)> =
                        out.records().iter().filter_map(removed_of).collect();
                    if !gone.is_empty() {
                        idle = false;
                        let failed = crate::lambda::note_removed(provisioner, gone).await;
                        if !failed.is_empty() {
                            tracing::warn!(
                                count = failed.len(),
                                "stream poller: removals not noted; `vmctl remove` notes them too"
                            );
                        }
                    }
                    if !items.is_empty() {
                        idle = false;
                        let mut failed = provisioner.process_batch(&items).await;
                        for _ in 0..3 {
                            if failed.is_empty() {
                                break;
                            }
                            tokio::time::sleep(Duration::from_secs(1)).await;
                            let retry: Vec<WorkItem> = items
                                .iter()
                                .filter(|i| failed.contains(&i.sequence))
                                .cloned()
                                .collect();
                            failed = provisioner.process_batch(&retry).await;
                        }
                        if !failed.is_empty() {
                            tracing::warn!(count = failed.len(), "stream poller: records still failing; the cleanup job reconciles them");
                        }
                    }
                    iterators.insert(shard, out.next_shard_iterator().map(str::to_string));
                }
                Err(e) => {
                    tracing::warn!(error = %e, shard = %shard, "stream poller: GetRecords failed");
                    iterators.remove(&shard);
                }
            }
        }
        if idle {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
