//! Errors in the document: the one `Error` shape, one response per error status, the codes each
//! operation answers and what they mean.

use std::collections::BTreeSet;

use axum::http::StatusCode;
use utoipa::openapi::schema::{
    AdditionalProperties, AnyOfBuilder, ArrayBuilder, ObjectBuilder, Schema, Type,
};
use utoipa::openapi::{ContentBuilder, HeaderBuilder, Ref, RefOr, Response, ResponseBuilder};

use super::common::{request_id_header, schema_ref, JSON};
use crate::error::ALL_CODES;
use crate::extract::MAX_BODY_BYTES;
use crate::routes::Endpoint;

const ERROR: &str = "Error";
const GATEWAY_ERROR: &str = "GatewayError";
const AUTH_ERROR: &str = "AuthError";

/// Codes every endpoint honouring `Idempotency-Key` adds to its own (a malformed key is an
/// `INVALID_PARAMETER`).
const IDEMPOTENCY_CODES: [&str; 3] = [
    "INVALID_PARAMETER",
    "IDEMPOTENCY_IN_PROGRESS",
    "IDEMPOTENCY_KEY_REUSED",
];

/// The codes `endpoint` can answer: its own, and those of `Idempotency-Key` where honoured.
fn all_error_codes(endpoint: Endpoint) -> Vec<&'static str> {
    let mut codes = endpoint.spec().errors.to_vec();
    if endpoint.idempotent() {
        for code in IDEMPOTENCY_CODES {
            if !codes.contains(&code) {
                codes.push(code);
            }
        }
    }
    codes
}

/// What a `code` means for `endpoint` (`None`: for any request), for the response
/// descriptions: the endpoint's own note, else what it means for any endpoint of its kind.
fn code_meaning(endpoint: Option<Endpoint>, code: &str) -> &'static str {
    let Some(spec) = endpoint.map(Endpoint::spec) else {
        return code_meaning_anywhere(code);
    };
    if let Some((_, note)) = spec.notes.iter().find(|(c, _)| *c == code) {
        return note;
    }
    match code {
        "INVALID_PARAMETER" if spec.idempotent => {
            "`id` is not 24 hexadecimal digits, or the `Idempotency-Key` header is not 1-255 visible ASCII characters; `details` names it"
        }
        "INVALID_PARAMETER" => "`id` is not 24 hexadecimal digits; `details` names it",
        "FORBIDDEN" => "team viewers may read but not change",
        _ => code_meaning_anywhere(code),
    }
}

fn code_meaning_anywhere(code: &str) -> &'static str {
    match code {
        "INVALID_JSON" => "the body is empty or not JSON",
        "VALIDATION_FAILED" => {
            "wrong types, unknown fields, bad ids, catalog mismatches, or a plaintext password or private key in the body; `details` names the fields"
        }
        "INVALID_PARAMETER" => {
            "a bad path id, `limit` or `cursor`, or an unknown query parameter; `details` names it"
        }
        "UNAUTHORIZED" => {
            "missing, malformed, expired or foreign-signed token, or `alg: none`"
        }
        "FORBIDDEN" => {
            "team viewers may read but not change; only a VM's owner and the team's owners and admins read its credentials"
        }
        "VM_NOT_FOUND" => {
            "no such VM, or a VM of a team the caller is not in (never 403, so ids cannot be probed)"
        }
        "TEAM_NOT_FOUND" => "no such team, or the caller is not a member",
        "PROJECT_NOT_FOUND" => "no such project, or it is not the team's",
        "CREDENTIALS_NOT_FOUND" => "the VM has no stored login (made before logins existed)",
        "CLOUD_PROVIDER_NOT_FOUND" => "no such cloud provider in the catalog",
        "PROVIDER_NOT_FOUND" => "no such provider in the catalog",
        "LOCATION_NOT_FOUND" => {
            "the provider has no location with this `_id` or datacenter name"
        }
        "IMAGE_NOT_FOUND" => {
            "the provider offers no image of this distribution at the location (no price names it)"
        }
        "SECURITY_RULE_NOT_FOUND" => {
            "no such security rule, or a rule of a VM of a team the caller is not in (never 403)"
        }
        "RULE_NAME_TAKEN" => "the VM already has a security rule of this name (ignoring case)",
        "PRIORITY_TAKEN" => {
            "the VM already has a security rule of this direction with this priority; choose another or leave `priority` out for the next free one"
        }
        "RULE_LIMIT_REACHED" => "the VM has 50 security rules, the most it may have",
        "VM_BLOCKED" => {
            "an administrator blocked the VM (`isBlocked`): it may be read, stopped and deleted, but not started, rebooted, changed, given or relieved of security rules, or have its credentials read; nothing was written"
        }
        "UNSUPPORTED_BY_PROVIDER" => {
            "the VM's cloud cannot express the rule: Kraud.Cloud only opens or closes a VM's public address (Inbound, protocol `*`, portRange `[\"*\"]`, cidrBlock `0.0.0.0/0`); AWS security groups take no `Deny` and no outbound rules; the message says which; nothing was written"
        }
        "ROUTE_NOT_FOUND" => "no route matches the method and path",
        "METHOD_NOT_ALLOWED" => "the path exists, but not with this method",
        "ILLEGAL_TRANSITION" => {
            "the VM's status forbids it (start or stop while creating, provisioning or failed; a change while deleting)"
        }
        "HOST_NAME_TAKEN" => "the host name is used by an active VM of the project",
        "DUPLICATE_HOST_NAME" => "the same host name is given twice in one request",
        "CONCURRENT_MODIFICATION" => "the VM was changed concurrently; retry the request",
        "QUOTA_EXCEEDED" => {
            "the VMs would take the team over its quota: the number of its active VMs (every status but 5 and 8) or their vCPUs (the sizes' `vCPUs`) would exceed the limit (`QUOTA_MAX_ACTIVE_VMS` / `QUOTA_MAX_VCPUS`, or the team's own `quotas`); the message names the limit, the team's usage and what was asked; nothing was created"
        }
        "IDEMPOTENCY_IN_PROGRESS" => {
            "a request with the same `Idempotency-Key` is still running; retry once it has finished (a request that stopped answering blocks its key for at most 60 s)"
        }
        "IDEMPOTENCY_KEY_REUSED" => {
            "the `Idempotency-Key` was used in the last 24 h with a different request (method, path, `If-Match` or body); nothing was done: use a new key for a new request"
        }
        "PRECONDITION_FAILED" => "`If-Match` names another version than the VM's current one (its `ETag`); nothing was changed",
        "PAYLOAD_TOO_LARGE" => "the body is larger than 64 KiB",
        "UNSUPPORTED_MEDIA_TYPE" => "the body is not `application/json`",
        "INTERNAL_ERROR" => {
            "an unexpected error (also a misconfigured secret store); the body has no internals: quote the `requestId`"
        }
        "SERVICE_UNAVAILABLE" => {
            "the database, the secret store or the token keys are unreachable, sealed or throttling; retry after `Retry-After` seconds"
        }
        other => panic!("error code {other} has no description in openapi.rs"),
    }
}

/// The status of a code, from [`ALL_CODES`].
fn status_of(code: &str) -> u16 {
    ALL_CODES
        .iter()
        .find(|(c, _)| *c == code)
        .map(|(_, s)| *s)
        .unwrap_or_else(|| panic!("{code} is not in error::ALL_CODES"))
}

/// The reason phrase of `status` (`Conflict`).
fn reason(status: u16) -> &'static str {
    StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error")
}

/// The name of the response of `status` in `components.responses`: its reason phrase in one
/// word (`Conflict`, `ServiceUnavailable`).
pub(super) fn response_name(status: u16) -> String {
    reason(status).replace([' ', '-'], "")
}

/// Every error status with its codes, in status order.
fn by_status<'a>(codes: &[&'a str]) -> Vec<(u16, Vec<&'a str>)> {
    let statuses: BTreeSet<u16> = codes.iter().map(|c| status_of(c)).collect();
    statuses
        .into_iter()
        .map(|status| {
            let of_status = codes
                .iter()
                .copied()
                .filter(|c| status_of(c) == status)
                .collect();
            (status, of_status)
        })
        .collect()
}

/// `components.responses`: one per error status, listing every code of that status (from any
/// operation, or from no route at all), with its headers and the one `Error` body.
pub(super) fn responses() -> Vec<(String, Response)> {
    let all: Vec<&str> = ALL_CODES.iter().map(|(c, _)| *c).collect();
    by_status(&all)
        .into_iter()
        .map(|(status, codes)| (response_name(status), error_response(status, &codes)))
        .collect()
}

/// The error responses of `endpoint`: a reference to each status's response, described with
/// the codes `endpoint` answers with it and what they mean there.
pub(super) fn operation_responses(endpoint: Endpoint) -> Vec<(u16, RefOr<Response>)> {
    by_status(&all_error_codes(endpoint))
        .into_iter()
        .map(|(status, codes)| {
            let mut reference =
                Ref::new(format!("#/components/responses/{}", response_name(status)));
            reference.description = response_description(Some(endpoint), status, &codes);
            (status, RefOr::Ref(reference))
        })
        .collect()
}

/// The error response of `status` whose body carries one of `codes`.
fn error_response(status: u16, codes: &[&str]) -> Response {
    let body = if status == 401 {
        schema_ref(AUTH_ERROR)
    } else {
        schema_ref(ERROR)
    };
    let mut response = ResponseBuilder::new()
        .description(response_description(None, status, codes))
        .header("X-Request-Id", request_id_header())
        .content(JSON, ContentBuilder::new().schema(Some(body)).build());
    if status == 401 {
        response = response.header(
            "WWW-Authenticate",
            HeaderBuilder::new()
                .schema(
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .enum_values(Some(["Bearer", "Api-Key"])),
                )
                .description(Some(
                    "The authentication scheme to use: `Bearer` (a user's token) on user routes, `Api-Key` (the `Api-Key` header) on admin routes",
                ))
                .build(),
        );
    }
    if status == 503 {
        response = response.header(
            "Retry-After",
            HeaderBuilder::new()
                .schema(
                    ObjectBuilder::new()
                        .schema_type(Type::Integer)
                        .minimum(Some(0)),
                )
                .description(Some("Seconds to wait before retrying"))
                .build(),
        );
    }
    response.build()
}

fn response_description(endpoint: Option<Endpoint>, status: u16, codes: &[&str]) -> String {
    let mut description = format!("{}:", reason(status));
    for (i, code) in codes.iter().enumerate() {
        let sep = if i == 0 { " " } else { "; " };
        description.push_str(&format!("{sep}`{code}`: {}", code_meaning(endpoint, code)));
    }
    if status == 413 {
        description.push_str(&format!(" (the limit is {MAX_BODY_BYTES} bytes)"));
    }
    description
}

/// The error schemas: `Error`, its `FieldError`, API Gateway's `GatewayError`, and `AuthError`
/// (the body of a 401: either).
pub(super) fn schemas() -> Vec<(String, RefOr<Schema>)> {
    vec![
        (ERROR.into(), error_schema()),
        ("FieldError".into(), field_error_schema()),
        (GATEWAY_ERROR.into(), gateway_error_schema()),
        (
            AUTH_ERROR.into(),
            // `anyOf`, not `oneOf`: a generated client that ignores `additionalProperties:
            // false` finds an `Error` body a `GatewayError` too, and takes the first that fits.
            AnyOfBuilder::new()
                .item(schema_ref(ERROR))
                .item(schema_ref(GATEWAY_ERROR))
                .description(Some(
                    "The body of a 401: the functions' `Error`, or in AWS API Gateway's own `{\"message\": \"Unauthorized\"}` when its JWT authorizer refuses the token first",
                ))
                .into(),
        ),
    ]
}

fn error_schema() -> RefOr<Schema> {
    ObjectBuilder::new()
        .description(Some(
            "Every error answer of the API (API Gateway's own answers aside: `GatewayError`). Each error response lists the `code` values of its status.",
        ))
        .property(
            "statusCode",
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .description(Some("The HTTP status, repeated")),
        )
        .required("statusCode")
        .property(
            "error",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .description(Some("The status's reason phrase, e.g. `Not Found`")),
        )
        .required("error")
        .property(
            "code",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(ALL_CODES.iter().map(|(c, _)| *c)))
                .description(Some("Stable, machine-readable code")),
        )
        .required("code")
        .property(
            "message",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .description(Some("Human-readable explanation, free of internals")),
        )
        .required("message")
        .property(
            "details",
            ArrayBuilder::new()
                .items(schema_ref("FieldError"))
                .min_items(Some(1))
                .description(Some(
                    "The offending fields, on 400 answers about fields (`VALIDATION_FAILED`, `INVALID_PARAMETER`)",
                )),
        )
        .property(
            "requestId",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .description(Some(
                    "The request's id, on 5xx answers only (also in `X-Request-Id`): quote it when reporting",
                )),
        )
        .additional_properties(Some(AdditionalProperties::FreeForm(false)))
        .into()
}

fn field_error_schema() -> RefOr<Schema> {
    ObjectBuilder::new()
        .description(Some("What is wrong with one field"))
        .property(
            "field",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .description(Some(
                "Path of the field, e.g. `hostNames[1]`, `access.sshPublicKey`, `limit` or `body`",
            )),
        )
        .required("field")
        .property(
            "message",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .description(Some("What is wrong")),
        )
        .required("message")
        .additional_properties(Some(AdditionalProperties::FreeForm(false)))
        .into()
}

fn gateway_error_schema() -> RefOr<Schema> {
    ObjectBuilder::new()
        .description(Some(
            "API Gateway's own error body (AWS only), e.g. `{\"message\": \"Unauthorized\"}` from its JWT authorizer",
        ))
        .property(
            "message",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .examples(["Unauthorized"]),
        )
        .required("message")
        .additional_properties(Some(AdditionalProperties::FreeForm(false)))
        .into()
}
