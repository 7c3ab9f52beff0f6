//! The local stream consumer: reads a table's DynamoDB Stream as the event source mapping of
//! template.yaml would (see [`Mapping`]) and hands batches to a [`BatchHandler`].
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

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use aws_lambda_events::event::dynamodb::EventRecord;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use tokio::time::Instant;

use super::api::{ApiError, Position, StreamsApi};
use super::checkpoint::{CheckpointStore, Checkpoints, ShardState};
use super::filter::{passes, Pattern, PatternError};
use super::mapping::{Mapping, StartingPosition};

/// What a batch of records came to.
pub type HandlerResult = Result<Vec<String>, String>;

/// The function a consumer invokes: `Ok` with the sequence numbers of the records that failed
/// (`ReportBatchItemFailures`), or `Err` for a function error (the whole batch failed).
#[async_trait]
pub trait BatchHandler: Send + Sync {
    /// Handles one batch.
    async fn handle(&self, records: Vec<EventRecord>) -> HandlerResult;
}

/// Settings of a consumer beyond the mapping.
#[derive(Debug, Clone)]
pub struct ConsumerOptions {
    /// The event source mapping to follow.
    pub mapping: Mapping,
    /// Where positions are kept.
    pub checkpoints: CheckpointStore,
    /// The on-failure destination: a JSON Lines file (one Lambda-style failure record a line),
    /// or only the log.
    pub failures: Option<PathBuf>,
    /// The first retry's delay; each retry doubles it, up to 2 s.
    pub retry_delay: Duration,
    /// The pause after a round that read nothing.
    pub idle_delay: Duration,
    /// How often the shard list is refreshed.
    pub describe_every: Duration,
    /// Records per `GetRecords` call (1000, the API's maximum: a busy stream is read in few,
    /// large pages, so the lanes have work in every page).
    pub read_limit: usize,
}

impl ConsumerOptions {
    /// The provisioner's mapping, positions in memory, failures only logged.
    pub fn new(mapping: Mapping) -> ConsumerOptions {
        ConsumerOptions {
            mapping,
            checkpoints: CheckpointStore::memory(),
            failures: None,
            retry_delay: Duration::from_millis(100),
            idle_delay: Duration::from_millis(200),
            describe_every: Duration::from_secs(2),
            read_limit: 1000,
        }
    }
}

/// Why a consumer could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A pattern of the mapping cannot be used.
    #[error(transparent)]
    Pattern(#[from] PatternError),
    /// The table has no stream, or cannot be described.
    #[error("table {table}: {cause}")]
    Table { table: String, cause: String },
    /// The stream cannot be read.
    #[error(transparent)]
    Api(#[from] ApiError),
}

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

/// One record that passed the filters and decoded.
struct Delivered {
    seq: String,
    record: EventRecord,
    /// What the on-failure destination needs of it ([`outline`]), not the whole record.
    outline: Value,
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

    /// Reads and delivers until `shutdown` completes.
    pub async fn run(mut self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            let busy = tokio::select! {
                _ = &mut shutdown => return,
                busy = self.round() => busy,
            };
            if !busy {
                tokio::select! {
                    _ = &mut shutdown => return,
                    _ = tokio::time::sleep(self.options.idle_delay) => {}
                }
            }
        }
    }

    /// One pass over the readable shards; whether any record was read.
    pub async fn round(&mut self) -> bool {
        if self.last_describe.elapsed() >= self.options.describe_every {
            self.refresh_shards().await;
        }
        let mut busy = false;
        let ids: Vec<String> = self.shards.keys().cloned().collect();
        for id in ids {
            if self.readable(&id) {
                busy |= self.read_shard(&id).await;
            }
        }
        busy
    }

    /// Not done, not waiting out an error, and its parent (if still listed) read to its end.
    fn readable(&self, id: &str) -> bool {
        let Some(shard) = self.shards.get(id) else {
            return false;
        };
        if shard.state.done || shard.retry_at.is_some_and(|t| Instant::now() < t) {
            return false;
        }
        match shard.parent.as_deref().and_then(|p| self.shards.get(p)) {
            Some(parent) => parent.state.done,
            None => true,
        }
    }

    async fn refresh_shards(&mut self) {
        self.last_describe = Instant::now();
        match self.api.shards(&self.stream_arn).await {
            Ok(list) => {
                let mut added = false;
                for info in list {
                    if self.shards.contains_key(&info.id) {
                        continue;
                    }
                    tracing::info!(shard = %info.id, parent = ?info.parent, "stream consumer: new shard, read from its start once its parent is done");
                    self.shards.insert(
                        info.id,
                        Shard {
                            parent: info.parent,
                            state: ShardState::default(),
                            start: Position::TrimHorizon,
                            iterator: None,
                            errors: 0,
                            retry_at: None,
                        },
                    );
                    added = true;
                }
                if added {
                    self.save();
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "stream consumer: cannot list the stream's shards; retrying")
            }
        }
    }

    /// Reads one page of shard `id` and delivers it; whether it held records.
    async fn read_shard(&mut self, id: &str) -> bool {
        let iterator = match self.iterator(id).await {
            Ok(it) => it,
            Err(e) => {
                self.read_failed(id, &e);
                return false;
            }
        };
        let page = match self.api.records(&iterator, self.options.read_limit).await {
            Ok(page) => page,
            Err(e) => {
                self.read_failed(id, &e);
                return false;
            }
        };
        let shard = self.shards.get_mut(id).expect("a listed shard");
        if shard.errors > 0 {
            tracing::info!(shard = %id, "stream consumer: reading again");
        }
        shard.errors = 0;
        shard.retry_at = None;
        let busy = !page.records.is_empty();
        self.deliver_page(id, page.records).await;
        let shard = self.shards.get_mut(id).expect("a listed shard");
        match page.next_iterator {
            Some(next) => shard.iterator = Some(next),
            None => {
                shard.iterator = None;
                shard.state.done = true;
                tracing::info!(shard = %id, "stream consumer: shard closed and read to its end");
                self.save();
            }
        }
        busy
    }

    /// The shard's iterator: the current one, else a new one after its checkpoint (never an
    /// earlier position), else at its start.
    async fn iterator(&mut self, id: &str) -> Result<String, ApiError> {
        let shard = self.shards.get(id).expect("a listed shard");
        if let Some(it) = &shard.iterator {
            return Ok(it.clone());
        }
        let position = match &shard.state.checkpoint {
            Some(seq) => Position::After(seq.clone()),
            None => shard.start.clone(),
        };
        let it = self.api.iterator(&self.stream_arn, id, &position).await?;
        self.shards.get_mut(id).expect("a listed shard").iterator = Some(it.clone());
        Ok(it)
    }

    /// Drops the iterator (the next read starts after the checkpoint) and waits before the
    /// next try, longer with each consecutive failure.
    fn read_failed(&mut self, id: &str, e: &ApiError) {
        let shard = self.shards.get_mut(id).expect("a listed shard");
        shard.iterator = None;
        match e.code() {
            // Iterators live 15 minutes; a fresh one after the checkpoint is all it takes.
            Some("ExpiredIteratorException") => {
                tracing::info!(shard = %id, "stream consumer: shard iterator expired; taking a new one after the checkpoint");
                return;
            }
            Some("TrimmedDataAccessException") => {
                tracing::warn!(shard = %id, checkpoint = ?shard.state.checkpoint, error = %e, "stream consumer: records past the checkpoint were trimmed from the stream (older than 24 h); reading from the oldest record left");
                shard.state.checkpoint = None;
                shard.start = Position::TrimHorizon;
                return;
            }
            _ => {}
        }
        shard.errors += 1;
        let delay = backoff(
            Duration::from_millis(500),
            shard.errors,
            Duration::from_secs(10),
        );
        shard.retry_at = Some(Instant::now() + delay);
        // The first failure and every tenth are warnings; the ones between are routine.
        if shard.errors == 1 || shard.errors.is_multiple_of(10) {
            tracing::warn!(shard = %id, failures = shard.errors, retry_in_ms = delay.as_millis() as u64, error = %e, "stream consumer: reading the shard failed; retrying after the checkpoint");
        } else {
            tracing::debug!(shard = %id, failures = shard.errors, error = %e, "stream consumer: reading the shard failed again");
        }
    }

    /// Filters, decodes and delivers one page, then moves the checkpoint to its last record.
    /// Passing records go to one of `ParallelizationFactor` lanes by partition key, so the
    /// records of one key stay in order (as Lambda keeps them); lanes run concurrently, each
    /// in batches of `BatchSize`. Records too old or not decodable go to the on-failure
    /// destination as they are met.
    async fn deliver_page(&mut self, id: &str, records: Vec<Box<RawValue>>) {
        let lane_count = self.options.mapping.parallelization_factor.max(1);
        let mut lanes: Vec<Vec<Delivered>> = (0..lane_count).map(|_| Vec::new()).collect();
        let mut last = None;
        for text in records {
            // One record's tree at a time.
            let mut raw: Value = match serde_json::from_str(text.get()) {
                Ok(raw) => raw,
                Err(e) => {
                    let cause = format!("the record is not JSON: {e}");
                    self.failed(id, &[json!({})], "RecordUndecodable", &cause);
                    continue;
                }
            };
            drop(text);
            let seq = raw["dynamodb"]["SequenceNumber"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            last = Some(seq.clone());
            if !passes(&self.patterns, &raw) {
                continue;
            }
            if let Some(age) = record_age(&raw) {
                if age > self.options.mapping.maximum_record_age {
                    let cause = format!("older than {} s", age.as_secs());
                    self.failed(id, std::slice::from_ref(&raw), "RecordAgeExceeded", &cause);
                    continue;
                }
            }
            raw["eventSourceARN"] = json!(self.stream_arn);
            // Kept small: a page holds up to 1000 records with their images.
            let outline = outline(&raw);
            let lane = lane_of(&raw, lane_count);
            match serde_json::from_value::<EventRecord>(raw) {
                Ok(record) => lanes[lane].push(Delivered {
                    seq,
                    record,
                    outline,
                }),
                Err(e) => {
                    let cause =
                        format!("the record does not decode as a DynamoDB stream event: {e}");
                    self.failed(
                        id,
                        std::slice::from_ref(&outline),
                        "RecordUndecodable",
                        &cause,
                    );
                }
            }
        }
        let this = &*self;
        let batch_size = this.options.mapping.batch_size.max(1);
        futures_util::future::join_all(lanes.iter().filter(|l| !l.is_empty()).map(
            |lane| async move {
                for batch in lane.chunks(batch_size) {
                    this.deliver(id, batch).await;
                }
            },
        ))
        .await;
        if let Some(seq) = last {
            self.checkpoint(id, &seq);
        }
    }

    /// Delivers `records` until each range succeeded or went to the on-failure destination.
    async fn deliver(&self, id: &str, records: &[Delivered]) {
        let mapping = self.options.mapping.clone();
        // Ranges still to deliver, the next one last.
        let mut ranges = vec![(0usize, records.len())];
        while let Some((mut start, end)) = ranges.pop() {
            let mut attempts = 0u32;
            while start < end {
                let batch: Vec<EventRecord> = records[start..end]
                    .iter()
                    .map(|d| d.record.clone())
                    .collect();
                let cause = match self.handler.handle(batch).await {
                    Ok(failed) if failed.is_empty() || !mapping.report_batch_item_failures => break,
                    Ok(failed) => {
                        let first = (start..end).find(|&i| failed.contains(&records[i].seq));
                        match first {
                            // Retry from the first failed record; the ones before it are done.
                            Some(i) if i > start => {
                                start = i;
                                attempts = 0;
                                continue;
                            }
                            _ => format!("{} record(s) reported failed", failed.len()),
                        }
                    }
                    Err(e) if mapping.bisect_on_error && end - start > 1 => {
                        let mid = start + (end - start) / 2;
                        tracing::info!(shard = %id, records = end - start, error = %e, "stream consumer: function error; bisecting the batch");
                        ranges.push((mid, end));
                        ranges.push((start, mid));
                        break;
                    }
                    Err(e) => format!("function error: {e}"),
                };
                attempts += 1;
                if attempts > mapping.maximum_retry_attempts {
                    self.failed(
                        id,
                        &records[start..end]
                            .iter()
                            .map(|d| d.outline.clone())
                            .collect::<Vec<_>>(),
                        "RetryAttemptsExhausted",
                        &cause,
                    );
                    break;
                }
                if attempts == 1 {
                    tracing::warn!(shard = %id, first = %records[start].seq, records = end - start, retries = mapping.maximum_retry_attempts, error = %cause, "stream consumer: batch failed; retrying");
                } else {
                    tracing::debug!(shard = %id, first = %records[start].seq, attempt = attempts, error = %cause, "stream consumer: batch failed again");
                }
                tokio::time::sleep(backoff(
                    self.options.retry_delay,
                    attempts,
                    Duration::from_secs(2),
                ))
                .await;
            }
        }
    }

    /// Sends `records` to the on-failure destination, as Lambda describes a batch there
    /// (`DDBStreamBatchInfo`), with the records' keys and the cause added for local use.
    fn failed(&self, id: &str, records: &[Value], condition: &str, cause: &str) {
        let seq = |r: &Value| {
            r["dynamodb"]["SequenceNumber"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        };
        let arrival = |r: &Value| {
            r["dynamodb"]["ApproximateCreationDateTime"]
                .as_f64()
                .and_then(|s| vmapi_models::Timestamp::from_unix_millis((s * 1000.0) as i64).ok())
                .map(|t| t.to_string())
        };
        let keys: Vec<Value> = records
            .iter()
            .map(|r| r["dynamodb"]["Keys"].clone())
            .collect();
        let (first, last) = (records.first(), records.last());
        let entry = json!({
            "version": "1.0",
            "timestamp": vmapi_models::Timestamp::now().to_string(),
            "requestContext": { "condition": condition, "approximateInvokeCount": 1 },
            "DDBStreamBatchInfo": {
                "shardId": id,
                "startSequenceNumber": first.map(seq),
                "endSequenceNumber": last.map(seq),
                "approximateArrivalOfFirstRecord": first.and_then(arrival),
                "approximateArrivalOfLastRecord": last.and_then(arrival),
                "batchSize": records.len(),
                "streamArn": self.stream_arn,
            },
            "local": { "keys": keys, "cause": cause },
        });
        let destination = match &self.options.failures {
            Some(path) => match append_line(path, &entry) {
                Ok(()) => path.display().to_string(),
                Err(e) => format!("log only ({} not writable: {e})", path.display()),
            },
            None => "log only".into(),
        };
        tracing::error!(
            shard = %id,
            condition,
            first = ?first.map(seq),
            last = ?last.map(seq),
            keys = %serde_json::to_string(&keys).unwrap_or_default(),
            cause,
            destination = %destination,
            "stream consumer: records sent to the on-failure destination; moving on"
        );
    }

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

/// The parts of a raw record the on-failure destination names: its keys, sequence number and
/// creation time.
fn outline(raw: &Value) -> Value {
    let change = &raw["dynamodb"];
    json!({"dynamodb": {
        "Keys": change["Keys"],
        "SequenceNumber": change["SequenceNumber"],
        "ApproximateCreationDateTime": change["ApproximateCreationDateTime"],
    }})
}

/// The lane of a record: its partition key's hash, so one key always takes the same lane.
fn lane_of(raw: &Value, lanes: usize) -> usize {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    raw["dynamodb"]["Keys"]["pk"].to_string().hash(&mut h);
    (h.finish() % lanes as u64) as usize
}

fn position_name(p: &Position) -> &'static str {
    match p {
        Position::Latest => "LATEST",
        Position::TrimHorizon => "TRIM_HORIZON",
        Position::After(_) => "AFTER_SEQUENCE_NUMBER",
        Position::At(_) => "AT_SEQUENCE_NUMBER",
    }
}

/// How long ago the record was written (`ApproximateCreationDateTime`, epoch seconds).
fn record_age(raw: &Value) -> Option<Duration> {
    let at = raw["dynamodb"]["ApproximateCreationDateTime"].as_f64()?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs_f64();
    (now > at).then(|| Duration::from_secs_f64(now - at))
}

/// `base`, doubled for each attempt after the first, at most `cap`.
fn backoff(base: Duration, attempt: u32, cap: Duration) -> Duration {
    base.saturating_mul(1 << attempt.saturating_sub(1).min(16))
        .min(cap)
}

fn append_line(path: &PathBuf, entry: &Value) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    writeln!(file, "{entry}")
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

    #[test]
    fn record_age_reads_the_creation_time() {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let raw = json!({"dynamodb": {"ApproximateCreationDateTime": now - 7200.0}});
        let age = record_age(&raw).unwrap();
        assert!(
            age > Duration::from_secs(7100) && age < Duration::from_secs(7300),
            "{age:?}"
        );
        assert_eq!(record_age(&json!({"dynamodb": {}})), None);
    }
}
