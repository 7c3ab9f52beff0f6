//! A simulated cloud for local development and tests only: VMs live in memory, change state
//! after a configurable delay and get addresses from the documentation ranges (RFC 5737 /
//! RFC 3849). Never chosen implicitly; the start-up log names it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use vmapi_core::cloud::{
    Capabilities, CloudDriver, CloudState, CloudTarget, CloudVm, DriverError, DriverKind,
    ManagedKind, ManagedResource, ResizeProgress, VmSpec,
};
use vmapi_models::{ConfidentialTech, SecurityRule, Timestamp, VmId};

#[derive(Clone, Debug)]
struct SimVm {
    number: u32,
    /// Where it is heading, and since when.
    heading: CloudState,
    since: Instant,
    confidential: Option<ConfidentialTech>,
    deleting: bool,
    created: Timestamp,
    /// The firewall: the rule set last applied.
    rules: Vec<SecurityRule>,
}

#[derive(Default)]
struct State {
    vms: HashMap<VmId, SimVm>,
    counter: u32,
    fail_creates: Option<DriverError>,
    fail_deletes: Option<DriverError>,
    fail_rules: Option<DriverError>,
    drop_confidential: bool,
    calls: Vec<String>,
}

/// The simulated cloud.
pub struct SimulatedDriver {
    delay: Duration,
    /// The deployment its VMs are listed as (`local` unless set): all of them are this
    /// process's.
    deployment: vmapi_models::DeploymentId,
    state: Mutex<State>,
}

impl SimulatedDriver {
    /// VMs reach their target state `delay` after each request.
    pub fn new(delay: Duration) -> Self {
        SimulatedDriver {
            delay,
            deployment: vmapi_models::DeploymentId::local(),
            state: Mutex::new(State::default()),
        }
    }

    /// Lists its VMs as `deployment`'s.
    pub fn for_deployment(mut self, deployment: vmapi_models::DeploymentId) -> Self {
        self.deployment = deployment;
        self
    }

    /// Makes every later create fail with `error` (`None`: work again).
    pub fn fail_creates(&self, error: Option<DriverError>) {
        self.state.lock().unwrap().fail_creates = error;
    }

    /// Makes every later delete fail with `error` (`None`: work again).
    pub fn fail_deletes(&self, error: Option<DriverError>) {
        self.state.lock().unwrap().fail_deletes = error;
    }

    /// Makes every later apply of security rules fail with `error` (`None`: work again).
    pub fn fail_rules(&self, error: Option<DriverError>) {
        self.state.lock().unwrap().fail_rules = error;
    }

    /// The security rules the VM's firewall has (set by create and `apply_rules`), `None` when
    /// the VM does not exist.
    pub fn rules(&self, vm: VmId) -> Option<Vec<SecurityRule>> {
        self.state
            .lock()
            .unwrap()
            .vms
            .get(&vm)
            .map(|v| v.rules.clone())
    }

    /// Creates VMs without the confidential technology their size asks for.
    pub fn drop_confidential(&self, drop: bool) {
        self.state.lock().unwrap().drop_confidential = drop;
    }

    /// Calls received, as `op vmId`.
    pub fn calls(&self) -> Vec<String> {
        self.state.lock().unwrap().calls.clone()
    }

    /// Number of VMs that exist.
    pub fn count(&self) -> usize {
        self.state.lock().unwrap().vms.len()
    }

    fn view(&self, id: VmId, vm: &SimVm) -> Option<CloudVm> {
        let arrived = vm.since.elapsed() >= self.delay;
        let state = match (&vm.heading, arrived) {
            (CloudState::Deleted, true) => return None,
            (CloudState::Deleted, false) => CloudState::Deleting,
            (target, true) => target.clone(),
            (CloudState::Running, false) if vm.deleting => CloudState::Deleting,
            (CloudState::Running, false) => CloudState::Starting,
            (CloudState::Stopped, false) => CloudState::Stopping,
            (_, false) => CloudState::Provisioning,
        };
        let running = state == CloudState::Running;
        Some(CloudVm {
            provider_id: format!("sim-{id}"),
            raw_state: format!("{state:?}").to_lowercase(),
            public_ipv4: running.then(|| format!("203.0.113.{}", vm.number % 250 + 1)),
            public_ipv6: running.then(|| format!("2001:db8::{:x}", vm.number)),
            private_ipv4: Some(format!("10.0.{}.{}", vm.number / 250, vm.number % 250 + 1)),
            confidential: vm.confidential,
            state,
        })
    }

    fn change(&self, target: &CloudTarget, op: &str, to: CloudState) -> Result<(), DriverError> {
        let mut s = self.state.lock().unwrap();
        s.calls.push(format!("{op} {}", target.vm_id));
        let vm = s
            .vms
            .get_mut(&target.vm_id)
            .ok_or_else(|| DriverError::NotFound(format!("VM {}", target.vm_id)))?;
        if vm.heading != to {
            vm.heading = to;
            vm.since = Instant::now();
        }
        Ok(())
    }
}

#[async_trait]
impl CloudDriver for SimulatedDriver {
    fn kind(&self) -> DriverKind {
        DriverKind::Simulated
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            confidential: vec![ConfidentialTech::SevSnp, ConfidentialTech::Tdx],
            native_idempotency: true,
            password_login: false,
            resize: true,
        }
    }

    async fn create(&self, spec: &VmSpec) -> Result<CloudVm, DriverError> {
        let mut s = self.state.lock().unwrap();
        s.calls.push(format!("create {}", spec.vm_id));
        if let Some(e) = s.fail_creates.clone() {
            return Err(e);
        }
        if !s.vms.contains_key(&spec.vm_id) {
            s.counter += 1;
            let confidential = if s.drop_confidential {
                None
            } else {
                spec.confidential
            };
            let number = s.counter;
            s.vms.insert(
                spec.vm_id,
                SimVm {
                    number,
                    heading: CloudState::Running,
                    since: Instant::now(),
                    confidential,
                    deleting: false,
                    created: Timestamp::now(),
                    rules: Vec::new(),
                },
            );
        }
        // The firewall is set up with the VM, also when an earlier attempt made it.
        if let Some(vm) = s.vms.get_mut(&spec.vm_id) {
            vm.rules = spec.rules.clone();
        }
        let vm = s.vms[&spec.vm_id].clone();
        drop(s);
        self.view(spec.vm_id, &vm)
            .ok_or_else(|| DriverError::Conflict("the VM is being deleted".into()))
    }

    async fn get(&self, target: &CloudTarget) -> Result<Option<CloudVm>, DriverError> {
        let mut s = self.state.lock().unwrap();
        let Some(vm) = s.vms.get(&target.vm_id).cloned() else {
            return Ok(None);
        };
        match self.view(target.vm_id, &vm) {
            Some(v) => Ok(Some(v)),
            None => {
                s.vms.remove(&target.vm_id);
                Ok(None)
            }
        }
    }

    async fn start(&self, target: &CloudTarget) -> Result<(), DriverError> {
        self.change(target, "start", CloudState::Running)
    }

    async fn stop(&self, target: &CloudTarget) -> Result<(), DriverError> {
        self.change(target, "stop", CloudState::Stopped)
    }

    async fn reboot(&self, target: &CloudTarget) -> Result<(), DriverError> {
        self.change(target, "reboot", CloudState::Running)
    }

    /// Takes the new size at once, heading to running or stopped as asked.
    async fn resize(
        &self,
        target: &CloudTarget,
        size: &str,
        running: bool,
    ) -> Result<ResizeProgress, DriverError> {
        let to = if running {
            CloudState::Running
        } else {
            CloudState::Stopped
        };
        self.change(target, &format!("resize({size})"), to)?;
        Ok(ResizeProgress::Done)
    }

    async fn delete(&self, target: &CloudTarget) -> Result<(), DriverError> {
        {
            let mut s = self.state.lock().unwrap();
            if let Some(e) = s.fail_deletes.clone() {
                s.calls.push(format!("delete {}", target.vm_id));
                return Err(e);
            }
            if let Some(vm) = s.vms.get_mut(&target.vm_id) {
                vm.deleting = true;
            }
        }
        match self.change(target, "delete", CloudState::Deleted) {
            Err(DriverError::NotFound(_)) => Ok(()),
            other => other,
        }
    }

    async fn apply_rules(
        &self,
        target: &CloudTarget,
        rules: &[SecurityRule],
    ) -> Result<(), DriverError> {
        let mut s = self.state.lock().unwrap();
        s.calls.push(format!("apply-rules {}", target.vm_id));
        if let Some(e) = s.fail_rules.clone() {
            return Err(e);
        }
        let vm = s
            .vms
            .get_mut(&target.vm_id)
            .ok_or_else(|| DriverError::NotFound(format!("VM {}", target.vm_id)))?;
        vm.rules = rules.to_vec();
        Ok(())
    }

    async fn list_managed(&self, region: &str) -> Result<Vec<ManagedResource>, DriverError> {
        let s = self.state.lock().unwrap();
        let mut found: Vec<ManagedResource> = s
            .vms
            .iter()
            .filter(|(_, vm)| vm.heading != CloudState::Deleted)
            .filter_map(|(id, vm)| {
                let view = self.view(*id, vm)?;
                Some(ManagedResource {
                    kind: ManagedKind::Vm,
                    target: CloudTarget {
                        vm_id: *id,
                        region: region.to_string(),
                        provider_id: Some(view.provider_id),
                    },
                    created_at: Some(vm.created),
                    raw_state: view.raw_state,
                    deployment: Some(self.deployment.to_string()),
                })
            })
            .collect();
        found.sort_by_key(|r| r.target.vm_id);
        Ok(found)
    }
}
