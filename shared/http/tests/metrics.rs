//! Per-route request metrics (EMF): one document per answered request of a route, labelled
//! with the route's method and path template, never with the concrete path.

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::Value;
use tower::ServiceExt;
use vmapi_aws::emf::{Emf, CLIENT_ERRORS, ERRORS, LATENCY, REQUESTS};
use vmapi_http::{router, AppState, Config, Endpoint};

/// A state whose AWS clients are never used (every request below is answered before any
/// call), with metrics captured as parsed documents.
fn measured_state() -> (AppState, Arc<Mutex<Vec<Value>>>) {
    let config = Config::from_env().expect("local configuration");
    let sdk = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .build();
    let docs = Arc::new(Mutex::new(Vec::new()));
    let sink = docs.clone();
    let emf = Emf::with_sink("VmApi", "test", move |line: &str| {
        sink.lock()
            .unwrap()
            .push(serde_json::from_str(line).unwrap());
    });
    (AppState::from_sdk(&config, &sdk).with_metrics(emf), docs)
}

async fn status_of(app: &axum::Router, method: &str, uri: &str) -> StatusCode {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .body(Body::empty())
        .unwrap();
    app.clone().oneshot(req).await.unwrap().status()
}

#[tokio::test]
async fn each_answered_request_counts_once_under_its_route_template() {
    let (state, docs) = measured_state();
    let app = router(state, &[Endpoint::Health, Endpoint::GetVm]);

    assert_eq!(status_of(&app, "GET", "/health").await, StatusCode::OK);
    let vm = "/api/virtual-machines/654a11e60b23ef1b0f36d44e";
    assert_eq!(status_of(&app, "GET", vm).await, StatusCode::UNAUTHORIZED);
    // No route, or not this method: not a route's request.
    assert_eq!(
        status_of(&app, "GET", "/nowhere").await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        status_of(&app, "POST", "/health").await,
        StatusCode::METHOD_NOT_ALLOWED
    );

    let docs = docs.lock().unwrap();
    let seen: Vec<(&str, u64, u64, u64)> = docs
        .iter()
        .map(|d| {
            assert_eq!(d[REQUESTS], 1);
            assert!(d[LATENCY].as_f64().unwrap() >= 0.0);
            assert_eq!(d["Deployment"], "test");
            (
                d["Route"].as_str().unwrap(),
                d["Status"].as_u64().unwrap(),
                d[ERRORS].as_u64().unwrap(),
                d[CLIENT_ERRORS].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("GET /health", 200, 0, 0),
            ("GET /api/virtual-machines/{id}", 401, 0, 1),
        ]
    );
}

#[tokio::test]
async fn without_metrics_nothing_is_measured() {
    let (state, docs) = measured_state();
    let state = AppState {
        metrics: None,
        ..state
    };
    let app = router(state, &[Endpoint::Health]);
    assert_eq!(status_of(&app, "GET", "/health").await, StatusCode::OK);
    assert!(docs.lock().unwrap().is_empty());
}
