//! The cleanup job itself: its policy and wiring, and a run's summary and metrics line.

use std::sync::Arc;
use std::time::Duration;

use vmapi_models::Timestamp;
use vmapi_models::{CloudKind, DeploymentId};

use crate::ports::{Clock, Repository};
use crate::provisioner::Provisioner;

/// Periods and limits of a run.
#[derive(Clone, Debug)]
pub struct CleanupPolicy {
    /// A transitional status or pending operation older than this is stuck.
    pub transitional_after: Duration,
    /// Failed VMs older than this are deleted (cloud leftovers, login, record).
    pub failed_retention: Duration,
    /// Deleted VM records older than this are purged.
    pub deleted_retention: Duration,
    /// Report what would be done and change nothing.
    pub dry_run: bool,
    /// VMs handled at once.
    pub concurrency: usize,
    /// Stop starting new work after this long (the rest is left to the next run).
    pub time_budget: Duration,
    /// Most candidates per category and run.
    pub max_candidates: usize,
    /// Logins and cloud VMs of ours younger than this are never reconciled away (a create in
    /// flight stores the login before the VM record exists).
    pub orphan_grace: Duration,
    /// The clouds and regions whose VMs are reconciled against the table (regions are
    /// ignored by clouds that are not regional).
    pub regions: Vec<(CloudKind, String)>,
    /// This deployment: reconciliation removes only logins and cloud resources tagged with it,
    /// reports untagged ones and ignores other deployments'.
    pub deployment: DeploymentId,
}

impl Default for CleanupPolicy {
    fn default() -> Self {
        CleanupPolicy {
            transitional_after: Duration::from_secs(60 * 60),
            failed_retention: Duration::from_secs(7 * 24 * 3600),
            deleted_retention: Duration::from_secs(30 * 24 * 3600),
            dry_run: false,
            concurrency: 8,
            time_budget: Duration::from_secs(240),
            max_candidates: 500,
            orphan_grace: Duration::from_secs(3600),
            regions: Vec::new(),
            deployment: DeploymentId::local(),
        }
    }
}

/// What one run did (also its summary log line and metrics).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// VMs the index named.
    pub candidates: u32,
    /// Stuck operations moved on or re-armed.
    pub repaired: u32,
    /// VMs deleted (failed too long, expired, team or project gone).
    pub deleted: u32,
    /// Deleted records purged.
    pub purged: u32,
    /// VMs the job could not handle (left for the next run).
    pub failed: u32,
    /// Candidates that needed nothing (healthy by now, or changed meanwhile).
    pub skipped: u32,
    /// Candidates not reached within the time budget.
    pub deferred: u32,
    /// Logins and cloud VMs of ours removed because no VM needs them any more.
    pub reconciled: u32,
    /// Logins and cloud resources of the service with no deployment tag (made before
    /// deployment ids): reported, never removed (`vmctl adopt` tags this deployment's).
    pub untagged: u32,
    /// Milliseconds the run took.
    pub duration_ms: u64,
    /// Whether nothing was changed.
    pub dry_run: bool,
    /// What was (or, in a dry run, would be) done, one line per VM.
    pub actions: Vec<String>,
}

/// The cleanup job over a repository, a clock and the provisioner (which does the cloud work).
pub struct Cleanup {
    pub(super) repo: Arc<dyn Repository>,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) provisioner: Option<Provisioner>,
    pub(super) policy: CleanupPolicy,
}

pub(super) fn ago(now: Timestamp, d: Duration) -> Timestamp {
    Timestamp::from_unix_millis(now.unix_millis() - d.as_millis() as i64).unwrap_or(now)
}

/// The summary as one JSON log line in CloudWatch's embedded metric format: the same line is a
/// log entry and, in Lambda, metrics in the `VmApi/Cleanup` namespace.
pub fn emf_line(summary: &Summary, now: Timestamp) -> String {
    let metrics = [
        "Candidates",
        "Repaired",
        "Deleted",
        "Purged",
        "Failed",
        "Skipped",
        "Deferred",
        "Reconciled",
        "Untagged",
    ];
    let mut m = serde_json::Map::new();
    m.insert(
        "_aws".into(),
        serde_json::json!({
            "Timestamp": now.unix_millis(),
            "CloudWatchMetrics": [{
                "Namespace": "VmApi/Cleanup",
                "Dimensions": [["DryRun"]],
                "Metrics": metrics.iter().map(|n| serde_json::json!({"Name": n, "Unit": "Count"}))
                    .chain(std::iter::once(serde_json::json!({"Name": "Duration", "Unit": "Milliseconds"})))
                    .collect::<Vec<_>>()
            }]
        }),
    );
    m.insert("message".into(), "cleanup run finished".into());
    m.insert("DryRun".into(), summary.dry_run.to_string().into());
    for (name, value) in [
        ("Candidates", summary.candidates),
        ("Repaired", summary.repaired),
        ("Deleted", summary.deleted),
        ("Purged", summary.purged),
        ("Failed", summary.failed),
        ("Skipped", summary.skipped),
        ("Deferred", summary.deferred),
        ("Reconciled", summary.reconciled),
        ("Untagged", summary.untagged),
    ] {
        m.insert(name.into(), value.into());
    }
    m.insert("Duration".into(), summary.duration_ms.into());
    m.insert("actions".into(), summary.actions.clone().into());
    serde_json::Value::Object(m).to_string()
}

impl Cleanup {
    /// Wires the job; without a provisioner, cloud work is left to the stream (the writes still
    /// carry `pendingOp`).
    pub fn new(
        repo: Arc<dyn Repository>,
        clock: Arc<dyn Clock>,
        provisioner: Option<Provisioner>,
        policy: CleanupPolicy,
    ) -> Self {
        Cleanup {
            repo,
            clock,
            provisioner,
            policy,
        }
    }
}
