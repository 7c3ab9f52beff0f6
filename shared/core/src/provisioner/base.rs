//! The `Provisioner` itself: its drivers, options and ports, and what one run reports.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use vmapi_models::{CloudKind, VmId, VmRecord, VmStatus};

use crate::cloud::CloudDriver;
use crate::credentials::SecretStore;
use crate::error::Result;
use crate::ports::{Clock, Lookup, Metrics, NoMetrics, Repository};

/// The driver for each cloud.
#[derive(Clone, Default)]
pub struct Drivers(HashMap<CloudKind, Arc<dyn CloudDriver>>);

impl Drivers {
    /// No drivers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Serves `cloud` with `driver`.
    pub fn with(mut self, cloud: CloudKind, driver: Arc<dyn CloudDriver>) -> Self {
        self.0.insert(cloud, driver);
        self
    }

    /// The driver of a cloud.
    pub fn get(&self, cloud: CloudKind) -> Option<&Arc<dyn CloudDriver>> {
        self.0.get(&cloud)
    }

    /// `cloud=driver` pairs, for the start-up log line.
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = self
            .0
            .iter()
            .map(|(c, d)| format!("{c:?}={}", d.kind()).to_lowercase())
            .collect();
        parts.sort();
        parts.join(", ")
    }
}

/// Timing of the provisioner.
#[derive(Clone, Debug)]
pub struct ProvisionerOptions {
    /// How long one run may wait for the cloud before it hands the VM to the next run (by
    /// bumping `pendingOp.attempt`, which the stream delivers again).
    pub poll_budget: Duration,
    /// Pause between two looks at the cloud.
    pub poll_interval: Duration,
    /// After this long a create, start, stop or reboot that has not finished fails.
    pub op_deadline: Duration,
    /// After this long a teardown that has not finished is left in status 5 with a reason.
    pub delete_deadline: Duration,
    /// How long a deleted record is kept (its DynamoDB TTL; the cleanup job purges it too).
    pub deleted_retention: Duration,
}

impl Default for ProvisionerOptions {
    fn default() -> Self {
        ProvisionerOptions {
            poll_budget: Duration::from_secs(20),
            poll_interval: Duration::from_secs(2),
            op_deadline: Duration::from_secs(30 * 60),
            delete_deadline: Duration::from_secs(30 * 60),
            deleted_retention: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

/// What one run did with a VM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing was pending (already done, or a duplicate record).
    Idle,
    /// The VM does not exist.
    Gone,
    /// The operation finished (successfully or with the VM failed).
    Finished(VmStatus),
    /// The cloud is still busy; the next run continues (the VM was touched to wake it).
    Waiting,
}

/// One stream record to process: its sequence number and the VM it is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkItem {
    /// Sequence number (reported back on failure).
    pub sequence: String,
    /// The VM.
    pub vm: VmId,
}

/// Carries out pending cloud operations.
#[derive(Clone)]
pub struct Provisioner {
    pub(super) repo: Arc<dyn Repository>,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) drivers: Drivers,
    pub(super) secrets: Option<Arc<dyn SecretStore>>,
    pub(super) options: ProvisionerOptions,
    pub(super) metrics: Arc<dyn Metrics>,
}

impl Provisioner {
    /// The drivers it provisions with.
    pub fn drivers(&self) -> &Drivers {
        &self.drivers
    }

    /// The secret store of the VMs' logins, if wired.
    pub fn secrets(&self) -> Option<&Arc<dyn SecretStore>> {
        self.secrets.as_ref()
    }

    /// Notes that a team or project was removed from the platform (seen on the stream), so the
    /// cleanup job deletes its VMs.
    pub async fn note_gone(&self, gone: crate::ports::Gone) -> Result<()> {
        tracing::info!(gone = %gone, "removed from the platform; its VMs go with the next cleanup run");
        self.repo
            .put_tombstone(&crate::ports::Tombstone {
                gone,
                at: self.clock.now(),
            })
            .await
    }

    /// Wires the provisioner. `secrets` is needed to read logins (create) and remove VM logins
    /// (delete).
    pub fn new(
        repo: Arc<dyn Repository>,
        clock: Arc<dyn Clock>,
        drivers: Drivers,
        secrets: Option<Arc<dyn SecretStore>>,
        options: ProvisionerOptions,
    ) -> Self {
        Provisioner {
            repo,
            clock,
            drivers,
            secrets,
            options,
            metrics: Arc::new(NoMetrics),
        }
    }

    /// Reports every finished operation to `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<dyn Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// The driver of the VM's cloud, or `None` when this deployment has none for it.
    pub(super) async fn driver_of(&self, vm: &VmRecord) -> Result<Option<Arc<dyn CloudDriver>>> {
        let mut lookup = Lookup::default();
        lookup.cloud_providers.insert(vm.cloud_provider);
        let found = self.repo.lookup(&lookup).await?;
        let kind = found
            .cloud_providers
            .get(&vm.cloud_provider)
            .and_then(CloudKind::of);
        Ok(kind.and_then(|k| self.drivers.get(k)).cloned())
    }
}
