//! Identifiers: 24-hex ids in MongoDB ObjectId layout, and user ids from token subjects.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::truncate;
use crate::newtype::checked_text;
use crate::ParseError;

/// A 12-byte id shown as 24 lowercase hex digits: 4 bytes of Unix seconds,
/// 5 random bytes fixed per process, and a 3-byte counter (MongoDB's layout).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectId([u8; 12]);

struct ProcessUnique {
    random: [u8; 5],
    counter: AtomicU32,
}

fn process_unique() -> &'static ProcessUnique {
    static CELL: OnceLock<ProcessUnique> = OnceLock::new();
    CELL.get_or_init(|| {
        let mut seed = [0u8; 9];
        // The OS random source failing is not recoverable for id generation.
        getrandom::fill(&mut seed).expect("operating system random source unavailable");
        let mut random = [0u8; 5];
        random.copy_from_slice(&seed[..5]);
        let counter = u32::from_be_bytes([seed[5], seed[6], seed[7], seed[8]]) & 0x00ff_ffff;
        ProcessUnique {
            random,
            counter: AtomicU32::new(counter),
        }
    })
}

impl ObjectId {
    /// A new id for the current time.
    pub fn new() -> Self {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        Self::with_seconds(secs as u32)
    }

    /// A new id whose time part is `secs` (Unix seconds).
    pub fn with_seconds(secs: u32) -> Self {
        let unique = process_unique();
        let count = unique.counter.fetch_add(1, Ordering::Relaxed) & 0x00ff_ffff;
        let mut bytes = [0u8; 12];
        bytes[..4].copy_from_slice(&secs.to_be_bytes());
        bytes[4..9].copy_from_slice(&unique.random);
        bytes[9..].copy_from_slice(&count.to_be_bytes()[1..]);
        ObjectId(bytes)
    }

    /// The creation time encoded in the id, in Unix seconds.
    pub fn seconds(&self) -> u32 {
        u32::from_be_bytes([self.0[0], self.0[1], self.0[2], self.0[3]])
    }

    /// Parses 24 hex digits (either case).
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let invalid = || {
            ParseError(format!(
                "'{}' is not a valid id (expected 24 hexadecimal characters)",
                truncate(s)
            ))
        };
        let digits = s.as_bytes();
        if digits.len() != 24 {
            return Err(invalid());
        }
        let mut bytes = [0u8; 12];
        for (byte, pair) in bytes.iter_mut().zip(digits.chunks_exact(2)) {
            match (nibble(pair[0]), nibble(pair[1])) {
                (Some(hi), Some(lo)) => *byte = hi << 4 | lo,
                _ => return Err(invalid()),
            }
        }
        Ok(ObjectId(bytes))
    }

    /// The 24 lowercase hex digits (ids are formatted on every response and item write).
    fn hex(&self) -> [u8; 24] {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; 24];
        for (pair, b) in out.chunks_exact_mut(2).zip(self.0) {
            pair[0] = DIGITS[usize::from(b >> 4)];
            pair[1] = DIGITS[usize::from(b & 0x0f)];
        }
        out
    }
}

/// The value of one hex digit (either case).
fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

impl Default for ObjectId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hex = self.hex();
        f.write_str(std::str::from_utf8(&hex).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectId({self})")
    }
}

impl FromStr for ObjectId {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for ObjectId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let hex = self.hex();
        serializer.serialize_str(std::str::from_utf8(&hex).map_err(serde::ser::Error::custom)?)
    }
}

impl<'de> Deserialize<'de> for ObjectId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        ObjectId::parse(&s).map_err(serde::de::Error::custom)
    }
}

macro_rules! typed_id {
    ($(#[$doc:meta] $name:ident),* $(,)?) => {$(
        #[$doc]
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub ObjectId);

        impl $name {
            /// A new id for the current time.
            pub fn new() -> Self {
                Self(ObjectId::new())
            }

            /// Parses 24 hex digits.
            pub fn parse(s: &str) -> Result<Self, ParseError> {
                ObjectId::parse(s).map(Self)
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.0)
            }
        }

        impl FromStr for $name {
            type Err = ParseError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }
    )*};
}

typed_id!(
    /// Id of a virtual machine.
    VmId,
    /// Id of a team.
    TeamId,
    /// Id of a project.
    ProjectId,
    /// Id of a cloud provider (Kraud.Cloud, Azure, AWS).
    CloudProviderId,
    /// Id of a provider offering (a cloud provider's VM product).
    ProviderId,
    /// Id of a catalog size.
    SizeId,
    /// Id of a catalog price.
    PriceId,
    /// Id of a provider's location (a datacenter).
    LocationId,
    /// Id of an IP configuration of a VM.
    IpConfigId,
    /// Id of a subscription.
    SubscriptionId,
    /// Id of a team's billing settings.
    BillingSettingsId,
    /// Id of a security (firewall) rule of a VM.
    SecurityRuleId,
);

/// A user id: the `sub` claim of a verified token (1–128 printable characters).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(String);

checked_text!(UserId);

impl UserId {
    /// Longest accepted user id.
    pub const MAX_LEN: usize = 128;

    /// Parses a token subject or a stored user id.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        if s.is_empty() {
            return Err(ParseError("user id must not be empty".into()));
        }
        if s.chars().count() > Self::MAX_LEN {
            return Err(ParseError(format!(
                "user id is longer than {} characters",
                Self::MAX_LEN
            )));
        }
        if s.chars().any(char::is_control) {
            return Err(ParseError("user id contains control characters".into()));
        }
        Ok(UserId(s.to_string()))
    }
}

/// OpenAPI schemas of the ids (feature `openapi`).
#[cfg(feature = "openapi")]
mod schema {
    use utoipa::openapi::schema::{ObjectBuilder, Type};

    use super::*;
    use crate::newtype::{named_schema, text_schema, NO_CONTROL_CHARACTERS};

    /// A 24-hex id: read in either case, always written in lower case.
    pub(crate) const OBJECT_ID_PATTERN: &str = "^[0-9a-fA-F]{24}$";

    fn object_id(what: &str) -> ObjectBuilder {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(format!(
                "{what}: 24 hexadecimal digits (MongoDB ObjectId layout), written in lower case"
            )))
            .min_length(Some(24))
            .max_length(Some(24))
            .pattern(Some(OBJECT_ID_PATTERN))
            .examples(["6548a41f38406c14db33b61e"])
    }

    named_schema!(
        ObjectId => object_id("An id"),
        VmId => object_id("Id of a virtual machine"),
        TeamId => object_id("Id of a team"),
        ProjectId => object_id("Id of a project"),
        CloudProviderId => object_id("Id of a cloud provider"),
        ProviderId => object_id("Id of a provider offering"),
        SizeId => object_id("Id of a catalog size"),
        PriceId => object_id("Id of a catalog price"),
        LocationId => object_id("Id of a provider's location"),
        IpConfigId => object_id("Id of an IP configuration"),
        SubscriptionId => object_id("Id of a subscription"),
        BillingSettingsId => object_id("Id of a team's billing settings"),
        SecurityRuleId => object_id("Id of a security rule"),
        UserId => text_schema(
            "A user id: the `sub` claim of the caller's token (1-128 characters, no control characters)",
            UserId::MAX_LEN,
            NO_CONTROL_CHARACTERS,
        )
        .examples(["6548a41138406c14db33b606"]),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_are_not_hex_digits() {
        // Found by fuzzing: `u8::from_str_radix` takes "+6" as 6.
        assert!(ObjectId::parse("6548041f38+6c1140b333bde").is_err());
        assert!(ObjectId::parse("6548041f3806c1140b333bde").is_ok());
    }

    #[test]
    fn object_id_layout_and_round_trip() {
        let id = ObjectId::with_seconds(0x654a_11e6);
        let text = id.to_string();
        assert_eq!(text.len(), 24);
        assert!(text.starts_with("654a11e6"));
        assert_eq!(ObjectId::parse(&text).unwrap(), id);
        assert_eq!(id.seconds(), 0x654a_11e6);
    }

    #[test]
    fn every_byte_formats_and_parses_like_the_reference() {
        for b in 0..=255u8 {
            let mut bytes = [0u8; 12];
            bytes[b as usize % 12] = b;
            bytes[(b as usize + 5) % 12] = b.rotate_left(4);
            let id = ObjectId(bytes);
            let reference: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(id.to_string(), reference);
            assert_eq!(
                serde_json::to_string(&id).unwrap(),
                format!("\"{reference}\"")
            );
            assert_eq!(ObjectId::parse(&reference).unwrap(), id);
            assert_eq!(ObjectId::parse(&reference.to_uppercase()).unwrap(), id);
        }
    }

    #[test]
    fn object_ids_are_unique_and_ordered_within_a_second() {
        let a = ObjectId::with_seconds(100);
        let b = ObjectId::with_seconds(100);
        assert_ne!(a, b);
        assert!(a < b || a.0[9..] == [0xff, 0xff, 0xff]);
    }

    #[test]
    fn object_id_rejects_bad_text() {
        for bad in [
            "",
            "654a11e6",
            "654a11e60b23ef1b0f36d44g",
            "654a11e60b23ef1b0f36d44e0",
            "ééééééééééééé",
        ] {
            assert!(ObjectId::parse(bad).is_err(), "{bad} accepted");
        }
        assert_eq!(
            ObjectId::parse("654A11E60B23EF1B0F36D44E")
                .unwrap()
                .to_string(),
            "654a11e60b23ef1b0f36d44e"
        );
    }

    #[test]
    fn user_id_limits() {
        assert!(UserId::parse("").is_err());
        assert!(UserId::parse(&"x".repeat(129)).is_err());
        assert!(UserId::parse(&"x".repeat(128)).is_ok());
        assert!(UserId::parse("a\nb").is_err());
    }
}
