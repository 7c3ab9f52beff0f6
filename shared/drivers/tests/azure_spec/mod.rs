//! The Azure driver against Microsoft's API descriptions: every Resource Manager operation the
//! driver uses is checked (request and answer) by the ARM test server's `spec_check` layer, the
//! token endpoint and operation monitors by `azure_arm::shapes`, and the checks themselves refuse
//! what the documents do not allow.

use axum::http::{HeaderMap, HeaderValue, Method};
use serde_json::json;
use vmapi_core::cloud::{CloudDriver, ManagedKind, ManagedResource};

use super::azure_arm::{shapes, ActionStyle, ArmServer};
use super::common::{driver, spec};
use super::spec_check::{self, Exchange};

/// Every Resource Manager operation the Azure driver calls, by the documents' `operationId`
/// (the Tags API of `adopt` is not vendored: see docs/providers.md).
const DRIVER_OPERATIONS: [&str; 17] = [
    "VirtualMachines_CreateOrUpdate",
    "VirtualMachines_Get",
    "VirtualMachines_Start",
    "VirtualMachines_Deallocate",
    "VirtualMachines_Restart",
    "VirtualMachines_ListAvailableSizes",
    "VirtualMachines_Update",
    "VirtualMachines_Delete",
    "VirtualMachines_List",
    "NetworkSecurityGroups_CreateOrUpdate",
    "NetworkSecurityGroups_Get",
    "NetworkSecurityGroups_Delete",
    "NetworkSecurityGroups_List",
    "NetworkInterfaces_Get",
    "PublicIPAddresses_Get",
    "VirtualNetworks_Get",
    "VirtualNetworks_CreateOrUpdate",
];

#[tokio::test]
async fn every_operation_the_driver_uses_is_checked_against_the_api_descriptions() {
    let arm = ArmServer::start().await;
    arm.set_op_polls(1);
    arm.set_action_style(ActionStyle::AsyncOperation);
    let azure = driver(arm.config());
    // A region without a configured subnet: the driver makes its managed network.
    let spec = spec("northeurope");
    let target = spec.target();

    azure.create(&spec).await.expect("create");
    for _ in 0..10 {
        if azure
            .get(&target)
            .await
            .unwrap()
            .unwrap()
            .public_ipv4
            .is_some()
        {
            break;
        }
    }
    azure.stop(&target).await.expect("stop");
    azure.start(&target).await.expect("start");
    azure.reboot(&target).await.expect("reboot");
    for _ in 0..20 {
        if azure
            .resize(&target, "Standard_D4s_v5", true)
            .await
            .expect("resize")
            == vmapi_core::cloud::ResizeProgress::Done
        {
            break;
        }
    }
    azure.apply_rules(&target, &[]).await.expect("rules");
    let listed = azure.list_managed("northeurope").await.expect("list");
    let ours = listed
        .iter()
        .find(|m| m.target.vm_id == spec.vm_id)
        .unwrap();
    azure
        .adopt(&ManagedResource {
            kind: ManagedKind::Vm,
            ..ours.clone()
        })
        .await
        .expect("adopt");
    arm.set_action_style(ActionStyle::Location);
    azure.delete(&target).await.expect("delete");

    let checked = arm.spec().operations();
    for op in DRIVER_OPERATIONS {
        assert!(
            checked.contains(op),
            "{op} was not checked; checked: {checked:?}"
        );
    }
    assert_eq!(arm.spec().list(), Vec::<String>::new());
}

fn put_vm(body: serde_json::Value) -> Exchange {
    Exchange {
        api: "azure",
        method: "PUT".into(),
        path: "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm-1"
            .into(),
        query: "api-version=2024-03-01".into(),
        headers: vec![("content-type".into(), "application/json".into())],
        body: body.to_string().into_bytes(),
        ..Exchange::default()
    }
}

fn vm_body(size: &str, caching: &str) -> serde_json::Value {
    json!({
        "location": "westeurope",
        "properties": {
            "hardwareProfile": { "vmSize": size },
            "storageProfile": { "osDisk": { "createOption": "FromImage", "caching": caching } },
            "networkProfile": { "networkApiVersion": "2020-11-01" },
        }
    })
}

#[test]
fn the_checks_refuse_what_the_documents_do_not_allow() {
    spec_check::ensure();
    // vmSize is an open enum (x-ms-enum modelAsString): sizes newer than the list are valid.
    let verdict = spec_check::check(&put_vm(vm_body("Standard_DC2as_v5", "ReadWrite")));
    assert_eq!(
        verdict.operation.as_deref(),
        Some("VirtualMachines_CreateOrUpdate")
    );
    assert!(verdict.allowed(), "{:?}", verdict.request);
    // caching is a closed one (modelAsString: false); location is required.
    let verdict = spec_check::check(&put_vm(vm_body("Standard_B1s", "Sometimes")));
    assert!(
        verdict.request.join("").contains("Sometimes"),
        "{:?}",
        verdict.request
    );
    let verdict = spec_check::check(&put_vm(json!({ "properties": {} })));
    assert!(verdict
        .request
        .join("")
        .contains("'location' is a required property"));
    // A member the document does not describe (JSON Schema would let it pass).
    let mut stray = vm_body("Standard_B1s", "ReadWrite");
    stray["properties"]["hardwareProfile"]["cores"] = json!(2);
    let verdict = spec_check::check(&put_vm(stray));
    assert_eq!(
        verdict.request,
        vec!["undocumented property /properties/hardwareProfile/cores (not described by the document)"]
    );
    // A priority that is not an integer; an unknown api path; a wrong method.
    let mut nsg = put_vm(json!({
        "location": "westeurope",
        "properties": { "securityRules": [{ "name": "r", "properties": {
            "priority": "100", "direction": "Inbound", "access": "Allow", "protocol": "Tcp"
        } }] }
    }));
    nsg.path =
        "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/networkSecurityGroups/n"
            .into();
    assert!(!spec_check::check(&nsg).request.is_empty());
    let mut unknown = put_vm(json!({}));
    unknown.path.push_str("/hibernate");
    unknown.method = "POST".into();
    assert_eq!(spec_check::check(&unknown).operation, None);
    // An answer the document does not allow: a VM whose provisioningState is a number.
    let mut get = put_vm(json!({}));
    get.method = "GET".into();
    get.body.clear();
    get.status = Some(200);
    get.response_headers = vec![("content-type".into(), "application/json".into())];
    get.response_body = json!({ "location": "x", "properties": { "provisioningState": 3 } })
        .to_string()
        .into_bytes();
    assert!(!spec_check::check(&get).response.is_empty());
}

#[test]
fn the_shapes_no_document_describes_are_checked_in_code() {
    let mut form = HeaderMap::new();
    form.insert(
        "content-type",
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    let good = b"grant_type=client_credentials&client_id=a&client_secret=b&scope=https%3A%2F%2Fmanagement.azure.com%2F.default";
    assert_eq!(
        shapes::token_request(&Method::POST, &form, good),
        Vec::<String>::new()
    );
    let no_scope = b"grant_type=client_credentials&client_id=a&client_secret=b";
    assert!(!shapes::token_request(&Method::POST, &form, no_scope).is_empty());
    assert!(!shapes::token_request(&Method::GET, &HeaderMap::new(), good).is_empty());
    let token = br#"{"token_type":"Bearer","expires_in":3599,"access_token":"x"}"#;
    assert!(shapes::token_response(200, token).is_empty());
    assert!(!shapes::token_response(200, br#"{"access_token":"x"}"#).is_empty());
    assert!(!shapes::token_response(401, br#"{"message":"no"}"#).is_empty());

    let path = "/subscriptions/s/providers/Microsoft.Compute/locations/westeurope/operations/1";
    let none = HeaderMap::new();
    let failed = br#"{"status":"Failed","error":{"code":"X","message":"y"}}"#;
    assert!(
        shapes::monitor(&Method::GET, path, "api-version=1", b"", 200, &none, failed).is_empty()
    );
    let bare = br#"{"status":"Failed"}"#;
    assert!(
        !shapes::monitor(&Method::GET, path, "api-version=1", b"", 200, &none, bare).is_empty()
    );
    assert!(!shapes::monitor(&Method::POST, path, "", b"{}", 200, &none, failed).is_empty());
    let results = path.replace("/operations/", "/operationResults/");
    assert!(!shapes::monitor(
        &Method::GET,
        &results,
        "api-version=1",
        b"",
        202,
        &none,
        b""
    )
    .is_empty());
    assert!(shapes::skip(path) && shapes::skip("/login/t/oauth2/v2.0/token"));

    let mut relative = HeaderMap::new();
    relative.insert("location", HeaderValue::from_static("/subscriptions/s/x"));
    relative.insert("retry-after", HeaderValue::from_static("1.5"));
    assert_eq!(shapes::operation_headers(&relative).len(), 2);
}

/// The NIC example of the Network document has a second IP configuration, not primary, whose
/// private address is a CIDR block (`privateIPAddress` "can be a single IP address or a CIDR
/// block"). Listed first, it must not become the VM's private address.
#[tokio::test]
async fn the_private_address_is_the_primary_ip_configurations() {
    let arm = ArmServer::start().await;
    arm.set_op_polls(0);
    arm.set_secondary_ip_config_first(true);
    let azure = driver(arm.config());
    let spec = spec("westeurope");
    azure.create(&spec).await.expect("create");
    let mut vm = None;
    for _ in 0..5 {
        vm = azure.get(&spec.target()).await.unwrap();
        if vm.as_ref().is_some_and(|v| v.public_ipv4.is_some()) {
            break;
        }
    }
    let vm = vm.expect("VM");
    assert_eq!(vm.private_ipv4.as_deref(), Some("10.0.0.4"));
    assert_eq!(vm.public_ipv4.as_deref(), Some("20.50.0.1"));
}

/// The committed OpenAPI documents were made by convert.py from the vendored swagger files as
/// they are now (a digest of the inputs; regenerating needs node), and they are valid.
#[test]
fn the_converted_azure_documents_are_current_and_valid() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/specs/azure/convert.py");
    let out = std::process::Command::new(spec_check::python())
        .args([script, "--check", "--validate"])
        .output()
        .expect("run convert.py --check");
    assert!(
        out.status.success(),
        "convert.py --check --validate: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
