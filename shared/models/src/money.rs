//! Exact decimal amounts that keep their JSON form (`30` stays `30`, `0.04` stays `0.04`).

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A decimal amount of money, exact in storage and arithmetic, written as a JSON number.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Money(pub Decimal);

impl Money {
    /// Parses a decimal number such as `0.04` or `30`.
    pub fn parse(s: &str) -> Result<Self, crate::ParseError> {
        Decimal::from_str(s)
            .map(|d| Money(d.normalize()))
            .map_err(|_| {
                crate::ParseError(format!(
                    "'{}' is not a decimal number",
                    crate::error::truncate(s)
                ))
            })
    }

    /// Multiplies by a whole number (e.g. hours in a month).
    pub fn times(self, factor: u32) -> Money {
        Money((self.0 * Decimal::from(factor)).normalize())
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.normalize().fmt(f)
    }
}

impl fmt::Debug for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Money({self})")
    }
}

impl Serialize for Money {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let d = self.0.normalize();
        if d.scale() == 0 {
            if let Ok(i) = i64::try_from(d) {
                return serializer.serialize_i64(i);
            }
        }
        // The shortest f64 text of a decimal with few digits is that decimal itself.
        let f: f64 = d.to_string().parse().map_err(serde::ser::Error::custom)?;
        serializer.serialize_f64(f)
    }
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MoneyVisitor;
        impl Visitor<'_> for MoneyVisitor {
            type Value = Money;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a decimal number")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Money, E> {
                Ok(Money(Decimal::from(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Money, E> {
                Ok(Money(Decimal::from(v)))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Money, E> {
                if !v.is_finite() {
                    return Err(E::custom("amount must be finite"));
                }
                Money::parse(&v.to_string()).map_err(E::custom)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Money, E> {
                Money::parse(v).map_err(E::custom)
            }
        }
        deserializer.deserialize_any(MoneyVisitor)
    }
}

#[cfg(feature = "openapi")]
crate::newtype::named_schema!(
    Money => utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::Number)
        .description(Some(
            "An exact decimal amount written as a JSON number, without trailing zeros (`30`, `0.04`, `63.072`)",
        ))
        .examples([0.04])
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_json_form() {
        for text in ["30", "0.04", "63.072", "0", "1234567.891"] {
            let m: Money = serde_json::from_str(text).unwrap();
            assert_eq!(serde_json::to_string(&m).unwrap(), text);
        }
        let m: Money = serde_json::from_str("30.0").unwrap();
        assert_eq!(serde_json::to_string(&m).unwrap(), "30");
    }

    #[test]
    fn monthly_from_hourly_is_exact() {
        let hourly = Money::parse("0.0864").unwrap();
        assert_eq!(hourly.times(730).to_string(), "63.072");
    }
}
