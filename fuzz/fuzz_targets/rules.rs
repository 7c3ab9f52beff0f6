//! Arbitrary bytes as the body of `POST /api/security-rules`, sent through the real router over
//! the in-memory repository: the demo data and three VMs of the spec's team, one per cloud
//! (Kraud.Cloud, AWS, Azure). When the body is a JSON object naming a `virtualMachine`, the id is
//! replaced by one of the three (chosen by the input's length), so generated rules reach the
//! use case. Checks: no panic, no 5xx, every refusal in the API's error shape; a 201 only for a
//! body that parses and that the VM's cloud can express (a 422 otherwise), and the rule is then
//! listed; what parses prints back to the same rule (ports, network, name).

#![no_main]

#[path = "common/app.rs"]
mod app;
mod common;

use app::{repository, state};
use std::sync::{Arc, OnceLock};

use axum::http::{Method, StatusCode};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use vmapi_http::Endpoint;
use vmapi_models::{Cidr, CloudKind, CreateRuleRequest, Ports, RuleName, Seed, VmId, VmRecord};

/// Built once: the demo data, a token of the spec team's owner, and one VM per cloud.
struct Fixture {
    seed: Seed,
    token: String,
    vms: Vec<(VmRecord, CloudKind)>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let app::SpecVm {
            seed,
            token,
            vm: kraud,
        } = app::spec_vm();
        let mut vms = vec![(kraud.clone(), CloudKind::Kraud)];
        // The same VM on the other two clouds (only its cloud provider differs).
        for kind in [CloudKind::Aws, CloudKind::Azure] {
            let cloud = seed
                .cloud_providers
                .iter()
                .find(|c| CloudKind::of(c) == Some(kind))
                .expect("the demo data has every cloud");
            let mut vm = kraud.clone();
            vm.id = VmId::new();
            vm.cloud_provider = cloud.id;
            vms.push((vm, kind));
        }
        Fixture { seed, token, vms }
    })
}

/// Sends `body` with the fixture's token.
fn send(app: &axum::Router, method: Method, uri: &str, body: &[u8]) -> (StatusCode, Value) {
    app::send(app, &fixture().token, method, uri, body)
}

/// What parses prints back to the same value.
fn round_trips(req: &CreateRuleRequest) {
    let Ok(rule) = req.clone().parse() else {
        return;
    };
    let strings = rule.port_range.to_strings();
    assert_eq!(
        Ports::parse(&strings).unwrap(),
        rule.port_range,
        "{strings:?}"
    );
    let net = rule.cidr_block.to_string();
    assert_eq!(net.parse::<Cidr>().unwrap(), rule.cidr_block, "{net}");
    assert_eq!(RuleName::parse(rule.name.as_str()).unwrap(), rule.name);
    for kind in [CloudKind::Kraud, CloudKind::Aws, CloudKind::Azure] {
        let _ = rule.unsupported_on(Some(kind));
    }
}

fuzz_target!(|data: &[u8]| {
    common::run(data, || {
        let f = fixture();
        if let Ok(req) = serde_json::from_slice::<CreateRuleRequest>(data) {
            round_trips(&req);
        }

        let repo = Arc::new(repository(&f.seed));
        for (vm, _) in &f.vms {
            repo.put_vm(vm.clone());
        }
        let app = vmapi_http::router(
            state(repo.clone()),
            &[Endpoint::CreateSecurityRule, Endpoint::ListSecurityRules],
        );
        // Aim a JSON object at one of the three VMs.
        let (vm, kind) = &f.vms[data.len() % f.vms.len()];
        let mut body = data.to_vec();
        let mut value = serde_json::from_slice::<Value>(data).ok();
        if let Some(Value::Object(map)) = value.as_mut() {
            let wrapped = map.len() == 1 && matches!(map.get("data"), Some(Value::Object(_)));
            let target = match map.get_mut("data") {
                Some(Value::Object(inner)) if wrapped => inner,
                _ => map,
            };
            if target.contains_key("virtualMachine") {
                target.insert("virtualMachine".into(), Value::String(vm.id.to_string()));
                body = serde_json::to_vec(&value).unwrap();
            }
        }
        let (status, answer) = send(&app, Method::POST, "/api/security-rules", &body);

        let Some(value) = value else {
            assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
            assert_eq!(answer["code"], "INVALID_JSON", "{answer}");
            return;
        };
        let unwrapped = match &value {
            Value::Object(map) if map.len() == 1 && map.contains_key("data") => map["data"].clone(),
            other => other.clone(),
        };
        let parsed = serde_json::from_value::<CreateRuleRequest>(unwrapped)
            .ok()
            .and_then(|r| r.parse().ok());
        if status.is_success() {
            assert_eq!(status, StatusCode::CREATED, "{answer}");
            let rule =
                parsed.unwrap_or_else(|| panic!("201 for a body that does not parse: {answer}"));
            assert_eq!(rule.vm, vm.id);
            assert_eq!(
                rule.unsupported_on(Some(*kind)),
                None,
                "201 on {kind:?} for a rule it cannot express: {answer}"
            );
            assert_eq!(answer["name"], rule.name.as_str(), "{answer}");
            let (listed, list) = send(
                &app,
                Method::GET,
                &format!("/api/virtual-machines/{}/security-rules", vm.id),
                b"",
            );
            assert_eq!(listed, StatusCode::OK, "{list}");
            let ids: Vec<&Value> = list.as_array().unwrap().iter().map(|r| &r["_id"]).collect();
            assert!(
                ids.contains(&&answer["_id"]),
                "created rule not listed: {list}"
            );
        } else {
            app::check_refusal("POST", status, &answer);
            match &parsed {
                None => assert!(
                    matches!(
                        status,
                        StatusCode::BAD_REQUEST | StatusCode::PAYLOAD_TOO_LARGE
                    ),
                    "{status} for a body that does not parse: {answer}"
                ),
                Some(rule) if rule.vm == vm.id && rule.unsupported_on(Some(*kind)).is_some() => {
                    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
                    assert_eq!(answer["code"], "UNSUPPORTED_BY_PROVIDER", "{answer}");
                }
                Some(_) => {}
            }
        }
    });
});
