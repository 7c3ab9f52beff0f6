//! The local development server: every route on one port, same routers as Lambda.

use std::future::Future;

use axum::Router;
use tokio::net::TcpListener;

use crate::routes::{router, Endpoint};
use crate::state::AppState;

/// Serves every endpoint on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown)
        .await
}

/// What the local server serves: every endpoint's route, and with the `openapi` feature
/// `GET /api/openapi.json` (the Lambda functions mount only their own route).
pub fn app(state: AppState) -> Router {
    let api = router(state, &Endpoint::ALL);
    #[cfg(feature = "openapi")]
    let api = openapi_router().merge(api);
    api
}

/// `GET /api/openapi.json`: the OpenAPI document, with an `X-Request-Id` like every other
/// answer and the API's JSON 405 for other methods.
#[cfg(feature = "openapi")]
pub fn openapi_router() -> Router {
    use axum::extract::Request;
    use axum::http::{header, HeaderValue};
    use axum::response::{IntoResponse, Response};
    use axum::routing::get;

    use crate::error::ApiError;
    use crate::openapi::{self, OPENAPI_PATH};

    fn document_text() -> &'static str {
        static TEXT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        TEXT.get_or_init(openapi::to_json)
    }

    async fn document() -> Response {
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            document_text(),
        )
            .into_response()
    }

    async fn method_not_allowed(req: Request) -> ApiError {
        ApiError::MethodNotAllowed(req.method().to_string())
    }

    async fn with_request_id(mut resp: Response) -> Response {
        if let Ok(v) = HeaderValue::from_str(&vmapi_models::ObjectId::new().to_string()) {
            resp.headers_mut().insert("x-request-id", v);
        }
        resp
    }

    Router::new()
        .route(OPENAPI_PATH, get(document).fallback(method_not_allowed))
        .layer(axum::middleware::map_response(with_request_id))
}
