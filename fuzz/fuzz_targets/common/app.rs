//! What the router-driving targets share: a current-thread runtime per fuzzing thread, the
//! in-memory repository with the demo catalog and teams, the handlers' state with a local token
//! key, one request through the router, and the check of a refusal's shape.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use serde_json::Value;
use tower::ServiceExt;
use vmapi_core::memory::{MemoryIdempotencyStore, MemoryRepository, MemorySecretStore};
use vmapi_core::{Service, SystemClock};
use vmapi_http::auth::{mint_local_token, Authenticator};
use vmapi_http::config::{JwtConfig, JwtMode};
use vmapi_http::cursor::CursorCodec;
use vmapi_http::AppState;
use vmapi_models::{CreateVmRequest, CredentialScope, Role, Seed, UserId, VmRecord};

/// The key of the targets' tokens.
pub const JWT_SECRET: &str = "vm-api-fuzz-jwt-secret";
const DEMO: &str = include_str!("../../../data/demo.json");
const CREATE: &str = include_str!("../../../shared/models/tests/fixtures/create-request.json");

/// The demo data, a token of the spec team's owner, and the VM the spec's create request makes.
pub struct SpecVm {
    /// `data/demo.json`.
    pub seed: Seed,
    /// A token of the spec team's owner (30 days).
    pub token: String,
    /// The VM, as stored.
    pub vm: VmRecord,
}

/// Creates the spec's VM over a fresh repository of the demo data.
pub fn spec_vm() -> SpecVm {
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
    let vms = block_on(service.create(&owner, create)).expect("the spec request creates");
    let vm = repo.vm(vms[0].id).expect("stored");
    let token = mint_local_token(JWT_SECRET, &owner, Duration::from_secs(30 * 24 * 3600));
    SpecVm { seed, token, vm }
}

thread_local! {
    static RUNTIME: RefCell<Option<tokio::runtime::Runtime>> = const { RefCell::new(None) };
}

/// Runs a future on this thread's runtime.
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
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

/// A repository holding the demo data's catalog, teams and projects.
pub fn repository(seed: &Seed) -> MemoryRepository {
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

/// The handlers' state over `repo`.
pub fn state(repo: Arc<MemoryRepository>) -> AppState {
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

/// Sends `body` with `token` and returns the status and the JSON answer.
pub fn send(
    app: &axum::Router,
    token: &str,
    method: Method,
    uri: &str,
    body: &[u8],
) -> (StatusCode, Value) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
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
pub fn check_refusal(what: &str, status: StatusCode, answer: &Value) {
    assert!(
        status.is_client_error(),
        "{what}: {status} is neither success nor a client error: {answer}"
    );
    assert_eq!(answer["statusCode"], status.as_u16(), "{what}: {answer}");
    assert!(answer["code"].is_string(), "{what}: no code: {answer}");
    assert!(
        answer["message"].is_string(),
        "{what}: no message: {answer}"
    );
}
