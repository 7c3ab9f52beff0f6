//! Written once for the models' newtypes: the impls every checked-text type repeats, and the
//! pieces of hand-written OpenAPI schemas.

/// The impls of `$name(String)`, text checked by `$name::parse(&str) -> Result<$name,
/// ParseError>`: `as_str`, `Display` (the text), `FromStr` and `TryFrom<String>` (through
/// `parse`), `From<$name> for String`, and serde as a JSON string read through `parse` (whose
/// message is the error). `Debug` prints `$name(text)`, unless the type derives its own
/// (`checked_text!(Name; Debug derived)`).
macro_rules! checked_text {
    ($name:ident) => {
        $crate::newtype::checked_text!($name; Debug derived);

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.0)
            }
        }
    };
    ($name:ident; Debug derived) => {
        impl $name {
            /// The text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::ParseError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $name::parse(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = $crate::ParseError;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                $name::parse(&s)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let s = String::deserialize(deserializer)?;
                $name::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}
pub(crate) use checked_text;

/// `PartialSchema` and `ToSchema` of types whose schema is written by hand: each `$name` is the
/// component named after it, with the schema `$schema` (a builder or a schema). Only where the
/// feature `openapi` is on.
#[cfg(feature = "openapi")]
macro_rules! named_schema {
    ($($name:ident => $schema:expr),* $(,)?) => {$(
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                $schema.into()
            }
        }

        impl utoipa::ToSchema for $name {
            fn name() -> std::borrow::Cow<'static, str> {
                std::borrow::Cow::Borrowed(stringify!($name))
            }
        }
    )*};
}
#[cfg(feature = "openapi")]
pub(crate) use named_schema;

/// The schema pattern of text without control characters (those `char::is_control` finds).
#[cfg(feature = "openapi")]
pub(crate) const NO_CONTROL_CHARACTERS: &str = "^[^\\u0000-\\u001F\\u007F-\\u009F]+$";

/// The schema of checked text: a string of 1 to `max_len` characters that matches `pattern`.
#[cfg(feature = "openapi")]
pub(crate) fn text_schema(
    description: &str,
    max_len: usize,
    pattern: &str,
) -> utoipa::openapi::schema::ObjectBuilder {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .description(Some(description))
        .min_length(Some(1))
        .max_length(Some(max_len))
        .pattern(Some(pattern))
}

#[cfg(test)]
mod tests {
    use crate::{HostName, Tag};

    #[test]
    fn checked_text_reads_through_parse_and_writes_the_text() {
        let name: HostName = serde_json::from_str("\"web-01\"").unwrap();
        assert_eq!(serde_json::to_string(&name).unwrap(), "\"web-01\"");
        assert_eq!(
            (name.as_str(), name.to_string()),
            ("web-01", "web-01".into())
        );
        assert_eq!(format!("{name:?}"), "HostName(web-01)");
        assert_eq!("web-01".parse::<HostName>().unwrap(), name);
        assert_eq!(HostName::try_from(String::from("web-01")).unwrap(), name);
        assert_eq!(String::from(name), "web-01");

        let parse_error = HostName::parse("Web").unwrap_err().0;
        let serde_error = serde_json::from_str::<HostName>("\"Web\"").unwrap_err();
        assert!(
            serde_error.to_string().starts_with(&parse_error),
            "{serde_error}"
        );
        assert!(serde_json::from_str::<HostName>("1").is_err());

        // A type that derives its own Debug keeps it.
        assert_eq!(format!("{:?}", Tag::parse("a").unwrap()), "Tag(\"a\")");
    }
}
