//! Listing the service's namespaces (`list_managed`).

use axum::http::Method;
use vmapi_core::cloud::{CloudDriver, DriverError};
use vmapi_drivers::kraud::KraudDriver;
use vmapi_models::VmId;

use crate::common::{driver, driver_with, spec};
use crate::kraud_api::{KraudApi, Options};

#[tokio::test]
async fn list_managed_finds_the_services_namespaces_and_only_those() {
    let api = KraudApi::start(Options::default()).await;
    let driver = driver(&api);
    let (a, b, gone, leaving) = (spec(None), spec(None), spec(None), spec(None));
    for spec in [&a, &b, &gone, &leaving] {
        driver.create(spec).await.expect("create");
    }
    driver.delete(&gone.target()).await.expect("delete");
    // Being deleted: listed by the API as Terminating, not by the driver.
    let leaving_ns = KraudDriver::namespace_of(leaving.vm_id);
    api.set_terminating(&leaving_ns);
    // A namespace of ours whose launch never happened (a partial create) is still ours.
    let empty = VmId::new();
    let empty_ns = KraudDriver::namespace_of(empty);
    api.add_namespace(&empty_ns);
    // Not the service's.
    let foreign = [
        "default".to_string(),
        "vm-web-frontend".to_string(),
        format!("vm-{}-old", VmId::new()),
        format!("VM-{}", VmId::new()),
    ];
    for ns in &foreign {
        api.add_namespace(ns);
    }
    api.add_pod("default");

    let listed = driver.list_managed("berlin").await.expect("list");
    let mut found: Vec<(VmId, String)> = listed
        .iter()
        .map(|r| (r.target.vm_id, r.target.provider_id.clone().unwrap()))
        .collect();
    found.sort();
    let mut expected: Vec<(VmId, String)> = [a.vm_id, b.vm_id, empty]
        .into_iter()
        .map(|id| (id, KraudDriver::namespace_of(id)))
        .collect();
    expected.sort();
    assert_eq!(found, expected);
    for resource in &listed {
        assert_eq!(resource.target.region, "berlin");
        assert!(resource.created_at.is_some(), "creationTimestamp is read");
        if resource.target.vm_id == empty {
            assert_eq!(
                resource.raw_state, "Active",
                "no pod: the namespace's phase"
            );
        } else {
            assert!(
                ["Creating...", "Starting...", "Running"].contains(&resource.raw_state.as_str()),
                "the pod's display: {}",
                resource.raw_state
            );
        }
    }
    assert!(api
        .requests()
        .contains(&"GET /api/v1/namespaces".to_string()));

    // The listed targets are enough to delete the VMs.
    let fresh = driver_with(&api, &api.token());
    for resource in &listed {
        fresh.delete(&resource.target).await.expect("delete listed");
    }
    let mut left = api.namespaces();
    left.sort();
    let mut untouched: Vec<String> = foreign.to_vec();
    untouched.push(leaving_ns);
    untouched.sort();
    assert_eq!(left, untouched);
    assert!(driver.list_managed("berlin").await.unwrap().is_empty());
    assert_eq!(
        api.pod_count(),
        2,
        "the terminating VM's pod and the foreign pod"
    );
}

#[tokio::test]
async fn list_managed_errors_map_like_other_calls() {
    let api = KraudApi::start(Options::default()).await;
    let driver = driver(&api);
    api.inject(
        Method::GET,
        "/api/v1/namespaces",
        503,
        "maintenance",
        None,
        1,
    );
    assert!(matches!(
        driver.list_managed("uca").await,
        Err(DriverError::Unreachable(_))
    ));
    let bad = driver_with(&api, "wrong-token");
    assert!(matches!(
        bad.list_managed("uca").await,
        Err(DriverError::Unauthorized(_))
    ));
    assert!(driver.list_managed("uca").await.unwrap().is_empty());
}
