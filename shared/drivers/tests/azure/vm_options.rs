//! What a VM may ask for beyond the defaults: confidential computing, password login.

use std::time::Duration;

use axum::http::Method;
use vmapi_core::cloud::{CloudDriver, CloudState, DriverError};
use vmapi_models::{ConfidentialTech, Sensitive, VmId};

use crate::azure_arm::{ArmServer, Fault, CLIENT_SECRET};
use crate::common::{driver, spec, spec_with_id};

const PASSWORD: &str = "Tr0ub4dor&3-Horse!";

#[tokio::test]
async fn confidential_vms_report_what_azure_created() {
    let arm = ArmServer::start().await;
    arm.set_op_polls(0);
    let mut config = arm.config();
    config.create_wait = Duration::from_secs(5);
    let azure = driver(config);

    let mut cvm = spec("westeurope");
    cvm.size = "Standard_DC2as_v5".into();
    cvm.image = "Canonical:0001-com-ubuntu-confidential-vm-jammy:22_04-lts-cvm:latest".into();
    cvm.confidential = Some(ConfidentialTech::SevSnp);
    let vm = azure.create(&cvm).await.unwrap();
    assert_eq!(vm.confidential, Some(ConfidentialTech::SevSnp));
    assert_eq!(vm.state, CloudState::Running);
    let body = &arm.vm_put_bodies()[0];
    assert_eq!(
        body["properties"]["securityProfile"]["securityType"],
        "ConfidentialVM"
    );
    assert_eq!(
        body["properties"]["securityProfile"]["uefiSettings"]["secureBootEnabled"],
        true
    );
    assert_eq!(
        body["properties"]["securityProfile"]["uefiSettings"]["vTpmEnabled"],
        true
    );
    assert_eq!(
        body["properties"]["storageProfile"]["osDisk"]["managedDisk"]["securityProfile"]
            ["securityEncryptionType"],
        "VMGuestStateOnly"
    );
    assert_eq!(
        azure
            .get(&cvm.target())
            .await
            .unwrap()
            .unwrap()
            .confidential,
        Some(ConfidentialTech::SevSnp)
    );

    // A cloud that silently drops the security profile: the result says so (no fallback lie).
    arm.drop_security_profile(true);
    let mut dropped = cvm.clone();
    dropped.vm_id = VmId::new();
    let vm = azure.create(&dropped).await.unwrap();
    assert_eq!(vm.confidential, None);
    assert_eq!(
        azure
            .get(&dropped.target())
            .await
            .unwrap()
            .unwrap()
            .confidential,
        None
    );
    // Also when create returns right after the PUT (the PUT response is read, not the request).
    let mut config = arm.config();
    config.create_wait = Duration::ZERO;
    let quick = driver(config);
    let mut dropped = cvm.clone();
    dropped.vm_id = VmId::new();
    let vm = quick.create(&dropped).await.unwrap();
    assert_eq!(
        (vm.state, vm.confidential),
        (CloudState::Provisioning, None)
    );
}

#[tokio::test]
async fn password_login_sends_admin_password_but_never_shows_it() {
    let arm = ArmServer::start().await;
    let azure = driver(arm.config());
    let mut spec = spec("westeurope");
    spec.login.public_keys.clear();
    spec.login.password = Some(Sensitive::new(PASSWORD.into()));
    spec.login.password_hash = Some("$6$salt$hash".into());

    let vm = azure.create(&spec).await.unwrap();
    let body = &arm.vm_put_bodies()[0];
    assert_eq!(body["properties"]["osProfile"]["adminPassword"], PASSWORD);
    assert_eq!(
        body["properties"]["osProfile"]["linuxConfiguration"]["disablePasswordAuthentication"],
        false
    );
    assert!(body["properties"]["osProfile"]["linuxConfiguration"]
        .get("ssh")
        .is_none());

    let got = azure.get(&spec.target()).await.unwrap().unwrap();
    // An error after the password went out.
    arm.inject(
        Method::PUT,
        "virtualMachines",
        Fault::new(
            400,
            "InvalidParameter",
            "The supplied password must be between 6-72 characters long.",
        ),
    );
    let mut other = spec.clone();
    other.vm_id = VmId::new();
    let error = azure.create(&other).await.unwrap_err();

    let tokens = arm.issued_tokens();
    let shown = format!(
        "{azure:?} {vm:?} {got:?} {error:?} {error} {spec:?} {:?} {:?}",
        spec.login,
        arm.config()
    );
    assert!(!shown.contains(PASSWORD), "{shown}");
    assert!(!shown.contains(CLIENT_SECRET), "{shown}");
    for token in tokens {
        assert!(!shown.contains(&token), "{shown}");
    }
    assert!(shown.contains("[redacted]"));

    // Neither a password nor a key: refused before any request.
    let mut none = spec_with_id(VmId::new());
    none.login.public_keys.clear();
    assert!(matches!(
        azure.create(&none).await,
        Err(DriverError::InvalidSpec(_))
    ));
}
