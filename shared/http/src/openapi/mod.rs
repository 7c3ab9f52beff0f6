//! The OpenAPI 3.1 document of the API (feature `openapi`), built from the endpoint table
//! ([`crate::endpoints`]), the wire types' `utoipa::ToSchema` implementations and the error codes
//! of [`ALL_CODES`](crate::error::ALL_CODES). `openapi.json` at the repository root is this document; the local server
//! serves it at [`OPENAPI_PATH`].
//!
//! Regenerate the committed file with
//! `UPDATE_OPENAPI=1 cargo test -p vmapi-http --features openapi --test openapi`.

mod bodies;
mod common;
mod conditional;
mod document;
mod errors;
mod examples;
mod operation;

pub use common::{ADMIN_KEY_AUTH, BEARER_AUTH, NOT_YET_HONOURED_HEADERS, OPENAPI_PATH};
pub use document::{document, operations, to_json};
