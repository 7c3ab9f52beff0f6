//! Request bodies, parsed at the edge into typed values.

use serde::{Deserialize, Deserializer, Serialize};

use crate::catalog::{Image, Region};
use crate::ids::{CloudProviderId, PriceId, ProjectId, ProviderId, SizeId, SubscriptionId, TeamId};
use crate::names::{HostName, Tags};
use crate::status::AuthMethod;
use crate::vm::Access;

/// Body of `POST /api/virtual-machines` (flat, or wrapped as `{"data": {...}}` by the HTTP layer).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateVmRequest {
    /// Cloud provider.
    pub cloud_provider: CloudProviderId,
    /// Team.
    pub team: TeamId,
    /// Project of the team.
    pub project: ProjectId,
    /// One VM is created per host name (1–10).
    #[cfg_attr(feature = "openapi", schema(min_items = 1, max_items = 10))]
    pub host_names: Vec<HostName>,
    /// Provider offering of the cloud provider.
    pub provider: ProviderId,
    /// Size of the provider.
    pub size: SizeId,
    /// Price of the size.
    pub price: PriceId,
    /// Subscription; `""` and `null` mean none.
    #[serde(default, deserialize_with = "empty_string_as_none")]
    #[cfg_attr(feature = "openapi", schema(schema_with = schema::subscription))]
    pub subscription: Option<SubscriptionId>,
    /// Tags.
    #[serde(default)]
    pub tags: Tags,
    /// `null` (generate a login) or the user's own public key.
    #[serde(default)]
    pub access: Option<Access>,
    /// Region; must be a location of the price's catalog.
    pub region: Region,
    /// Image; must be an image of the price's catalog.
    pub image: Image,
    /// Login method.
    pub auth_method: AuthMethod,
    /// When given, must equal the number of host names.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 10))]
    pub quantity: Option<u32>,
    /// Optional expiry: the cleanup job deletes the VMs after it (must be in the future).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<crate::Timestamp>,
}

/// OpenAPI schemas of request fields read by hand (feature `openapi`).
#[cfg(feature = "openapi")]
mod schema {
    use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};

    /// `subscription`: an id, or `""` / `null` for none (one schema, not a `oneOf`, so that
    /// generated clients take a plain optional string).
    pub(super) fn subscription() -> ObjectBuilder {
        ObjectBuilder::new()
            .schema_type(SchemaType::Array(vec![Type::String, Type::Null]))
            .pattern(Some("^([0-9a-f]{24})?$"))
            .description(Some(
                "Subscription: its id (24 hexadecimal digits); `\"\"` and `null` mean none",
            ))
    }
}

fn empty_string_as_none<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<SubscriptionId>, D::Error> {
    match Option::<String>::deserialize(d)? {
        None => Ok(None),
        Some(s) if s.is_empty() => Ok(None),
        Some(s) => SubscriptionId::parse(&s)
            .map(Some)
            .map_err(serde::de::Error::custom),
    }
}

/// Body of `PATCH /api/virtual-machines/{id}`: only `name` and `tags` may change.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateVmRequest {
    /// New host name.
    #[serde(
        default,
        deserialize_with = "not_null",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = HostName))]
    pub name: Option<HostName>,
    /// New tags (replaces the old list).
    #[serde(
        default,
        deserialize_with = "not_null",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Tags))]
    pub tags: Option<Tags>,
    /// New expiry (`null` removes it).
    #[serde(
        default,
        deserialize_with = "present_or_null",
        skip_serializing_if = "Option::is_none"
    )]
    pub expires_at: Option<Option<crate::Timestamp>>,
}

/// Body of `PUT /api/virtual-machines/{id}/resize`: the new size and its price, both of the
/// VM's provider, location and image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResizeVmRequest {
    /// The new size.
    pub size: crate::SizeId,
    /// The new price: the new size's, for the VM's location and image.
    pub price: crate::PriceId,
}

/// A present field must hold a value: an explicit `null` is refused like any other wrong type
/// (absent fields stay `None`, "unchanged").
fn not_null<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// `Some(None)` for an explicit `null`, `Some(Some(t))` for a value (absent fields stay `None`).
fn present_or_null<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<crate::Timestamp>>, D::Error> {
    Option::<crate::Timestamp>::deserialize(d).map(Some)
}

/// Field names that would carry a plaintext password or private key, compared without case,
/// `_` or `-`. No request of this API may carry one: the service generates logins itself.
const SECRET_FIELD_NAMES: [&str; 10] = [
    "password",
    "passwd",
    "rootpassword",
    "adminpassword",
    "userpassword",
    "privatekey",
    "sshprivatekey",
    "secret",
    "clientsecret",
    "passphrase",
];

/// Paths (e.g. `access.password`) of every object key in `value` that would carry a secret.
pub fn secret_fields(value: &serde_json::Value) -> Vec<String> {
    fn walk(value: &serde_json::Value, path: &str, out: &mut Vec<String>) {
        match value {
            serde_json::Value::Object(map) => {
                for (key, inner) in map {
                    let here = if path.is_empty() {
                        key.clone()
                    } else {
                        format!("{path}.{key}")
                    };
                    let norm: String = key
                        .chars()
                        .filter(|c| *c != '_' && *c != '-')
                        .collect::<String>()
                        .to_ascii_lowercase();
                    if SECRET_FIELD_NAMES.contains(&norm.as_str()) {
                        out.push(here.clone());
                    }
                    walk(inner, &here, out);
                }
            }
            serde_json::Value::Array(items) => {
                for (i, inner) in items.iter().enumerate() {
                    walk(inner, &format!("{path}[{i}]"), out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(value, "", &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_update_refuses_null_where_absent_means_unchanged() {
        let parse = |v: serde_json::Value| serde_json::from_value::<UpdateVmRequest>(v);
        for field in ["name", "tags"] {
            let e = parse(serde_json::json!({ field: null }))
                .unwrap_err()
                .to_string();
            assert!(e.contains("invalid type: null"), "{field}: {e}");
        }
        assert_eq!(
            parse(serde_json::json!({})).unwrap(),
            UpdateVmRequest::default()
        );
        let r = parse(serde_json::json!({"tags": [], "expiresAt": null})).unwrap();
        assert_eq!(
            (r.tags, r.expires_at),
            (Some(Tags::new(vec![]).unwrap()), Some(None))
        );
    }

    #[test]
    fn finds_fields_that_would_carry_secrets() {
        let v = serde_json::json!({
            "password": "x",
            "access": {"Password": "y", "sshPublicKey": "ssh-ed25519 AAAA"},
            "hostNames": [{"root_password": 1}],
            "data": {"ssh-private-key": "k"},
            "name": "password"
        });
        let mut found = secret_fields(&v);
        found.sort();
        assert_eq!(
            found,
            [
                "access.Password",
                "data.ssh-private-key",
                "hostNames[0].root_password",
                "password"
            ]
        );
        assert!(secret_fields(&serde_json::json!({"authMethod": 0, "access": null})).is_empty());
    }
}
