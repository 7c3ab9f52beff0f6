//! What generated clients need (scripts/openapi-client.sh generates one and drives a VM with it):
//! named bodies, servers, request examples, request objects without `allOf`.

use std::collections::BTreeSet;

use serde_json::{json, Value};
use vmapi_http::openapi;
use vmapi_http::Endpoint;

use super::validate::validate;
use super::{assert_fits, doc, fixture, operation, operations, resolve, schema};
/// Every body is a named schema: no inline schema for a generator to name.
#[test]
fn every_body_is_a_named_schema() {
    let doc = doc();
    let is_named = |schema: &Value| {
        schema["$ref"]
            .as_str()
            .is_some_and(|r| r.starts_with("#/components/schemas/"))
            && schema.as_object().unwrap().len() == 1
    };
    let mut bodies = 0;
    for (method, path, op) in operations(&doc) {
        for content in op["requestBody"]["content"]
            .as_object()
            .into_iter()
            .flatten()
        {
            assert!(
                is_named(&content.1["schema"]),
                "{method} {path} request body"
            );
            bodies += 1;
        }
        for (status, resp) in op["responses"].as_object().unwrap() {
            let resp = resolve(&doc, resp);
            // Every answer has a body but a 304 (Not Modified).
            assert_eq!(
                resp["content"].is_null(),
                status == "304",
                "{method} {path} {status}"
            );
            for (_, content) in resp["content"].as_object().into_iter().flatten() {
                assert!(is_named(&content["schema"]), "{method} {path} {status}");
                bodies += 1;
            }
        }
    }
    for (name, resp) in doc["components"]["responses"].as_object().unwrap() {
        assert!(
            is_named(&resp["content"]["application/json"]["schema"]),
            "{name}"
        );
    }
    assert!(bodies > Endpoint::ALL.len() * 2, "{bodies} bodies seen");
    // One error shape: every error response's body is `Error` (401: or API Gateway's).
    let error_bodies: BTreeSet<String> = doc["components"]["responses"]
        .as_object()
        .unwrap()
        .values()
        .map(|r| r["content"]["application/json"]["schema"]["$ref"].to_string())
        .collect();
    assert_eq!(
        error_bodies,
        BTreeSet::from([
            "\"#/components/schemas/AuthError\"".to_string(),
            "\"#/components/schemas/Error\"".to_string()
        ])
    );
    // No placeholder of a conditional is left in the text.
    assert!(!openapi::to_json().contains("x-vmapi"));
}

#[test]
fn servers_are_the_local_server_and_the_deployed_api() {
    let doc = doc();
    let servers = doc["servers"].as_array().expect("servers");
    assert_eq!(servers[0]["url"], "http://127.0.0.1:3000");
    assert!(servers[1]["url"]
        .as_str()
        .unwrap()
        .ends_with(".execute-api.{region}.amazonaws.com"));
    assert!(servers[1]["variables"]["apiId"]["default"].is_string());
}

/// Every operation's request has examples (each path parameter, each body), and every body
/// example fits the body's schema.
#[test]
fn every_request_has_examples_that_fit() {
    let doc = doc();
    for (method, path, op) in operations(&doc) {
        for p in op["parameters"].as_array().into_iter().flatten() {
            let name = &p["name"];
            if p["in"] == "path" || p["name"] == "limit" {
                assert!(!p["example"].is_null(), "{method} {path}: {name} example");
            }
            if !p["example"].is_null() {
                let errors = validate(&doc, &p["schema"], &p["example"]);
                assert!(errors.is_empty(), "{method} {path} {name}: {errors:?}");
            }
        }
        if let Some(content) = op["requestBody"]["content"][JSON_TYPE].as_object() {
            let examples = content["examples"].as_object().expect("body examples");
            assert!(!examples.is_empty(), "{method} {path}");
            for (name, example) in examples {
                let errors = validate(&doc, &content["schema"], &example["value"]);
                assert!(
                    errors.is_empty(),
                    "{method} {path} example {name}: {errors:?}"
                );
            }
        }
    }
    // The create example is the API page's request, flat and wrapped.
    let create = operation(&doc, Endpoint::CreateVm);
    let examples = &create["requestBody"]["content"][JSON_TYPE]["examples"];
    assert_eq!(examples["flat"]["value"], fixture("create-request"));
    assert_eq!(
        examples["wrapped"]["value"],
        json!({ "data": fixture("create-request") })
    );
}

const JSON_TYPE: &str = "application/json";

/// The rules between fields are `if`/`then`/`else` in the object schemas themselves (an `allOf`
/// with an `anyOf` is merged into the fields by generators: `authMethod` became `1` only).
#[test]
fn field_rules_leave_the_request_objects_plain() {
    let doc = doc();
    for name in ["CreateVmRequest", "CreateRuleRequest", "UpdateVmRequest"] {
        let s = schema(&doc, name);
        assert_eq!(s["type"], "object", "{name}");
        assert!(s["allOf"].is_null() && s["anyOf"].is_null(), "{name}");
    }
    let create = schema(&doc, "CreateVmRequest");
    assert_eq!(create["if"]["required"], json!(["access"]));
    // Only the rule's own fields are required.
    assert_eq!(
        schema(&doc, "CreateRuleRequest")["required"],
        json!(["virtualMachine", "name", "protocol"])
    );
    let mut icmp =
        json!({"virtualMachine": "6549fc8570c99a149c79193f", "name": "ping", "protocol": "Icmp"});
    assert_fits(&doc, "CreateRuleRequest", &icmp);
    icmp["protocol"] = json!("Tcp");
    assert!(!validate(
        &doc,
        &json!({"$ref": "#/components/schemas/CreateRuleRequest"}),
        &icmp
    )
    .is_empty());
}
