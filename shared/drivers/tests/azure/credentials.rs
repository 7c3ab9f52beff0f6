//! The driver's configuration and its Entra ID token: checked, cached, refreshed early and
//! after a 401.

use std::time::Duration;

use vmapi_core::cloud::{CloudDriver, DriverError};
use vmapi_drivers::azure::{AzureConfig, AzureDriver};
use vmapi_models::Sensitive;

use crate::azure_arm::ArmServer;
use crate::common::{driver, spec};

#[test]
fn configuration_is_checked() {
    let config = AzureConfig::new(
        "tenant",
        "client",
        Sensitive::new("s3cret-value".into()),
        "sub",
        "rg",
    );
    assert_eq!(config.login_base, "https://login.microsoftonline.com");
    assert_eq!(config.management_base, "https://management.azure.com");
    assert!(!format!("{config:?}").contains("s3cret-value"));
    assert!(AzureDriver::new(config.clone()).is_ok());
    let mut bad = config.clone();
    bad.resource_group = "rg/../other".into();
    assert!(matches!(
        AzureDriver::new(bad),
        Err(DriverError::InvalidSpec(_))
    ));
    let mut bad = config;
    bad.client_secret = Sensitive::new(String::new());
    assert!(AzureDriver::new(bad).is_err());
}

#[tokio::test]
async fn token_is_cached_refreshed_early_and_after_401() {
    let arm = ArmServer::start().await;
    let azure = driver(arm.config());
    let spec = spec("westeurope");
    let target = spec.target();
    azure.create(&spec).await.unwrap();
    azure.get(&target).await.unwrap();
    azure.get(&target).await.unwrap();
    assert_eq!(arm.token_requests(), 1, "one token for many calls");
    let form = &arm.token_forms()[0];
    assert_eq!(form["grant_type"], "client_credentials");
    assert_eq!(form["client_id"], crate::azure_arm::CLIENT_ID);
    assert_eq!(form["scope"], "https://management.azure.com/.default");
    let first = arm.issued_tokens()[0].clone();
    assert!(arm
        .requests()
        .iter()
        .filter(|r| !r.path.starts_with("/login/"))
        .all(|r| r.authorization.as_deref() == Some(&format!("Bearer {first}"))));

    // ARM refuses the token: the driver fetches a new one and repeats the call once.
    arm.expire_tokens();
    arm.clear_requests();
    let vm = azure.get(&target).await.unwrap();
    assert!(vm.is_some());
    assert_eq!(arm.token_requests(), 2);
    let requests = arm.requests();
    assert_eq!(requests[0].status, 401);
    assert!(requests[1].path.starts_with("/login/"));
    let second = arm.issued_tokens()[1].clone();
    assert_eq!(
        requests[2].authorization.as_deref(),
        Some(format!("Bearer {second}").as_str())
    );
    azure.get(&target).await.unwrap();
    assert_eq!(arm.token_requests(), 2);

    // A token is replaced five minutes before it expires: one valid for 301 s is used for a
    // second, then replaced although ARM would still take it.
    arm.set_token_expires_in(301);
    let early = driver(arm.config());
    early.get(&target).await.unwrap();
    early.get(&target).await.unwrap();
    assert_eq!(arm.token_requests(), 3);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    early.get(&target).await.unwrap();
    assert_eq!(arm.token_requests(), 4);

    // Refused credentials: Unauthorized, and the secret appears nowhere.
    let mut config = arm.config();
    config.client_secret = Sensitive::new("wrong-secret-value".into());
    let refused = driver(config);
    let error = refused.get(&target).await.unwrap_err();
    assert!(
        matches!(&error, DriverError::Unauthorized(m) if m.contains("AADSTS7000215")),
        "{error:?}"
    );
    assert!(!error.is_retryable());
    let shown = format!("{error:?} {error} {refused:?}");
    assert!(
        !shown.contains("wrong-secret-value") && !shown.contains("Trace ID"),
        "{shown}"
    );
}
