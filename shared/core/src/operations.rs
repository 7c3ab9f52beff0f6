//! Operator use cases on VMs whose cloud work is stuck: finding them (through the sparse stale
//! index, never a scan) and re-arming their operation with a fresh conditional write, which is
//! also the answer to a batch in the stream's on-failure queue (its message names shards and
//! sequence ranges, not records: the VMs it held are the stuck ones).

use std::sync::Arc;
use std::time::Duration;

use vmapi_models::{EventKind, StaleCategory, Timestamp, VmEvent, VmId, VmRecord};

use crate::cleanup::rearmed;
use crate::error::{ConflictCode, Error, NotFoundKind, Result};
use crate::ports::{Clock, NameChange, Repository};

/// Stuck operations: listing and re-arming.
pub struct Operations {
    repo: Arc<dyn Repository>,
    clock: Arc<dyn Clock>,
}

/// How long ago `d` was before `now`.
fn ago(now: Timestamp, d: Duration) -> Timestamp {
    Timestamp::from_unix_millis(now.unix_millis() - d.as_millis() as i64).unwrap_or(now)
}

impl Operations {
    /// Over a repository and a clock.
    pub fn new(repo: Arc<dyn Repository>, clock: Arc<dyn Clock>) -> Self {
        Operations { repo, clock }
    }

    /// VMs whose pending operation was asked for more than `older_than` ago, or which sit in a
    /// transitional status with no pending operation (its stream record was lost) since then;
    /// oldest first, at most `limit`. From the stale index's transitional category, each record
    /// read again (the index may lag behind it).
    pub async fn stuck(&self, older_than: Duration, limit: usize) -> Result<Vec<VmRecord>> {
        let before = ago(self.clock.now(), older_than);
        let ids = self
            .repo
            .stale_vms(StaleCategory::Transitional, before, limit)
            .await?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(vm) = self.repo.get_vm(id).await? {
                if matches!(StaleCategory::of(&vm), Some((StaleCategory::Transitional, since)) if since < before)
                {
                    out.push(vm);
                }
            }
        }
        Ok(out)
    }

    /// Re-arms a VM's stuck operation as the cleanup job's repair does (the same record, see
    /// [`crate::cleanup`]), with a write conditional on the version just read and a `vm.retry`
    /// event by `actor` in the same atomic write. A VM with nothing pending (running, stopped,
    /// failed, deleted) is refused, as is one that changed since it was read.
    pub async fn retry(&self, id: VmId, actor: &str) -> Result<VmRecord> {
        let vm = self
            .repo
            .get_vm(id)
            .await?
            .ok_or_else(|| Error::not_found(NotFoundKind::Vm, id))?;
        if !matches!(
            StaleCategory::of(&vm),
            Some((StaleCategory::Transitional, _))
        ) {
            return Err(Error::conflict(
                ConflictCode::IllegalTransition,
                format!(
                    "virtual machine {id} is {} with no pending operation: nothing to retry",
                    vm.status.name()
                ),
            ));
        }
        let now = self.clock.now();
        let next = rearmed(&vm, now);
        let op = next.pending_op.as_ref().expect("re-armed");
        let event = VmEvent::new(id, now, actor, EventKind::Retry)
            .with_status(next.status)
            .with_detail(format!(
                "re-armed the {} operation (attempt {})",
                op.op.name(),
                op.attempt
            ));
        match self
            .repo
            .replace_vm(&next, vm.version, &NameChange::default(), Some(&event))
            .await
        {
            Ok(()) => Ok(next),
            Err(Error::VersionConflict) => Err(Error::conflict(
                ConflictCode::ConcurrentModification,
                format!(
                    "virtual machine {id} changed while it was re-armed (version {} is gone); look at it again before retrying",
                    vm.version
                ),
            )),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemoryRepository;
    use vmapi_models::{OpKind, PendingOp, VmStatus};

    struct Fixed(Timestamp);
    impl Clock for Fixed {
        fn now(&self) -> Timestamp {
            self.0
        }
    }

    fn vm(status: VmStatus, pending: Option<PendingOp>, updated: Timestamp) -> VmRecord {
        let mut vm = crate::memory::sample_vm();
        vm.id = VmId::new();
        vm.status = status;
        vm.pending_op = pending;
        vm.updated_at = updated;
        vm
    }

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_unix_millis(1_700_000_000_000 + secs * 1000).unwrap()
    }

    #[tokio::test]
    async fn stuck_lists_old_operations_and_lost_ones_only() {
        let repo = Arc::new(MemoryRepository::new());
        let old_op = vm(
            VmStatus::Creating,
            Some(PendingOp::new(OpKind::Create, at(0))),
            at(0),
        );
        let lost = vm(VmStatus::Stopping, None, at(10));
        let young = vm(
            VmStatus::Starting,
            Some(PendingOp::new(OpKind::Start, at(3000))),
            at(3000),
        );
        let running = vm(VmStatus::Running, None, at(0));
        for v in [&old_op, &lost, &young, &running] {
            repo.put_vm(v.clone());
        }
        let ops = Operations::new(repo, Arc::new(Fixed(at(3600))));
        let ids: Vec<VmId> = ops
            .stuck(Duration::from_secs(30 * 60), 100)
            .await
            .unwrap()
            .iter()
            .map(|v| v.id)
            .collect();
        assert_eq!(ids, vec![old_op.id, lost.id]);
    }

    #[tokio::test]
    async fn retry_rearms_with_a_fresh_conditional_write_and_refuses_healthy_vms() {
        let repo = Arc::new(MemoryRepository::new());
        let lost = vm(VmStatus::Stopping, None, at(0));
        let running = vm(VmStatus::Running, None, at(0));
        repo.put_vm(lost.clone());
        repo.put_vm(running.clone());
        let ops = Operations::new(repo.clone(), Arc::new(Fixed(at(100))));

        let next = ops.retry(lost.id, "operator:test").await.unwrap();
        let stored = repo.vm(lost.id).unwrap();
        assert_eq!(stored, next);
        assert_eq!(stored.version, lost.version + 1);
        let op = stored.pending_op.unwrap();
        assert_eq!(
            (op.op, op.attempt, op.requested_at),
            (OpKind::Stop, 1, at(100))
        );
        let event = repo.events().pop().unwrap();
        assert_eq!(
            (event.kind, event.actor.as_str()),
            (EventKind::Retry, "operator:test")
        );

        // Again: the operation is still pending, so it is re-armed once more.
        let again = ops.retry(lost.id, "operator:test").await.unwrap();
        assert_eq!(again.pending_op.unwrap().attempt, 2);

        let refused = ops.retry(running.id, "operator:test").await.unwrap_err();
        assert!(
            refused.to_string().contains("nothing to retry"),
            "{refused}"
        );
        assert_eq!(repo.vm(running.id).unwrap(), running);
        assert!(matches!(
            ops.retry(VmId::new(), "operator:test").await,
            Err(Error::NotFound { .. })
        ));
    }
}
