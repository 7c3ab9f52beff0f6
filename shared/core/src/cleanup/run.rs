//! One run: the stale candidates, each handled with bounded concurrency, then the
//! reconciliation; the summary it ends with.

use std::time::Instant;

use futures_util::stream::{self, StreamExt};
use vmapi_models::VmId;

use super::base::{Cleanup, Summary};
use super::verdict::Done;
use crate::error::{ErrorChain, Result};

impl Cleanup {
    /// One run. Never fails as a whole: per-VM problems are counted as `failed`.
    pub async fn run(&self) -> Result<Summary> {
        let started = Instant::now();
        let now = self.clock.now();
        let p = &self.policy;
        let mut candidates = self.index_candidates(now).await?;
        let mut summary = Summary {
            dry_run: p.dry_run,
            ..Summary::default()
        };
        // Removed teams and projects: every VM they still have is a candidate (the verdict
        // deletes it), and a tombstone with nothing left is forgotten.
        for tombstone in self.repo.tombstones(p.max_candidates).await? {
            match self.tombstone_vms(tombstone.gone).await {
                Ok(None) => {
                    if !p.dry_run {
                        self.repo.clear_tombstone(tombstone.gone).await?;
                    }
                    summary.actions.push(format!(
                        "{}: {}forget the tombstone (nothing of it is left, or it is back)",
                        tombstone.gone,
                        if p.dry_run { "would " } else { "" }
                    ));
                }
                Ok(Some(ids)) => {
                    for id in ids {
                        if !candidates.contains(&id) {
                            candidates.push(id);
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(gone = %tombstone.gone, error = %ErrorChain(&e), "cleanup: could not list what a tombstone names; the next run retries");
                    summary.failed += 1;
                }
            }
        }
        summary.candidates = candidates.len() as u32;
        let deadline = started + p.time_budget;
        let results: Vec<(VmId, Option<(Done, String)>)> = stream::iter(candidates)
            .map(|id| async move {
                if Instant::now() >= deadline {
                    return (id, None);
                }
                (id, Some(self.handle(id, now).await))
            })
            .buffer_unordered(p.concurrency.max(1))
            .collect()
            .await;
        for (id, outcome) in results {
            match outcome {
                None => summary.deferred += 1,
                Some((done, note)) => {
                    match done {
                        Done::Skipped => summary.skipped += 1,
                        Done::Repaired => summary.repaired += 1,
                        Done::Deleted => summary.deleted += 1,
                        Done::Purged => summary.purged += 1,
                        Done::Failed => summary.failed += 1,
                    }
                    if done != Done::Skipped {
                        summary.actions.push(format!("{id}: {note}"));
                    }
                }
            }
        }
        if Instant::now() < deadline {
            self.reconcile(now, deadline, &mut summary).await;
        }
        summary.actions.sort();
        summary.duration_ms = started.elapsed().as_millis() as u64;
        Ok(summary)
    }
}
