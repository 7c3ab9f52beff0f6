//! The small fields of a rule: direction, protocol, access, name and description.

use serde::{Deserialize, Serialize};

use super::limits::MAX_DESCRIPTION;
use crate::newtype::checked_text;
use crate::ParseError;

/// Which traffic a rule is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Direction {
    /// Traffic to the VM.
    Inbound,
    /// Traffic from the VM.
    Outbound,
}

/// IP protocol of a rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// ICMP (no ports).
    Icmp,
    /// Any protocol.
    #[serde(rename = "*")]
    Any,
}

/// Whether a rule lets traffic through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum RuleAccess {
    /// Let it through.
    Allow,
    /// Drop it.
    Deny,
}

/// A rule name: 1–80 characters, letters, digits, `.`, `_` and `-`, starting with a letter or
/// digit and ending with a letter, digit or `_` (Azure's rule-name rule, so every cloud takes
/// it). Unique among one VM's rules, ignoring case.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RuleName(pub(super) String);

checked_text!(RuleName; Debug derived);

impl RuleName {
    /// Longest name.
    pub const MAX_LEN: usize = 80;

    /// Parses a name.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
        let first_ok = s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
        let last_ok = s
            .chars()
            .last()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        if s.is_empty()
            || s.len() > Self::MAX_LEN
            || !s.chars().all(ok_char)
            || !first_ok
            || !last_ok
        {
            return Err(ParseError(format!(
                "`{}` is not a rule name: 1-{} letters, digits, '.', '_' or '-', starting with a letter or digit and ending with a letter, digit or '_'",
                crate::error::clip(s, 40),
                Self::MAX_LEN
            )));
        }
        Ok(RuleName(s.to_owned()))
    }
}

/// Checks a description: at most 140 characters from the set AWS takes in security-group rule
/// descriptions (letters, digits, spaces and `._-:/()#,@[]+=&;{}!$*`), so it works on every cloud.
pub fn parse_description(s: &str) -> Result<String, ParseError> {
    let ok = |c: char| c.is_ascii_alphanumeric() || " ._-:/()#,@[]+=&;{}!$*".contains(c);
    if s.chars().count() > MAX_DESCRIPTION {
        return Err(ParseError(format!("at most {MAX_DESCRIPTION} characters")));
    }
    if let Some(bad) = s.chars().find(|c| !ok(*c)) {
        return Err(ParseError(format!(
            "{bad:?} is not allowed; use letters, digits, spaces and ._-:/()#,@[]+=&;{{}}!$*"
        )));
    }
    Ok(s.to_owned())
}
