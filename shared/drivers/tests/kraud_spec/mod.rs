//! The Kraud.Cloud driver against the vendor's API description: every operation the driver
//! uses is checked (request and answer) by the test server's `spec_check` layer, and the check
//! itself refuses what the document does not allow.

use vmapi_core::cloud::{CloudDriver, ManagedKind, ManagedResource};
use vmapi_drivers::kraud::KraudDriver;

use super::common::{driver, spec};
use super::kraud_api::{KraudApi, Options};
use super::spec_check::{self, Exchange};

/// Every Kraud.Cloud operation the driver calls, by the document's `operationId`.
const DRIVER_OPERATIONS: [&str; 12] = [
    "createNamespace",
    "deleteNamespace",
    "listNamespaces",
    "patchNamespace",
    "patchPod",
    "launchTemplate",
    "listKraudPods",
    "listKraudDeployments",
    "krRestartDeploymentByID",
    "DockerContainerStart",
    "DockerContainerStop",
    "DockerContainerRestart",
];

#[tokio::test]
async fn every_operation_the_driver_uses_is_checked_against_the_api_description() {
    let api = KraudApi::start(Options::default()).await;
    let driver = driver(&api);
    let mut spec = spec(None);
    spec.rules = vec![super::common::address_rule(
        "web",
        vmapi_models::RuleAccess::Allow,
        100,
    )];
    let target = spec.target();
    let ns = KraudDriver::namespace_of(spec.vm_id);

    driver.create(&spec).await.expect("create");
    api.reveal_pods();
    driver.get(&target).await.expect("get").expect("listed");
    driver.apply_rules(&target, &[]).await.expect("close");
    driver.stop(&target).await.expect("stop");
    driver.start(&target).await.expect("start");
    driver.reboot(&target).await.expect("reboot (deployment)");
    // Without a listed deployment the reboot restarts the container.
    api.forget_deployments(&ns);
    driver.reboot(&target).await.expect("reboot (container)");
    let listed = driver.list_managed("berlin").await.expect("list");
    let ours = listed
        .iter()
        .find(|m| m.target.vm_id == spec.vm_id)
        .unwrap();
    driver
        .adopt(&ManagedResource {
            kind: ManagedKind::Vm,
            ..ours.clone()
        })
        .await
        .expect("adopt");
    driver.delete(&target).await.expect("delete");

    let checked = api.spec().operations();
    for op in DRIVER_OPERATIONS {
        assert!(
            checked.contains(op),
            "{op} was not checked; checked: {checked:?}"
        );
    }
    assert!(api.spec().checked() >= DRIVER_OPERATIONS.len());
    assert_eq!(api.spec().list(), Vec::<String>::new());
}

fn ask(method: &str, path: &str, query: &str, body: &str) -> Exchange {
    Exchange {
        api: "kraud",
        method: method.into(),
        path: path.into(),
        query: query.into(),
        headers: vec![("content-type".into(), "application/json".into())],
        body: body.as_bytes().to_vec(),
        ..Exchange::default()
    }
}

fn answered(mut exchange: Exchange, status: u16, body: &str) -> Exchange {
    exchange.status = Some(status);
    exchange.response_headers = vec![("content-type".into(), "application/json".into())];
    exchange.response_body = body.as_bytes().to_vec();
    exchange
}

#[test]
fn the_check_refuses_what_the_document_does_not_allow() {
    spec_check::ensure();
    // The namespace the driver used to create: no `spec`, no `status` (both required).
    let verdict = spec_check::check(&ask(
        "POST",
        "/api/v1/namespaces",
        "",
        r#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"vm-1"}}"#,
    ));
    assert_eq!(verdict.operation.as_deref(), Some("createNamespace"));
    let text = verdict.request.join("\n");
    assert!(text.contains("'spec' is a required property"), "{text}");
    assert!(text.contains("'status' is a required property"), "{text}");

    // A member k8s ObjectMeta does not describe.
    let verdict = spec_check::check(&ask(
        "POST",
        "/api/v1/namespaces",
        "",
        r#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"vm-1","owner":"me"},"spec":{},"status":{"phase":"Active"}}"#,
    ));
    assert_eq!(
        verdict.request,
        vec!["undocumented property /metadata/owner (not described by the document)"]
    );

    // A merge patch may remove a label (null) but not set it to a number.
    let mut patch = ask(
        "PATCH",
        "/api/v1/namespaces/vm-1/pods/vm",
        "",
        r#"{"metadata":{"labels":{"kr.network.policy":null}}}"#,
    );
    patch.headers = vec![("content-type".into(), "application/merge-patch+json".into())];
    assert!(spec_check::check(&patch).allowed());
    patch.body = br#"{"metadata":{"labels":{"kr.network.policy":1}}}"#.to_vec();
    assert!(!spec_check::check(&patch).request.is_empty());

    // A query value of the wrong type; a path no document has.
    let stop = ask("POST", "/v1.41/containers/p1/stop", "t=soon", "");
    let verdict = spec_check::check(&stop);
    assert_eq!(verdict.operation.as_deref(), Some("DockerContainerStop"));
    assert!(
        verdict
            .request
            .join("")
            .contains("Query parameter error: t"),
        "{:?}",
        verdict.request
    );
    let unknown = spec_check::check(&ask("POST", "/apis/kraudcloud.com/v1/vms", "", ""));
    assert_eq!(unknown.operation, None);
    assert!(!unknown.request.is_empty());

    // Answers: a pod list whose pod lacks the required fields; a launch answer without its id.
    let pods = answered(
        ask("GET", "/apis/kraudcloud.com/v1/pods", "status=true", ""),
        200,
        r#"{"items":[{"ID":"p1"}]}"#,
    );
    let verdict = spec_check::check(&pods);
    assert!(verdict.request.is_empty(), "{:?}", verdict.request);
    assert!(
        verdict
            .response
            .join("")
            .contains("'AID' is a required property"),
        "{:?}",
        verdict.response
    );
    let stopped = answered(ask("POST", "/containers/p1/stop", "", ""), 201, "");
    assert!(!spec_check::check(&stopped).response.is_empty());
    // An error status the document does not describe is noted, not refused.
    let refused = spec_check::check(&answered(
        ask("DELETE", "/api/v1/namespaces/vm-1", "recursive=true", ""),
        409,
        r#"{"message":"busy"}"#,
    ));
    assert!(refused.allowed());
    assert!(refused.note.is_some());
}

#[test]
fn the_committed_kraud_document_is_the_fixup_output_and_valid() {
    spec_check::ensure();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/specs/kraud/fixup.py");
    let out = std::process::Command::new(spec_check::python())
        .arg(script)
        .arg("--check")
        .output()
        .expect("run fixup.py --check");
    assert!(
        out.status.success(),
        "fixup.py --check: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
