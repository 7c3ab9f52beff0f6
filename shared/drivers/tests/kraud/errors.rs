//! What goes wrong: a bad token, launch errors, conflicts, throttling and outages, missing VMs
//! and failed pods.

use std::time::Duration;

use axum::http::Method;
use vmapi_core::cloud::{CloudDriver, CloudState, DriverError};
use vmapi_drivers::kraud::{KraudConfig, KraudDriver};
use vmapi_models::Sensitive;

use crate::common::{driver, driver_with, spec};
use crate::kraud_api::{KraudApi, Options};

#[tokio::test]
async fn a_bad_token_is_unauthorized() {
    let api = KraudApi::start(Options::default()).await;
    let driver = driver_with(&api, "expired-token");
    let spec = spec(None);
    let err = driver.create(&spec).await.expect_err("bad token");
    assert!(matches!(err, DriverError::Unauthorized(_)), "{err:?}");
    assert!(!err.is_retryable());
    let err = driver.get(&spec.target()).await.expect_err("bad token");
    assert!(matches!(err, DriverError::Unauthorized(_)), "{err:?}");
    assert!(api.launches().is_empty());
    // The token never shows up in an error.
    assert!(!format!("{err} {err:?}").contains("expired-token"));

    let empty = KraudDriver::new(KraudConfig {
        token: Sensitive::new("  ".into()),
        base_url: api.base_url.clone(),
        deployment: vmapi_models::DeploymentId::local(),
    });
    assert!(matches!(empty, Err(DriverError::Unauthorized(_))));
}

#[tokio::test]
async fn a_launch_error_carries_the_message() {
    let api = KraudApi::start(Options {
        launch_error: Some((400, "image quay.io/kraudcloud/pvm/nope:1 not found".into())),
        ..Options::default()
    })
    .await;
    let driver = driver(&api);
    let err = driver.create(&spec(None)).await.expect_err("launch fails");
    match &err {
        DriverError::InvalidSpec(m) => assert!(m.contains("pvm/nope:1 not found"), "{m}"),
        other => panic!("expected InvalidSpec, got {other:?}"),
    }
    assert!(err.user_reason().contains("not found"));

    api.set_options(|o| o.launch_error = Some((503, "scheduler unavailable".into())));
    let err = driver.create(&spec(None)).await.expect_err("launch fails");
    assert!(
        matches!(&err, DriverError::Unreachable(m) if m.contains("scheduler unavailable")),
        "{err:?}"
    );
    assert!(err.is_retryable());

    api.set_options(|o| {
        o.launch_error = None;
        o.launch_text = Some(
            "pulling quay.io/kraudcloud/pvm/ubuntu:22.04\nError: volume zone mismatch\n".into(),
        );
    });
    let err = driver
        .create(&spec(None))
        .await
        .expect_err("streamed failure");
    assert_eq!(
        err,
        DriverError::Provider {
            code: "launch_failed".into(),
            message: "volume zone mismatch".into()
        }
    );
    api.set_options(|o| o.launch_text = Some("OK. Launch in progress".into()));
    let vm = driver.create(&spec(None)).await.expect("streamed success");
    assert_eq!(vm.state, CloudState::Provisioning);

    api.set_options(|o| o.launch_error = Some((402, "pool limit reached".into())));
    let err = driver.create(&spec(None)).await.expect_err("launch fails");
    assert!(
        matches!(&err, DriverError::Quota(m) if m.contains("pool limit")),
        "{err:?}"
    );
}

#[tokio::test]
async fn conflicts_throttling_and_outages_map_to_retryable_errors() {
    let api = KraudApi::start(Options::default()).await;
    let driver = driver(&api);
    let spec = spec(None);

    api.inject(
        Method::POST,
        "/apis/kraudcloud.com/v1/launch",
        409,
        "another launch is running",
        None,
        1,
    );
    let err = driver.create(&spec).await.expect_err("conflict");
    assert!(
        matches!(&err, DriverError::Conflict(m) if m.contains("another launch")),
        "{err:?}"
    );

    api.inject(
        Method::GET,
        "/apis/kraudcloud.com/v1/pods",
        429,
        "slow down",
        Some(7),
        1,
    );
    let err = driver.get(&spec.target()).await.expect_err("throttled");
    assert_eq!(
        err,
        DriverError::Throttled {
            retry_after: Duration::from_secs(7)
        }
    );
    assert_eq!(err.retry_after(), Duration::from_secs(7));

    api.inject(
        Method::DELETE,
        "/api/v1/namespaces/",
        500,
        "etcd timeout",
        None,
        1,
    );
    let err = driver
        .delete(&spec.target())
        .await
        .expect_err("server error");
    assert!(matches!(err, DriverError::Unreachable(_)), "{err:?}");

    // After the faults the create goes through, with one launch.
    driver.create(&spec).await.expect("create");
    assert_eq!(api.launches().len(), 1);

    // Nobody listening.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let offline = KraudDriver::new(KraudConfig {
        token: Sensitive::new("t".into()),
        base_url: format!("http://{closed}"),
        deployment: vmapi_models::DeploymentId::local(),
    })
    .unwrap();
    let err = offline.get(&spec.target()).await.expect_err("offline");
    assert!(matches!(err, DriverError::Unreachable(_)), "{err:?}");
}

#[tokio::test]
async fn missing_vms_and_failed_pods() {
    let api = KraudApi::start(Options::default()).await;
    let driver = driver(&api);
    let spec = spec(None);
    let target = spec.target();

    assert_eq!(driver.get(&target).await.unwrap(), None);
    assert!(matches!(
        driver.start(&target).await,
        Err(DriverError::NotFound(_))
    ));
    assert!(matches!(
        driver.stop(&target).await,
        Err(DriverError::NotFound(_))
    ));
    assert!(matches!(
        driver.reboot(&target).await,
        Err(DriverError::NotFound(_))
    ));
    driver
        .delete(&target)
        .await
        .expect("delete of an absent VM");

    driver.create(&spec).await.expect("create");
    let ns = KraudDriver::namespace_of(spec.vm_id);
    api.set_display(&ns, "Error: no capacity in zone uca", false);
    let vm = driver.get(&target).await.unwrap().unwrap();
    assert_eq!(
        vm.state,
        CloudState::Failed("Error: no capacity in zone uca".into())
    );
    assert_eq!(vm.raw_state, "Error: no capacity in zone uca");
    api.set_display(&ns, "Hibernating", true);
    let vm = driver.get(&target).await.unwrap().unwrap();
    assert_eq!(vm.state, CloudState::Unknown);
}
