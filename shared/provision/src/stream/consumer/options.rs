//! What a consumer is started with, and why it may not start.

use std::path::PathBuf;
use std::time::Duration;

use crate::stream::api::ApiError;
use crate::stream::checkpoint::CheckpointStore;
use crate::stream::filter::PatternError;
use crate::stream::mapping::Mapping;

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
