//! The schemas hold what the API really sends and reads (fixtures of the API page, the models'
//! own output), and every reference resolves.

use std::collections::BTreeSet;

use serde_json::{json, Value};
use vmapi_http::Endpoint;
use vmapi_models::{
    ActionResult, AuthMethod, CreateVmRequest, Sensitive, Timestamp, VirtualMachine, VmCredentials,
    VmId, VmStatus,
};

use super::validate::validate;
use super::{doc, operation, read, schema};

pub(super) fn fixture(name: &str) -> Value {
    serde_json::from_str(&read(&format!("shared/models/tests/fixtures/{name}.json"))).unwrap()
}

pub(super) fn assert_fits(doc: &Value, schema_name: &str, value: &Value) {
    let errors = validate(
        doc,
        &json!({ "$ref": format!("#/components/schemas/{schema_name}") }),
        value,
    );
    assert!(
        errors.is_empty(),
        "{schema_name} does not hold {value}: {errors:#?}"
    );
}

/// The property names of a schema, and its required ones.
fn property_names(s: &Value) -> (BTreeSet<String>, BTreeSet<String>) {
    let properties = s["properties"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    let required = s["required"]
        .as_array()
        .map(|r| r.iter().map(|v| v.as_str().unwrap().to_string()).collect())
        .unwrap_or_default();
    (properties, required)
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

#[test]
fn virtual_machine_schema_is_what_the_api_writes() {
    let doc = doc();
    // The API page's VMs, with the `statusName` the API adds.
    let parse = |mut v: Value| -> VirtualMachine {
        let status = VmStatus::from_code(v["status"].as_u64().unwrap()).unwrap();
        v["statusName"] = json!(status.name());
        serde_json::from_value(v).unwrap()
    };
    let mut vms: Vec<VirtualMachine> = vec![parse(fixture("get-response"))];
    for name in ["list-response", "create-response"] {
        for v in fixture(name).as_array().unwrap() {
            vms.push(parse(v.clone()));
        }
    }
    let (properties, required) = property_names(schema(&doc, "VirtualMachine"));
    for vm in &vms {
        // As written (references populated or not, as the fixtures have them).
        let minimal = serde_json::to_value(vm).unwrap();
        assert_fits(&doc, "VirtualMachine", &minimal);
        assert!(
            required.is_subset(&keys(&minimal)),
            "required fields are always written"
        );
        // With every optional field set.
        let mut full = vm.clone();
        full.status = VmStatus::Failed;
        full.status_name = VmStatus::Failed;
        full.status_reason = Some("the cloud refused".into());
        full.expires_at = Some(Timestamp::parse("2030-01-01T00:00:00Z").unwrap());
        let full = serde_json::to_value(&full).unwrap();
        assert_fits(&doc, "VirtualMachine", &full);
        assert_eq!(
            keys(&full),
            properties,
            "VirtualMachine's schema has exactly the fields Serialize writes"
        );
    }
    let s = schema(&doc, "VirtualMachine");
    assert_eq!(s["properties"]["_id"]["$ref"], "#/components/schemas/VmId");
    assert!(!required.contains("statusReason") && required.contains("statusName"));
    assert_eq!(
        s["properties"]["provider"]["$ref"]
            .as_str()
            .map(
                |r| doc["components"]["schemas"][r.rsplit('/').next().unwrap()]["oneOf"]
                    .as_array()
                    .map(Vec::len)
            ),
        Some(Some(2)),
        "references are an id or the object"
    );
}

#[test]
fn other_wire_types_fit_their_schemas() {
    let doc = doc();
    // Action answers.
    let (properties, _) = property_names(schema(&doc, "ActionResult"));
    for status in VmStatus::ALL {
        let id = VmId::parse("654a11e60b23ef1b0f36d44e").unwrap();
        let v = serde_json::to_value(ActionResult::new(id, *status)).unwrap();
        assert_fits(&doc, "ActionResult", &v);
        assert_eq!(keys(&v), properties);
    }
    // Credentials, with a password and with a key pair.
    let id = VmId::parse("654a11e60b23ef1b0f36d44e").unwrap();
    let password = VmCredentials {
        vm_id: id,
        username: "root".into(),
        auth_method: AuthMethod::Password,
        password: Some(Sensitive::new("correct horse".into())),
        private_key: None,
        public_key: None,
        host: None,
        port: 22,
    };
    let key_pair = VmCredentials {
        auth_method: AuthMethod::SshKey,
        password: None,
        private_key: Some(Sensitive::new("-----BEGIN OPENSSH PRIVATE KEY-----".into())),
        public_key: Some("ssh-ed25519 AAAA".into()),
        host: Some("203.0.113.7".into()),
        ..password.clone()
    };
    let (properties, required) = property_names(schema(&doc, "VmCredentials"));
    let mut seen = BTreeSet::new();
    for c in [password, key_pair] {
        let v = serde_json::to_value(&c).unwrap();
        assert_fits(&doc, "VmCredentials", &v);
        assert!(required.is_subset(&keys(&v)));
        seen.extend(keys(&v));
    }
    assert_eq!(seen, properties);
    // The create request: the API page's example, flat and wrapped, and as the model writes it.
    let request = fixture("create-request");
    assert_fits(&doc, "CreateVmRequest", &request);
    let create = operation(&doc, Endpoint::CreateVm);
    let body_schema = &create["requestBody"]["content"]["application/json"]["schema"];
    for body in [request.clone(), json!({ "data": request.clone() })] {
        let errors = validate(&doc, body_schema, &body);
        assert!(errors.is_empty(), "create body {body}: {errors:?}");
    }
    let parsed: CreateVmRequest = serde_json::from_value(request).unwrap();
    assert_fits(
        &doc,
        "CreateVmRequest",
        &serde_json::to_value(&parsed).unwrap(),
    );
    // Fields the models refuse are not documented either.
    let mut unknown = fixture("create-request");
    unknown["password"] = json!("hunter2");
    assert!(!validate(&doc, body_schema, &unknown).is_empty());
    // A user's own key only with the SSH-key login, as the server checks.
    let mut key = fixture("create-request");
    key["access"] = json!({ "sshPublicKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl" });
    key["authMethod"] = json!(1);
    assert!(validate(&doc, body_schema, &key).is_empty());
    key["authMethod"] = json!(0);
    assert!(!validate(&doc, body_schema, &key).is_empty());
    // PATCH bodies.
    for body in [
        json!({"name": "web-2"}),
        json!({"tags": ["a", "b"]}),
        json!({"name": "web-2", "tags": []}),
    ] {
        assert_fits(&doc, "UpdateVmRequest", &body);
    }
    assert!(!validate(
        &doc,
        &json!({"$ref": "#/components/schemas/UpdateVmRequest"}),
        &json!({"status": 3})
    )
    .is_empty());
}

#[test]
fn every_reference_resolves() {
    let doc = doc();
    fn walk(doc: &Value, v: &Value) {
        match v {
            Value::Object(map) => {
                if let Some(r) = map.get("$ref").and_then(Value::as_str) {
                    let (kind, name) = r
                        .strip_prefix("#/components/")
                        .and_then(|r| r.split_once('/'))
                        .unwrap_or_else(|| panic!("{r} is not a component"));
                    assert!(
                        ["schemas", "responses"].contains(&kind)
                            && doc["components"][kind][name].is_object(),
                        "{r} resolves"
                    );
                }
                map.values().for_each(|v| walk(doc, v));
            }
            Value::Array(items) => items.iter().for_each(|v| walk(doc, v)),
            _ => {}
        }
    }
    walk(&doc, &doc);
}
