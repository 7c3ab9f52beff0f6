//! What a consumer hands its batches to.

use async_trait::async_trait;
use aws_lambda_events::event::dynamodb::EventRecord;

/// What a batch of records came to.
pub type HandlerResult = Result<Vec<String>, String>;

/// The function a consumer invokes: `Ok` with the sequence numbers of the records that failed
/// (`ReportBatchItemFailures`), or `Err` for a function error (the whole batch failed).
#[async_trait]
pub trait BatchHandler: Send + Sync {
    /// Handles one batch.
    async fn handle(&self, records: Vec<EventRecord>) -> HandlerResult;
}
