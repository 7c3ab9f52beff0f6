//! The local stream consumer: reads a table's DynamoDB Stream as the event source mapping of
//! template.yaml would (see [`Mapping`](crate::stream::Mapping)) and hands batches to a
//! [`BatchHandler`].
//!
//! What it does, as Lambda does it:
//! - the filter patterns are applied to each record's raw JSON before anything is decoded;
//!   records that do not pass are skipped, and the checkpoint moves past them;
//! - on a stream it has not seen it starts at the mapping's starting position; otherwise at
//!   its checkpoint per shard (the last record it is done with), also after a restart;
//! - a batch is at most `BatchSize` passing records of one shard, delivered in order; a batch
//!   with item failures is retried from the first failed record, a function error bisects the
//!   batch (when `BisectBatchOnFunctionError`), and a record range still failing after
//!   `MaximumRetryAttempts` retries, a record older than `MaximumRecordAgeInSeconds` and a record
//!   that cannot be decoded go to the on-failure destination, and the consumer moves on;
//! - an API error never rewinds: the next read takes a fresh iterator after the checkpoint;
//! - a child shard is read only after its parent is read to its end (or gone from the stream).
//!
//! The consumer's state and positions are kept here; `start` positions it, `read` reads the
//! shards, `deliver` hands their records to the handler in batches, and `failure` sends what
//! could not be delivered to the on-failure destination.

mod deliver;
mod failure;
mod handler;
mod options;
mod read;
mod start;

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;

use crate::stream::api::{Position, StreamsApi};
use crate::stream::checkpoint::{Checkpoints, ShardState};
use crate::stream::filter::Pattern;

pub use handler::{BatchHandler, HandlerResult};
pub use options::{ConsumerOptions, StartError};

#[derive(Debug)]
struct Shard {
    parent: Option<String>,
    state: ShardState,
    /// Where to read when there is no checkpoint yet.
    start: Position,
    iterator: Option<String>,
    /// Consecutive failed reads, and when the next read may be tried.
    errors: u32,
    retry_at: Option<Instant>,
}

/// A consumer positioned on its stream; [`Consumer::run`] reads until shut down.
pub struct Consumer<H> {
    api: StreamsApi,
    stream_arn: String,
    shards: BTreeMap<String, Shard>,
    handler: H,
    patterns: Vec<Pattern>,
    options: ConsumerOptions,
    last_describe: Instant,
}

impl<H: BatchHandler> Consumer<H> {
    fn checkpoint(&mut self, id: &str, seq: &str) {
        if seq.is_empty() {
            return;
        }
        if let Some(shard) = self.shards.get_mut(id) {
            if shard.state.checkpoint.as_deref() != Some(seq) {
                shard.state.checkpoint = Some(seq.to_string());
                self.save();
            }
        }
    }

    fn save(&self) {
        let positions = Checkpoints {
            stream_arn: self.stream_arn.clone(),
            shards: self
                .shards
                .iter()
                .map(|(id, s)| (id.clone(), s.state.clone()))
                .collect(),
        };
        if let Err(e) = self.options.checkpoints.save(&positions) {
            tracing::warn!(error = %e, "stream consumer: cannot write the checkpoint file; positions are kept in memory");
        }
    }
}

/// `base`, doubled for each attempt after the first, at most `cap`.
fn backoff(base: Duration, attempt: u32, cap: Duration) -> Duration {
    base.saturating_mul(1 << attempt.saturating_sub(1).min(16))
        .min(cap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let base = Duration::from_millis(100);
        let cap = Duration::from_secs(2);
        assert_eq!(backoff(base, 1, cap), base);
        assert_eq!(backoff(base, 2, cap), Duration::from_millis(200));
        assert_eq!(backoff(base, 4, cap), Duration::from_millis(800));
        assert_eq!(backoff(base, 9, cap), cap);
        assert_eq!(backoff(base, 60, cap), cap);
    }
}
