//! What the Kraud.Cloud contract tests share: a VM spec with keys and a password hash, a
//! driver against the test server, waiting for a state, an address rule.

use std::time::Duration;

use vmapi_core::cloud::{CloudDriver, CloudState, CloudTarget, CloudVm, LoginSpec, VmSpec};
use vmapi_drivers::kraud::{KraudConfig, KraudDriver};
use vmapi_models::{
    CloudKind, ConfidentialTech, RuleAccess, RuleName, SecurityRule, Sensitive, TeamId, Timestamp,
    VmId,
};

use crate::kraud_api::KraudApi;

pub const PASSWORD: &str = "Plain-Text-Pa55word!";

pub const HASH: &str = "$6$vmapisalt$Wq0d0fQqJ7bM9cO2R0tTz8c1Y2mFq1l6n3E5s8u9x0A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8S9t0U1v";

pub const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHZtYXBpLWtyYXVkLXRlc3Qta2V5LW1hdGVyaWFsLTEyMw user@example";

pub fn spec(confidential: Option<ConfidentialTech>) -> VmSpec {
    VmSpec {
        vm_id: VmId::new(),
        team: TeamId::new(),
        name: "web-1".into(),
        region: "berlin".into(),
        size: "Standart_berlin_1_4_50".into(),
        memory_gb: 4,
        vcpus: 1,
        disk_gb: 40,
        image: "quay.io/kraudcloud/pvm/ubuntu:22.04".into(),
        login: LoginSpec {
            username: "root".into(),
            public_keys: vec![KEY.into()],
            password_hash: Some(HASH.into()),
            password: Some(Sensitive::new(PASSWORD.into())),
        },
        confidential,
        rules: vec![SecurityRule::default_for(
            Some(CloudKind::Kraud),
            1,
            Timestamp::now(),
        )],
    }
}

pub fn driver_with(api: &KraudApi, token: &str) -> KraudDriver {
    KraudDriver::new(KraudConfig {
        token: Sensitive::new(token.into()),
        base_url: api.base_url.clone(),
        deployment: vmapi_models::DeploymentId::local(),
    })
    .expect("driver")
    .with_launch_wait(Duration::from_millis(300), Duration::from_millis(10))
}

pub fn driver(api: &KraudApi) -> KraudDriver {
    driver_with(api, &api.token())
}

pub async fn poll_until(driver: &KraudDriver, target: &CloudTarget, wanted: CloudState) -> CloudVm {
    let mut seen = Vec::new();
    for _ in 0..20 {
        let vm = driver.get(target).await.expect("get").expect("VM exists");
        if vm.state == wanted {
            return vm;
        }
        seen.push(vm.raw_state.clone());
    }
    panic!("never reached {wanted:?}; saw {seen:?}");
}

/// A Kraud rule on the address: `Allow` opens it, `Deny` closes it.
pub fn address_rule(name: &str, access: RuleAccess, priority: u16) -> SecurityRule {
    let mut r = SecurityRule::default_for(Some(CloudKind::Kraud), 2, Timestamp::now());
    r.name = RuleName::parse(name).unwrap();
    r.access = access;
    r.priority = priority;
    r
}
