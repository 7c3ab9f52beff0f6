//! Positioning a consumer on its stream: from the checkpoints, else at the mapping's starting
//! position.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;

use super::{BatchHandler, Consumer, ConsumerOptions, Shard, StartError};
use crate::stream::api::{ApiError, Position, StreamsApi};
use crate::stream::checkpoint::ShardState;
use crate::stream::mapping::StartingPosition;

/// The stream ARN of `table` (waits up to 10 s for the table to have one).
async fn stream_arn(ddb: &aws_sdk_dynamodb::Client, table: &str) -> Result<String, StartError> {
    let mut cause = String::new();
    for _ in 0..50 {
        match ddb.describe_table().table_name(table).send().await {
            Ok(out) => match out.table().and_then(|t| t.latest_stream_arn()) {
                Some(arn) => return Ok(arn.to_string()),
                None => cause = "the table has no stream".into(),
            },
            Err(e) => cause = format!("DescribeTable: {}", vmapi_core::ErrorChain(&e)),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(StartError::Table {
        table: table.to_string(),
        cause,
    })
}

impl<H: BatchHandler> Consumer<H> {
    /// Finds `table`'s stream and takes a position on every shard: from the checkpoints when
    /// this stream was seen before, else at the mapping's starting position. Returns once every
    /// `LATEST` position is taken, so nothing written after this returns is missed.
    pub async fn start(
        ddb: &aws_sdk_dynamodb::Client,
        api: StreamsApi,
        table: &str,
        handler: H,
        options: ConsumerOptions,
    ) -> Result<Consumer<H>, StartError> {
        let patterns = options.mapping.patterns()?;
        let stream_arn = stream_arn(ddb, table).await?;
        let known = options.checkpoints.load(&stream_arn);
        let seen = known.is_some();
        let known = known.map(|k| k.shards).unwrap_or_default();
        let mut consumer = Consumer {
            api,
            stream_arn,
            shards: BTreeMap::new(),
            handler,
            patterns,
            options,
            last_describe: Instant::now(),
        };
        for info in consumer.api.shards(&consumer.stream_arn).await? {
            let state = known.get(&info.id).cloned();
            let start = match (&state, seen, consumer.options.mapping.starting_position) {
                // A shard of a stream seen before, new since: read it whole, as Lambda reads
                // the children of a shard it has read.
                (None, true, _) => Position::TrimHorizon,
                (_, _, StartingPosition::TrimHorizon) => Position::TrimHorizon,
                (_, _, StartingPosition::Latest) => Position::Latest,
            };
            let state = state.unwrap_or_else(|| ShardState {
                checkpoint: None,
                // LATEST on a closed shard reads nothing.
                done: info.closed && start == Position::Latest && !seen,
            });
            let mut shard = Shard {
                parent: info.parent,
                state,
                start,
                iterator: None,
                errors: 0,
                retry_at: None,
            };
            if !shard.state.done
                && shard.state.checkpoint.is_none()
                && shard.start == Position::Latest
            {
                // LATEST as a concrete position: after the shard's newest record now, so a
                // restart before any new record still resumes exactly here.
                let (last, iterator) = consumer.newest(&info.id).await?;
                shard.state.checkpoint = last;
                shard.start = Position::TrimHorizon;
                shard.state.done = iterator.is_none();
                shard.iterator = iterator;
            }
            consumer.shards.insert(info.id, shard);
        }
        consumer.save();
        let positions: Vec<String> = consumer
            .shards
            .iter()
            .map(|(id, s)| match (&s.state.checkpoint, s.state.done) {
                (_, true) => format!("{id}: done"),
                (Some(seq), _) => format!("{id}: after {seq}"),
                (None, _) => format!("{id}: {}", position_name(&s.start)),
            })
            .collect();
        tracing::info!(
            stream = %consumer.stream_arn,
            shards = %positions.join(", "),
            checkpoints = %consumer.options.checkpoints.path().map(|p| p.display().to_string()).unwrap_or_else(|| "memory".into()),
            on_failure = %consumer.options.failures.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "log only".into()),
            "stream consumer positioned"
        );
        Ok(consumer)
    }

    /// The sequence number of the shard's newest record (none in an empty shard) and an
    /// iterator just after it, found by reading the shard to its current end.
    async fn newest(&self, shard: &str) -> Result<(Option<String>, Option<String>), ApiError> {
        let mut last = None;
        let mut iterator = Some(
            self.api
                .iterator(&self.stream_arn, shard, &Position::TrimHorizon)
                .await?,
        );
        while let Some(it) = iterator.clone() {
            let page = self.api.records(&it, 1000).await?;
            if let Some(seq) = page
                .records
                .last()
                .and_then(|r| serde_json::from_str::<Value>(r.get()).ok())
                .and_then(|r| r["dynamodb"]["SequenceNumber"].as_str().map(str::to_string))
            {
                last = Some(seq);
            }
            let empty = page.records.is_empty();
            iterator = page.next_iterator;
            if empty {
                break;
            }
        }
        Ok((last, iterator))
    }

    /// The stream being read.
    pub fn stream_arn(&self) -> &str {
        &self.stream_arn
    }
}

fn position_name(p: &Position) -> &'static str {
    match p {
        Position::Latest => "LATEST",
        Position::TrimHorizon => "TRIM_HORIZON",
        Position::After(_) => "AFTER_SEQUENCE_NUMBER",
        Position::At(_) => "AT_SEQUENCE_NUMBER",
    }
}
