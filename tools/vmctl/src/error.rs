//! The error type of every command.

/// Any error, with its chain of causes.
pub type AnyError = Box<dyn std::error::Error + Send + Sync>;
