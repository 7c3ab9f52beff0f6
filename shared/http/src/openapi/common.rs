//! Names and small builders every part of the document uses: paths, the media type, the
//! bearer scheme, schema references and headers.

use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::{HeaderBuilder, Ref, RefOr};

/// Where the local server serves the document (not deployed to API Gateway).
pub const OPENAPI_PATH: &str = "/api/openapi.json";

/// Request headers that are planned but not honoured yet (none today). They are deliberately
/// left out of the document until a handler reads them; document them in `operation()` then.
/// (`If-Match` and `ETag` are honoured and documented on the VM routes, `Idempotency-Key` and
/// `Idempotent-Replayed` on create and the actions, the paging headers `Link` and
/// `X-Next-Cursor` on the list.)
pub const NOT_YET_HONOURED_HEADERS: &[&str] = &[];

/// Name of the bearer-token security scheme.
pub const BEARER_AUTH: &str = "bearerAuth";
/// Name of the admin-key security scheme (`Api-Key` header).
pub const ADMIN_KEY_AUTH: &str = "adminKey";

pub(super) const JSON: &str = "application/json";

pub(super) fn schema_ref(name: impl Into<String>) -> RefOr<Schema> {
    Ref::from_schema_name(name).into()
}

pub(super) fn string_header(description: &str) -> utoipa::openapi::Header {
    HeaderBuilder::new()
        .schema(ObjectBuilder::new().schema_type(Type::String))
        .description(Some(description))
        .build()
}

pub(super) fn const_header(value: &str, description: &str) -> utoipa::openapi::Header {
    HeaderBuilder::new()
        .schema(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some([value])),
        )
        .description(Some(description))
        .build()
}

pub(super) fn request_id_header() -> utoipa::openapi::Header {
    string_header(
        "The request's id (Lambda's request id, or a local one); the logs carry it too, and 5xx bodies repeat it as `requestId`",
    )
}
