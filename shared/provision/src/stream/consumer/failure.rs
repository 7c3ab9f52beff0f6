//! The on-failure destination: records that could not be delivered, described as Lambda
//! describes them.

use std::path::PathBuf;

use serde_json::{json, Value};

use super::{BatchHandler, Consumer};

impl<H: BatchHandler> Consumer<H> {
    /// Sends `records` to the on-failure destination, as Lambda describes a batch there
    /// (`DDBStreamBatchInfo`), with the records' keys and the cause added for local use.
    pub(super) fn failed(&self, id: &str, records: &[Value], condition: &str, cause: &str) {
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
