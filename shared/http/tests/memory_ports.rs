//! The routers over the in-memory ports (`vmapi_core::memory`, feature `testing`) instead of
//! DynamoDB: `AppState` depends on the ports only.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::Value;
use tower::ServiceExt;
use vmapi_core::memory::{sample_vm, MemoryIdempotencyStore, MemoryRepository};
use vmapi_http::auth::mint_local_token;
use vmapi_http::config::DEFAULT_LOCAL_JWT_SECRET;
use vmapi_http::{router, AppState, Config, Endpoint};
use vmapi_models::{Seed, UserId};

/// A memory repository with the demo catalog, teams and projects, and one VM of the demo team.
fn seeded() -> (Arc<MemoryRepository>, vmapi_models::VmRecord) {
    let seed: Seed = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/demo.json"))
            .unwrap(),
    )
    .unwrap();
    let repo = Arc::new(MemoryRepository::new());
    seed.cloud_providers
        .into_iter()
        .for_each(|c| repo.put_cloud_provider(c));
    seed.providers
        .into_iter()
        .for_each(|p| repo.put_provider(p));
    seed.sizes.into_iter().for_each(|s| repo.put_size(s));
    seed.prices.into_iter().for_each(|p| repo.put_price(p));
    seed.teams.into_iter().for_each(|t| repo.put_team(t));
    seed.projects.into_iter().for_each(|p| repo.put_project(p));
    let vm = sample_vm();
    repo.put_vm(vm.clone());
    (repo, vm)
}

async fn get(app: &axum::Router, uri: &str, user: &UserId) -> (StatusCode, Value) {
    let token = mint_local_token(DEFAULT_LOCAL_JWT_SECRET, user, Duration::from_secs(300));
    let req = Request::builder()
        .uri(uri)
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn the_routers_serve_from_the_in_memory_ports() {
    let (repo, vm) = seeded();
    let config = Config::local("unused", DEFAULT_LOCAL_JWT_SECRET);
    let state = AppState::over(repo, Arc::new(MemoryIdempotencyStore::new()), &config);
    let app = router(state, &[Endpoint::GetVm]);
    let uri = format!("/api/virtual-machines/{}", vm.id);

    let (status, body) = get(&app, &uri, &vm.owner).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["name"], "sample-vm");
    assert_eq!(
        body["provider"]["cloudProvider"]["name"], "Kraud.Cloud",
        "populated from the memory catalog: {body}"
    );

    let stranger = UserId::parse("someone-outside-the-team").unwrap();
    let (status, body) = get(&app, &uri, &stranger).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["code"], "VM_NOT_FOUND");
}
