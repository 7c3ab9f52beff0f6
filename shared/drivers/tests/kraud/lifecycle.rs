//! A VM's life through the driver: create (idempotent by namespace, not repeated while the pod
//! is not listed yet), get, stop, start, reboot, delete.

use vmapi_core::cloud::{CloudDriver, CloudState, DriverError, VmSpec};
use vmapi_drivers::kraud::KraudDriver;
use vmapi_models::{ConfidentialTech, VmId};

use crate::common::{driver, poll_until, spec};
use crate::kraud_api::{KraudApi, Options};

#[tokio::test]
async fn lifecycle_create_get_stop_start_reboot_delete() {
    let api = KraudApi::start(Options::default()).await;
    let driver = driver(&api);
    let spec = spec(None);
    let target = spec.target();
    let ns = KraudDriver::namespace_of(spec.vm_id);

    let created = driver.create(&spec).await.expect("create");
    assert_eq!(created.provider_id, ns);
    assert_eq!(created.state, CloudState::Provisioning);
    assert_eq!(created.raw_state, "Creating...");
    assert_eq!(created.confidential, None);
    assert_eq!(api.namespaces(), vec![ns.clone()]);

    // The launch as the server received it.
    let launches = api.launches();
    assert_eq!(launches.len(), 1);
    let launch = &launches[0];
    assert_eq!(launch.namespace, ns);
    assert!(launch.accept.contains("application/json"));
    assert_eq!(launch.image, "quay.io/kraudcloud/pvm/ubuntu:22.04");
    assert_eq!(launch.volume_size, "40G");
    for label in ["kr.res.mem=4G", "kr.zone=uca", "kr.network.policy=open"] {
        assert!(
            launch.labels.contains(&label.to_string()),
            "{label} in {:?}",
            launch.labels
        );
    }
    assert!(!launch.labels.iter().any(|l| l.starts_with("kr.res.snp")));
    assert!(launch.env.contains("MEM=4G"));

    // Provisioning, then booting, then running with addresses.
    let booting = driver.get(&target).await.unwrap().unwrap();
    assert_eq!(booting.state, CloudState::Starting);
    assert_eq!(booting.raw_state, "Starting...");
    assert!(booting.state.is_transitional());
    let running = poll_until(&driver, &target, CloudState::Running).await;
    assert_eq!(running.raw_state, "Running");
    assert_eq!(running.public_ipv6.as_deref(), Some("2001:db8:4b::1"));
    assert_eq!(running.private_ipv4.as_deref(), Some("10.0.0.2"));
    assert_eq!(running.public_ipv4, None);

    // Stop (and stop again: 304 is fine).
    driver.stop(&target).await.expect("stop");
    let stopping = driver.get(&target).await.unwrap().unwrap();
    assert_eq!(stopping.state, CloudState::Stopping);
    let stopped = poll_until(&driver, &target, CloudState::Stopped).await;
    assert_eq!(stopped.raw_state, "Stopped");
    assert_eq!(stopped.public_ipv6, None);
    driver.stop(&target).await.expect("stop of a stopped VM");

    // Start (and start again).
    driver.start(&target).await.expect("start");
    poll_until(&driver, &target, CloudState::Running).await;
    driver.start(&target).await.expect("start of a running VM");

    // Reboot through the deployment restart.
    driver.reboot(&target).await.expect("reboot");
    let rebooting = driver.get(&target).await.unwrap().unwrap();
    assert_eq!(rebooting.state, CloudState::Starting);
    poll_until(&driver, &target, CloudState::Running).await;

    // Delete: the namespace goes, recursively; then the VM is gone, and deleting again is fine.
    driver.delete(&target).await.expect("delete");
    assert_eq!(driver.get(&target).await.unwrap(), None);
    assert!(api.namespaces().is_empty());
    driver
        .delete(&target)
        .await
        .expect("delete of a deleted VM");

    let requests = api.requests();
    let has = |needle: &str| requests.iter().any(|r| r.starts_with(needle));
    assert!(has("POST /api/v1/namespaces"));
    assert!(has(&format!(
        "POST /apis/kraudcloud.com/v1/launch?namespace={ns}"
    )));
    assert!(has("GET /apis/kraudcloud.com/v1/pods?status=true"));
    assert!(has("POST /v1.41/containers/p00001/stop?t="));
    assert!(has("POST /v1.41/containers/p00001/start"));
    assert!(has(
        "POST /apis/kr/v1/deployments/by-id/10000000-0000-4000-8000-000000000001/restart"
    ));
    assert!(has(&format!(
        "DELETE /api/v1/namespaces/{ns}?recursive=true"
    )));
    let bearer = format!("Bearer {}", api.token());
    assert!(api.authorizations().iter().all(|a| *a == bearer));
    assert!(
        !format!("{driver:?}").contains(&api.token()),
        "Debug shows the token"
    );
}

#[tokio::test]
async fn create_is_idempotent_by_namespace() {
    let api = KraudApi::start(Options::default()).await;
    let driver = driver(&api);
    let spec = spec(None);

    let first = driver.create(&spec).await.expect("first create");
    let second = driver.create(&spec).await.expect("second create");
    assert_eq!(first.provider_id, second.provider_id);
    assert_eq!(api.launches().len(), 1, "one launch for the same VM");
    assert_eq!(api.pod_count(), 1);

    // Another VM gets its own namespace and launch.
    let other = spec_with_other_id(&spec);
    let third = driver.create(&other).await.expect("other create");
    assert_ne!(third.provider_id, first.provider_id);
    assert_eq!(api.launches().len(), 2);
}

fn spec_with_other_id(spec: &VmSpec) -> VmSpec {
    VmSpec {
        vm_id: VmId::new(),
        ..spec.clone()
    }
}

#[tokio::test]
async fn a_launch_whose_pod_is_not_visible_yet_is_not_repeated() {
    let api = KraudApi::start(Options {
        appear_after: 1_000,
        ..Options::default()
    })
    .await;
    let driver = driver(&api);

    // Without a confidential requirement: reported as provisioning.
    let plain = spec(None);
    let vm = driver.create(&plain).await.expect("create");
    assert_eq!(vm.state, CloudState::Provisioning);
    assert_eq!(vm.raw_state, "Launching");
    assert_eq!(driver.get(&plain.target()).await.unwrap(), None);

    // With SNP nothing reports the technology yet: a retryable conflict.
    let snp = spec(Some(ConfidentialTech::SevSnp));
    let err = driver.create(&snp).await.expect_err("pod not visible");
    assert!(matches!(err, DriverError::Conflict(_)), "{err:?}");
    assert!(err.is_retryable());
    assert_eq!(api.launches().len(), 2);

    // The retries find the deployment and do not launch again.
    driver.create(&plain).await.expect("create again");
    api.reveal_pods();
    let vm = driver.create(&snp).await.expect("create again");
    assert_eq!(vm.confidential, Some(ConfidentialTech::SevSnp));
    assert_eq!(api.launches().len(), 2);
}
