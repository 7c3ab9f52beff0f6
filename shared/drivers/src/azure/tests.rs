//! Unit tests of the Azure driver's files (the ARM test server drives it in `tests/azure/`).

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};
use reqwest::StatusCode;
use serde_json::{json, Value};
use vmapi_core::cloud::{CloudDriver, CloudState, CloudTarget, DriverError};
use vmapi_models::{Sensitive, Timestamp, VmId};

use super::errors::*;
use super::list::*;
use super::util::*;
use super::vm::*;
use super::*;

/// A loopback port nobody listens on.
fn closed_port() -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

fn target() -> CloudTarget {
    CloudTarget {
        vm_id: VmId::new(),
        region: "r".into(),
        provider_id: None,
    }
}

#[tokio::test]
async fn an_unreachable_endpoint_names_the_connection_error() {
    let base = format!("http://{}", closed_port());
    let mut config = AzureConfig::new(
        "tenant",
        "client",
        Sensitive::new("azure-client-secret-value".into()),
        "subscription",
        "group",
    );
    config.login_base = base.clone();
    config.management_base = base;
    let driver = AzureDriver::new(config).unwrap();
    let e = driver.get(&target()).await.expect_err("nobody listens");
    let DriverError::Unreachable(m) = &e else {
        panic!("{e:?}")
    };
    assert!(m.starts_with("Entra ID connection failed: "), "{m}");
    // Not only reqwest's "error sending request": the cause below it.
    assert!(m.to_lowercase().contains("connection refused"), "{m}");
    assert!(!m.contains("azure-client-secret-value"), "{m}");
}

#[test]
fn form_encoding_escapes_reserved_characters() {
    assert_eq!(
        form_encode(&[("scope", MANAGEMENT_SCOPE), ("a b", "x&y=z")]),
        "scope=https%3A%2F%2Fmanagement.azure.com%2F.default&a%20b=x%26y%3Dz"
    );
    // Unreserved characters stay; everything else, non-ASCII bytes too, is %XX (upper case).
    assert_eq!(
        form_encode(&[("k", "-._~*+ \u{e9}")]),
        "k=-._~%2A%2B%20%C3%A9"
    );
}

#[test]
fn states_map_from_the_instance_view() {
    let view = |codes: &[&str]| {
        json!({ "properties": { "instanceView": { "statuses":
            codes.iter().map(|c| json!({ "code": c })).collect::<Vec<_>>() } } })
    };
    let cases = [
        (vec!["ProvisioningState/creating"], CloudState::Provisioning),
        (
            vec!["ProvisioningState/succeeded"],
            CloudState::Provisioning,
        ),
        (
            vec!["ProvisioningState/succeeded", "PowerState/running"],
            CloudState::Running,
        ),
        (
            vec!["ProvisioningState/succeeded", "PowerState/starting"],
            CloudState::Starting,
        ),
        (
            vec!["ProvisioningState/succeeded", "PowerState/stopping"],
            CloudState::Stopping,
        ),
        (
            vec!["ProvisioningState/succeeded", "PowerState/deallocating"],
            CloudState::Stopping,
        ),
        (
            vec!["ProvisioningState/succeeded", "PowerState/stopped"],
            CloudState::Stopped,
        ),
        (
            vec!["ProvisioningState/updating", "PowerState/deallocated"],
            CloudState::Stopped,
        ),
        (
            vec!["ProvisioningState/succeeded", "PowerState/unknown"],
            CloudState::Unknown,
        ),
        (
            vec!["ProvisioningState/deleting", "PowerState/running"],
            CloudState::Deleting,
        ),
    ];
    for (codes, state) in cases {
        assert_eq!(map_state(&view(&codes)).0, state, "{codes:?}");
    }
    let (state, raw) = map_state(&view(&[
        "ProvisioningState/succeeded",
        "PowerState/running",
    ]));
    assert_eq!(
        (state, raw.as_str()),
        (CloudState::Running, "PowerState/running")
    );
    let failed = json!({ "properties": { "instanceView": { "statuses": [
        { "code": "ProvisioningState/failed/AllocationFailed", "message": "no capacity" }
    ] } } });
    assert_eq!(
        map_state(&failed),
        (
            CloudState::Failed("AllocationFailed: no capacity".into()),
            "ProvisioningState/failed/AllocationFailed".into()
        )
    );
    let bare = json!({ "properties": { "provisioningState": "Creating" } });
    assert_eq!(map_state(&bare).0, CloudState::Provisioning);
}

#[test]
fn errors_map_by_code_before_status() {
    let body = |code: &str, message: &str| {
        json!({ "error": { "code": code, "message": message } }).to_string()
    };
    let none = HeaderMap::new();
    assert!(matches!(
        arm_error(
            StatusCode::CONFLICT,
            &none,
            &body("OperationNotAllowed", "exceeding approved quota")
        ),
        DriverError::Quota(_)
    ));
    assert!(matches!(
        arm_error(StatusCode::CONFLICT, &none, &body("Conflict", "busy")),
        DriverError::Conflict(_)
    ));
    assert!(matches!(
        arm_error(
            StatusCode::BAD_REQUEST,
            &none,
            &body("InvalidParameter", "bad")
        ),
        DriverError::InvalidSpec(_)
    ));
    assert!(matches!(
        arm_error(
            StatusCode::FORBIDDEN,
            &none,
            &body("AuthorizationFailed", "no")
        ),
        DriverError::Unauthorized(_)
    ));
    assert!(matches!(
        arm_error(StatusCode::SERVICE_UNAVAILABLE, &none, ""),
        DriverError::Unreachable(_)
    ));
    let mut headers = HeaderMap::new();
    headers.insert(RETRY_AFTER, HeaderValue::from_static("7"));
    assert_eq!(
        arm_error(StatusCode::TOO_MANY_REQUESTS, &headers, ""),
        DriverError::Throttled {
            retry_after: Duration::from_secs(7)
        }
    );
}

#[test]
fn listed_vms_are_ours_only_with_the_tag_and_an_id() {
    let vm = VmId::new();
    let other = VmId::new();
    let group = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines";
    let listed = |name: &str, tags: Value, location: &str, state: &str| {
        json!({
            "id": format!("{group}/{name}"),
            "name": name,
            "location": location,
            "tags": tags,
            "properties": {
                "provisioningState": state,
                "timeCreated": "2024-05-06T07:08:09.1234567+00:00"
            }
        })
    };
    let name = format!("vm-{vm}");
    let ours = json!({ "managed-by": MANAGED_BY, "vm-id": vm.to_string() });
    let found = managed_resource(
        &listed(&name, ours.clone(), "westeurope", "Succeeded"),
        "westeurope",
    )
    .expect("ours");
    assert_eq!(found.target.vm_id, vm);
    assert_eq!(
        found.target.provider_id.as_deref(),
        Some(format!("{group}/{name}").as_str())
    );
    assert_eq!(found.raw_state, "ProvisioningState/succeeded");
    assert_eq!(
        found.created_at,
        Some(Timestamp::parse("2024-05-06T07:08:09.123Z").unwrap())
    );
    // Tag names are case-insensitive; locations may be display names.
    let upper = json!({ "Managed-By": MANAGED_BY, "VM-ID": vm.to_string() });
    assert!(managed_resource(
        &listed(&name, upper, "West Europe", "Succeeded"),
        "westeurope"
    )
    .is_some());
    // The name alone names the VM when the vm-id tag is missing.
    let by_name = json!({ "managed-by": MANAGED_BY });
    assert_eq!(
        managed_resource(
            &listed(&name, by_name.clone(), "westeurope", "Creating"),
            "westeurope"
        )
        .map(|r| r.target.vm_id),
        Some(vm)
    );
    let cases = [
        listed(
            &name,
            json!({ "vm-id": vm.to_string() }),
            "westeurope",
            "Succeeded",
        ),
        listed(
            &name,
            json!({ "managed-by": "someone-else", "vm-id": vm.to_string() }),
            "westeurope",
            "Succeeded",
        ),
        listed(&name, ours.clone(), "northeurope", "Succeeded"),
        listed(&name, ours.clone(), "westeurope", "Deleting"),
        listed(
            &format!("vm-{other}"),
            ours.clone(),
            "westeurope",
            "Succeeded",
        ),
        listed(
            &name,
            json!({ "managed-by": MANAGED_BY, "vm-id": "not-an-id" }),
            "westeurope",
            "Succeeded",
        ),
        listed("web-server", by_name, "westeurope", "Succeeded"),
        json!({ "name": name, "location": "westeurope", "tags": ours }),
    ];
    for case in cases {
        assert_eq!(managed_resource(&case, "westeurope"), None, "{case}");
    }
}

#[test]
fn urns_and_ids_are_checked() {
    assert!(parse_urn("Canonical:ubuntu-24_04-lts:server:latest").is_ok());
    assert!(parse_urn("Canonical:ubuntu-24_04-lts:server").is_err());
    assert!(!safe_arm_id("/subscriptions/a/../b"));
    assert!(!safe_arm_id("/subscriptions/a?x=1"));
    assert!(safe_arm_id(
        "/subscriptions/a/resourceGroups/rg_1.(x)/providers/Microsoft.Compute/virtualMachines/vm-1"
    ));
}
