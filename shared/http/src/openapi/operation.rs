//! The operations: parameters, bodies and the success response of each endpoint, from its
//! entry of the endpoint table.

use utoipa::openapi::path::{
    HttpMethod, Operation, OperationBuilder, ParameterBuilder, ParameterIn,
};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::SecurityRequirement;
use utoipa::openapi::{ContentBuilder, Required, ResponseBuilder};
use utoipa::ToSchema;
use vmapi_models::{CloudProviderId, ProjectId, ProviderId, SecurityRuleId, TeamId, VmId};

use super::common::{
    const_header, request_id_header, schema_ref, string_header, ADMIN_KEY_AUTH, BEARER_AUTH, JSON,
};
use super::{bodies, errors, examples};
use crate::endpoints::{Auth, Param, Spec, Tag, Verb};
use crate::idempotency::{IDEMPOTENCY_KEY, IDEMPOTENT_REPLAYED};
use crate::routes::{Endpoint, DEFAULT_LIMIT, MAX_LIMIT};

pub(super) fn http_method(verb: Verb) -> HttpMethod {
    match verb {
        Verb::Get => HttpMethod::Get,
        Verb::Post => HttpMethod::Post,
        Verb::Put => HttpMethod::Put,
        Verb::Patch => HttpMethod::Patch,
        Verb::Delete => HttpMethod::Delete,
    }
}

pub(super) fn operation(endpoint: Endpoint) -> Operation {
    let spec = endpoint.spec();
    let mut op = OperationBuilder::new()
        .operation_id(Some(spec.function))
        .summary(Some(spec.summary))
        .description(Some(spec.description))
        .tag(spec.tag.name());
    match spec.auth {
        Auth::User => op = op.security(SecurityRequirement::new(BEARER_AUTH, Vec::<String>::new())),
        Auth::Admin => {
            op = op.security(SecurityRequirement::new(
                ADMIN_KEY_AUTH,
                Vec::<String>::new(),
            ))
        }
        Auth::Public => {}
    }
    for &param in spec.params {
        op = op.parameter(parameter(param));
    }
    if spec.conditional {
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
    if spec.success.cacheable {
        op = op.parameter(
            ParameterBuilder::new()
                .name("If-None-Match")
                .parameter_in(ParameterIn::Header)
                .required(Required::False)
                .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
                .description(Some(
                    "The `ETag` of an earlier answer (or several, separated by commas; or `*`): while the answer is the same, a 304 without a body",
                )),
        );
    }
    if spec.idempotent {
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
    if let Some(body) = &spec.request {
        op = op.request_body(Some(bodies::request_body(body)));
    }
    op = op.response(spec.success.status.to_string(), success_response(spec));
    if spec.success.cacheable {
        op = op.response(
            "304",
            ResponseBuilder::new()
                .description(
                    "Not Modified: `If-None-Match` names the answer's current `ETag`; no body",
                )
                .header("ETag", string_header("The answer's entity tag"))
                .header("X-Request-Id", request_id_header())
                .build(),
        );
    }
    for (status, response) in errors::operation_responses(endpoint) {
        op = op.response(status.to_string(), response);
    }
    op.build()
}

/// The description of a path or query parameter.
fn parameter(param: Param) -> ParameterBuilder {
    let path = |schema: String, description: &str, example: &str| {
        ParameterBuilder::new()
            .name(param.name())
            .parameter_in(ParameterIn::Path)
            .required(Required::True)
            .schema(Some(schema_ref(schema)))
            .description(Some(description))
            .example(Some(example.into()))
    };
    let text_path = |description: &str, example: &str| {
        ParameterBuilder::new()
            .name(param.name())
            .parameter_in(ParameterIn::Path)
            .required(Required::True)
            .schema(Some(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .min_length(Some(1)),
            ))
            .description(Some(description))
            .example(Some(example.into()))
    };
    let query = |schema: ObjectBuilder, description: &str| {
        ParameterBuilder::new()
            .name(param.name())
            .parameter_in(ParameterIn::Query)
            .required(Required::False)
            .schema(Some(schema))
            .description(Some(description))
    };
    let filter = |pattern: &str, description: &str, example: &str| {
        query(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(pattern)),
            description,
        )
        .example(Some(example.into()))
    };
    match param {
        Param::Team => path(TeamId::name().into(), "The team", examples::TEAM),
        Param::Project => path(
            ProjectId::name().into(),
            "A project of the team",
            examples::PROJECT,
        ),
        Param::Vm => path(VmId::name().into(), "The virtual machine", examples::VM),
        Param::Rule => path(
            SecurityRuleId::name().into(),
            "The security rule",
            examples::RULE,
        ),
        Param::CloudProvider => path(
            CloudProviderId::name().into(),
            "The cloud provider",
            examples::CLOUD_PROVIDER,
        ),
        Param::Provider => path(
            ProviderId::name().into(),
            "The provider",
            examples::PROVIDER,
        ),
        Param::Location => text_path(
            "A location of the provider: its `_id`, or its datacenter name",
            "berlin",
        ),
        Param::ImageName => text_path("An image's distribution", "Ubuntu"),
        Param::Limit => query(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(1))
                .maximum(Some(MAX_LIMIT as u64))
                .default(Some(DEFAULT_LIMIT.into())),
            "Page size, a whole number from 1 to 200 (default 50). An unknown or repeated query parameter is a 400 `INVALID_PARAMETER`",
        )
        .example(Some(20.into())),
        Param::Cursor => query(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1)),
            "Where the page starts: the opaque, signed cursor of the previous page's `X-Next-Cursor` (or its `Link` URL); valid only for the same list (team and project, or VM)",
        ),
        Param::Status => filter(
            "^(0|1|2|3|4|6|7|creating|provisioning|starting|running|stopping|failed|stopped)(,(0|1|2|3|4|6|7|creating|provisioning|starting|running|stopping|failed|stopped))*$",
            "Only VMs in these statuses: codes or names of active statuses (0-4, 6, 7), separated by commas or the parameter repeated (`status=3,7`, `status=running&status=stopped`)",
            "3,7",
        ),
        Param::TagFilter => filter(
            "^[^\\u0000-\\u001F\\u007F]{1,64}$",
            "Only VMs carrying this tag",
            "web",
        ),
        Param::Page => query(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(1))
                .default(Some(1.into())),
            "Page number, from 1 (default 1); a page past the last is empty",
        )
        .example(Some(1.into())),
        Param::AdminLimit => query(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(1))
                .maximum(Some(vmapi_core::service::MAX_ADMIN_LIMIT))
                .default(Some(10.into())),
            "Page size, a whole number from 1 to 100 (default 10)",
        )
        .example(Some(10.into())),
        Param::NamePrefix => filter(
            "^[a-z0-9-]{1,63}$",
            "Only VMs whose host name starts with this (1-63 lowercase letters, digits or hyphens)",
            "web-",
        ),
    }
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

/// The success response of an endpoint.
fn success_response(spec: &Spec) -> utoipa::openapi::Response {
    let success = &spec.success;
    let mut response = ResponseBuilder::new().header("X-Request-Id", request_id_header());
    if spec.idempotent {
        response = response.header(
            IDEMPOTENT_REPLAYED,
            const_header(
                "true",
                "Present on the replay of an earlier answer to the same `Idempotency-Key` (also on replayed refusals)",
            ),
        );
    }
    if success.etag {
        response = response.header(
            "ETag",
            string_header(
                "The VM's version after the request, as a strong entity tag (`\"7\"`); send it back in `If-Match` to change the VM only if nobody else has",
            ),
        );
    }
    if success.paged {
        response = paged(response);
    }
    response = response.description(success.description);
    if success.cacheable {
        response = response
            .header(
                "ETag",
                string_header(
                    "A strong entity tag of the body; send it back in `If-None-Match` to get a 304 while the answer is unchanged",
                ),
            )
            .header(
                "Cache-Control",
                const_header("max-age=300", "The answer may be reused for five minutes"),
            );
    }
    if success.no_store {
        response = response
            .header(
                "Cache-Control",
                const_header("no-store", "Credentials are never cached"),
            )
            .header("Pragma", const_header("no-cache", "For HTTP/1.0 caches"));
    }
    response
        .content(
            JSON,
            ContentBuilder::new()
                .schema(Some(schema_ref(success.schema)))
                .build(),
        )
        .build()
}

pub(super) fn openapi_operation() -> Operation {
    OperationBuilder::new()
        .operation_id(Some("openapi"))
        .summary(Some("This OpenAPI document"))
        .description(Some(
            "The OpenAPI 3.1 document of the API, as committed in `openapi.json`. Served by the local server only (`make run`); needs no token.",
        ))
        .tag(Tag::Service.name())
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
