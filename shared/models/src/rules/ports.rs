//! Port ranges (`22`, `8000-8080`, `*`) and a rule's ports.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::limits::MAX_PORT_RANGES;
use crate::ParseError;

/// An inclusive port range, `from` ≤ `to`, both 1–65535. Written `22` or `8000-8090`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortRange {
    /// First port.
    pub from: u16,
    /// Last port.
    pub to: u16,
}

impl FromStr for PortRange {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        let port = |p: &str| -> Result<u16, ParseError> {
            match p.trim().parse::<u16>() {
                Ok(n) if n >= 1 => Ok(n),
                _ => Err(ParseError(format!(
                    "`{}` is not a port (1-65535)",
                    crate::error::clip(p, 16)
                ))),
            }
        };
        let (from, to) = match s.split_once('-') {
            Some((a, b)) => (port(a)?, port(b)?),
            None => {
                let p = port(s)?;
                (p, p)
            }
        };
        if from > to {
            return Err(ParseError(format!(
                "port range {from}-{to} ends before it starts"
            )));
        }
        Ok(PortRange { from, to })
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.from == self.to {
            write!(f, "{}", self.from)
        } else {
            write!(f, "{}-{}", self.from, self.to)
        }
    }
}

/// The destination ports of a rule: every port (`["*"]`) or 1–16 non-overlapping ranges, kept
/// sorted. On the wire an array of strings (`["22"]`, `["80", "8000-8090"]`, `["*"]`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Ports {
    /// Every port.
    Any,
    /// These ranges.
    Ranges(Vec<PortRange>),
}

impl Ports {
    /// Parses the wire strings.
    pub fn parse<S: AsRef<str>>(items: &[S]) -> Result<Self, ParseError> {
        if items.is_empty() {
            return Err(ParseError(
                "give at least one port or range, or \"*\" for every port".into(),
            ));
        }
        if items.iter().any(|s| s.as_ref().trim() == "*") {
            return if items.len() == 1 {
                Ok(Ports::Any)
            } else {
                Err(ParseError(
                    "\"*\" (every port) cannot be combined with other ranges".into(),
                ))
            };
        }
        if items.len() > MAX_PORT_RANGES {
            return Err(ParseError(format!(
                "at most {MAX_PORT_RANGES} port ranges per rule"
            )));
        }
        let mut ranges = items
            .iter()
            .map(|s| s.as_ref().parse::<PortRange>())
            .collect::<Result<Vec<_>, _>>()?;
        ranges.sort();
        for pair in ranges.windows(2) {
            if pair[1].from <= pair[0].to {
                return Err(ParseError(format!(
                    "port ranges {} and {} overlap",
                    pair[0], pair[1]
                )));
            }
        }
        Ok(Ports::Ranges(ranges))
    }

    /// The wire strings.
    pub fn to_strings(&self) -> Vec<String> {
        match self {
            Ports::Any => vec!["*".into()],
            Ports::Ranges(r) => r.iter().map(ToString::to_string).collect(),
        }
    }

    /// Whether every port is meant.
    pub fn is_any(&self) -> bool {
        matches!(self, Ports::Any)
    }
}

impl Serialize for Ports {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_strings().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Ports {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let items = Vec::<String>::deserialize(d)?;
        Ports::parse(&items).map_err(serde::de::Error::custom)
    }
}
