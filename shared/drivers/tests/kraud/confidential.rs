//! Confidential computing: SNP asked for by label and read back from the pod; TDX refused.

use vmapi_core::cloud::{CloudDriver, CloudState, DriverError};
use vmapi_models::ConfidentialTech;

use crate::common::{driver, poll_until, spec};
use crate::kraud_api::{KraudApi, Options};

#[tokio::test]
async fn snp_is_requested_by_label_and_reported_from_the_pod() {
    let api = KraudApi::start(Options::default()).await;
    let driver = driver(&api);
    let spec = spec(Some(ConfidentialTech::SevSnp));

    let vm = driver.create(&spec).await.expect("create");
    let launch = &api.launches()[0];
    assert!(
        launch.labels.contains(&"kr.res.snp=1".to_string()),
        "{:?}",
        launch.labels
    );
    assert_eq!(vm.confidential, Some(ConfidentialTech::SevSnp));
    let running = poll_until(&driver, &spec.target(), CloudState::Running).await;
    assert_eq!(running.confidential, Some(ConfidentialTech::SevSnp));
}

#[tokio::test]
async fn a_cloud_that_ignores_snp_reports_no_confidential_technology() {
    let api = KraudApi::start(Options {
        honor_snp: false,
        ..Options::default()
    })
    .await;
    let driver = driver(&api);
    let spec = spec(Some(ConfidentialTech::SevSnp));

    let vm = driver.create(&spec).await.expect("create");
    assert!(api.launches()[0]
        .labels
        .contains(&"kr.res.snp=1".to_string()));
    assert_eq!(
        vm.confidential, None,
        "what was asked is not what the pod reports"
    );
    let running = poll_until(&driver, &spec.target(), CloudState::Running).await;
    assert_eq!(running.confidential, None);
}

#[tokio::test]
async fn tdx_is_refused_before_any_call() {
    let api = KraudApi::start(Options::default()).await;
    let driver = driver(&api);
    let err = driver
        .create(&spec(Some(ConfidentialTech::Tdx)))
        .await
        .expect_err("no TDX");
    assert!(matches!(err, DriverError::InvalidSpec(_)), "{err:?}");
    assert!(api.requests().is_empty());
}
