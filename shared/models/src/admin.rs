//! The admin API's keys and answers (the platform's `Api-Key` header; docs/admin-api.md).

use serde::{Deserialize, Serialize};

use crate::newtype::checked_text;
use crate::{ParseError, Timestamp, VirtualMachine, VmId};

/// An admin key's name: 1–64 lowercase ASCII letters, digits or `-`, starting with a letter or
/// digit. Activity records an admin's actions as `admin:{name}`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AdminKeyName(String);

checked_text!(AdminKeyName);

impl AdminKeyName {
    /// Longest accepted name.
    pub const MAX_LEN: usize = 64;

    /// Parses a name.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let bad = |why: &str| {
            Err(ParseError(format!(
                "admin key name '{}' {why}",
                crate::error::truncate(s)
            )))
        };
        if s.is_empty() || s.len() > Self::MAX_LEN {
            return bad("must be 1-64 characters long");
        }
        if !s.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit()) {
            return bad("must start with a lowercase letter or a digit");
        }
        if !s
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return bad("may hold only lowercase ASCII letters, digits and '-'");
        }
        Ok(AdminKeyName(s.to_string()))
    }

    /// The actor an admin's actions are recorded under.
    pub fn actor(&self) -> String {
        format!("admin:{}", self.0)
    }
}

/// An admin key as stored: its name and the SHA-256 of the key, never the key itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdminKeyRecord {
    /// Name.
    pub name: AdminKeyName,
    /// Lowercase hex SHA-256 of the key's text.
    pub key_hash: String,
    /// Created.
    pub created_at: Timestamp,
    /// Revoked (the key no longer works), if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<Timestamp>,
}

/// A page of a team's VMs for an administrator: the platform's `docs` with the usual companions
/// of that shape.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct AdminVmPage {
    /// The page's VMs, newest first, populated as in GET of a VM.
    pub docs: Vec<VirtualMachine>,
    /// How many VMs the team has (every status but 8).
    pub total_docs: u64,
    /// Page size asked for.
    pub limit: u64,
    /// This page's number (from 1).
    pub page: u64,
    /// How many pages there are (at least 1).
    pub total_pages: u64,
    /// Whether a page follows.
    pub has_next_page: bool,
    /// Whether a page precedes.
    pub has_prev_page: bool,
}

/// What an administrator's delete, block or unblock answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct AdminResult {
    /// What was done ("Virtual machine deleted", "Virtual machine blocked").
    pub message: String,
    /// The VM.
    pub vm_id: VmId,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_lowercase_words() {
        assert_eq!(AdminKeyName::parse("ops-1").unwrap().actor(), "admin:ops-1");
        for bad in ["", "-x", "Ops", "a b", "a_b", &"a".repeat(65)] {
            assert!(AdminKeyName::parse(bad).is_err(), "{bad:?}");
        }
    }
}
