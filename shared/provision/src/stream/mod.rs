//! The table's DynamoDB Stream, consumed locally (the local run and tests) the way the
//! provisioner's event source mapping consumes it in AWS: [`Consumer`] follows [`Mapping`], reads
//! raw records through [`StreamsApi`], and hands the provisioner the same batches Lambda would,
//! through the same handler ([`crate::lambda::handle`]). docs/local-run.md says where the two
//! still differ.

pub mod api;
pub mod checkpoint;
pub mod consumer;
pub mod filter;
pub mod mapping;

use async_trait::async_trait;
use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use lambda_runtime::{Context, LambdaEvent};
use vmapi_core::Provisioner;

pub use api::StreamsApi;
pub use checkpoint::CheckpointStore;
pub use consumer::{BatchHandler, Consumer, ConsumerOptions, HandlerResult, StartError};
pub use mapping::Mapping;

/// The provisioner function's handler as a [`BatchHandler`].
pub struct ProvisionerHandler(pub Provisioner);

#[async_trait]
impl BatchHandler for ProvisionerHandler {
    async fn handle(&self, records: Vec<EventRecord>) -> HandlerResult {
        let mut event = Event::default();
        event.records = records;
        crate::lambda::handle(&self.0, LambdaEvent::new(event, Context::default()))
            .await
            .map(|r| {
                r.batch_item_failures
                    .into_iter()
                    .filter_map(|f| f.item_identifier)
                    .collect()
            })
            .map_err(|e| vmapi_core::ErrorChain(&*e).to_string())
    }
}

/// Positions a consumer on `table`'s stream for `provisioner` (see [`Consumer::start`]).
pub async fn provisioner_consumer(
    sdk: &aws_config::SdkConfig,
    ddb: &aws_sdk_dynamodb::Client,
    table: &str,
    provisioner: Provisioner,
    options: ConsumerOptions,
) -> Result<Consumer<ProvisionerHandler>, StartError> {
    Consumer::start(
        ddb,
        StreamsApi::new(sdk),
        table,
        ProvisionerHandler(provisioner),
        options,
    )
    .await
}
