//! The local stream consumer against DynamoDB Local's stream: the mapping matches the template,
//! every item kind the service writes can be read back from the stream, and the consumer
//! behaves as the event source mapping (filters, LATEST, checkpoints across a restart, item
//! failures, bisect, the on-failure destination for a record that cannot be decoded).

use std::collections::{BTreeSet, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use aws_lambda_events::event::dynamodb::EventRecord;
use aws_sdk_dynamodb::types::AttributeValue;
use reqwest::Method;
use serde_json::{json, Value};
use vmapi_models::ObjectId;
use vmapi_provision::stream::api::Position;
use vmapi_provision::stream::{
    BatchHandler, CheckpointStore, Consumer, ConsumerOptions, HandlerResult, Mapping, StreamsApi,
};
use vmapi_tests::*;

mod consumer;
/// Every record of `table`'s stream so far, as raw JSON.
async fn all_records(app: &TestApp) -> Vec<Value> {
    let sdk = vmapi_aws::sdk_config().await;
    let api = StreamsApi::new(&sdk);
    let arn = app
        .repo
        .client()
        .describe_table()
        .table_name(&app.table)
        .send()
        .await
        .unwrap()
        .table
        .unwrap()
        .latest_stream_arn
        .unwrap();
    let mut out = Vec::new();
    for shard in api.shards(&arn).await.unwrap() {
        let mut it = Some(
            api.iterator(&arn, &shard.id, &Position::TrimHorizon)
                .await
                .unwrap(),
        );
        while let Some(i) = it {
            let page = api.records(&i, 1000).await.unwrap();
            if page.records.is_empty() {
                break;
            }
            out.extend(
                page.records
                    .iter()
                    .map(|r| serde_json::from_str::<Value>(r.get()).unwrap()),
            );
            it = page.next_iterator;
        }
    }
    out
}

mod mapping;
