//! The demo data's ids, the repository's files, clients of the local services, and the `_id` of
//! an answered VM.

use std::path::PathBuf;

use serde_json::Value;
use vmapi_models::Seed;

/// The demo team's owner (spec page).
pub const OWNER: &str = "6548a41138406c14db33b606";
/// The demo team (spec page).
pub const TEAM: &str = "6548a41f38406c14db33b61e";
/// The demo project (spec page).
pub const PROJECT: &str = "6548a41f38406c14db33b62c";
/// The second demo team's owner.
pub const OTHER_OWNER: &str = "6548a41138406c14db33b700";
/// The second demo team.
pub const OTHER_TEAM: &str = "6548a41f38406c14db33b700";
/// The second demo team's project.
pub const OTHER_PROJECT: &str = "6548a41f38406c14db33b701";
/// The demo catalog's Kraud.Cloud cloud provider (spec page).
pub const CLOUD: &str = "6548a383e2442d14b6bf9685";
/// Its VM provider (spec page).
pub const PROVIDER: &str = "6548a383e2442d14b6bf968b";
/// Secret of the test tokens.
pub const SECRET: &str = "integration-test-secret";

/// The `_id` of a VM as the API answers it.
pub fn id_of(v: &Value) -> String {
    v["_id"].as_str().expect("an _id").to_string()
}

/// The workspace root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// Reads a file of the repository.
pub fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

/// The resources of `template` (as [`template_json`] gives it) of one CloudFormation type, with
/// their logical ids.
pub fn resources_of_type(template: &Value, kind: &str) -> Vec<(String, Value)> {
    template["Resources"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, r)| r["Type"] == kind)
        .map(|(k, r)| (k.clone(), r.clone()))
        .collect()
}

/// `template.yaml` as JSON, CloudFormation tags (`!Ref`, `!Sub`, `!If`, ...) dropped to their
/// values.
pub fn template_json() -> Value {
    fn to_json(v: &serde_norway::Value) -> Value {
        use serde_norway::Value as Y;
        match v {
            Y::Null => Value::Null,
            Y::Bool(b) => Value::Bool(*b),
            Y::Number(n) => serde_json::to_value(n).unwrap(),
            Y::String(s) => Value::String(s.clone()),
            Y::Sequence(s) => Value::Array(s.iter().map(to_json).collect()),
            Y::Mapping(m) => Value::Object(
                m.iter()
                    .map(|(k, v)| (k.as_str().unwrap_or_default().to_string(), to_json(v)))
                    .collect(),
            ),
            Y::Tagged(t) => to_json(&t.value),
        }
    }
    let yaml: serde_norway::Value =
        serde_norway::from_str(&read("template.yaml")).expect("template.yaml parses");
    to_json(&yaml)
}

/// The spec page's create request (verbatim copy in the models' fixtures).
pub fn spec_create_request() -> Value {
    serde_json::from_str(&read("shared/models/tests/fixtures/create-request.json")).unwrap()
}

/// The demo data.
pub fn demo_seed() -> Seed {
    serde_json::from_str(&read("data/demo.json")).expect("demo data parses")
}

/// A DynamoDB client for DynamoDB Local.
pub async fn local_client() -> aws_sdk_dynamodb::Client {
    assert!(
        std::env::var("AWS_ENDPOINT_URL_DYNAMODB")
            .is_ok_and(|v| v.contains("127.0.0.1") || v.contains("localhost")),
        "AWS_ENDPOINT_URL_DYNAMODB must point at DynamoDB Local: run the tests with `make test`"
    );
    vmapi_http::state::dynamodb_client().await
}

/// A Secrets Manager client for moto.
pub async fn secretsmanager_client() -> aws_sdk_secretsmanager::Client {
    assert!(
        std::env::var("AWS_ENDPOINT_URL_SECRETS_MANAGER")
            .is_ok_and(|v| v.contains("127.0.0.1") || v.contains("localhost")),
        "AWS_ENDPOINT_URL_SECRETS_MANAGER must point at moto: run the tests with `make test`"
    );
    aws_sdk_secretsmanager::Client::new(&vmapi_aws::sdk_config().await)
}
