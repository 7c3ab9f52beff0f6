//! The operations: parameters, bodies and the success response of each endpoint.

use axum::http::{Method, StatusCode};
use utoipa::openapi::path::{
    HttpMethod, Operation, OperationBuilder, ParameterBuilder, ParameterIn,
};
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::security::SecurityRequirement;
use utoipa::openapi::{ContentBuilder, RefOr, Required, ResponseBuilder};
use utoipa::ToSchema;
use vmapi_models::{
    ActionResult, ProjectId, RuleDeleted, SecurityRuleId, SecurityRuleView, TeamId, VirtualMachine,
    VmCredentials, VmId,
};

use super::common::{
    const_header, request_id_header, schema_ref, string_header, BEARER_AUTH, JSON, TAG_CREDENTIALS,
    TAG_RULES, TAG_SERVICE, TAG_VMS,
};
use super::text::{description, summary};
use super::{bodies, errors, examples};
use crate::idempotency::{IDEMPOTENCY_KEY, IDEMPOTENT_REPLAYED};
use crate::routes::{Endpoint, DEFAULT_LIMIT, MAX_LIMIT};

/// Endpoints that honour `If-Match` and answer an `ETag`.
pub(super) fn conditional(endpoint: Endpoint) -> bool {
    matches!(
        endpoint,
        Endpoint::UpdateVm
            | Endpoint::StartVm
            | Endpoint::StopVm
            | Endpoint::RebootVm
            | Endpoint::DeleteVm
    )
}

pub(super) fn http_method(method: &Method) -> HttpMethod {
    match *method {
        Method::GET => HttpMethod::Get,
        Method::POST => HttpMethod::Post,
        Method::PUT => HttpMethod::Put,
        Method::PATCH => HttpMethod::Patch,
        Method::DELETE => HttpMethod::Delete,
        ref other => panic!("no OpenAPI method for {other}"),
    }
}

fn tag(endpoint: Endpoint) -> &'static str {
    match endpoint {
        Endpoint::Health => TAG_SERVICE,
        Endpoint::GetCredentials => TAG_CREDENTIALS,
        Endpoint::CreateSecurityRule
        | Endpoint::ListSecurityRules
        | Endpoint::DeleteSecurityRule => TAG_RULES,
        _ => TAG_VMS,
    }
}

fn path_parameter(
    name: &str,
    schema: RefOr<Schema>,
    description: &str,
    example: &str,
) -> ParameterBuilder {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Path)
        .required(Required::True)
        .schema(Some(schema))
        .description(Some(description))
        .example(Some(example.into()))
}

pub(super) fn operation(endpoint: Endpoint) -> Operation {
    let mut op = OperationBuilder::new()
        .operation_id(Some(endpoint.function()))
        .summary(Some(summary(endpoint)))
        .description(Some(description(endpoint)))
        .tag(tag(endpoint));
    if endpoint != Endpoint::Health {
        op = op.security(SecurityRequirement::new(BEARER_AUTH, Vec::<String>::new()));
    }
    // Path parameters, in path order.
    if endpoint.path().contains("{team}") {
        op = op.parameter(path_parameter(
            "team",
            schema_ref(TeamId::name()),
            "The team",
            examples::TEAM,
        ));
    }
    if endpoint.path().contains("{project}") {
        op = op.parameter(path_parameter(
            "project",
            schema_ref(ProjectId::name()),
            "A project of the team",
            examples::PROJECT,
        ));
    }
    if endpoint == Endpoint::DeleteSecurityRule {
        op = op.parameter(path_parameter(
            "id",
            schema_ref(SecurityRuleId::name()),
            "The security rule",
            examples::RULE,
        ));
    } else if endpoint.path().contains("{id}") {
        op = op.parameter(path_parameter(
            "id",
            schema_ref(VmId::name()),
            "The virtual machine",
            examples::VM,
        ));
    }
    if matches!(endpoint, Endpoint::ListVms | Endpoint::GetActivity) {
        op = op
            .parameter(
                ParameterBuilder::new()
                    .name("limit")
                    .parameter_in(ParameterIn::Query)
                    .required(Required::False)
                    .schema(Some(
                        ObjectBuilder::new()
                            .schema_type(Type::Integer)
                            .minimum(Some(1))
                            .maximum(Some(MAX_LIMIT as u64))
                            .default(Some(DEFAULT_LIMIT.into())),
                    ))
                    .description(Some(
                        "Page size, a whole number from 1 to 200 (default 50). An unknown or repeated query parameter is a 400 `INVALID_PARAMETER`",
                    ))
                    .example(Some(20.into())),
            )
            .parameter(
                ParameterBuilder::new()
                    .name("cursor")
                    .parameter_in(ParameterIn::Query)
                    .required(Required::False)
                    .schema(Some(
                        ObjectBuilder::new()
                            .schema_type(Type::String)
                            .min_length(Some(1)),
                    ))
                    .description(Some(
                        "Where the page starts: the opaque, signed cursor of the previous page's `X-Next-Cursor` (or its `Link` URL); valid only for the same list (team and project, or VM)",
                    )),
            );
    }
    if endpoint == Endpoint::ListVms {
        let query = |name: &str, pattern: &str, description: &str, example: &str| {
            ParameterBuilder::new()
                .name(name)
                .parameter_in(ParameterIn::Query)
                .required(Required::False)
                .schema(Some(
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .pattern(Some(pattern)),
                ))
                .description(Some(description))
                .example(Some(example.into()))
        };
        op = op
            .parameter(query(
                "status",
                "^(0|1|2|3|4|6|7|creating|provisioning|starting|running|stopping|failed|stopped)(,(0|1|2|3|4|6|7|creating|provisioning|starting|running|stopping|failed|stopped))*$",
                "Only VMs in these statuses: codes or names of active statuses (0-4, 6, 7), separated by commas or the parameter repeated (`status=3,7`, `status=running&status=stopped`)",
                "3,7",
            ))
            .parameter(query(
                "tag",
                "^[^\\u0000-\\u001F\\u007F]{1,64}$",
                "Only VMs carrying this tag",
                "web",
            ))
            .parameter(query(
                "name",
                "^[a-z0-9-]{1,63}$",
                "Only VMs whose host name starts with this (1-63 lowercase letters, digits or hyphens)",
                "web-",
            ));
    }
    if conditional(endpoint) {
        op = op.parameter(
            ParameterBuilder::new()
                .name("If-Match")
                .parameter_in(ParameterIn::Header)
                .required(Required::False)
                .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
                .description(Some(
                    "Act only if the VM is still at this version: the `ETag` of a GET (e.g. `\"7\"`), or several separated by commas; `*` or none means no condition. A mismatch, or a change that wins while the request runs, is a 412 `PRECONDITION_FAILED` that changes nothing",
                )),
        );
    }
    if endpoint.idempotent() {
        op = op.parameter(
            ParameterBuilder::new()
                .name(IDEMPOTENCY_KEY)
                .parameter_in(ParameterIn::Header)
                .required(Required::False)
                .schema(Some(
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .min_length(Some(1))
                        .max_length(Some(255))
                        .pattern(Some("^[!-~]{1,255}$")),
                ))
                .description(Some(
                    "Makes the request safe to retry: a key of the caller's choosing (e.g. a UUID), 1-255 visible ASCII characters, scoped to the caller. The same request (method, path, `If-Match` and body byte for byte) with the same key within 24 h gets the first answer again (status, `ETag` and body, with `Idempotent-Replayed: true`) and does nothing; another request with the key is a 422 `IDEMPOTENCY_KEY_REUSED`; while the first still runs, a 409 `IDEMPOTENCY_IN_PROGRESS`. Answers worth retrying (5xx, 409 `CONCURRENT_MODIFICATION`) and malformed requests (400, 413, 415) are not kept: the key is free again",
                ))
                .example(Some(examples::IDEMPOTENCY_KEY.into())),
        );
    }
    if let Some(body) = bodies::request_body(endpoint) {
        op = op.request_body(Some(body));
    }
    let (status, success) = success_response(endpoint);
    op = op.response(status.as_u16().to_string(), success);
    for (status, response) in errors::operation_responses(endpoint) {
        op = op.response(status.to_string(), response);
    }
    op.build()
}

/// The paging headers of a list answer.
fn paged(response: ResponseBuilder) -> ResponseBuilder {
    response
        .header(
            "Link",
            string_header(
                "`<{path}?limit={limit}&cursor={cursor}>; rel=\"next\"`: the next page; absent on the last page",
            ),
        )
        .header(
            "X-Next-Cursor",
            string_header(
                "The cursor of the next page, for `?cursor=`; absent on the last page",
            ),
        )
}

/// The success status and response of `endpoint`.
fn success_response(endpoint: Endpoint) -> (StatusCode, utoipa::openapi::Response) {
    let mut response = ResponseBuilder::new().header("X-Request-Id", request_id_header());
    if endpoint.idempotent() {
        response = response.header(
            IDEMPOTENT_REPLAYED,
            const_header(
                "true",
                "Present on the replay of an earlier answer to the same `Idempotency-Key` (also on replayed refusals)",
            ),
        );
    }
    if conditional(endpoint) || endpoint == Endpoint::GetVm {
        response = response.header(
            "ETag",
            string_header(
                "The VM's version after the request, as a strong entity tag (`\"7\"`); send it back in `If-Match` to change the VM only if nobody else has",
            ),
        );
    }
    match endpoint {
        Endpoint::Health => (
            StatusCode::OK,
            response
                .description("The service is up")
                .content(
                    JSON,
                    ContentBuilder::new()
                        .schema(Some(schema_ref("Health")))
                        .build(),
                )
                .build(),
        ),
        Endpoint::CreateVm => (
            StatusCode::CREATED,
            response
                .description("The new VMs, one per `hostNames` entry, in status 0 (creating)")
                .content(
                    JSON,
                    ContentBuilder::new()
                        .schema(Some(schema_ref(bodies::VIRTUAL_MACHINE_LIST)))
                        .build(),
                )
                .build(),
        ),
        Endpoint::ListVms => (
            StatusCode::OK,
            paged(response)
                .description("A page of the project's active VMs, newest first")
                .content(
                    JSON,
                    ContentBuilder::new()
                        .schema(Some(schema_ref(bodies::VIRTUAL_MACHINE_LIST)))
                        .build(),
                )
                .build(),
        ),
        Endpoint::GetVm | Endpoint::UpdateVm => (
            StatusCode::OK,
            response
                .description("The VM, with its references populated")
                .content(
                    JSON,
                    ContentBuilder::new()
                        .schema(Some(schema_ref(VirtualMachine::name())))
                        .build(),
                )
                .build(),
        ),
        Endpoint::StartVm | Endpoint::StopVm | Endpoint::RebootVm | Endpoint::DeleteVm => (
            StatusCode::OK,
            response
                .description(
                    "The VM's status after the request (also when it was already under way)",
                )
                .content(
                    JSON,
                    ContentBuilder::new()
                        .schema(Some(schema_ref(ActionResult::name())))
                        .build(),
                )
                .build(),
        ),
        Endpoint::GetActivity => (
            StatusCode::OK,
            paged(response)
                .description("A page of the VM's history, newest first")
                .content(
                    JSON,
                    ContentBuilder::new()
                        .schema(Some(schema_ref(bodies::VM_EVENT_LIST)))
                        .build(),
                )
                .build(),
        ),
        Endpoint::CreateSecurityRule => (
            StatusCode::CREATED,
            response
                .description("The new rule (`applied` false until the provisioner has applied it)")
                .content(
                    JSON,
                    ContentBuilder::new()
                        .schema(Some(schema_ref(SecurityRuleView::name())))
                        .build(),
                )
                .build(),
        ),
        Endpoint::ListSecurityRules => (
            StatusCode::OK,
            response
                .description("The VM's rules, inbound first, then by priority")
                .content(
                    JSON,
                    ContentBuilder::new()
                        .schema(Some(schema_ref(bodies::SECURITY_RULE_LIST)))
                        .build(),
                )
                .build(),
        ),
        Endpoint::DeleteSecurityRule => (
            StatusCode::OK,
            response
                .description("The rule is gone from the VM (the cloud follows)")
                .content(
                    JSON,
                    ContentBuilder::new()
                        .schema(Some(schema_ref(RuleDeleted::name())))
                        .build(),
                )
                .build(),
        ),
        Endpoint::GetCredentials => (
            StatusCode::OK,
            response
                .description("The VM's login")
                .header(
                    "Cache-Control",
                    const_header("no-store", "Credentials are never cached"),
                )
                .header("Pragma", const_header("no-cache", "For HTTP/1.0 caches"))
                .content(
                    JSON,
                    ContentBuilder::new()
                        .schema(Some(schema_ref(VmCredentials::name())))
                        .build(),
                )
                .build(),
        ),
    }
}

pub(super) fn openapi_operation() -> Operation {
    OperationBuilder::new()
        .operation_id(Some("openapi"))
        .summary(Some("This OpenAPI document"))
        .description(Some(
            "The OpenAPI 3.1 document of the API, as committed in `openapi.json`. Served by the local server only (`make run`); needs no token.",
        ))
        .tag(TAG_SERVICE)
        .response(
            "200",
            ResponseBuilder::new()
                .description("The document")
                .header("X-Request-Id", request_id_header())
                .content(
                    JSON,
                    ContentBuilder::new()
                        .schema(Some(schema_ref(bodies::OPENAPI_DOCUMENT)))
                        .build(),
                )
                .build(),
        )
        .build()
}
