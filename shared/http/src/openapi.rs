//! The OpenAPI 3.1 document of the API (feature `openapi`), built from the route table
//! ([`Endpoint::ALL`]), the wire types' `utoipa::ToSchema` implementations and the error codes
//! of [`ALL_CODES`]. `openapi.json` at the repository root is this document; the local server
//! serves it at [`OPENAPI_PATH`].
//!
//! Regenerate the committed file with
//! `UPDATE_OPENAPI=1 cargo test -p vmapi-http --features openapi --test openapi`.

use std::collections::BTreeSet;

use axum::http::{Method, StatusCode};
use utoipa::openapi::path::{
    HttpMethod, Operation, OperationBuilder, ParameterBuilder, ParameterIn, PathItem,
};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{
    AdditionalProperties, AllOfBuilder, AnyOfBuilder, ArrayBuilder, ComponentsBuilder,
    ObjectBuilder, OneOfBuilder, Schema, SchemaType, Type,
};
use utoipa::openapi::security::{HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::openapi::tag::TagBuilder;
use utoipa::openapi::{
    ContentBuilder, HeaderBuilder, InfoBuilder, LicenseBuilder, OpenApi, OpenApiBuilder,
    PathsBuilder, Ref, RefOr, Required, ResponseBuilder,
};
use utoipa::ToSchema;
use vmapi_models::{
    ActionResult, AuthMethod, CreateRuleRequest, CreateVmRequest, EventKind, ProjectId, Role,
    RuleDeleted, SecurityRuleId, SecurityRuleView, TeamId, UpdateVmRequest, VirtualMachine,
    VmCredentials, VmEvent, VmId, VmStatus,
};

use crate::error::ALL_CODES;
use crate::extract::MAX_BODY_BYTES;
use crate::idempotency::{IDEMPOTENCY_KEY, IDEMPOTENT_REPLAYED};
use crate::routes::{Endpoint, DEFAULT_LIMIT, MAX_LIMIT};

/// Where the local server serves the document (not deployed to API Gateway).
pub const OPENAPI_PATH: &str = "/api/openapi.json";

/// Request headers that are planned but not honoured yet (none today). They are deliberately
/// left out of the document until a handler reads them; document them in `operation()` then.
/// (`If-Match` and `ETag` are honoured and documented on the VM routes, `Idempotency-Key` and
/// `Idempotent-Replayed` on create and the actions, the paging headers `Link` and
/// `X-Next-Cursor` on the list.)
pub const NOT_YET_HONOURED_HEADERS: &[&str] = &[];

/// Codes every endpoint honouring `Idempotency-Key` adds to its own (a malformed key is an
/// `INVALID_PARAMETER`).
const IDEMPOTENCY_CODES: [&str; 3] = [
    "INVALID_PARAMETER",
    "IDEMPOTENCY_IN_PROGRESS",
    "IDEMPOTENCY_KEY_REUSED",
];

/// The codes `endpoint` can answer: its own, and those of `Idempotency-Key` where honoured.
fn all_error_codes(endpoint: Endpoint) -> Vec<&'static str> {
    let mut codes = error_codes(endpoint).to_vec();
    if endpoint.idempotent() {
        for code in IDEMPOTENCY_CODES {
            if !codes.contains(&code) {
                codes.push(code);
            }
        }
    }
    codes
}

/// Endpoints that honour `If-Match` and answer an `ETag`.
fn conditional(endpoint: Endpoint) -> bool {
    matches!(
        endpoint,
        Endpoint::UpdateVm
            | Endpoint::StartVm
            | Endpoint::StopVm
            | Endpoint::RebootVm
            | Endpoint::DeleteVm
    )
}

/// Name of the bearer-token security scheme.
pub const BEARER_AUTH: &str = "bearerAuth";

const JSON: &str = "application/json";

/// The document, pretty-printed with a trailing newline: the content of `openapi.json`.
pub fn to_json() -> String {
    let mut text = document()
        .to_pretty_json()
        .expect("the OpenAPI document serializes");
    text.push('\n');
    text
}

/// The create request's object schema with the one rule between its fields the server checks:
/// `access` (the user's own public key) is only accepted with `authMethod` 1 (SSH key).
fn key_needs_ssh_login(object: RefOr<Schema>) -> RefOr<Schema> {
    AllOfBuilder::new()
        .item(object)
        .item(
            AnyOfBuilder::new()
                .item(ObjectBuilder::new().property(
                    "access",
                    ObjectBuilder::new().schema_type(SchemaType::Type(Type::Null)),
                ))
                .item(
                    ObjectBuilder::new().property(
                        "authMethod",
                        ObjectBuilder::new()
                            .schema_type(SchemaType::Type(Type::Integer))
                            .enum_values(Some([1])),
                    ),
                )
                .description(Some(
                    "`access` (an SSH public key) is only accepted with `authMethod` 1 (SSH key)",
                )),
        )
        .into()
}

/// The rule body's object schema with the ports required unless the protocol is ICMP. (That the
/// ports and the addresses are each given once, by their neutral or their Azure name, is only in
/// the description: the `not` it takes is beyond utoipa's builders.)
fn rule_field_rules(object: RefOr<Schema>) -> RefOr<Schema> {
    AllOfBuilder::new()
        .item(object)
        .item(
            AnyOfBuilder::new()
                .item(ObjectBuilder::new().required("portRange"))
                .item(ObjectBuilder::new().required("destinationPortRange"))
                .item(
                    ObjectBuilder::new()
                        .property(
                            "protocol",
                            ObjectBuilder::new()
                                .schema_type(SchemaType::Type(Type::String))
                                .enum_values(Some(["Icmp"])),
                        )
                        .required("protocol"),
                )
                .description(Some(
                    "`portRange` (or `destinationPortRange`) is required unless the protocol is ICMP",
                )),
        )
        .into()
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
field errors and `requestId` on 5xx answers. Each response below lists the `code` values its \
status can carry. Every answer of the functions has an `X-Request-Id` header; 503 answers carry \
`Retry-After`.

Answers that do not belong to one operation: a path no route matches is a 404 \
`ROUTE_NOT_FOUND` and a known path with another method a 405 `METHOD_NOT_ALLOWED` \
(`components.responses`); in AWS, API Gateway answers unknown routes itself. API Gateway's JWT \
authorizer refuses bad tokens before a function runs, with its own body \
`{\"message\": \"Unauthorized\"}` (`GatewayError`) and status 401; it also answers 429 \
`{\"message\": \"Too Many Requests\"}` when the stage's throttling limits are exceeded.

`/api/openapi.json` is served by the local server only; it is not an API Gateway route.";

fn http_method(method: &Method) -> HttpMethod {
    match *method {
        Method::GET => HttpMethod::Get,
        Method::POST => HttpMethod::Post,
        Method::PUT => HttpMethod::Put,
        Method::PATCH => HttpMethod::Patch,
        Method::DELETE => HttpMethod::Delete,
        ref other => panic!("no OpenAPI method for {other}"),
    }
}

/// The `code` values `endpoint` can answer (each must be in [`ALL_CODES`], which gives its
/// status). Read from the handlers and the use cases; the tests check every code appears.
fn error_codes(endpoint: Endpoint) -> &'static [&'static str] {
    match endpoint {
        Endpoint::Health => &[],
        Endpoint::CreateVm => &[
            "INVALID_JSON",
            "VALIDATION_FAILED",
            "UNAUTHORIZED",
            "FORBIDDEN",
            "TEAM_NOT_FOUND",
            "PROJECT_NOT_FOUND",
            "HOST_NAME_TAKEN",
            "DUPLICATE_HOST_NAME",
            "QUOTA_EXCEEDED",
            "CONCURRENT_MODIFICATION",
            "PAYLOAD_TOO_LARGE",
            "UNSUPPORTED_MEDIA_TYPE",
            "INTERNAL_ERROR",
            "SERVICE_UNAVAILABLE",
        ],
        Endpoint::ListVms => &[
            "INVALID_PARAMETER",
            "UNAUTHORIZED",
            "TEAM_NOT_FOUND",
            "PROJECT_NOT_FOUND",
            "INTERNAL_ERROR",
            "SERVICE_UNAVAILABLE",
        ],
        Endpoint::GetVm => &[
            "INVALID_PARAMETER",
            "UNAUTHORIZED",
            "VM_NOT_FOUND",
            "INTERNAL_ERROR",
            "SERVICE_UNAVAILABLE",
        ],
        Endpoint::UpdateVm => &[
            "INVALID_JSON",
            "VALIDATION_FAILED",
            "INVALID_PARAMETER",
            "UNAUTHORIZED",
            "FORBIDDEN",
            "VM_NOT_FOUND",
            "ILLEGAL_TRANSITION",
            "HOST_NAME_TAKEN",
            "VM_BLOCKED",
            "CONCURRENT_MODIFICATION",
            "PRECONDITION_FAILED",
            "PAYLOAD_TOO_LARGE",
            "UNSUPPORTED_MEDIA_TYPE",
            "INTERNAL_ERROR",
            "SERVICE_UNAVAILABLE",
        ],
        Endpoint::StartVm | Endpoint::RebootVm => &[
            "INVALID_PARAMETER",
            "UNAUTHORIZED",
            "FORBIDDEN",
            "VM_NOT_FOUND",
            "ILLEGAL_TRANSITION",
            "VM_BLOCKED",
            "CONCURRENT_MODIFICATION",
            "PRECONDITION_FAILED",
            "INTERNAL_ERROR",
            "SERVICE_UNAVAILABLE",
        ],
        Endpoint::StopVm => &[
            "INVALID_PARAMETER",
            "UNAUTHORIZED",
            "FORBIDDEN",
            "VM_NOT_FOUND",
            "ILLEGAL_TRANSITION",
            "CONCURRENT_MODIFICATION",
            "PRECONDITION_FAILED",
            "INTERNAL_ERROR",
            "SERVICE_UNAVAILABLE",
        ],
        Endpoint::DeleteVm => &[
            "INVALID_PARAMETER",
            "UNAUTHORIZED",
            "FORBIDDEN",
            "VM_NOT_FOUND",
            "CONCURRENT_MODIFICATION",
            "PRECONDITION_FAILED",
            "INTERNAL_ERROR",
            "SERVICE_UNAVAILABLE",
        ],
        Endpoint::GetCredentials => &[
            "INVALID_PARAMETER",
            "UNAUTHORIZED",
            "FORBIDDEN",
            "VM_NOT_FOUND",
            "CREDENTIALS_NOT_FOUND",
            "VM_BLOCKED",
            "INTERNAL_ERROR",
            "SERVICE_UNAVAILABLE",
        ],
        Endpoint::GetActivity | Endpoint::ListSecurityRules => &[
            "INVALID_PARAMETER",
            "UNAUTHORIZED",
            "VM_NOT_FOUND",
            "INTERNAL_ERROR",
            "SERVICE_UNAVAILABLE",
        ],
        Endpoint::CreateSecurityRule => &[
            "INVALID_JSON",
            "VALIDATION_FAILED",
            "UNAUTHORIZED",
            "FORBIDDEN",
            "VM_NOT_FOUND",
            "ILLEGAL_TRANSITION",
            "RULE_NAME_TAKEN",
            "PRIORITY_TAKEN",
            "RULE_LIMIT_REACHED",
            "VM_BLOCKED",
            "CONCURRENT_MODIFICATION",
            "PAYLOAD_TOO_LARGE",
            "UNSUPPORTED_MEDIA_TYPE",
            "UNSUPPORTED_BY_PROVIDER",
            "INTERNAL_ERROR",
            "SERVICE_UNAVAILABLE",
        ],
        Endpoint::DeleteSecurityRule => &[
            "INVALID_PARAMETER",
            "UNAUTHORIZED",
            "FORBIDDEN",
            "SECURITY_RULE_NOT_FOUND",
            "ILLEGAL_TRANSITION",
            "VM_BLOCKED",
            "CONCURRENT_MODIFICATION",
            "INTERNAL_ERROR",
            "SERVICE_UNAVAILABLE",
        ],
    }
}

/// What a `code` means for `endpoint` (`None`: for any request), for the response
/// descriptions.
fn code_meaning(endpoint: Option<Endpoint>, code: &str) -> &'static str {
    match (endpoint, code) {
        (Some(Endpoint::ListVms), "INVALID_PARAMETER") => {
            "`team` or `project` is not 24 hexadecimal digits, `limit` is not a whole number from 1 to 200, `cursor` is not a cursor of this team and project, a filter (`status`, `tag`, `name`) is malformed, or the query has another or a repeated parameter; `details` names it"
        }
        (Some(Endpoint::GetActivity), "INVALID_PARAMETER") => {
            "`id` is not 24 hexadecimal digits, `limit` is not a whole number from 1 to 200, `cursor` is not a cursor of this VM's history, or the query has another parameter; `details` names it"
        }
        (Some(Endpoint::CreateVm | Endpoint::CreateSecurityRule), "INVALID_PARAMETER") => {
            "the `Idempotency-Key` header is not 1-255 visible ASCII characters, or is given twice; `details` names it"
        }
        (Some(e), "INVALID_PARAMETER") if e.idempotent() => {
            "`id` is not 24 hexadecimal digits, or the `Idempotency-Key` header is not 1-255 visible ASCII characters; `details` names it"
        }
        (Some(_), "INVALID_PARAMETER") => {
            "`id` is not 24 hexadecimal digits; `details` names it"
        }
        (Some(Endpoint::GetCredentials), "FORBIDDEN") => {
            "only the VM's owner and the team's owners and admins read its credentials"
        }
        (Some(_), "FORBIDDEN") => "team viewers may read but not change",
        (
            Some(Endpoint::CreateSecurityRule | Endpoint::DeleteSecurityRule),
            "ILLEGAL_TRANSITION",
        ) => "the VM failed (status 6) or is being deleted (status 5): its rules cannot change",
        (Some(Endpoint::CreateSecurityRule), "VM_NOT_FOUND") => {
            "no such VM as `virtualMachine`, or a VM of a team the caller is not in (never 403, so ids cannot be probed)"
        }
        (Some(Endpoint::CreateSecurityRule), "VALIDATION_FAILED") => {
            "a field is missing, of the wrong type, unknown or invalid (name, direction, protocol, access, ports, CIDR, priority 100-4096, description); `details` names every offending field"
        }
        (Some(Endpoint::CreateVm), "CONCURRENT_MODIFICATION") => {
            "concurrent creates kept changing the team's quota usage at the same moment; nothing was created: retry the request"
        }
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

fn summary(endpoint: Endpoint) -> &'static str {
    match endpoint {
        Endpoint::Health => "Health check",
        Endpoint::CreateVm => "Create virtual machines",
        Endpoint::ListVms => "List a project's virtual machines",
        Endpoint::GetVm => "Get a virtual machine",
        Endpoint::UpdateVm => "Rename or retag a virtual machine",
        Endpoint::StartVm => "Start a virtual machine",
        Endpoint::StopVm => "Stop a virtual machine",
        Endpoint::RebootVm => "Reboot a virtual machine",
        Endpoint::DeleteVm => "Delete a virtual machine",
        Endpoint::GetCredentials => "Read a virtual machine's login",
        Endpoint::GetActivity => "A virtual machine's history",
        Endpoint::CreateSecurityRule => "Add a security rule to a virtual machine",
        Endpoint::ListSecurityRules => "A virtual machine's security rules",
        Endpoint::DeleteSecurityRule => "Remove a security rule",
    }
}

fn description(endpoint: Endpoint) -> &'static str {
    match endpoint {
        Endpoint::Health => "Answers `{\"status\": \"ok\"}`; needs no token.",
        Endpoint::CreateVm => {
            "Creates one VM per `hostNames` entry (1-10), all written in one transaction or none. \
             The body is flat (as on the platform's API page) or wrapped as `{\"data\": {...}}`. \
             Every reference is checked: the provider belongs to the cloud provider, the size and \
             price to the provider, the price is the size's price; `region` and `image` must be a \
             location and an image the provider offers and the price is for; the team and project \
             exist, the project belongs to the team and the caller is a member. `quantity`, when \
             given, must equal the number of host names. `authMethod` 0 gets a generated password, \
             1 a generated Ed25519 key pair (both stored in the secret store before the VM is \
             written), unless `access.sshPublicKey` gives the user's own key (only with \
             `authMethod` 1). A body carrying a plaintext password or private key is a 400."
        }
        Endpoint::ListVms => {
            "The project's active VMs (every status but 5 and 8), newest first; `provider` (with \
             `cloudProvider`), `size` and `price` populated, `project` and `team` as ids. The next \
             page, if any, is in `Link: <...>; rel=\"next\"` and `X-Next-Cursor`. Filters \
             (`status`, `tag`, `name` prefix) are applied while the list index is read, in the same \
             single request: a filtered page may hold fewer than `limit` VMs (even none) while a \
             next page follows; follow the cursor until there is none."
        }
        Endpoint::GetVm => {
            "The VM with `provider`, `size`, `price`, `project` and `team` populated. A VM being \
             deleted shows status 5 until the cloud teardown is done, then answers 404."
        }
        Endpoint::UpdateVm => {
            "Changes only `name` (unique among the project's active VMs) and/or `tags` (replaced \
             as a whole); answers the VM as GET shows it."
        }
        Endpoint::StartVm => {
            "Starts a stopped VM (status 2, then 3 once the cloud is done). Already starting or \
             running: 200 and nothing changes. Creating, provisioning, failed, stopping or \
             deleting: 409 `ILLEGAL_TRANSITION`."
        }
        Endpoint::StopVm => {
            "Stops a running VM (status 4, then 7 once the cloud is done). Already stopping or \
             stopped: 200 and nothing changes. Creating, provisioning, failed, starting or \
             deleting: 409 `ILLEGAL_TRANSITION`."
        }
        Endpoint::RebootVm => {
            "Restarts a running VM: it stays in status 3 with a pending `reboot` that the \
             provisioner carries out through the VM's cloud. A reboot already pending answers 200 \
             and changes nothing. Any other status: 409 `ILLEGAL_TRANSITION`."
        }
        Endpoint::DeleteVm => {
            "Moves the VM to status 5 (deleting): it leaves the list and its name is free at once; \
             the cloud teardown follows, then GET answers 404. Deleting a VM that is already \
             deleting answers 200; a VM whose teardown failed (status 5 with a `statusReason`) is \
             retried."
        }
        Endpoint::GetActivity => {
            "Who did what to the VM and when, newest first: creation, updates, start/stop/reboot/\
             delete requests (with the status they led to), each finished cloud operation of the \
             provisioner (with its result and, on failure, the reason), credential reads and the \
             cleanup job's actions. Paged like the list (`limit`, `cursor`). Readable by every \
             member of the VM's team; a deleted VM's history goes when its record is purged."
        }
        Endpoint::CreateSecurityRule => {
            "Adds a firewall rule to the VM named by `virtualMachine`, for the VM's team's owners, \
             admins and members (viewers: 403). One body for every cloud; the platform's Azure \
             (NSG: `destinationPortRange`, `sourceAddressPrefix`, `sourcePortRange`, `destination`, \
             `destinationAddressPrefix`) and AWS (security group: `portRange`, `cidrBlock`, `source`) \
             shapes are accepted too. Defaults: `direction` Inbound, `access` Allow, `cidrBlock` \
             0.0.0.0/0, `priority` the next free multiple of 10 from 1000 in the direction (100-4096, \
             unique per direction); names are unique per VM, ignoring case; at most 50 rules per VM. \
             What the VM's cloud cannot express is a 422 `UNSUPPORTED_BY_PROVIDER`. The change bumps \
             the VM's `rulesRevision`; a running or stopped VM with nothing pending gets `pendingOp` \
             `apply-rules`, and the provisioner makes the cloud's firewall equal to the rules \
             (`applied` turns true). The body may also be wrapped as `{\"data\": {...}}`."
        }
        Endpoint::ListSecurityRules => {
            "The VM's security rules, inbound first, then by priority, including the default rule \
             every VM gets (`AllowAnySSHInbound`, or `AllowAnyInbound` on Kraud.Cloud). `applied` \
             tells whether the VM's cloud firewall has the rule yet. Readable by every member of \
             the VM's team."
        }
        Endpoint::DeleteSecurityRule => {
            "Removes the rule (the default rule too) from its VM, for the VM's team's owners, \
             admins and members (viewers: 403); the provisioner then removes it from the cloud's \
             firewall. An unknown rule, or one of a VM of a team the caller is not in, is a 404 \
             `SECURITY_RULE_NOT_FOUND`."
        }
        Endpoint::GetCredentials => {
            "The VM's login: `password` (authMethod 0) or `privateKey` and `publicKey` \
             (authMethod 1 with a generated key pair), or only `publicKey` (the user's own key), \
             with `host` and `port`. For the VM's owner and the team's owners and admins (other \
             members: 403). Every read is recorded on the VM. Never cached (`Cache-Control: \
             no-store`)."
        }
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

fn path_parameter(name: &str, schema: RefOr<Schema>, description: &str) -> ParameterBuilder {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Path)
        .required(Required::True)
        .schema(Some(schema))
        .description(Some(description))
}

fn operation(endpoint: Endpoint) -> Operation {
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
        ));
    }
    if endpoint.path().contains("{project}") {
        op = op.parameter(path_parameter(
            "project",
            schema_ref(ProjectId::name()),
            "A project of the team",
        ));
    }
    if endpoint == Endpoint::DeleteSecurityRule {
        op = op.parameter(path_parameter(
            "id",
            schema_ref(SecurityRuleId::name()),
            "The security rule",
        ));
    } else if endpoint.path().contains("{id}") {
        op = op.parameter(path_parameter(
            "id",
            schema_ref(VmId::name()),
            "The virtual machine",
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
                    )),
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
        let query = |name: &str, pattern: &str, description: &str| {
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
        };
        op = op
            .parameter(query(
                "status",
                "^(0|1|2|3|4|6|7|creating|provisioning|starting|running|stopping|failed|stopped)(,(0|1|2|3|4|6|7|creating|provisioning|starting|running|stopping|failed|stopped))*$",
                "Only VMs in these statuses: codes or names of active statuses (0-4, 6, 7), separated by commas or the parameter repeated (`status=3,7`, `status=running&status=stopped`)",
            ))
            .parameter(query(
                "tag",
                "^[^\\u0000-\\u001F\\u007F]{1,64}$",
                "Only VMs carrying this tag",
            ))
            .parameter(query(
                "name",
                "^[a-z0-9-]{1,63}$",
                "Only VMs whose host name starts with this (1-63 lowercase letters, digits or hyphens)",
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
                )),
        );
    }
    match endpoint {
        Endpoint::CreateVm => {
            op = op.request_body(Some(
                RequestBodyBuilder::new()
                    .required(Some(Required::True))
                    .description(Some(
                        "The request, flat or wrapped as `{\"data\": {...}}`; at most 64 KiB of `application/json` (or another `application/*+json` type)",
                    ))
                    .content(
                        JSON,
                        ContentBuilder::new()
                            .schema(Some(
                                OneOfBuilder::new()
                                    .item(schema_ref(CreateVmRequest::name()))
                                    .item(
                                        ObjectBuilder::new()
                                            .property(
                                                "data",
                                                schema_ref(CreateVmRequest::name()),
                                            )
                                            .required("data")
                                            .additional_properties(Some(AdditionalProperties::FreeForm(false)))
                                            .description(Some("The request wrapped as `data`")),
                                    ),
                            ))
                            .build(),
                    )
                    .build(),
            ));
        }
        Endpoint::CreateSecurityRule => {
            op = op.request_body(Some(rule_request_body()));
        }
        Endpoint::UpdateVm => {
            op = op.request_body(Some(
                RequestBodyBuilder::new()
                    .required(Some(Required::True))
                    .description(Some(
                        "The fields to change (at least one); at most 64 KiB of `application/json` (or another `application/*+json` type)",
                    ))
                    .content(
                        JSON,
                        ContentBuilder::new()
                            .schema(Some(schema_ref(UpdateVmRequest::name())))
                            .build(),
                    )
                    .build(),
            ));
        }
        _ => {}
    }
    let (status, success) = success_response(endpoint);
    op = op.response(status.as_u16().to_string(), success);
    for (status, response) in error_responses(Some(endpoint), &all_error_codes(endpoint)) {
        op = op.response(status.to_string(), response);
    }
    op.build()
}

/// The body of `POST /api/security-rules`: one schema taking the neutral, Azure and AWS shapes
/// (or any of them wrapped as `data`), with the platform's two example bodies.
fn rule_request_body() -> utoipa::openapi::request_body::RequestBody {
    use utoipa::openapi::example::ExampleBuilder;
    // Keys in sorted order: the document is the same whether or not serde_json preserves
    // insertion order (a feature another crate of the workspace may turn on).
    let example = |summary: &str, value: serde_json::Value| {
        RefOr::T(
            ExampleBuilder::new()
                .summary(summary)
                .value(Some(value))
                .build(),
        )
    };
    RequestBodyBuilder::new()
        .required(Some(Required::True))
        .description(Some(
            "The rule in one of three shapes, flat or wrapped as `{\"data\": {...}}`; at most 64 KiB of `application/json`. Neutral: `portRange` (a string or an array of `\"22\"`, `\"8000-8090\"`, `\"*\"`) and `cidrBlock`. Azure (NSG): `destinationPortRange` and `sourceAddressPrefix` for the same, with `sourcePortRange`, `destination` and `destinationAddressPrefix` accepted only as `*`. AWS (security group): `portRange`, `cidrBlock` and `source` (`*` or the same network). Giving the ports or the addresses twice (e.g. `portRange` and `destinationPortRange`) is a 400",
        ))
        .content(
            JSON,
            ContentBuilder::new()
                .schema(Some(
                    OneOfBuilder::new()
                        .item(schema_ref(CreateRuleRequest::name()))
                        .item(
                            ObjectBuilder::new()
                                .property("data", schema_ref(CreateRuleRequest::name()))
                                .required("data")
                                .additional_properties(Some(AdditionalProperties::FreeForm(false)))
                                .description(Some("The request wrapped as `data`")),
                        ),
                ))
                .examples_from_iter([
                    (
                        "azure",
                        example(
                            "The platform's Azure example (NSG shape)",
                            serde_json::json!({
                                "access": "Allow", "description": "", "destination": "*",
                                "destinationAddressPrefix": "*", "destinationPortRange": "8080",
                                "direction": "Inbound", "name": "Any", "priority": 100,
                                "protocol": "*", "source": "*", "sourceAddressPrefix": "*",
                                "sourcePortRange": "*", "virtualMachine": "6549fc7a70c99a149c7918e8"
                            }),
                        ),
                    ),
                    (
                        "aws",
                        example(
                            "The platform's AWS example (security-group shape)",
                            serde_json::json!({
                                "cidrBlock": "0.0.0.0/0", "description": "", "direction": "Inbound",
                                "name": "SSH", "portRange": ["22"], "protocol": "Tcp", "source": "*",
                                "virtualMachine": "6549fc8570c99a149c79193f"
                            }),
                        ),
                    ),
                    (
                        "neutral",
                        example(
                            "The neutral shape: HTTPS and a port range from one network",
                            serde_json::json!({
                                "access": "Allow", "cidrBlock": "203.0.113.0/24",
                                "description": "HTTPS and the app ports", "direction": "Inbound",
                                "name": "web", "portRange": ["443", "8000-8090"], "priority": 1100,
                                "protocol": "Tcp", "virtualMachine": "6549fc8570c99a149c79193f"
                            }),
                        ),
                    ),
                ])
                .build(),
        )
        .build()
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
    let vm_array = |description: &str| {
        ArrayBuilder::new()
            .items(schema_ref(VirtualMachine::name()))
            .description(Some(description))
    };
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
                        .schema(Some(vm_array(
                            "One VM per host name, in request order; references as ids",
                        )))
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
                        .schema(Some(vm_array("At most `limit` VMs")))
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
                        .schema(Some(
                            ArrayBuilder::new()
                                .items(schema_ref(VmEvent::name()))
                                .description(Some("At most `limit` events")),
                        ))
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
                        .schema(Some(
                            ArrayBuilder::new()
                                .items(schema_ref(SecurityRuleView::name()))
                                .description(Some("Every rule of the VM (at most 50)")),
                        ))
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

/// One response per status of `codes`, each listing its codes.
fn error_responses(
    endpoint: Option<Endpoint>,
    codes: &[&'static str],
) -> Vec<(u16, utoipa::openapi::Response)> {
    let statuses: BTreeSet<u16> = codes.iter().map(|c| status_of(c)).collect();
    statuses
        .into_iter()
        .map(|status| {
            let of_status: Vec<&str> = codes
                .iter()
                .copied()
                .filter(|c| status_of(c) == status)
                .collect();
            (status, error_response(endpoint, status, &of_status))
        })
        .collect()
}

/// An error response of `status` whose body carries one of `codes`.
fn error_response(
    endpoint: Option<Endpoint>,
    status: u16,
    codes: &[&str],
) -> utoipa::openapi::Response {
    let reason = StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error");
    let mut description = response_description(endpoint, codes, reason);
    if status == 413 {
        description.push_str(&format!(" (the limit is {MAX_BODY_BYTES} bytes)"));
    }
    let mut narrowed = ObjectBuilder::new()
        .property(
            "statusCode",
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .enum_values(Some([status])),
        )
        .property(
            "error",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some([reason])),
        )
        .property(
            "code",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(codes.iter().copied())),
        );
    if status >= 500 {
        narrowed = narrowed.required("requestId");
    }
    let body: RefOr<Schema> = AllOfBuilder::new()
        .item(schema_ref("Error"))
        .item(narrowed)
        .into();
    let body = if status == 401 {
        OneOfBuilder::new()
            .item(body)
            .item(schema_ref("GatewayError"))
            .description(Some(
                "The functions' `Error`, or in AWS API Gateway's own `{\"message\": \"Unauthorized\"}` when its JWT authorizer refuses the token first",
            ))
            .into()
    } else {
        body
    };
    let mut response = ResponseBuilder::new()
        .description(description)
        .header("X-Request-Id", request_id_header())
        .content(JSON, ContentBuilder::new().schema(Some(body)).build());
    if status == 401 {
        response = response.header(
            "WWW-Authenticate",
            const_header("Bearer", "The authentication scheme to use"),
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

fn response_description(endpoint: Option<Endpoint>, codes: &[&str], reason: &str) -> String {
    let mut description = format!("{reason}:");
    for (i, code) in codes.iter().enumerate() {
        let sep = if i == 0 { " " } else { "; " };
        description.push_str(&format!("{sep}`{code}`: {}", code_meaning(endpoint, code)));
    }
    description
}

fn openapi_operation() -> Operation {
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
                        .schema(Some(
                            ObjectBuilder::new()
                                .schema_type(Type::Object)
                                .description(Some("An OpenAPI 3.1 document")),
                        ))
                        .build(),
                )
                .build(),
        )
        .build()
}

/// Schemas, the bearer scheme, and the responses that belong to no operation.
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
        key_needs_ssh_login(<CreateVmRequest as utoipa::PartialSchema>::schema()),
    ));
    CreateVmRequest::schemas(&mut schemas);
    schemas.push((
        UpdateVmRequest::name().into_owned(),
        AllOfBuilder::new()
            .item(<UpdateVmRequest as utoipa::PartialSchema>::schema())
            .item(
                ObjectBuilder::new()
                    .min_properties(Some(1))
                    .description(Some("At least one field")),
            )
            .into(),
    ));
    UpdateVmRequest::schemas(&mut schemas);
    schemas.push((
        CreateRuleRequest::name().into_owned(),
        rule_field_rules(<CreateRuleRequest as utoipa::PartialSchema>::schema()),
    ));
    CreateRuleRequest::schemas(&mut schemas);
    add::<SecurityRuleView>(&mut schemas);
    add::<RuleDeleted>(&mut schemas);
    add::<VmStatus>(&mut schemas);
    add::<AuthMethod>(&mut schemas);
    add::<Role>(&mut schemas);
    schemas.push(("Error".into(), error_schema()));
    schemas.push(("FieldError".into(), field_error_schema()));
    schemas.push(("GatewayError".into(), gateway_error_schema()));
    schemas.push(("Health".into(), health_schema()));

    let mut builder = ComponentsBuilder::new();
    let mut seen = BTreeSet::new();
    for (name, schema) in schemas {
        if seen.insert(name.clone()) {
            builder = builder.schema(name, schema);
        }
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
        .response("RouteNotFound", error_response(None, 404, &["ROUTE_NOT_FOUND"]))
        .response(
            "MethodNotAllowed",
            error_response(None, 405, &["METHOD_NOT_ALLOWED"]),
        )
        .build()
}

fn error_schema() -> RefOr<Schema> {
    ObjectBuilder::new()
        .description(Some(
            "Every error answer of the API. Each response narrows `statusCode`, `error` and `code` to its own values.",
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
