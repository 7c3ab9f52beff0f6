//! The one error type of the use cases. The HTTP layer maps it to status codes in one place.

use std::fmt;

/// Result of a use case.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A problem with one field of a request.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct FieldError {
    /// Path of the field, e.g. `hostNames[1]`.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl FieldError {
    /// A field error.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// What was not found (each has its own stable `code`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotFoundKind {
    /// A VM.
    Vm,
    /// A team.
    Team,
    /// A project.
    Project,
    /// A VM's login credentials.
    Credentials,
    /// A security rule.
    SecurityRule,
    /// A cloud provider of the catalog.
    CloudProvider,
    /// A provider of the catalog.
    Provider,
    /// A location of a provider.
    Location,
    /// An image a provider offers at a location.
    Image,
}

impl fmt::Display for NotFoundKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NotFoundKind::Vm => "Virtual machine",
            NotFoundKind::Team => "Team",
            NotFoundKind::Project => "Project",
            NotFoundKind::Credentials => "Credentials of virtual machine",
            NotFoundKind::SecurityRule => "Security rule",
            NotFoundKind::CloudProvider => "Cloud provider",
            NotFoundKind::Provider => "Provider",
            NotFoundKind::Location => "Location",
            NotFoundKind::Image => "Image",
        })
    }
}

/// Why a request conflicts with the current state (all 409, each with its own `code`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConflictCode {
    /// The VM's status does not allow the action.
    IllegalTransition,
    /// A host name is used by an active VM of the project.
    HostNameTaken,
    /// The same host name appears twice in one request.
    DuplicateHostName,
    /// The record kept changing under us; the client may retry.
    ConcurrentModification,
    /// The team's quota (active VMs or their vCPUs) does not admit the request.
    QuotaExceeded,
    /// Another security rule of the VM has this name (ignoring case).
    RuleNameTaken,
    /// Another security rule of the VM has this priority in the same direction.
    PriorityTaken,
    /// The VM has as many security rules as it may.
    RuleLimitReached,
    /// An administrator blocked the VM: it can be stopped and deleted, nothing else.
    VmBlocked,
}

impl ConflictCode {
    /// The stable machine-readable code.
    pub fn as_str(self) -> &'static str {
        match self {
            ConflictCode::IllegalTransition => "ILLEGAL_TRANSITION",
            ConflictCode::HostNameTaken => "HOST_NAME_TAKEN",
            ConflictCode::DuplicateHostName => "DUPLICATE_HOST_NAME",
            ConflictCode::ConcurrentModification => "CONCURRENT_MODIFICATION",
            ConflictCode::QuotaExceeded => "QUOTA_EXCEEDED",
            ConflictCode::RuleNameTaken => "RULE_NAME_TAKEN",
            ConflictCode::PriorityTaken => "PRIORITY_TAKEN",
            ConflictCode::RuleLimitReached => "RULE_LIMIT_REACHED",
            ConflictCode::VmBlocked => "VM_BLOCKED",
        }
    }
}

/// Everything a use case can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is malformed or names things that do not fit together.
    #[error("{message}")]
    Invalid {
        /// Summary.
        message: String,
        /// One entry per offending field.
        details: Vec<FieldError>,
    },
    /// Not authenticated: a missing, wrong or revoked admin key (401; user tokens are checked
    /// by the HTTP layer).
    #[error("{0}")]
    Unauthorized(String),
    /// Authenticated, visible, but not allowed.
    #[error("{0}")]
    Forbidden(String),
    /// Absent, or invisible to the caller (never 403, so ids cannot be probed).
    #[error("{kind} {id} not found")]
    NotFound {
        /// What.
        kind: NotFoundKind,
        /// The id asked for.
        id: String,
    },
    /// Conflicts with the current state.
    #[error("{message}")]
    Conflict {
        /// Which conflict.
        code: ConflictCode,
        /// Human-readable explanation.
        message: String,
    },
    /// A conditional write lost to a concurrent one (retried inside the use case).
    #[error("the record changed concurrently")]
    VersionConflict,
    /// Valid, but the VM's cloud cannot carry it (422 `UNSUPPORTED_BY_PROVIDER`).
    #[error("{0}")]
    UnsupportedByProvider(String),
    /// The client's `If-Match` names another version than the stored one.
    #[error("{0}")]
    PreconditionFailed(String),
    /// A dependency (the database) is unreachable or throttling; retry later.
    #[error("{message}")]
    Unavailable {
        /// Human-readable explanation, free of internals.
        message: String,
        /// Seconds the client should wait.
        retry_after_secs: u32,
        /// The underlying cause, for the logs only.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// A bug or an unexpected dependency answer. Clients see a generic message.
    #[error("internal error: {context}")]
    Internal {
        /// Where it happened.
        context: String,
        /// The cause, for the logs only.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

impl Error {
    /// A validation error about one field.
    pub fn invalid_field(field: impl Into<String>, message: impl Into<String>) -> Self {
        let e = FieldError::new(field, message);
        Error::Invalid {
            message: format!("{}: {}", e.field, e.message),
            details: vec![e],
        }
    }

    /// A validation error about several fields.
    pub fn invalid_fields(details: Vec<FieldError>) -> Self {
        let message = match details.as_slice() {
            [one] => format!("{}: {}", one.field, one.message),
            many => format!("{} fields are invalid", many.len()),
        };
        Error::Invalid { message, details }
    }

    /// A 409 with a code.
    pub fn conflict(code: ConflictCode, message: impl Into<String>) -> Self {
        Error::Conflict {
            code,
            message: message.into(),
        }
    }

    /// A not-found error.
    pub fn not_found(kind: NotFoundKind, id: impl fmt::Display) -> Self {
        Error::NotFound {
            kind,
            id: id.to_string(),
        }
    }

    /// An internal error with a cause.
    pub fn internal(
        context: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Error::Internal {
            context: context.into(),
            source: Some(source.into()),
        }
    }
}

/// Displays an error with its whole `source()` chain (for logs, never for clients).
pub struct ErrorChain<'a>(pub &'a (dyn std::error::Error + 'static));

impl fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut src = self.0.source();
        while let Some(s) = src {
            write!(f, ": {s}")?;
            src = s.source();
        }
        Ok(())
    }
}
