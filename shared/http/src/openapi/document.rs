//! The document itself: paths, components, servers and tags, and its JSON text.

use std::collections::BTreeSet;

use utoipa::openapi::path::{HttpMethod, PathItem};
use utoipa::openapi::schema::{
    AdditionalProperties, ComponentsBuilder, ObjectBuilder, Schema, Type,
};
use utoipa::openapi::security::{HttpAuthScheme, SecurityScheme};
use utoipa::openapi::server::{Server, ServerBuilder, ServerVariableBuilder};
use utoipa::openapi::tag::TagBuilder;
use utoipa::openapi::{InfoBuilder, LicenseBuilder, OpenApi, OpenApiBuilder, PathsBuilder, RefOr};
use utoipa::ToSchema;
use vmapi_models::{
    ActionResult, AdminResult, AdminVmPage, AuthMethod, CloudProvider, CreateRuleRequest,
    CreateVmRequest, EventKind, Image, Location, PriceOffer, Provider, ResizeVmRequest, Role,
    RuleDeleted, SecurityRuleView, TeamCosts, UpdateVmRequest, VirtualMachine, VmCost,
    VmCredentials, VmEvent, VmStatus,
};

use super::common::{ADMIN_KEY_AUTH, BEARER_AUTH, OPENAPI_PATH};
use super::conditional::{append_description, splice_conditionals, with_object, Conditional};
use super::operation::{http_method, openapi_operation, operation};
use super::{bodies, errors};
use crate::endpoints::Tag;
use crate::routes::Endpoint;

/// The document, pretty-printed with a trailing newline: the content of `openapi.json`.
pub fn to_json() -> String {
    let text = document()
        .to_pretty_json()
        .expect("the OpenAPI document serializes");
    splice_conditionals(&text)
}

/// The OpenAPI 3.1 document.
pub fn document() -> OpenApi {
    let mut paths = PathsBuilder::new();
    for endpoint in Endpoint::ALL {
        paths = paths.path(
            endpoint.path(),
            PathItem::new(http_method(endpoint.spec().verb), operation(endpoint)),
        );
    }
    paths = paths.path(
        OPENAPI_PATH,
        PathItem::new(HttpMethod::Get, openapi_operation()),
    );
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("Multi-cloud VM API")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(INFO_DESCRIPTION))
                .license(Some(
                    LicenseBuilder::new()
                        .name("Apache-2.0")
                        .identifier(Some("Apache-2.0"))
                        .build(),
                )),
        )
        .servers(Some(servers()))
        .paths(paths)
        .components(Some(components()))
        .tags(Some(Tag::ALL.map(|tag| {
            TagBuilder::new()
                .name(tag.name())
                .description(Some(tag.description()))
                .build()
        })))
        .build()
}

const INFO_DESCRIPTION: &str = "\
One HTTP API to create, list, inspect, update, start, stop and delete virtual machines on \
Kraud.Cloud, Azure and AWS. Each endpoint is an AWS Lambda function behind API Gateway (HTTP \
API with a JWT authorizer); the local server (`make run`) serves the same routers on one port.

Every endpoint but `/health` (and this document) needs `Authorization: Bearer <JWT>`.

Every error has one shape, `Error`: `{statusCode, error, code, message}`, plus `details` for \
field errors and `requestId` on 5xx answers. Each error status is one response of \
`components.responses` (listing every `code` of that status); each operation refers to it and \
says which codes it answers and why. Every answer of the functions has an `X-Request-Id` header; 503 answers carry \
`Retry-After`.

Answers that do not belong to one operation: a path no route matches is a 404 \
`ROUTE_NOT_FOUND` and a known path with another method a 405 `METHOD_NOT_ALLOWED` \
(`NotFound`, `MethodNotAllowed`); in AWS, API Gateway answers unknown routes itself. API Gateway's JWT \
authorizer refuses bad tokens before a function runs, with its own body \
`{\"message\": \"Unauthorized\"}` (`GatewayError`) and status 401; it also answers 429 \
`{\"message\": \"Too Many Requests\"}` when the stage's throttling limits are exceeded.

`/api/openapi.json` is served by the local server only; it is not an API Gateway route.";

/// Schemas, the bearer scheme, and one response per error status.
fn components() -> utoipa::openapi::Components {
    let mut schemas: Vec<(String, RefOr<Schema>)> = Vec::new();
    fn add<T: ToSchema>(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((T::name().into_owned(), T::schema()));
        T::schemas(schemas);
    }
    add::<VirtualMachine>(&mut schemas);
    add::<ActionResult>(&mut schemas);
    add::<TeamCosts>(&mut schemas);
    add::<AdminVmPage>(&mut schemas);
    add::<AdminResult>(&mut schemas);
    add::<VmCost>(&mut schemas);
    add::<VmCredentials>(&mut schemas);
    add::<ResizeVmRequest>(&mut schemas);
    add::<VmEvent>(&mut schemas);
    add::<EventKind>(&mut schemas);
    schemas.push((
        CreateVmRequest::name().into_owned(),
        Conditional::AccessNeedsSshKey.apply(
            <CreateVmRequest as utoipa::PartialSchema>::schema(),
            "`access` (an SSH public key) is only accepted with `authMethod` 1 (SSH key).",
        ),
    ));
    CreateVmRequest::schemas(&mut schemas);
    schemas.push((
        UpdateVmRequest::name().into_owned(),
        with_object(<UpdateVmRequest as utoipa::PartialSchema>::schema(), |o| {
            o.min_properties = Some(1);
            append_description(o, "At least one field.");
        }),
    ));
    UpdateVmRequest::schemas(&mut schemas);
    schemas.push((
        CreateRuleRequest::name().into_owned(),
        Conditional::PortsUnlessIcmp.apply(
            <CreateRuleRequest as utoipa::PartialSchema>::schema(),
            "`portRange` (or `destinationPortRange`) is required unless the protocol is ICMP.",
        ),
    ));
    CreateRuleRequest::schemas(&mut schemas);
    add::<SecurityRuleView>(&mut schemas);
    add::<RuleDeleted>(&mut schemas);
    add::<VmStatus>(&mut schemas);
    add::<AuthMethod>(&mut schemas);
    add::<Role>(&mut schemas);
    add::<CloudProvider>(&mut schemas);
    add::<Provider>(&mut schemas);
    add::<Location>(&mut schemas);
    add::<Image>(&mut schemas);
    add::<PriceOffer>(&mut schemas);
    schemas.extend(bodies::schemas());
    schemas.extend(errors::schemas());
    schemas.push(("Health".into(), health_schema()));

    let mut builder = ComponentsBuilder::new();
    let mut seen = BTreeSet::new();
    for (name, schema) in schemas {
        if seen.insert(name.clone()) {
            builder = builder.schema(name, schema);
        }
    }
    for (name, response) in errors::responses() {
        builder = builder.response(name, response);
    }
    builder
        .security_scheme(
            BEARER_AUTH,
            SecurityScheme::Http(
                utoipa::openapi::security::HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "`Authorization: Bearer <JWT>`. Required claims: `sub` (1-128 characters; it becomes a new VM's `owner`) and `exp` (5 s leeway). In production the token is verified against the issuer's JWKS (asymmetric algorithms only; `iss`/`aud` when configured); locally HS256 tokens signed with `LOCAL_JWT_SECRET` (`cargo run -q -p vmctl -- token --user <id>`).",
                    ))
                    .build(),
            ),
        )
        .security_scheme(
            ADMIN_KEY_AUTH,
            SecurityScheme::ApiKey(utoipa::openapi::security::ApiKey::Header(
                utoipa::openapi::security::ApiKeyValue::with_description(
                    "Api-Key",
                    "An admin key (`vmctl admin-key create --name <name>`; `make run` prints one and keeps it in `.local/admin-key`). Only the admin routes take it, and they take nothing else (docs/admin-api.md).",
                ),
            )),
        )
        .build()
}

/// Where the API is served: the local server and the deployed HTTP API.
fn servers() -> [Server; 2] {
    [
        ServerBuilder::new()
            .url("http://127.0.0.1:3000")
            .description(Some(
                "The local server (`make run`; another port with `PORT`)",
            ))
            .build(),
        ServerBuilder::new()
            .url("https://{apiId}.execute-api.{region}.amazonaws.com")
            .description(Some("The deployed HTTP API: the stack's `ApiUrl` output"))
            .parameter(
                "apiId",
                ServerVariableBuilder::new()
                    .default_value("abcdef1234")
                    .description(Some("The HTTP API's id")),
            )
            .parameter(
                "region",
                ServerVariableBuilder::new()
                    .default_value("us-east-1")
                    .description(Some("The stack's AWS region")),
            )
            .build(),
    ]
}

fn health_schema() -> RefOr<Schema> {
    ObjectBuilder::new()
        .description(Some("The answer of `/health`"))
        .property(
            "status",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(["ok"])),
        )
        .required("status")
        .additional_properties(Some(AdditionalProperties::FreeForm(false)))
        .into()
}

/// The method and path of every operation in `doc`, upper-case methods (for the tests and
/// tools that compare route lists).
pub fn operations(doc: &OpenApi) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in &doc.paths.paths {
        let methods = [
            ("GET", item.get.is_some()),
            ("PUT", item.put.is_some()),
            ("POST", item.post.is_some()),
            ("DELETE", item.delete.is_some()),
            ("OPTIONS", item.options.is_some()),
            ("HEAD", item.head.is_some()),
            ("PATCH", item.patch.is_some()),
            ("TRACE", item.trace.is_some()),
        ];
        for (method, present) in methods {
            if present {
                out.insert((method.to_string(), path.clone()));
            }
        }
    }
    out
}
