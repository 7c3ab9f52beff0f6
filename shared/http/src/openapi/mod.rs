//! The OpenAPI 3.1 document of the API (feature `openapi`), built from the route table
//! ([`Endpoint::ALL`]), the wire types' `utoipa::ToSchema` implementations and the error codes
//! of [`ALL_CODES`](crate::error::ALL_CODES). `openapi.json` at the repository root is this document; the local server
//! serves it at [`OPENAPI_PATH`].
//!
//! Regenerate the committed file with
//! `UPDATE_OPENAPI=1 cargo test -p vmapi-http --features openapi --test openapi`.

mod bodies;
mod errors;
mod examples;
mod operation;
mod text;

use std::collections::BTreeSet;

use utoipa::openapi::extensions::Extensions;
use utoipa::openapi::path::{HttpMethod, PathItem};
use utoipa::openapi::schema::{
    AdditionalProperties, ComponentsBuilder, Object, ObjectBuilder, Schema, Type,
};
use utoipa::openapi::security::{HttpAuthScheme, SecurityScheme};
use utoipa::openapi::server::{Server, ServerBuilder, ServerVariableBuilder};
use utoipa::openapi::tag::TagBuilder;
use utoipa::openapi::{
    HeaderBuilder, InfoBuilder, LicenseBuilder, OpenApi, OpenApiBuilder, PathsBuilder, Ref, RefOr,
};
use utoipa::ToSchema;
use vmapi_models::{
    ActionResult, AuthMethod, CreateRuleRequest, CreateVmRequest, EventKind, Role, RuleDeleted,
    SecurityRuleView, UpdateVmRequest, VirtualMachine, VmCredentials, VmEvent, VmStatus,
};

use crate::routes::Endpoint;
use operation::{http_method, openapi_operation, operation};

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

const JSON: &str = "application/json";

/// The document, pretty-printed with a trailing newline: the content of `openapi.json`.
pub fn to_json() -> String {
    let text = document()
        .to_pretty_json()
        .expect("the OpenAPI document serializes");
    splice_conditionals(&text)
}

/// Key of the placeholder extension that [`to_json`] replaces by JSON Schema `if`/`then`/`else`
/// (keywords utoipa's builders lack). Generators that do not know them leave the model as it is;
/// an `allOf` with an `anyOf` would instead be merged into the model's fields.
const CONDITIONAL: &str = "x-vmapi-conditional";

/// The rules between fields of a request body the server checks, as `if`/`then`/`else`.
#[derive(Clone, Copy)]
enum Conditional {
    /// `access` (the user's own public key) only with `authMethod` 1 (SSH key).
    AccessNeedsSshKey,
    /// `portRange` (or `destinationPortRange`) unless the protocol is ICMP.
    PortsUnlessIcmp,
}

impl Conditional {
    const ALL: [Conditional; 2] = [Conditional::AccessNeedsSshKey, Conditional::PortsUnlessIcmp];

    fn marker(self) -> &'static str {
        match self {
            Conditional::AccessNeedsSshKey => "access-needs-ssh-key",
            Conditional::PortsUnlessIcmp => "ports-unless-icmp",
        }
    }

    /// The keywords, in order. Keys of every object are in sorted order, so the text is the same
    /// whether or not serde_json preserves insertion order.
    fn keywords(self) -> [(&'static str, serde_json::Value); 2] {
        use serde_json::json;
        match self {
            Conditional::AccessNeedsSshKey => [
                (
                    "if",
                    json!({"properties": {"access": {"type": "object"}}, "required": ["access"]}),
                ),
                ("then", json!({"properties": {"authMethod": {"enum": [1]}}})),
            ],
            Conditional::PortsUnlessIcmp => [
                (
                    "if",
                    json!({"properties": {"protocol": {"enum": ["Icmp"]}}, "required": ["protocol"]}),
                ),
                (
                    "else",
                    json!({"anyOf": [{"required": ["portRange"]}, {"required": ["destinationPortRange"]}]}),
                ),
            ],
        }
    }

    /// `object` (a derived object schema) with this rule and `sentence` added to its description.
    fn apply(self, object: RefOr<Schema>, sentence: &str) -> RefOr<Schema> {
        with_object(object, |o| {
            o.extensions = Some(Extensions::from_iter([(CONDITIONAL, self.marker())]));
            append_description(o, sentence);
        })
    }
}

/// `schema`, an object schema, changed by `change`.
fn with_object(schema: RefOr<Schema>, change: impl FnOnce(&mut Object)) -> RefOr<Schema> {
    match schema {
        RefOr::T(Schema::Object(mut o)) => {
            change(&mut o);
            RefOr::T(Schema::Object(o))
        }
        _ => panic!("expected an object schema"),
    }
}

fn append_description(o: &mut Object, sentence: &str) {
    let text = o.description.take().unwrap_or_default();
    o.description = Some(format!("{text} {sentence}").trim().to_string());
}

/// `text` with each conditional placeholder line replaced by its keywords, at its indentation.
fn splice_conditionals(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 1024);
    for line in text.lines() {
        let trimmed = line.trim_start();
        let indent = &line[..line.len() - trimmed.len()];
        let found = Conditional::ALL.into_iter().find(|c| {
            trimmed.trim_end_matches(',') == format!("\"{CONDITIONAL}\": \"{}\"", c.marker())
        });
        let Some(conditional) = found else {
            out.push_str(line);
            out.push('\n');
            continue;
        };
        let keywords: Vec<String> = conditional
            .keywords()
            .iter()
            .map(|(key, value)| {
                let pretty = serde_json::to_string_pretty(value).expect("JSON");
                format!(
                    "{indent}\"{key}\": {}",
                    pretty.replace('\n', &format!("\n{indent}"))
                )
            })
            .collect();
        out.push_str(&keywords.join(",\n"));
        if trimmed.ends_with(',') {
            out.push(',');
        }
        out.push('\n');
    }
    out
}

/// The OpenAPI 3.1 document.
pub fn document() -> OpenApi {
    let mut paths = PathsBuilder::new();
    for endpoint in Endpoint::ALL {
        paths = paths.path(
            endpoint.path(),
            PathItem::new(http_method(&endpoint.method()), operation(endpoint)),
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
        .tags(Some([
            TagBuilder::new()
                .name(TAG_VMS)
                .description(Some(
                    "Create, list, read, change, start, stop and delete VMs",
                ))
                .build(),
            TagBuilder::new()
                .name(TAG_RULES)
                .description(Some("A VM's firewall rules (docs/security-rules.md)"))
                .build(),
            TagBuilder::new()
                .name(TAG_CREDENTIALS)
                .description(Some("The login of a VM (docs/credentials.md)"))
                .build(),
            TagBuilder::new()
                .name(TAG_SERVICE)
                .description(Some("Health and this document"))
                .build(),
        ]))
        .build()
}

const TAG_VMS: &str = "virtual machines";

const TAG_CREDENTIALS: &str = "credentials";

const TAG_RULES: &str = "security rules";

const TAG_SERVICE: &str = "service";

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

fn schema_ref(name: impl Into<String>) -> RefOr<Schema> {
    Ref::from_schema_name(name).into()
}

fn string_header(description: &str) -> utoipa::openapi::Header {
    HeaderBuilder::new()
        .schema(ObjectBuilder::new().schema_type(Type::String))
        .description(Some(description))
        .build()
}

fn const_header(value: &str, description: &str) -> utoipa::openapi::Header {
    HeaderBuilder::new()
        .schema(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some([value])),
        )
        .description(Some(description))
        .build()
}

fn request_id_header() -> utoipa::openapi::Header {
    string_header(
        "The request's id (Lambda's request id, or a local one); the logs carry it too, and 5xx bodies repeat it as `requestId`",
    )
}

/// Schemas, the bearer scheme, and one response per error status.
fn components() -> utoipa::openapi::Components {
    let mut schemas: Vec<(String, RefOr<Schema>)> = Vec::new();
    fn add<T: ToSchema>(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((T::name().into_owned(), T::schema()));
        T::schemas(schemas);
    }
    add::<VirtualMachine>(&mut schemas);
    add::<ActionResult>(&mut schemas);
    add::<VmCredentials>(&mut schemas);
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
