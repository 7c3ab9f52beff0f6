//! Security rules over HTTP against DynamoDB Local: the platform's AWS and Azure bodies, the
//! neutral body, the default rule per cloud, what a cloud cannot express (422), bad bodies (400),
//! conflicts and the rule limit (409), authorization, the pending `apply-rules` contract with the
//! provisioner, delete with its pointer item, and concurrent creates.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use reqwest::Method;
use serde_json::{json, Value};
use vmapi_core::{NameChange, Repository};
use vmapi_models::{
    CloudKind, CloudProviderId, CreateRuleRequest, OpKind, PendingOp, SecurityRule, Timestamp,
    UserId, VmId, VmRecord, VmStatus,
};
use vmapi_tests::*;

const RULES: &str = "/api/security-rules";
/// Cloud providers of the demo data.
const AWS_CLOUD: &str = "6548a383e2442d14b6bf9686";
const AZURE_CLOUD: &str = "6548a383e2442d14b6bf9687";
/// Providers of the demo data.
const KRAUD_PROVIDER: &str = "968b";
const AWS_PROVIDER: &str = "968c";
const AZURE_PROVIDER: &str = "968d";

/// The platform's AWS example body, verbatim but for the VM id.
fn aws_example(vm: &str) -> Value {
    let mut body: Value = serde_json::from_str(
        r#"{ "protocol": "Tcp", "direction": "Inbound", "portRange": ["22"], "name": "SSH",
  "description": "", "source": "*", "cidrBlock": "0.0.0.0/0",
  "virtualMachine": "6549fc8570c99a149c79193f" }"#,
    )
    .unwrap();
    body["virtualMachine"] = json!(vm);
    body
}

/// The platform's Azure example body, verbatim but for the VM id.
fn azure_example(vm: &str) -> Value {
    let mut body: Value = serde_json::from_str(
        r#"{ "source": "*", "sourcePortRange": "*", "sourceAddressPrefix": "*",
  "destination": "*", "destinationPortRange": "8080", "destinationAddressPrefix": "*",
  "protocol": "*", "access": "Allow", "priority": 100, "direction": "Inbound",
  "name": "Any", "description": "", "virtualMachine": "6549fc7a70c99a149c7918e8" }"#,
    )
    .unwrap();
    body["virtualMachine"] = json!(vm);
    body
}

async fn vm_on(app: &TestApp, provider: &str, name: &str) -> String {
    app.vm_on(OWNER, provider, name).await
}

/// A VM record stored as is, on the cloud provider `cloud` (None: Kraud.Cloud), in `status`.
async fn seeded(app: &TestApp, name: &str, status: VmStatus, cloud: Option<&str>) -> VmRecord {
    let mut vm = demo_vm(name, status);
    if let Some(c) = cloud {
        vm.cloud_provider = CloudProviderId::parse(c).unwrap();
    }
    app.seed_vm(&vm).await;
    vm
}

async fn record(app: &TestApp, id: &str) -> VmRecord {
    app.repo
        .get_vm(VmId::parse(id).unwrap())
        .await
        .unwrap()
        .expect("the VM record")
}

async fn pointer(app: &TestApp, rule: &str) -> Option<HashMap<String, AttributeValue>> {
    app.repo
        .client()
        .get_item()
        .table_name(&app.table)
        .key("pk", AttributeValue::S(format!("RULE#{rule}")))
        .key("sk", AttributeValue::S("RULE".into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
}

async fn post(app: &TestApp, user: &str, body: &Value) -> Reply {
    app.call(Method::POST, RULES, Some(user), Some(body)).await
}

async fn list(app: &TestApp, user: &str, vm: &str) -> Reply {
    app.get(&format!("/api/virtual-machines/{vm}/security-rules"), user)
        .await
}

async fn delete(app: &TestApp, user: &str, rule: &str) -> Reply {
    app.call(Method::DELETE, &format!("{RULES}/{rule}"), Some(user), None)
        .await
}

fn names(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect()
}

mod apply;
mod bodies;
mod rule_set;
