//! Request bodies, parsed at the edge into typed values.

use serde::{Deserialize, Deserializer, Serialize};

use crate::catalog::{Image, Region};
use crate::ids::{CloudProviderId, PriceId, ProjectId, ProviderId, SizeId, SubscriptionId, TeamId};
use crate::names::{HostName, Tags};
use crate::status::AuthMethod;
use crate::vm::Access;

/// Body of `POST /api/virtual-machines` (flat, or wrapped as `{"data": {...}}` by the HTTP layer).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateVmRequest {
    /// Cloud provider.
    pub cloud_provider: CloudProviderId,
    /// Team.
    pub team: TeamId,
    /// Project of the team.
    pub project: ProjectId,
    /// One VM is created per host name (1–10).
    pub host_names: Vec<HostName>,
    /// Provider offering of the cloud provider.
    pub provider: ProviderId,
    /// Size of the provider.
    pub size: SizeId,
    /// Price of the size.
    pub price: PriceId,
    /// Subscription; `""` and `null` mean none.
    #[serde(default, deserialize_with = "empty_string_as_none")]
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
    pub quantity: Option<u32>,
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
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateVmRequest {
    /// New host name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<HostName>,
    /// New tags (replaces the old list).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Tags>,
}
