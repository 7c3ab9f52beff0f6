//! Address prefixes (`10.0.0.0/8`, `*` for any).

use std::fmt;
use std::str::FromStr;

use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::ParseError;

/// The remote address range of a rule (source of inbound, destination of outbound traffic): an
/// IPv4 or IPv6 network in CIDR notation with no host bits set. `*` on input means any IPv4
/// address (`0.0.0.0/0`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Cidr(pub IpNet);

impl Cidr {
    /// Every IPv4 address.
    pub fn any_v4() -> Self {
        Cidr("0.0.0.0/0".parse().expect("valid network"))
    }

    /// Whether it matches every address of its family.
    pub fn is_any(&self) -> bool {
        self.0.prefix_len() == 0
    }

    /// Whether it is an IPv6 network.
    pub fn is_v6(&self) -> bool {
        matches!(self.0, IpNet::V6(_))
    }
}

impl FromStr for Cidr {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        let s = s.trim();
        if s == "*" {
            return Ok(Cidr::any_v4());
        }
        let net: IpNet = s.parse().map_err(|_| {
            ParseError(format!(
                "`{}` is not a network in CIDR notation, e.g. 203.0.113.0/24 or \"*\"",
                crate::error::clip(s, 48)
            ))
        })?;
        if net.trunc() != net {
            return Err(ParseError(format!(
                "{net} has host bits set; the network is {}",
                net.trunc()
            )));
        }
        Ok(Cidr(net))
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Serialize for Cidr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}
