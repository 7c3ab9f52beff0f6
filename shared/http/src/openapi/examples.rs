//! Request examples: path ids of the demo data (`data/demo.json`) and bodies of the platform's
//! API page. Keys of every object are in sorted order, so the document is the same whether or
//! not serde_json preserves insertion order (a feature another crate of the workspace may turn
//! on).

use serde_json::{json, Value};
use utoipa::openapi::example::{Example, ExampleBuilder};
use utoipa::openapi::RefOr;

/// The demo team.
pub(super) const TEAM: &str = "6548a41f38406c14db33b61e";
/// The demo team's project.
pub(super) const PROJECT: &str = "6548a41f38406c14db33b62c";
/// A VM (the API page's).
pub(super) const VM: &str = "654a11e60b23ef1b0f36d44e";
/// A security rule.
pub(super) const RULE: &str = "6549fc8570c99a149c79194a";
/// The demo catalog's Kraud.Cloud cloud provider.
pub(super) const CLOUD_PROVIDER: &str = "6548a383e2442d14b6bf9685";
/// Its VM provider.
pub(super) const PROVIDER: &str = "6548a383e2442d14b6bf968b";
/// An `Idempotency-Key`.
pub(super) const IDEMPOTENCY_KEY: &str = "5f0c6f9e-8d51-4c1e-9a53-2b7f3f0d6a41";

fn example(summary: &str, value: Value) -> (String, RefOr<Example>) {
    (
        summary_key(summary),
        RefOr::T(
            ExampleBuilder::new()
                .summary(summary)
                .value(Some(value))
                .build(),
        ),
    )
}

/// The example's name: its summary's first word, lower-case.
fn summary_key(summary: &str) -> String {
    summary
        .split_whitespace()
        .next()
        .unwrap_or("example")
        .trim_end_matches(':')
        .to_lowercase()
}

/// The API page's create request (as `shared/models/tests/fixtures/create-request.json`).
fn create_request() -> Value {
    json!({
        "access": null, "authMethod": 1, "cloudProvider": "6548a383e2442d14b6bf9685",
        "hostNames": ["kraud-cloud-ubuntu-1vcpu-4gb-berlin-01"],
        "image": {"distribution": "Ubuntu", "version": {"displayName": "20.04 LTS", "name": "20_04-lts"}},
        "price": "6548a383e2442d14b6bf970b", "project": PROJECT,
        "provider": "6548a383e2442d14b6bf968b", "quantity": 1,
        "region": {"datacenter": {"displayName": "Berlin", "name": "berlin"}, "physicalLocation": "Germany"},
        "size": "6548a383e2442d14b6bf9745", "subscription": "", "tags": [], "team": TEAM
    })
}

/// `POST /api/virtual-machines`: the API page's request, flat and wrapped.
pub(super) fn create_vm() -> Vec<(String, RefOr<Example>)> {
    vec![
        example("Flat: the API page's request", create_request()),
        example(
            "Wrapped: the same as `data`",
            json!({ "data": create_request() }),
        ),
    ]
}

/// `PATCH /api/virtual-machines/{id}`.
pub(super) fn update_vm() -> Vec<(String, RefOr<Example>)> {
    vec![
        example("Rename the VM", json!({"name": "web-2"})),
        example("Retag: replaces the tags", json!({"tags": ["prod", "web"]})),
    ]
}

/// `PUT /api/virtual-machines/{id}/resize`: the demo catalog's AWS and Azure moves (keys in
/// alphabetical order, as every example here: the document must not depend on whether
/// `serde_json`'s `preserve_order` is on in a build).
pub(super) fn resize_vm() -> Vec<(String, RefOr<Example>)> {
    vec![
        example(
            "AWS: m6a.large to m6a.xlarge",
            json!({"price": "6548a383e2442d14b6bf970d", "size": "6548a383e2442d14b6bf9747"}),
        ),
        example(
            "Azure: Standard_D2as_v5 to Standard_D4as_v5",
            json!({"price": "6548a383e2442d14b6bf970f", "size": "6548a383e2442d14b6bf9749"}),
        ),
    ]
}

/// `POST /api/security-rules`: the platform's Azure and AWS examples and the neutral shape.
pub(super) fn create_rule() -> Vec<(String, RefOr<Example>)> {
    vec![
        example(
            "Azure: the platform's example (NSG shape)",
            json!({
                "access": "Allow", "description": "", "destination": "*",
                "destinationAddressPrefix": "*", "destinationPortRange": "8080",
                "direction": "Inbound", "name": "Any", "priority": 100,
                "protocol": "*", "source": "*", "sourceAddressPrefix": "*",
                "sourcePortRange": "*", "virtualMachine": "6549fc7a70c99a149c7918e8"
            }),
        ),
        example(
            "AWS: the platform's example (security-group shape)",
            json!({
                "cidrBlock": "0.0.0.0/0", "description": "", "direction": "Inbound",
                "name": "SSH", "portRange": ["22"], "protocol": "Tcp", "source": "*",
                "virtualMachine": "6549fc8570c99a149c79193f"
            }),
        ),
        example(
            "Neutral: HTTPS and a port range from one network",
            json!({
                "access": "Allow", "cidrBlock": "203.0.113.0/24",
                "description": "HTTPS and the app ports", "direction": "Inbound",
                "name": "web", "portRange": ["443", "8000-8090"], "priority": 1100,
                "protocol": "Tcp", "virtualMachine": "6549fc8570c99a149c79193f"
            }),
        ),
    ]
}
