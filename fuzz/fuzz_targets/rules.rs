//! Arbitrary bytes as the body of `POST /api/security-rules`, sent through the real router over
//! the in-memory repository: the demo data and three VMs of the spec's team, one per cloud
//! (Kraud.Cloud, AWS, Azure). When the body is a JSON object naming a `virtualMachine`, the id is
//! replaced by one of the three (chosen by the input's length), so generated rules reach the
//! use case. Checks: no panic, no 5xx, every refusal in the API's error shape; a 201 only for a
//! body that parses and that the VM's cloud can express (a 422 otherwise), and the rule is then
//! listed; what parses prints back to the same rule (ports, network, name).

#![no_main]

mod common;

use std::cell::RefCell;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tower::ServiceExt;
use vmapi_core::memory::{MemoryIdempotencyStore, MemoryRepository, MemorySecretStore};
use vmapi_core::{Service, SystemClock};
use vmapi_http::auth::{mint_local_token, Authenticator};
use vmapi_http::config::{JwtConfig, JwtMode};
use vmapi_http::cursor::CursorCodec;
use vmapi_http::{AppState, Endpoint};
use vmapi_models::{
    Cidr, CloudKind, CreateRuleRequest, CreateVmRequest, CredentialScope, Ports, Role, RuleName,
    Seed, UserId, VmId, VmRecord,
};

const JWT_SECRET: &str = "vm-api-fuzz-jwt-secret";
const DEMO: &str = include_str!("../../data/demo.json");
const CREATE: &str = include_str!("../../shared/models/tests/fixtures/create-request.json");

/// Built once: the demo data, a token of the spec team's owner, and one VM per cloud.
struct Fixture {
    seed: Seed,
    token: String,
    vms: Vec<(VmRecord, CloudKind)>,
}

thread_local! {
    static RUNTIME: RefCell<Option<tokio::runtime::Runtime>> = const { RefCell::new(None) };
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    RUNTIME.with(|rt| {
        let mut rt = rt.borrow_mut();
        let rt = rt.get_or_insert_with(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .expect("runtime")
        });
        rt.block_on(f)
    })
}

fn repository(seed: &Seed) -> MemoryRepository {
    let repo = MemoryRepository::new();
    seed.cloud_providers
        .iter()
        .for_each(|c| repo.put_cloud_provider(c.clone()));
    seed.providers
        .iter()
        .for_each(|p| repo.put_provider(p.clone()));
    seed.sizes.iter().for_each(|s| repo.put_size(s.clone()));
    seed.prices.iter().for_each(|p| repo.put_price(p.clone()));
    seed.teams.iter().for_each(|t| repo.put_team(t.clone()));
    seed.projects
        .iter()
        .for_each(|p| repo.put_project(p.clone()));
    repo
}

fn state(repo: Arc<MemoryRepository>) -> AppState {
    AppState {
        service: Service::new(repo, Arc::new(SystemClock)).with_logins(
            Arc::new(MemorySecretStore::new()),
            CredentialScope::default(),
        ),
        auth: Authenticator::new(JwtConfig {
            mode: JwtMode::LocalHs256 {
                secret: JWT_SECRET.into(),
            },
            issuer: None,
            audience: None,
            leeway_secs: 0,
        }),
        cursors: CursorCodec::new("vm-api-fuzz-cursor-secret"),
        idempotency: Arc::new(MemoryIdempotencyStore::new()),
    }
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let seed: Seed = serde_json::from_str(DEMO).expect("data/demo.json");
        let create: CreateVmRequest = serde_json::from_str(CREATE).expect("create fixture");
        let owner: UserId = seed
            .teams
            .iter()
            .find(|t| t.id == create.team)
            .and_then(|t| t.members.iter().find(|m| m.role == Role::Owner))
            .map(|m| m.user.clone())
            .expect("the spec team has an owner");
        let repo = Arc::new(repository(&seed));
        let service = state(repo.clone()).service;
        let made = block_on(service.create(&owner, create)).expect("the spec request creates");
        let kraud = repo.vm(made[0].id).expect("stored");
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
        let token = mint_local_token(JWT_SECRET, &owner, Duration::from_secs(30 * 24 * 3600));
        Fixture { seed, token, vms }
    })
}

/// Sends a request and returns the status and the JSON answer.
fn send(app: &axum::Router, method: Method, uri: &str, body: &[u8]) -> (StatusCode, Value) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::AUTHORIZATION, format!("Bearer {}", fixture().token))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_vec()))
        .unwrap();
    block_on(async {
        let resp = app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 24)
            .await
            .unwrap();
        let value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("{uri}: {status} answer is not JSON: {e}"));
        (status, value)
    })
}

/// An answer that refuses: 4xx in the API's error shape.
fn check_refusal(status: StatusCode, answer: &Value) {
    assert!(
        status.is_client_error(),
        "{status} is neither success nor a client error: {answer}"
    );
    assert_eq!(answer["statusCode"], status.as_u16(), "{answer}");
    assert!(answer["code"].is_string(), "no code: {answer}");
    assert!(answer["message"].is_string(), "no message: {answer}");
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
            check_refusal(status, &answer);
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
