//! Changing a VM's size through the driver: in place when the VM's hardware cluster offers the
//! new size, else deallocate, change, start; a stopped VM stays stopped. Every request is
//! checked against Microsoft's API description by the ARM test server.

use vmapi_core::cloud::{CloudDriver, CloudState, CloudTarget, DriverError, ResizeProgress};
use vmapi_drivers::azure::AzureDriver;

use crate::azure_arm::ArmServer;
use crate::common::{driver, spec};

/// Calls `resize` until it answers `Done`.
async fn resize(azure: &AzureDriver, target: &CloudTarget, size: &str, running: bool) {
    for _ in 0..20 {
        if azure.resize(target, size, running).await.expect("resize") == ResizeProgress::Done {
            return;
        }
    }
    panic!("resize to {size} never finished");
}

/// A created VM, running.
async fn running_vm(arm: &ArmServer) -> (AzureDriver, CloudTarget) {
    arm.set_op_polls(1);
    let azure = driver(arm.config());
    let spec = spec("westeurope");
    azure.create(&spec).await.unwrap();
    let target = spec.target();
    for _ in 0..10 {
        if azure.get(&target).await.unwrap().unwrap().state == CloudState::Running {
            return (azure, target);
        }
    }
    panic!("the VM never ran");
}

fn size_of(arm: &ArmServer) -> String {
    let get = arm
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.method == "PATCH")
        .expect("a PATCH");
    serde_json::from_str::<serde_json::Value>(&get.body).unwrap()["properties"]["hardwareProfile"]
        ["vmSize"]
        .as_str()
        .unwrap()
        .to_string()
}

fn actions(arm: &ArmServer) -> Vec<String> {
    arm.requests()
        .into_iter()
        .filter(|r| r.method == "POST" || r.method == "PATCH")
        .map(|r| {
            format!(
                "{} {}",
                r.method,
                r.path.rsplit('/').next().unwrap_or_default()
            )
        })
        .collect()
}

#[tokio::test]
async fn a_size_of_the_same_hardware_cluster_is_set_in_place() {
    let arm = ArmServer::start().await;
    let (azure, target) = running_vm(&arm).await;
    let before = actions(&arm).len();
    resize(&azure, &target, "Standard_D4s_v5", true).await;
    let done = &actions(&arm)[before..];
    assert_eq!(done.len(), 1, "{done:?}");
    assert!(done[0].starts_with("PATCH "), "{done:?}");
    assert_eq!(size_of(&arm), "Standard_D4s_v5");
    assert_eq!(
        azure.get(&target).await.unwrap().unwrap().state,
        CloudState::Running
    );
}

#[tokio::test]
async fn another_cluster_means_deallocate_change_and_start() {
    let arm = ArmServer::start().await;
    let (azure, target) = running_vm(&arm).await;
    let before = actions(&arm).len();
    resize(&azure, &target, "Standard_DC2as_v5", true).await;
    let done = actions(&arm)[before..].to_vec();
    assert_eq!(
        done,
        [
            "POST deallocate",
            &format!("PATCH {}", target_name(&target)),
            "POST start"
        ]
    );
    assert_eq!(size_of(&arm), "Standard_DC2as_v5");
    assert_eq!(
        azure.get(&target).await.unwrap().unwrap().state,
        CloudState::Running
    );
}

#[tokio::test]
async fn a_stopped_vm_stays_stopped_and_an_unknown_size_is_refused() {
    let arm = ArmServer::start().await;
    let (azure, target) = running_vm(&arm).await;
    azure.stop(&target).await.unwrap();
    for _ in 0..10 {
        if azure.get(&target).await.unwrap().unwrap().state == CloudState::Stopped {
            break;
        }
    }
    resize(&azure, &target, "Standard_B2s", false).await;
    assert_eq!(size_of(&arm), "Standard_B2s");
    assert_eq!(
        azure.get(&target).await.unwrap().unwrap().state,
        CloudState::Stopped
    );
    let err = azure
        .resize(&target, "Standard_Z99", false)
        .await
        .unwrap_err();
    assert!(matches!(err, DriverError::InvalidSpec(_)), "{err:?}");
}

fn target_name(target: &CloudTarget) -> String {
    format!("vm-{}", target.vm_id)
}
