//! Conditional writes: how often one is retried, what losing one means, and `If-Match`.

use vmapi_models::VmId;

use crate::error::{ConflictCode, Error, Result};

/// How often a conditional write is retried after losing to a concurrent one.
pub(crate) const WRITE_ATTEMPTS: usize = 3;

pub(crate) fn concurrency_to_conflict(e: Error) -> Error {
    match e {
        Error::VersionConflict => Error::conflict(
            ConflictCode::ConcurrentModification,
            "the virtual machine was changed concurrently; retry the request",
        ),
        other => other,
    }
}

pub(super) fn unreachable_conflict<T>() -> Result<T> {
    Err(concurrency_to_conflict(Error::VersionConflict))
}

/// The versions a conditional request (`If-Match`) accepts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IfMatch {
    /// No condition (no header, or `*`).
    Any,
    /// One of these versions (an empty list matches nothing).
    Versions(Vec<u64>),
}

impl IfMatch {
    /// Whether a condition is set.
    pub fn is_conditional(&self) -> bool {
        matches!(self, IfMatch::Versions(_))
    }

    pub(super) fn check(&self, id: VmId, stored: u64) -> Result<()> {
        match self {
            IfMatch::Versions(v) if !v.contains(&stored) => Err(Error::PreconditionFailed(format!(
                "virtual machine {id} is at version \"{stored}\", not the one If-Match names; read it again (GET returns its ETag) and retry"
            ))),
            _ => Ok(()),
        }
    }

    pub(super) fn lost(&self, id: VmId) -> Error {
        Error::PreconditionFailed(format!(
            "virtual machine {id} changed while the request ran, so the version If-Match names is no longer current; read it again and retry"
        ))
    }
}
