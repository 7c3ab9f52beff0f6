//! HTTP layer of the VM API: one route table, authentication, request parsing and the one
//! error-to-HTTP mapping. Lambda functions and the local server run the same routers.

pub mod auth;
pub mod config;
pub mod cursor;
pub mod endpoints;
pub mod error;
mod extract;
pub mod idempotency;
pub mod lambda;
pub mod local;
pub mod logging;
#[cfg(feature = "openapi")]
pub mod openapi;
pub mod routes;
pub mod state;

pub use config::Config;
pub use error::ApiError;
pub use routes::{router, Endpoint};
pub use state::AppState;
