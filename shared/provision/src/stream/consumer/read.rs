//! Reading the shards: one page of each readable shard a round, children after their parents,
//! a fresh iterator after the checkpoint when a read fails.

use std::time::Duration;

use tokio::time::Instant;

use super::{backoff, BatchHandler, Consumer, Shard};
use crate::stream::api::{ApiError, Position};
use crate::stream::checkpoint::ShardState;

impl<H: BatchHandler> Consumer<H> {
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
}
