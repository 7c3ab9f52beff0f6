//! The shape of one entry of the endpoint table: everything the routes, the OpenAPI document,
//! the deploy checks and the generated docs know about an endpoint.

use axum::http::Method;
use axum::routing::MethodFilter;

/// One endpoint, declared once (the table is [`Endpoint`](super::Endpoint)).
#[derive(Debug)]
pub struct Spec {
    pub verb: Verb,
    /// Path template, in API Gateway's and axum's syntax (`/api/virtual-machines/{id}`).
    pub path: &'static str,
    /// The Lambda function (crate folder under `functions/` and binary) serving it.
    pub function: &'static str,
    pub auth: Auth,
    pub tag: Tag,
    /// The OpenAPI summary: a short phrase.
    pub summary: &'static str,
    /// The OpenAPI description: what it does, in full.
    pub description: &'static str,
    /// Path parameters in path order, then query parameters.
    pub params: &'static [Param],
    pub request: Option<RequestBody>,
    pub success: Success,
    /// Every `code` it can answer besides those of `Idempotency-Key` (added where
    /// [`Spec::idempotent`]); each must be in [`ALL_CODES`](crate::error::ALL_CODES).
    pub errors: &'static [&'static str],
    /// What a code means for this endpoint, where it means more than it does elsewhere.
    pub notes: &'static [(&'static str, &'static str)],
    /// Honours `If-Match` (412 `PRECONDITION_FAILED` on a mismatch).
    pub conditional: bool,
    /// Honours `Idempotency-Key` ([`crate::idempotency`]).
    pub idempotent: bool,
    /// Its function builds the secret store (create and credentials).
    pub logins: bool,
}

/// What a read of one VM (or of what is in it) can answer.
pub(super) const VM_READ_ERRORS: &[&str] = &[
    "INVALID_PARAMETER",
    "UNAUTHORIZED",
    "VM_NOT_FOUND",
    "INTERNAL_ERROR",
    "SERVICE_UNAVAILABLE",
];

/// The HTTP method of an endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verb {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl Verb {
    pub fn method(self) -> Method {
        match self {
            Verb::Get => Method::GET,
            Verb::Post => Method::POST,
            Verb::Put => Method::PUT,
            Verb::Patch => Method::PATCH,
            Verb::Delete => Method::DELETE,
        }
    }

    pub fn filter(self) -> MethodFilter {
        match self {
            Verb::Get => MethodFilter::GET,
            Verb::Post => MethodFilter::POST,
            Verb::Put => MethodFilter::PUT,
            Verb::Patch => MethodFilter::PATCH,
            Verb::Delete => MethodFilter::DELETE,
        }
    }
}

/// Who may call it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Auth {
    /// Anyone: no token (API Gateway's `Authorizer: NONE`).
    Public,
    /// A user's bearer token (API Gateway's JWT authorizer).
    User,
    /// An admin key in `Api-Key` (API Gateway's `Authorizer: NONE`; the function checks it).
    Admin,
}

/// The OpenAPI tag grouping it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tag {
    Vms,
    Rules,
    Credentials,
    Catalog,
    Costs,
    Admin,
    Service,
}

impl Tag {
    /// Every tag, in the document's order.
    pub const ALL: [Tag; 7] = [
        Tag::Vms,
        Tag::Rules,
        Tag::Credentials,
        Tag::Catalog,
        Tag::Costs,
        Tag::Admin,
        Tag::Service,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Tag::Vms => "virtual machines",
            Tag::Rules => "security rules",
            Tag::Credentials => "credentials",
            Tag::Catalog => "catalog",
            Tag::Costs => "costs",
            Tag::Admin => "admin",
            Tag::Service => "service",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            Tag::Vms => "Create, list, read, change, start, stop and delete VMs",
            Tag::Rules => "A VM's firewall rules (docs/security-rules.md)",
            Tag::Credentials => "The login of a VM (docs/credentials.md)",
            Tag::Catalog => {
                "What a create may name: cloud providers, providers, locations, images, prices and sizes (docs/catalog.md)"
            }
            Tag::Costs => "A team's estimated charges this month (docs/costs.md)",
            Tag::Admin => {
                "For administrators, with an admin key in `Api-Key`: a team's VMs, delete, block (docs/admin-api.md)"
            }
            Tag::Service => "Health and this document",
        }
    }
}

/// A path or query parameter (the OpenAPI document describes each).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Param {
    /// Path `{team}`: a team id.
    Team,
    /// Path `{project}`: a project id of the team.
    Project,
    /// Path `{id}`: a VM id.
    Vm,
    /// Path `{id}`: a security rule id.
    Rule,
    /// Path `{id}`: a cloud provider id.
    CloudProvider,
    /// Path `{id}`: a provider id.
    Provider,
    /// Path `{location}`: a provider's location, by `_id` or datacenter name.
    Location,
    /// Path `{imageName}`: an image's distribution.
    ImageName,
    /// Query `limit`: the page size.
    Limit,
    /// Query `cursor`: where the page starts.
    Cursor,
    /// Query `status`: list filter.
    Status,
    /// Query `tag`: list filter.
    TagFilter,
    /// Query `name`: list filter (host name prefix).
    NamePrefix,
    /// Query `page`: a page number (admin list).
    Page,
    /// Query `limit`: the page size of an admin list.
    AdminLimit,
}

impl Param {
    /// Its name in the path template or the query.
    pub fn name(self) -> &'static str {
        match self {
            Param::Team => "team",
            Param::Project => "project",
            Param::Vm | Param::Rule | Param::CloudProvider | Param::Provider => "id",
            Param::Location => "location",
            Param::ImageName => "imageName",
            Param::Limit => "limit",
            Param::Cursor => "cursor",
            Param::Status => "status",
            Param::TagFilter => "tag",
            Param::NamePrefix => "name",
            Param::Page => "page",
            Param::AdminLimit => "limit",
        }
    }

    /// Whether it is a path parameter (else a query parameter).
    pub fn in_path(self) -> bool {
        match self {
            Param::Team
            | Param::Project
            | Param::Vm
            | Param::Rule
            | Param::CloudProvider
            | Param::Provider
            | Param::Location
            | Param::ImageName => true,
            Param::Limit
            | Param::Cursor
            | Param::Status
            | Param::TagFilter
            | Param::NamePrefix
            | Param::Page
            | Param::AdminLimit => false,
        }
    }
}

/// The request body an endpoint takes.
#[derive(Debug)]
pub struct RequestBody {
    /// The named schema of `components.schemas`.
    pub schema: &'static str,
    pub description: &'static str,
}

/// The success answer.
#[derive(Debug)]
pub struct Success {
    pub status: u16,
    pub description: &'static str,
    /// The named schema of the body in `components.schemas`.
    pub schema: &'static str,
    /// A page of a list: `Link` and `X-Next-Cursor` headers.
    pub paged: bool,
    /// Carries the VM's `ETag`.
    pub etag: bool,
    /// `Cache-Control: no-store` (and `Pragma: no-cache`).
    pub no_store: bool,
    /// `Cache-Control: max-age=300` and an `ETag` of the body; `If-None-Match` gets a 304.
    pub cacheable: bool,
}

impl Success {
    /// A plain answer: no paging or caching headers, no `ETag`.
    pub const fn plain(status: u16, schema: &'static str, description: &'static str) -> Success {
        Success {
            status,
            description,
            schema,
            paged: false,
            etag: false,
            no_store: false,
            cacheable: false,
        }
    }
}
