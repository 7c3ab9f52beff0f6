//! Numeric enums of the wire format: VM status, login method, team role.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! numeric_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $num:literal => $text:literal),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($(#[$vdoc])* $variant = $num),* }

        impl $name {
            /// Every value, in numeric order.
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            /// The number on the wire.
            pub fn code(self) -> u8 {
                self as u8
            }

            /// The lower-case name.
            pub fn name(self) -> &'static str {
                match self { $($name::$variant => $text),* }
            }

            /// From the number on the wire.
            pub fn from_code(code: u64) -> Option<Self> {
                match code { $($num => Some($name::$variant),)* _ => None }
            }

            /// From the lower-case name.
            pub fn from_name(name: &str) -> Option<Self> {
                match name { $($text => Some($name::$variant),)* _ => None }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", self.name(), self.code())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_u8(self.code())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let code = u64::deserialize(deserializer)?;
                $name::from_code(code).ok_or_else(|| {
                    let allowed: Vec<String> = $name::ALL.iter().map(|v| format!("{} ({})", v.code(), v.name())).collect();
                    serde::de::Error::custom(format!(
                        concat!("{} is not a valid ", stringify!($name), "; expected one of {}"),
                        code,
                        allowed.join(", ")
                    ))
                })
            }
        }

        #[cfg(feature = "openapi")]
        $crate::newtype::named_schema!(
            $name => numeric_enum_schema($name::ALL.iter().map(|v| (v.code(), v.name())))
        );
    };
}

/// An integer enum whose description names every value ("0 creating, 1 provisioning, ...");
/// the names are also in `x-enum-varnames`, which code generators read.
#[cfg(feature = "openapi")]
fn numeric_enum_schema(
    values: impl Iterator<Item = (u8, &'static str)> + Clone,
) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    use utoipa::openapi::extensions::ExtensionsBuilder;
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    let named: Vec<String> = values
        .clone()
        .map(|(code, name)| format!("{code} {name}"))
        .collect();
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .enum_values(Some(values.clone().map(|(code, _)| code)))
        .description(Some(named.join(", ")))
        .extensions(Some(
            ExtensionsBuilder::new()
                .add(
                    "x-enum-varnames",
                    values.map(|(_, name)| name).collect::<Vec<_>>(),
                )
                .build(),
        ))
        .into()
}

numeric_enum!(
    /// Lifecycle state of a VM. Allowed transitions live in `vmapi_core::lifecycle`.
    VmStatus {
        /// Record written, cloud work not started.
        Creating = 0 => "creating",
        /// The cloud is building the VM.
        Provisioning = 1 => "provisioning",
        /// Start requested.
        Starting = 2 => "starting",
        /// Running.
        Running = 3 => "running",
        /// Stop requested.
        Stopping = 4 => "stopping",
        /// Delete requested; cloud teardown under way.
        Deleting = 5 => "deleting",
        /// The cloud reported an error.
        Failed = 6 => "failed",
        /// Stopped.
        Stopped = 7 => "stopped",
        /// Gone; kept only until purged.
        Deleted = 8 => "deleted",
    }
);

impl VmStatus {
    /// Whether lists show a VM in this status (every status but deleting and deleted).
    pub fn is_active(self) -> bool {
        !matches!(self, VmStatus::Deleting | VmStatus::Deleted)
    }
}

numeric_enum!(
    /// How users log in to a VM.
    AuthMethod {
        /// Root password.
        Password = 0 => "password",
        /// SSH key pair.
        SshKey = 1 => "sshKey",
    }
);

numeric_enum!(
    /// A member's role in a team.
    Role {
        /// Owns the team.
        Owner = 0 => "owner",
        /// Administers the team.
        Admin = 1 => "admin",
        /// Uses the team's resources.
        Member = 2 => "member",
        /// Reads only.
        Viewer = 3 => "viewer",
    }
);

impl Role {
    /// Whether this role may change resources.
    pub fn can_write(self) -> bool {
        !matches!(self, Role::Viewer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes_match_design() {
        let names: Vec<(u8, &str)> = VmStatus::ALL.iter().map(|s| (s.code(), s.name())).collect();
        assert_eq!(
            names,
            vec![
                (0, "creating"),
                (1, "provisioning"),
                (2, "starting"),
                (3, "running"),
                (4, "stopping"),
                (5, "deleting"),
                (6, "failed"),
                (7, "stopped"),
                (8, "deleted")
            ]
        );
        assert_eq!(serde_json::to_string(&VmStatus::Running).unwrap(), "3");
        assert_eq!(
            serde_json::from_str::<VmStatus>("7").unwrap(),
            VmStatus::Stopped
        );
        let err = serde_json::from_str::<VmStatus>("9")
            .unwrap_err()
            .to_string();
        assert!(err.contains("9 is not a valid VmStatus"), "{err}");
    }

    #[test]
    fn auth_method_and_role() {
        assert_eq!(
            serde_json::from_str::<AuthMethod>("1").unwrap(),
            AuthMethod::SshKey
        );
        assert!(serde_json::from_str::<AuthMethod>("2").is_err());
        assert!(serde_json::from_str::<AuthMethod>("\"1\"").is_err());
        assert!(!Role::Viewer.can_write());
        assert!(Role::Member.can_write());
    }
}
