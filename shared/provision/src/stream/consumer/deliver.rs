//! Delivering a page of records: filtered, decoded, split into lanes by partition key and
//! handed to the handler in batches, retried, bisected or sent to the on-failure destination.

use std::time::Duration;

use aws_lambda_events::event::dynamodb::EventRecord;
use serde_json::value::RawValue;
use serde_json::{json, Value};

use super::{backoff, BatchHandler, Consumer};
use crate::stream::filter::passes;

/// One record that passed the filters and decoded.
struct Delivered {
    seq: String,
    record: EventRecord,
    /// What the on-failure destination needs of it ([`outline`]), not the whole record.
    outline: Value,
}

impl<H: BatchHandler> Consumer<H> {
    /// Filters, decodes and delivers one page, then moves the checkpoint to its last record.
    /// Passing records go to one of `ParallelizationFactor` lanes by partition key, so the
    /// records of one key stay in order (as Lambda keeps them); lanes run concurrently, each
    /// in batches of `BatchSize`. Records too old or not decodable go to the on-failure
    /// destination as they are met.
    pub(super) async fn deliver_page(&mut self, id: &str, records: Vec<Box<RawValue>>) {
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

/// How long ago the record was written (`ApproximateCreationDateTime`, epoch seconds).
fn record_age(raw: &Value) -> Option<Duration> {
    let at = raw["dynamodb"]["ApproximateCreationDateTime"].as_f64()?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs_f64();
    (now > at).then(|| Duration::from_secs_f64(now - at))
}

#[cfg(test)]
mod tests {
    use super::*;

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
