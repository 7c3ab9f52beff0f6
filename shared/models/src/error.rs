//! The one parse error of the models: a value that failed to parse at the edge.

/// A value that failed to parse at the edge; the message names what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);
