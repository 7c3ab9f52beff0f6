//! Security rules opening and closing the pod's address, at launch and later.

use vmapi_core::cloud::{CloudDriver, DriverError};
use vmapi_drivers::kraud::KraudDriver;
use vmapi_models::{PortRange, Ports, Protocol, RuleAccess};

use crate::common::{address_rule, driver, spec};
use crate::kraud_api::{KraudApi, Options};

#[tokio::test]
async fn rules_open_and_close_the_address_at_launch_and_later() {
    let api = KraudApi::start(Options::default()).await;
    let driver = driver(&api);

    // Launched without rules: the label is left out, the address stays firewalled.
    let mut closed = spec(None);
    closed.rules.clear();
    driver.create(&closed).await.expect("create");
    let launch = api.launches().pop().unwrap();
    assert!(
        !launch
            .labels
            .iter()
            .any(|l| l.starts_with("kr.network.policy")),
        "{:?}",
        launch.labels
    );
    let ns = KraudDriver::namespace_of(closed.vm_id);
    assert_eq!(api.address_open(&ns), Some(false));

    // Apply an allow rule: the pod's label is set by a merge patch of the k8s-shaped pod.
    let target = closed.target();
    let allow = address_rule("AllowAnyInbound", RuleAccess::Allow, 1000);
    driver
        .apply_rules(&target, std::slice::from_ref(&allow))
        .await
        .expect("apply");
    assert_eq!(api.address_open(&ns), Some(true));
    let patch = api.patches().pop().unwrap();
    assert_eq!(
        (patch.namespace.as_str(), patch.pod.as_str()),
        (ns.as_str(), "vm")
    );
    assert_eq!(patch.content_type, "application/merge-patch+json");
    assert_eq!(
        patch.body,
        serde_json::json!({ "metadata": { "labels": { "kr.network.policy": "open" } } })
    );
    // Repeating it changes nothing.
    driver
        .apply_rules(&target, std::slice::from_ref(&allow))
        .await
        .expect("apply again");
    assert_eq!(api.address_open(&ns), Some(true));

    // A deny rule closes it even next to an allow rule; no rules close it too.
    let deny = address_rule("DenyAll", RuleAccess::Deny, 900);
    driver
        .apply_rules(&target, &[allow.clone(), deny])
        .await
        .expect("apply deny");
    assert_eq!(api.address_open(&ns), Some(false));
    assert_eq!(
        api.patches().pop().unwrap().body,
        serde_json::json!({ "metadata": { "labels": { "kr.network.policy": null } } })
    );
    driver
        .apply_rules(&target, std::slice::from_ref(&allow))
        .await
        .unwrap();
    driver.apply_rules(&target, &[]).await.unwrap();
    assert_eq!(api.address_open(&ns), Some(false));

    // A port rule cannot be expressed: refused before any call.
    let before = api.requests().len();
    let mut ssh = allow.clone();
    ssh.protocol = Protocol::Tcp;
    ssh.port_range = Ports::Ranges(vec![PortRange { from: 22, to: 22 }]);
    assert!(matches!(
        driver.apply_rules(&target, &[ssh]).await,
        Err(DriverError::InvalidSpec(m)) if m.contains("only open or close")
    ));
    assert_eq!(api.requests().len(), before);

    // A VM without a pod: not found.
    let gone = spec(None).target();
    assert!(matches!(
        driver.apply_rules(&gone, &[allow]).await,
        Err(DriverError::NotFound(_))
    ));

    // Launched with the default rule: open from the start; a repeated create re-applies the
    // rules to the pod an earlier attempt launched.
    let mut open = spec(None);
    driver.create(&open).await.unwrap();
    let ns = KraudDriver::namespace_of(open.vm_id);
    assert_eq!(api.address_open(&ns), Some(true));
    open.rules.clear();
    driver.create(&open).await.unwrap();
    assert_eq!(api.address_open(&ns), Some(false));
    assert_eq!(api.launches().len(), 2);
}
