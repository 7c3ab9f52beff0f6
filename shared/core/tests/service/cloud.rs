//! An instant test cloud for the provisioner tests.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use vmapi_core::cloud::*;
use vmapi_models::VmId;

/// A cloud whose operations take effect at once; failures can be switched on.
#[derive(Default)]
pub struct InstantCloud {
    pub vms: Mutex<HashMap<VmId, CloudState>>,
    pub calls: Mutex<Vec<String>>,
    pub fail_create: Mutex<Option<DriverError>>,
    pub fail_delete: Mutex<Option<DriverError>>,
    /// Start/stop leave the VM in the transitional state for this many `get`s.
    pub slow_gets: Mutex<u32>,
}

impl InstantCloud {
    fn log(&self, s: String) {
        self.calls.lock().unwrap().push(s);
    }
    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
}

#[async_trait]
impl CloudDriver for InstantCloud {
    fn kind(&self) -> DriverKind {
        DriverKind::Simulated
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            confidential: vec![],
            native_idempotency: true,
            password_login: false,
            resize: false,
        }
    }
    async fn create(&self, spec: &VmSpec) -> Result<CloudVm, DriverError> {
        self.log(format!("create {}", spec.vm_id));
        if let Some(e) = self.fail_create.lock().unwrap().clone() {
            return Err(e);
        }
        self.vms
            .lock()
            .unwrap()
            .entry(spec.vm_id)
            .or_insert(CloudState::Provisioning);
        Ok(view(spec.vm_id, CloudState::Provisioning))
    }
    async fn get(&self, t: &CloudTarget) -> Result<Option<CloudVm>, DriverError> {
        let mut vms = self.vms.lock().unwrap();
        let Some(state) = vms.get_mut(&t.vm_id) else {
            return Ok(None);
        };
        let mut slow = self.slow_gets.lock().unwrap();
        if *slow > 0 {
            *slow -= 1;
            return Ok(Some(view(t.vm_id, state.clone())));
        }
        // Transitional states settle on the next look.
        let settled = match &*state {
            CloudState::Provisioning | CloudState::Starting => CloudState::Running,
            CloudState::Stopping => CloudState::Stopped,
            other => other.clone(),
        };
        *state = settled;
        if *state == CloudState::Deleting {
            vms.remove(&t.vm_id);
            return Ok(None);
        }
        Ok(Some(view(t.vm_id, state.clone())))
    }
    /// Takes a size at once; the size `refused` is refused.
    async fn resize(
        &self,
        t: &CloudTarget,
        size: &str,
        _running: bool,
    ) -> Result<ResizeProgress, DriverError> {
        self.log(format!("resize {} {size}", t.vm_id));
        if size == "refused" {
            return Err(DriverError::InvalidSpec(format!("{size} is not offered")));
        }
        Ok(ResizeProgress::Done)
    }
    async fn start(&self, t: &CloudTarget) -> Result<(), DriverError> {
        self.log(format!("start {}", t.vm_id));
        self.vms
            .lock()
            .unwrap()
            .insert(t.vm_id, CloudState::Starting);
        Ok(())
    }
    async fn stop(&self, t: &CloudTarget) -> Result<(), DriverError> {
        self.log(format!("stop {}", t.vm_id));
        self.vms
            .lock()
            .unwrap()
            .insert(t.vm_id, CloudState::Stopping);
        Ok(())
    }
    async fn reboot(&self, t: &CloudTarget) -> Result<(), DriverError> {
        self.log(format!("reboot {}", t.vm_id));
        Ok(())
    }
    async fn delete(&self, t: &CloudTarget) -> Result<(), DriverError> {
        self.log(format!("delete {}", t.vm_id));
        if let Some(e) = self.fail_delete.lock().unwrap().clone() {
            return Err(e);
        }
        if let Some(s) = self.vms.lock().unwrap().get_mut(&t.vm_id) {
            *s = CloudState::Deleting;
        }
        Ok(())
    }
    async fn list_managed(&self, region: &str) -> Result<Vec<ManagedResource>, DriverError> {
        let vms = self.vms.lock().unwrap();
        Ok(vms
            .iter()
            .filter(|(_, s)| **s != CloudState::Deleting)
            .map(|(id, s)| ManagedResource {
                kind: ManagedKind::Vm,
                target: CloudTarget {
                    vm_id: *id,
                    region: region.to_string(),
                    provider_id: Some(format!("i-{id}")),
                },
                created_at: None,
                raw_state: format!("{s:?}"),
                deployment: Some("local".into()),
            })
            .collect())
    }
}

fn view(id: VmId, state: CloudState) -> CloudVm {
    let running = state == CloudState::Running;
    CloudVm {
        provider_id: format!("i-{id}"),
        raw_state: format!("{state:?}"),
        public_ipv4: running.then(|| "203.0.113.7".to_string()),
        public_ipv6: None,
        private_ipv4: Some("10.0.0.7".into()),
        confidential: None,
        state,
    }
}
