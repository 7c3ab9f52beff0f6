//! The local development server: every route on one port, same routers as Lambda.

use std::future::Future;

use tokio::net::TcpListener;

use crate::routes::{router, Endpoint};
use crate::state::AppState;

/// Serves every endpoint on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state, &Endpoint::ALL))
        .with_graceful_shutdown(shutdown)
        .await
}
