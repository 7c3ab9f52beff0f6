//! The provisioner's event source mapping as template.yaml declares it (`ProvisionerFunction`,
//! `Events.Stream`), for the local consumer to follow. A test in tests/ checks every value here
//! against the template, so the two cannot drift apart.

use std::time::Duration;

use super::filter::{Pattern, PatternError};

/// Where a consumer starts on a shard it has no checkpoint for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartingPosition {
    /// After the newest record (only what is written from now on).
    Latest,
    /// At the oldest record still in the shard.
    TrimHorizon,
}

impl StartingPosition {
    /// The template's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            StartingPosition::Latest => "LATEST",
            StartingPosition::TrimHorizon => "TRIM_HORIZON",
        }
    }
}

/// The settings of a DynamoDB Stream event source mapping that change what a consumer does.
#[derive(Debug, Clone)]
pub struct Mapping {
    /// `StartingPosition`.
    pub starting_position: StartingPosition,
    /// `BatchSize` (the template's parameter default).
    pub batch_size: usize,
    /// `ParallelizationFactor`: batches of one shard in flight at once (records of one
    /// partition key stay in order).
    pub parallelization_factor: usize,
    /// `BisectBatchOnFunctionError`.
    pub bisect_on_error: bool,
    /// `MaximumRetryAttempts`.
    pub maximum_retry_attempts: u32,
    /// `MaximumRecordAgeInSeconds`.
    pub maximum_record_age: Duration,
    /// `FunctionResponseTypes` holds `ReportBatchItemFailures`.
    pub report_batch_item_failures: bool,
    /// `FilterCriteria.Filters[].Pattern`, as written in the template.
    pub filter_patterns: Vec<&'static str>,
}

/// VM records with a pending operation.
pub const PENDING_OP_PATTERN: &str =
    r#"{"dynamodb": {"NewImage": {"pendingOp": {"M": {"op": {"S": [{"exists": true}]}}}}}}"#;
/// A team or project removed by the platform.
pub const REMOVED_OWNER_PATTERN: &str =
    r#"{"eventName": ["REMOVE"], "dynamodb": {"Keys": {"sk": {"S": ["TEAM", "PROJECT"]}}}}"#;

impl Mapping {
    /// The provisioner's mapping (template.yaml, `ProvisionerFunction.Events.Stream`).
    pub fn provisioner() -> Mapping {
        Mapping {
            starting_position: StartingPosition::Latest,
            batch_size: 10,
            parallelization_factor: 10,
            bisect_on_error: true,
            maximum_retry_attempts: 10,
            maximum_record_age: Duration::from_secs(3600),
            report_batch_item_failures: true,
            filter_patterns: vec![PENDING_OP_PATTERN, REMOVED_OWNER_PATTERN],
        }
    }

    /// The parsed filter patterns.
    pub fn patterns(&self) -> Result<Vec<Pattern>, PatternError> {
        self.filter_patterns
            .iter()
            .map(|p| Pattern::parse(p))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_provisioner_patterns_parse() {
        assert_eq!(Mapping::provisioner().patterns().unwrap().len(), 2);
    }
}
