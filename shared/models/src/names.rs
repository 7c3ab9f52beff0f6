//! Host names (RFC 1123 labels) and tags.

use serde::{Deserialize, Serialize};

use crate::error::truncate;
use crate::newtype::checked_text;
use crate::ParseError;

/// A VM name: an RFC 1123 DNS label (1–63 of `a-z`, `0-9`, `-`, not starting or ending with `-`).
/// Upper-case input is rejected rather than folded, so names are stored as given.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HostName(String);

checked_text!(HostName);

impl HostName {
    /// Longest label RFC 1123 allows.
    pub const MAX_LEN: usize = 63;

    /// Parses one label.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let bad =
            |why: &str| ParseError(format!("'{}' is not a valid host name: {why}", truncate(s)));
        if s.is_empty() {
            return Err(bad("it is empty"));
        }
        if s.len() > Self::MAX_LEN {
            return Err(bad("it is longer than 63 characters"));
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(bad("only lower-case letters, digits and '-' are allowed"));
        }
        if s.starts_with('-') || s.ends_with('-') {
            return Err(bad("it must not start or end with '-'"));
        }
        Ok(HostName(s.to_string()))
    }
}

/// A tag: 1–64 characters, no control characters.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct Tag(String);

checked_text!(Tag; Debug derived);

impl Tag {
    /// Longest tag.
    pub const MAX_LEN: usize = 64;

    /// Parses one tag.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let n = s.chars().count();
        if n == 0 || n > Self::MAX_LEN {
            return Err(ParseError(format!(
                "tag '{}' must be 1 to {} characters long",
                truncate(s),
                Self::MAX_LEN
            )));
        }
        if s.chars().any(char::is_control) {
            return Err(ParseError(format!(
                "tag '{}' contains control characters",
                truncate(s)
            )));
        }
        Ok(Tag(s.to_string()))
    }
}

/// The tags of a VM: at most 20, each a [`Tag`].
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize, Debug)]
#[serde(try_from = "Vec<Tag>", into = "Vec<Tag>")]
pub struct Tags(Vec<Tag>);

impl Tags {
    /// Most tags a VM may carry.
    pub const MAX: usize = 20;

    /// Checks the count.
    pub fn new(tags: Vec<Tag>) -> Result<Self, ParseError> {
        if tags.len() > Self::MAX {
            return Err(ParseError(format!(
                "at most {} tags are allowed, got {}",
                Self::MAX,
                tags.len()
            )));
        }
        Ok(Tags(tags))
    }

    /// The tags in order.
    pub fn as_slice(&self) -> &[Tag] {
        &self.0
    }
}

impl TryFrom<Vec<Tag>> for Tags {
    type Error = ParseError;
    fn try_from(v: Vec<Tag>) -> Result<Self, Self::Error> {
        Tags::new(v)
    }
}

impl From<Tags> for Vec<Tag> {
    fn from(t: Tags) -> Vec<Tag> {
        t.0
    }
}

/// OpenAPI schemas of host names and tags (feature `openapi`).
#[cfg(feature = "openapi")]
mod schema {
    use std::borrow::Cow;

    use utoipa::openapi::schema::{ArrayBuilder, Schema};
    use utoipa::openapi::{Ref, RefOr};
    use utoipa::{PartialSchema, ToSchema};

    use super::*;
    use crate::newtype::{named_schema, text_schema, NO_CONTROL_CHARACTERS};

    named_schema!(
        HostName => text_schema(
            "A host name: an RFC 1123 DNS label of 1-63 lower-case letters, digits and `-`, not starting or ending with `-` (upper case is refused, not folded)",
            HostName::MAX_LEN,
            "^[a-z0-9]([a-z0-9-]*[a-z0-9])?$",
        )
        .examples(["kraud-cloud-ubuntu-1vcpu-4gb-berlin-01"]),
        Tag => text_schema(
            "A tag: 1-64 characters, no control characters",
            Tag::MAX_LEN,
            NO_CONTROL_CHARACTERS,
        ),
    );

    impl PartialSchema for Tags {
        fn schema() -> RefOr<Schema> {
            ArrayBuilder::new()
                .items(Ref::from_schema_name(Tag::name()))
                .max_items(Some(Tags::MAX))
                .description(Some("Tags of a VM: at most 20"))
                .into()
        }
    }

    impl ToSchema for Tags {
        fn name() -> Cow<'static, str> {
            Cow::Borrowed("Tags")
        }

        fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
            schemas.push((Tag::name().into_owned(), Tag::schema()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names() {
        for good in [
            "a",
            "kraud-cloud-ubuntu-1vcpu-4gb-berlin-01",
            &"a".repeat(63),
            "0web",
        ] {
            assert!(HostName::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "-a",
            "a-",
            "A",
            "a_b",
            "a.b",
            "ü",
            &"a".repeat(64),
            "a b",
        ] {
            assert!(HostName::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tags() {
        assert!(Tag::parse("").is_err());
        assert!(Tag::parse(&"t".repeat(65)).is_err());
        assert!(Tag::parse("env:prod ✓").is_ok());
        let many: Vec<Tag> = (0..21)
            .map(|i| Tag::parse(&i.to_string()).unwrap())
            .collect();
        assert!(Tags::new(many.clone()).is_err());
        assert!(Tags::new(many[..20].to_vec()).is_ok());
        assert!(serde_json::from_str::<Tags>(r#"["a", ""]"#).is_err());
    }
}
