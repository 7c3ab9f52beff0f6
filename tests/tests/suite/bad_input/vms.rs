//! PATCH, the actions and credentials with bad bodies, bad ids, unknown paths and wrong methods.

use reqwest::Method;
use serde_json::{json, Value};
use vmapi_tests::*;

use super::case::{bad_ids, case, raw_body_cases, Case, Payload, Want, CREATE};

/// PATCH, actions and credentials with bad bodies or bad ids.
pub(super) fn vm_cases(target: &str, taken: &str, creating: &str) -> Vec<Case> {
    let path = format!("/api/virtual-machines/{target}");
    let patch = |label: String, body: Value, want: Want| {
        case(label, Method::PATCH, &path, Payload::Json(body), want)
    };
    let invalid = Want::Code(400, "VALIDATION_FAILED");
    let mut out = Vec::new();
    for (what, body, want) in [
        ("nothing", json!({}), invalid),
        ("name null only", json!({"name": null}), invalid),
        ("tags null only", json!({"tags": null}), invalid),
        ("empty name", json!({"name": ""}), invalid),
        ("upper-case name", json!({"name": "UPPER"}), invalid),
        ("numeric name", json!({"name": 5}), invalid),
        ("array name", json!({"name": ["a"]}), invalid),
        ("object name", json!({"name": {"first": "a"}}), invalid),
        ("name of 64", json!({"name": "a".repeat(64)}), invalid),
        ("unicode name", json!({"name": "höst"}), invalid),
        ("emoji name", json!({"name": "😀"}), invalid),
        (
            "taken name",
            json!({"name": taken}),
            Want::Code(409, "HOST_NAME_TAKEN"),
        ),
        ("tags a string", json!({"tags": "x"}), invalid),
        ("empty tag", json!({"tags": [""]}), invalid),
        ("numeric tag", json!({"tags": [1]}), invalid),
        (
            "21 tags",
            json!({"tags": (0..21).map(|i| i.to_string()).collect::<Vec<_>>()}),
            invalid,
        ),
        (
            "1000 tags",
            json!({"tags": (0..1000).map(|i| i.to_string()).collect::<Vec<_>>()}),
            invalid,
        ),
        ("tag of 65", json!({"tags": ["x".repeat(65)]}), invalid),
        (
            "tag with a control character",
            json!({"tags": ["a\u{1b}[31m"]}),
            invalid,
        ),
        (
            "expiry in the past",
            json!({"expiresAt": "2000-01-01T00:00:00.000Z"}),
            invalid,
        ),
        ("expiry garbage", json!({"expiresAt": "soon"}), invalid),
        ("expiry a number", json!({"expiresAt": 5}), invalid),
        ("status", json!({"status": 3}), invalid),
        ("owner", json!({"owner": "me"}), invalid),
        ("team", json!({"team": TEAM}), invalid),
        ("version", json!({"version": 99}), invalid),
        (
            "a valid name beside an unknown field",
            json!({"name": "fine-name", "x": 1}),
            invalid,
        ),
        ("password", json!({"tags": ["a"], "password": "x"}), invalid),
        ("an array", json!([{"name": "a"}]), invalid),
        ("null", Value::Null, invalid),
        ("a number", json!(1), invalid),
        (
            "wrapped",
            json!({"data": {"name": "wrapped-name"}}),
            invalid,
        ),
    ] {
        out.push(patch(format!("PATCH: {what}"), body, want));
    }
    out.extend(raw_body_cases(
        Method::PATCH,
        &path,
        &json!({"tags": ["from-raw"]}),
    ));

    // Every VM route with a bad id (valid bodies where there are bodies).
    for (what, id, want) in bad_ids() {
        let vm = format!("/api/virtual-machines/{id}");
        for (method, p, payload) in [
            (Method::GET, vm.clone(), Payload::Empty),
            (
                Method::PATCH,
                vm.clone(),
                Payload::Json(json!({"tags": ["x"]})),
            ),
            (Method::DELETE, vm.clone(), Payload::Empty),
            (Method::PUT, format!("{vm}/start"), Payload::Empty),
            (Method::PUT, format!("{vm}/stop"), Payload::Empty),
            (Method::GET, format!("{vm}/credentials"), Payload::Empty),
        ] {
            out.push(case(
                format!("{method} with {what} as id"),
                method,
                &p,
                payload,
                want,
            ));
        }
    }
    // Empty ids (no route, or an invalid id) and extra segments (no route).
    for (p, want) in [
        ("/api/virtual-machines//start".to_string(), Want::Any),
        ("/api/virtual-machines//stop".to_string(), Want::Any),
        (
            format!("/api/virtual-machines/{target}/hibernate"),
            Want::Code(404, "ROUTE_NOT_FOUND"),
        ),
        (
            format!("/api/virtual-machines/{target}/start/now"),
            Want::Code(404, "ROUTE_NOT_FOUND"),
        ),
    ] {
        out.push(case(
            format!("PUT {p}"),
            Method::PUT,
            &p,
            Payload::Empty,
            want,
        ));
    }
    // Known paths, wrong methods.
    for (method, p) in [
        (
            Method::POST,
            format!("/api/virtual-machines/{target}/start"),
        ),
        (Method::GET, format!("/api/virtual-machines/{target}/stop")),
        (
            Method::DELETE,
            format!("/api/virtual-machines/{target}/credentials"),
        ),
        (Method::PUT, CREATE.to_string()),
        (Method::POST, format!("/api/virtual-machines/{target}")),
        (
            Method::DELETE,
            format!("/api/teams/{TEAM}/projects/{PROJECT}/virtual-machines"),
        ),
    ] {
        out.push(case(
            format!("{method} {p}"),
            method,
            &p,
            Payload::Empty,
            Want::Code(405, "METHOD_NOT_ALLOWED"),
        ));
    }
    // Start and stop of a VM still being created.
    for action in ["start", "stop"] {
        out.push(case(
            format!("{action} while creating"),
            Method::PUT,
            &format!("/api/virtual-machines/{creating}/{action}"),
            Payload::Empty,
            Want::Code(409, "ILLEGAL_TRANSITION"),
        ));
    }
    out
}
