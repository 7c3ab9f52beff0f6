//! Arbitrary bytes as the body of `POST /api/virtual-machines` and `PATCH
//! /api/virtual-machines/{id}`, sent through the real router (body extractor, secret-field check,
//! typed parsing, the use case's checks) over the in-memory repository seeded with the demo data
//! and one VM. Checks: no panic, no 5xx, every refusal in the API's error shape, the answer
//! agrees with the typed parse, secret values are never echoed, and typed requests round-trip
//! through JSON.

#![no_main]

#[path = "common/app.rs"]
mod app;
mod common;

use app::{check_refusal, repository, state};
use std::sync::{Arc, OnceLock};

use axum::http::{Method, StatusCode};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use vmapi_http::Endpoint;
use vmapi_models::{secret_fields, CreateVmRequest, Seed, UpdateVmRequest, VmRecord};

/// Built once: the demo data, a token of the spec team's owner and the VM the PATCH targets.
struct Fixture {
    seed: Seed,
    token: String,
    vm: VmRecord,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let app::SpecVm { seed, token, vm } = app::spec_vm();
        Fixture { seed, token, vm }
    })
}

/// Sends `body` with the fixture's token.
fn send(app: &axum::Router, method: Method, uri: &str, body: &[u8]) -> (StatusCode, Value) {
    app::send(app, &fixture().token, method, uri, body)
}

fn strings<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::String(s) => out.push(s),
        Value::Array(items) => items.iter().for_each(|i| strings(i, out)),
        Value::Object(map) => map.iter().for_each(|(k, i)| {
            out.push(k);
            strings(i, out)
        }),
        _ => {}
    }
}

/// The values of the object keys `secret_fields` names (every value under such a key).
fn secret_values<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::Array(items) => items.iter().for_each(|i| secret_values(i, out)),
        Value::Object(map) => map.iter().for_each(|(k, i)| {
            let one = serde_json::json!({ k: Value::Null });
            if secret_fields(&one).is_empty() {
                secret_values(i, out);
            } else {
                let mut all = Vec::new();
                strings(i, &mut all);
                out.extend(all);
            }
        }),
        _ => {}
    }
}

/// What the body extractor hands the handler: `{"data": x}` unwrapped when allowed.
fn unwrap_data(v: &Value, wrapped: bool) -> Value {
    match v {
        Value::Object(map) if wrapped && map.len() == 1 && map.contains_key("data") => {
            map["data"].clone()
        }
        other => other.clone(),
    }
}

/// Serializing a parsed request and parsing it again gives the same request.
fn round_trip<T>(what: &str, req: &T)
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let json = serde_json::to_vec(req).unwrap();
    match serde_json::from_slice::<T>(&json) {
        Ok(again) => assert_eq!(&again, req, "{what} round trip"),
        Err(e) => {
            let text = String::from_utf8_lossy(&json);
            if e.to_string().contains("is not an RFC 3339 timestamp") {
                panic!("Timestamp display does not re-parse: {what} {text}: {e}");
            }
            panic!("{what} round trip: {text}: {e}");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    common::run(data, || {
        let f = fixture();

        // The typed parsers alone.
        let create = serde_json::from_slice::<CreateVmRequest>(data);
        if let Ok(req) = &create {
            round_trip("CreateVmRequest", req);
        }
        if let Ok(req) = serde_json::from_slice::<UpdateVmRequest>(data) {
            round_trip("UpdateVmRequest", &req);
        }

        // The handlers' path, through the router.
        let repo = Arc::new(repository(&f.seed));
        repo.put_vm(f.vm.clone());
        let app = vmapi_http::router(
            state(repo.clone()),
            &[Endpoint::CreateVm, Endpoint::UpdateVm],
        );
        let (created, created_answer) = send(&app, Method::POST, "/api/virtual-machines", data);
        let patch_uri = format!("/api/virtual-machines/{}", f.vm.id);
        let (patched, patched_answer) = send(&app, Method::PATCH, &patch_uri, data);

        let Ok(value) = serde_json::from_slice::<Value>(data) else {
            // Not JSON (or empty): both refuse with INVALID_JSON.
            for (status, answer) in [(created, &created_answer), (patched, &patched_answer)] {
                assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
                assert_eq!(answer["code"], "INVALID_JSON", "{answer}");
            }
            return;
        };

        let secrets = secret_fields(&value);
        if !secrets.is_empty() {
            // Refused before parsing, naming the fields, never echoing their values.
            let mut values = Vec::new();
            secret_values(&value, &mut values);
            let named = secrets.join(", ");
            for (status, answer) in [(created, &created_answer), (patched, &patched_answer)] {
                assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
                assert_eq!(answer["code"], "VALIDATION_FAILED", "{answer}");
                let mut shown = Vec::new();
                strings(answer, &mut shown);
                for v in values.iter().filter(|v| v.len() >= 4) {
                    for s in &shown {
                        assert!(
                            !s.contains(*v)
                                || named.contains(*v)
                                || s.starts_with("plaintext passwords")
                                || *s == "VALIDATION_FAILED"
                                || *s == "Bad Request",
                            "secret value {v:?} echoed in {answer}"
                        );
                    }
                }
            }
            return;
        }

        // POST: success only for what parses, with one VM per host name.
        let typed = serde_json::from_value::<CreateVmRequest>(unwrap_data(&value, true));
        if created.is_success() {
            let req = typed.unwrap_or_else(|e| panic!("201 for a body that does not parse: {e}"));
            assert_eq!(created, StatusCode::CREATED);
            let vms = created_answer.as_array().expect("a list of VMs");
            assert_eq!(vms.len(), req.host_names.len());
            for (vm, name) in vms.iter().zip(&req.host_names) {
                assert_eq!(vm["name"], name.as_str());
            }
        } else {
            check_refusal("POST", created, &created_answer);
            if typed.is_err() {
                assert_eq!(created, StatusCode::BAD_REQUEST, "{created_answer}");
            }
        }

        // PATCH: no `data` wrapper; success only for what parses, and it took effect.
        let typed = serde_json::from_value::<UpdateVmRequest>(value.clone());
        if patched.is_success() {
            let req = typed.unwrap_or_else(|e| panic!("200 for a body that does not parse: {e}"));
            assert_eq!(patched, StatusCode::OK);
            if let Some(name) = &req.name {
                assert_eq!(patched_answer["name"], name.as_str(), "{patched_answer}");
            }
            let stored = repo.vm(f.vm.id).expect("the VM is still there");
            if let Some(name) = &req.name {
                assert_eq!(&stored.name, name);
            }
            if let Some(tags) = &req.tags {
                assert_eq!(&stored.tags, tags);
            }
        } else {
            check_refusal("PATCH", patched, &patched_answer);
            if typed.is_err() {
                assert_eq!(patched, StatusCode::BAD_REQUEST, "{patched_answer}");
            }
        }
    });
});
