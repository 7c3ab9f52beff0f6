//! The deployment id: which installation of the service owns a cloud resource or a secret.
//!
//! Two stacks in one account (staging and production), or this service beside the platform on
//! one Vault mount, must never touch each other's VMs or logins. Every cloud resource and every
//! secret the service creates carries its deployment's id ([`DeploymentId::TAG`]) as a tag,
//! label or Vault `custom_metadata` entry, never in a path; a deployment's ownership tests and
//! IAM conditions accept only its own id.

use crate::newtype::checked_text;
use crate::ParseError;

/// A deployment's id: 1–63 ASCII letters, digits, `-`, `_` or `.`, starting with a letter or
/// digit (what a Kubernetes-style label value, an AWS or Azure tag value and a Vault metadata
/// value all accept). The stack name by default (template parameter `DeploymentId`).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeploymentId(String);

checked_text!(DeploymentId);

/// Ownership of a listed resource or secret, judged by its deployment tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ownership {
    /// Tagged with this deployment's id.
    Ours,
    /// Tagged `managed-by` only: made before deployment ids existed. Reported, never touched
    /// (`vmctl adopt` tags the ones whose VM record is in this deployment's table).
    Untagged,
    /// Another deployment's.
    Foreign,
}

impl DeploymentId {
    /// Name of the tag, label or metadata key that carries the id.
    pub const TAG: &'static str = "vm-api-deployment";
    /// Longest accepted id (a Kubernetes label value's limit).
    pub const MAX_LEN: usize = 63;
    /// Name of the environment variable that sets it.
    pub const ENV: &'static str = "DEPLOYMENT_ID";
    /// The id outside Lambda when `DEPLOYMENT_ID` is unset (`make run`, tests).
    pub const LOCAL: &'static str = "local";

    /// Parses an id.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let bad = |why: &str| Err(ParseError(format!("deployment id '{s}' {why}")));
        if s.is_empty() {
            return bad("is empty");
        }
        if s.len() > Self::MAX_LEN {
            return bad(&format!(
                "is longer than {} characters (set the DeploymentId parameter to a shorter one)",
                Self::MAX_LEN
            ));
        }
        if !s.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            return bad("must start with a letter or a digit");
        }
        if !s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return bad("may hold only ASCII letters, digits, '-', '_' and '.'");
        }
        Ok(DeploymentId(s.to_string()))
    }

    /// The id from `DEPLOYMENT_ID`'s value: required in Lambda (the template always sets it),
    /// [`Self::LOCAL`] elsewhere when unset or empty.
    pub fn from_setting(value: Option<&str>, in_lambda: bool) -> Result<Self, ParseError> {
        match value.map(str::trim).filter(|v| !v.is_empty()) {
            Some(v) => Self::parse(v),
            None if in_lambda => Err(ParseError(format!(
                "{} must be set in Lambda (the template sets it to the DeploymentId parameter or the stack name)",
                Self::ENV
            ))),
            None => Ok(DeploymentId(Self::LOCAL.into())),
        }
    }

    /// The id of `make run` and of tests that do not name one.
    pub fn local() -> Self {
        DeploymentId(Self::LOCAL.into())
    }

    /// Whose a resource or secret is, from the value of its [`Self::TAG`] (`None`: no such tag).
    pub fn ownership(&self, tag: Option<&str>) -> Ownership {
        match tag {
            Some(t) if t == self.0 => Ownership::Ours,
            Some(_) => Ownership::Foreign,
            None => Ownership::Untagged,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stack_names_parse_and_odd_text_does_not() {
        for ok in ["vm-api-prod", "a", "Stack1", "x.y_z-0", &"a".repeat(63)] {
            assert_eq!(DeploymentId::parse(ok).unwrap().as_str(), ok);
        }
        for bad in [
            "",
            "-lead",
            ".lead",
            "has space",
            "slash/y",
            "ü",
            &"a".repeat(64),
        ] {
            assert!(DeploymentId::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn lambda_requires_the_setting_and_local_runs_default_to_local() {
        assert!(DeploymentId::from_setting(None, true).is_err());
        assert!(DeploymentId::from_setting(Some(" "), true).is_err());
        assert_eq!(
            DeploymentId::from_setting(None, false).unwrap().as_str(),
            "local"
        );
        assert_eq!(
            DeploymentId::from_setting(Some("prod"), true)
                .unwrap()
                .as_str(),
            "prod"
        );
    }

    #[test]
    fn ownership_follows_the_tag() {
        let id = DeploymentId::parse("prod").unwrap();
        assert_eq!(id.ownership(Some("prod")), Ownership::Ours);
        assert_eq!(id.ownership(Some("staging")), Ownership::Foreign);
        assert_eq!(id.ownership(Some("Prod")), Ownership::Foreign);
        assert_eq!(id.ownership(None), Ownership::Untagged);
    }
}
