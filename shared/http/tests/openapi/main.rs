//! The OpenAPI document (`openapi.json`): committed and current, the same routes as the route
//! table, the template and the local server, every error code of the one error mapping, every
//! enum value with its name, and schemas that hold the JSON the API really sends.
//!
//! Run: `cargo test -p vmapi-http --features openapi --test openapi`; regenerate the committed
//! file with `UPDATE_OPENAPI=1 cargo test -p vmapi-http --features openapi --test openapi`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::response::IntoResponse;
use serde_json::{json, Value};
use tower::ServiceExt;
use vmapi_core::{ConflictCode, Error, FieldError, NotFoundKind};
use vmapi_http::auth::AuthError;
use vmapi_http::error::{ALL_CODES, REQUEST_ID};
use vmapi_http::openapi::{
    self, ADMIN_KEY_AUTH, BEARER_AUTH, NOT_YET_HONOURED_HEADERS, OPENAPI_PATH,
};
use vmapi_http::{local, ApiError, AppState, Config, Endpoint};
use vmapi_models::{AuthMethod, Role, VmStatus};

mod clients;
mod errors;
mod validate;
mod wire;

use validate::validate;
use wire::{assert_fits, fixture};

const UPDATE_HINT: &str =
    "UPDATE_OPENAPI=1 cargo test -p vmapi-http --features openapi --test openapi";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

/// The document as JSON.
fn doc() -> Value {
    serde_json::from_str(&openapi::to_json()).expect("the document is JSON")
}

fn schema<'a>(doc: &'a Value, name: &str) -> &'a Value {
    let s = &doc["components"]["schemas"][name];
    assert!(s.is_object(), "components.schemas.{name} exists");
    s
}

/// Every operation of the document: (METHOD, path, operation).
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if [
                "get", "put", "post", "delete", "patch", "head", "options", "trace",
            ]
            .contains(&method.as_str())
            {
                out.push((method.to_uppercase(), path.clone(), op.clone()));
            }
        }
    }
    out
}

fn operation(doc: &Value, endpoint: Endpoint) -> Value {
    doc["paths"][endpoint.path()][endpoint.method().as_str().to_lowercase()].clone()
}

// ---------------------------------------------------------------------------------------------
// (a) the committed file is the generated document

#[test]
fn committed_openapi_json_is_current() {
    let generated = openapi::to_json();
    assert_eq!(
        generated,
        openapi::to_json(),
        "the document is deterministic"
    );
    assert!(
        generated.ends_with("}\n"),
        "pretty JSON with a trailing newline"
    );
    let path = root().join("openapi.json");
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &generated).expect("writing openapi.json");
        eprintln!("wrote {}", path.display());
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed != generated {
        let first_difference = committed
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .map(|i| i + 1)
            .unwrap_or(committed.lines().count().min(generated.lines().count()) + 1);
        panic!(
            "openapi.json is stale (first difference at line {first_difference}); regenerate it with `{UPDATE_HINT}` and commit it"
        );
    }
}

#[test]
fn document_header() {
    let doc = doc();
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    let bearer = &doc["components"]["securitySchemes"][BEARER_AUTH];
    assert_eq!(bearer["type"], "http");
    assert_eq!(bearer["scheme"], "bearer");
    assert_eq!(bearer["bearerFormat"], "JWT");
}

// ---------------------------------------------------------------------------------------------
// (b) the same routes everywhere

/// YAML (with CloudFormation tags) to JSON, tags dropped to their values (as the suite's
/// deploy tests read the template).
fn yaml_to_json(v: &serde_norway::Value) -> Value {
    use serde_norway::Value as Y;
    match v {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(*b),
        Y::Number(n) => serde_json::to_value(n).unwrap(),
        Y::String(s) => Value::String(s.clone()),
        Y::Sequence(s) => Value::Array(s.iter().map(yaml_to_json).collect()),
        Y::Mapping(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.as_str().unwrap_or_default().to_string(), yaml_to_json(v)))
                .collect(),
        ),
        Y::Tagged(t) => yaml_to_json(&t.value),
    }
}

/// The template's HttpApi events as (METHOD, path).
fn template_routes() -> BTreeSet<(String, String)> {
    let template: serde_norway::Value =
        serde_norway::from_str(&read("template.yaml")).expect("template.yaml parses");
    let template = yaml_to_json(&template);
    let mut routes = BTreeSet::new();
    for (_, resource) in template["Resources"].as_object().unwrap() {
        if resource["Type"] != "AWS::Serverless::Function" {
            continue;
        }
        let Some(events) = resource["Properties"]["Events"].as_object() else {
            continue;
        };
        for (_, event) in events {
            if event["Type"] == "HttpApi" {
                let p = &event["Properties"];
                routes.insert((
                    p["Method"].as_str().unwrap().to_uppercase(),
                    p["Path"].as_str().unwrap().to_string(),
                ));
            }
        }
    }
    routes
}

#[test]
fn document_route_table_and_template_list_the_same_routes() {
    let in_document = openapi::operations(&openapi::document());
    let openapi_route = ("GET".to_string(), OPENAPI_PATH.to_string());

    let mut in_route_table: BTreeSet<(String, String)> = Endpoint::ALL
        .iter()
        .map(|e| (e.method().to_string(), e.path().to_string()))
        .collect();
    assert_eq!(in_route_table.len(), Endpoint::ALL.len(), "no duplicates");
    in_route_table.insert(openapi_route.clone());
    assert_eq!(
        in_document, in_route_table,
        "document == Endpoint::ALL + GET {OPENAPI_PATH}"
    );

    let mut in_template = template_routes();
    assert!(
        !in_template.contains(&openapi_route),
        "{OPENAPI_PATH} is served by the local server only"
    );
    in_template.insert(openapi_route);
    assert_eq!(
        in_document, in_template,
        "document == template HttpApi events + GET {OPENAPI_PATH}"
    );

    // The JSON view agrees with the typed one.
    let from_json: BTreeSet<(String, String)> = operations(&doc())
        .into_iter()
        .map(|(m, p, _)| (m, p))
        .collect();
    assert_eq!(from_json, in_document);
}

/// A state whose clients are never used: every request below is refused or answered before
/// any AWS call.
fn offline_state() -> AppState {
    let config = Config::from_env().expect("local configuration");
    let sdk = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .build();
    AppState::from_sdk(&config, &sdk)
}

/// `path` with its parameters filled with well-formed ids.
fn concrete(path: &str) -> String {
    path.replace("{team}", "6548a41f38406c14db33b61e")
        .replace("{project}", "6548a41f38406c14db33b62c")
        .replace("{id}", "654a11e60b23ef1b0f36d44e")
}

async fn call(
    app: &axum::Router,
    method: &str,
    uri: &str,
) -> (StatusCode, Value, axum::http::HeaderMap) {
    let resp = app
        .clone()
        .oneshot(
            Request::builder()
                .method(method)
                .uri(uri)
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 22)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        headers,
    )
}

#[tokio::test]
async fn the_local_server_answers_every_documented_route() {
    let app = local::app(offline_state());
    let doc = doc();
    for (method, path, op) in operations(&doc) {
        let (status, body, headers) = call(&app, &method, &concrete(&path)).await;
        let expected = if op.get("security").is_some() {
            StatusCode::UNAUTHORIZED // routed, and refused for want of a token
        } else {
            StatusCode::OK
        };
        assert_eq!(status, expected, "{method} {path}: {body}");
        assert!(
            headers.contains_key("x-request-id"),
            "{method} {path}: X-Request-Id"
        );
        assert!(
            op["responses"][status.as_str()].is_object(),
            "{method} {path} documents {status}"
        );
    }
    // Methods the document does not list on a known path are the API's JSON 405, and unknown
    // paths its JSON 404, also after the document's route joined the router.
    for (method, path) in [
        ("DELETE", OPENAPI_PATH),
        ("POST", "/api/virtual-machines/{id}"),
    ] {
        let (status, body, _) = call(&app, method, &concrete(path)).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        assert_eq!(body["code"], "METHOD_NOT_ALLOWED");
    }
    let (status, body, _) = call(&app, "GET", "/api/nothing-here").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], "ROUTE_NOT_FOUND");
}

#[tokio::test]
async fn the_local_server_serves_the_document() {
    let expected = doc();
    for app in [local::openapi_router(), local::app(offline_state())] {
        let (status, body, headers) = call(&app, "GET", OPENAPI_PATH).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers["content-type"], "application/json");
        assert!(headers.contains_key("x-request-id"));
        assert_eq!(body, expected, "GET {OPENAPI_PATH} answers the document");
    }
    let committed: Value = serde_json::from_str(&read("openapi.json")).unwrap_or(Value::Null);
    if std::env::var_os("UPDATE_OPENAPI").is_none() {
        assert_eq!(
            committed, expected,
            "openapi.json is stale: run `{UPDATE_HINT}`"
        );
    }
}

/// A response with its `$ref` (to `components.responses`) resolved.
fn resolve<'a>(doc: &'a Value, resp: &'a Value) -> &'a Value {
    match resp["$ref"].as_str() {
        Some(r) => {
            let name = r
                .strip_prefix("#/components/responses/")
                .unwrap_or_else(|| panic!("unexpected response $ref {r}"));
            let target = &doc["components"]["responses"][name];
            assert!(target.is_object(), "{r} resolves");
            target
        }
        None => resp,
    }
}

#[test]
fn responses_document_their_headers() {
    let doc = doc();
    for (method, path, op) in operations(&doc) {
        for (status, resp) in op["responses"].as_object().unwrap() {
            let headers = &resolve(&doc, resp)["headers"];
            assert!(
                headers["X-Request-Id"].is_object(),
                "{method} {path} {status}: X-Request-Id"
            );
            assert_eq!(
                headers["Retry-After"].is_object(),
                status == "503",
                "{method} {path} {status}: Retry-After exactly on 503"
            );
            assert_eq!(
                headers["WWW-Authenticate"].is_object(),
                status == "401",
                "{method} {path} {status}: WWW-Authenticate exactly on 401"
            );
        }
        // Authenticated operations answer 401, 500 and 503; the others need no token.
        let authenticated = op.get("security").is_some();
        assert_eq!(
            authenticated,
            !(path == "/health" || path == OPENAPI_PATH),
            "{method} {path}: Bearer (or the admin key) on every endpoint but /health (and the document)"
        );
        if authenticated {
            let scheme = if path.starts_with("/admin/") {
                ADMIN_KEY_AUTH
            } else {
                BEARER_AUTH
            };
            assert_eq!(op["security"], json!([{ scheme: [] }]), "{method} {path}");
            for status in ["401", "500", "503"] {
                assert!(
                    op["responses"][status].is_object(),
                    "{method} {path} documents {status}"
                );
            }
        }
        // Headers the API does not honour yet are not documented.
        let text = op.to_string();
        for header in NOT_YET_HONOURED_HEADERS {
            assert!(!text.contains(header), "{method} {path} documents {header}");
        }
    }
    let list = operation(&doc, Endpoint::ListVms);
    let ok = &list["responses"]["200"]["headers"];
    assert!(ok["Link"].is_object() && ok["X-Next-Cursor"].is_object());
}

#[test]
fn operations_are_named_after_their_functions_with_their_parameters() {
    let doc = doc();
    for endpoint in Endpoint::ALL {
        let op = operation(&doc, endpoint);
        assert_eq!(op["operationId"], endpoint.function());
        assert!(op["summary"].is_string());
        let documented: BTreeSet<String> = op["parameters"]
            .as_array()
            .map(|ps| {
                ps.iter()
                    .filter(|p| p["in"] == "path")
                    .map(|p| p["name"].as_str().unwrap().to_string())
                    .collect()
            })
            .unwrap_or_default();
        let in_path: BTreeSet<String> = endpoint
            .path()
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            .map(str::to_string)
            .collect();
        assert_eq!(documented, in_path, "{}", endpoint.function());
        let success = if matches!(endpoint, Endpoint::CreateVm | Endpoint::CreateSecurityRule) {
            "201"
        } else {
            "200"
        };
        assert!(op["responses"][success].is_object());
    }
    let list = operation(&doc, Endpoint::ListVms);
    let params = list["parameters"].as_array().unwrap();
    let limit = params.iter().find(|p| p["name"] == "limit").unwrap();
    assert_eq!(limit["in"], "query");
    assert_eq!(limit["schema"]["minimum"], 1);
    assert_eq!(limit["schema"]["maximum"], 200);
    assert_eq!(limit["schema"]["default"], 50);
    assert!(params
        .iter()
        .any(|p| p["name"] == "cursor" && p["in"] == "query"));
    let create = operation(&doc, Endpoint::CreateVm);
    assert_eq!(
        create["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/CreateVmBody"
    );
    assert_eq!(
        schema(&doc, "CreateVmBody")["oneOf"],
        json!([{"$ref": "#/components/schemas/CreateVmRequest"}, {"$ref": "#/components/schemas/WrappedCreateVmRequest"}])
    );
    let rule = operation(&doc, Endpoint::CreateSecurityRule);
    let content = &rule["requestBody"]["content"]["application/json"];
    assert_eq!(
        content["schema"]["$ref"],
        "#/components/schemas/CreateRuleBody"
    );
    assert!(schema(&doc, "CreateRuleBody")["oneOf"].is_array());
    assert_eq!(
        content["examples"]["aws"]["value"]["cidrBlock"],
        "0.0.0.0/0"
    );
    assert_eq!(
        content["examples"]["azure"]["value"]["destinationPortRange"],
        "8080"
    );
    let delete_rule = operation(&doc, Endpoint::DeleteSecurityRule);
    assert_eq!(
        delete_rule["parameters"][0]["schema"]["$ref"],
        "#/components/schemas/SecurityRuleId"
    );
    let update = operation(&doc, Endpoint::UpdateVm);
    assert_eq!(
        update["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/UpdateVmRequest"
    );
}

// ---------------------------------------------------------------------------------------------
// (d) enums with their names

#[test]
fn numeric_enums_list_every_value_with_its_name() {
    let doc = doc();
    fn check(doc: &Value, name: &str, values: Vec<(u8, &str)>) {
        let s = schema(doc, name);
        assert_eq!(s["type"], "integer", "{name}");
        let codes: Vec<u8> = values.iter().map(|(c, _)| *c).collect();
        let names: Vec<&str> = values.iter().map(|(_, n)| *n).collect();
        assert_eq!(s["enum"], json!(codes), "{name}");
        assert_eq!(s["x-enum-varnames"], json!(names), "{name}");
        let description = s["description"].as_str().unwrap();
        for (code, value_name) in &values {
            assert!(
                description.contains(&format!("{code} {value_name}")),
                "{name}'s description names {code} {value_name}: {description}"
            );
        }
    }
    check(
        &doc,
        "VmStatus",
        VmStatus::ALL.iter().map(|s| (s.code(), s.name())).collect(),
    );
    check(
        &doc,
        "AuthMethod",
        AuthMethod::ALL
            .iter()
            .map(|s| (s.code(), s.name()))
            .collect(),
    );
    check(
        &doc,
        "Role",
        Role::ALL.iter().map(|s| (s.code(), s.name())).collect(),
    );
    assert!(schema(&doc, "VmStatus")["description"]
        .as_str()
        .unwrap()
        .starts_with("0 creating, 1 provisioning, 2 starting, 3 running"));
    let names: Vec<&str> = VmStatus::ALL.iter().map(|s| s.name()).collect();
    for wire in ["VirtualMachine", "ActionResult"] {
        assert_eq!(
            schema(&doc, wire)["properties"]["statusName"]["enum"],
            json!(names),
            "{wire}.statusName"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// (e) credentials are never cached

#[test]
fn credentials_answer_documents_cache_control() {
    let doc = doc();
    let op = operation(&doc, Endpoint::GetCredentials);
    let cache_control = &op["responses"]["200"]["headers"]["Cache-Control"];
    assert_eq!(cache_control["schema"]["enum"], json!(["no-store"]));
}
