//! Where the local consumer is in each shard: a checkpoint per shard (the sequence number of the
//! last record it is done with), kept in memory and, for the local run, in a JSON status file
//! that a restart resumes from and the soak test reads.
//!
//! The file: `{"streamArn": "...", "shards": {"<shardId>": {"checkpoint": "<seq>" | null,
//! "done": bool}}, "updatedAt": "..."}`. It is written whole to a temporary file and renamed,
//! so a reader never sees half of it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// One shard's position.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardState {
    /// The last record done with (processed, filtered out, or sent to the on-failure
    /// destination); `None` before the first record.
    pub checkpoint: Option<String>,
    /// Closed and read to its end.
    pub done: bool,
}

/// The positions of one stream.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Checkpoints {
    /// The stream these positions belong to.
    pub stream_arn: String,
    /// Per shard.
    pub shards: BTreeMap<String, ShardState>,
}

/// Reads and writes [`Checkpoints`]; without a file, positions live only in memory.
#[derive(Debug, Clone)]
pub struct CheckpointStore {
    file: Option<PathBuf>,
}

impl CheckpointStore {
    /// Positions in memory only (tests that need no restart).
    pub fn memory() -> CheckpointStore {
        CheckpointStore { file: None }
    }

    /// Positions in `file` (created with its folder on first write).
    pub fn file(file: impl Into<PathBuf>) -> CheckpointStore {
        CheckpointStore {
            file: Some(file.into()),
        }
    }

    /// The file, if any.
    pub fn path(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// The stored positions of `stream_arn`: none when the file is absent, unreadable, or about
    /// another stream (a table this consumer has not seen).
    pub fn load(&self, stream_arn: &str) -> Option<Checkpoints> {
        let text = std::fs::read_to_string(self.file.as_ref()?).ok()?;
        match serde_json::from_str::<Checkpoints>(&text) {
            Ok(c) if c.stream_arn == stream_arn => Some(c),
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(file = %self.file.as_ref()?.display(), error = %e, "stream consumer: the checkpoint file is not readable; starting as on a new table");
                None
            }
        }
    }

    /// Stores `positions` (atomically: a temporary file renamed over the old one).
    pub fn save(&self, positions: &Checkpoints) -> std::io::Result<()> {
        let Some(file) = &self.file else {
            return Ok(());
        };
        if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Status<'a> {
            #[serde(flatten)]
            positions: &'a Checkpoints,
            updated_at: String,
        }
        let text = serde_json::to_string_pretty(&Status {
            positions,
            updated_at: vmapi_models::Timestamp::now().to_string(),
        })?;
        let tmp = file.with_extension("json.tmp");
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_positions_come_back_for_their_stream_only() {
        let dir = std::env::temp_dir().join(format!("vmapi-ckpt-{}", std::process::id()));
        let store = CheckpointStore::file(dir.join("sub/status.json"));
        let mut c = Checkpoints {
            stream_arn: "arn:a".into(),
            ..Default::default()
        };
        c.shards.insert(
            "shard-1".into(),
            ShardState {
                checkpoint: Some("000100".into()),
                done: false,
            },
        );
        store.save(&c).unwrap();
        assert_eq!(store.load("arn:a"), Some(c));
        assert_eq!(store.load("arn:b"), None);
        std::fs::write(store.path().unwrap(), "{").unwrap();
        assert_eq!(store.load("arn:a"), None);
        assert_eq!(CheckpointStore::memory().load("arn:a"), None);
        let _ = std::fs::remove_dir_all(dir);
    }
}
