//! The catalog: cloud providers, providers with their locations and images, sizes, prices.

use serde::{Deserialize, Serialize};

use crate::ids::{CloudProviderId, LocationId, PriceId, ProviderId, SizeId};
use crate::money::Money;
use crate::reference::Ref;
use crate::timestamp::Timestamp;

/// A datacenter of a region.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Datacenter {
    /// Machine name, e.g. `berlin`.
    pub name: String,
    /// Display name, e.g. `Berlin`.
    pub display_name: String,
}

/// Where a VM runs.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Region {
    /// The datacenter.
    pub datacenter: Datacenter,
    /// Country or area, e.g. `Germany`.
    pub physical_location: String,
}

/// A location a provider offers: a region with an id of its own.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Location {
    /// Id.
    #[serde(rename = "_id")]
    pub id: LocationId,
    /// Where it is (what a VM's `region` names).
    #[serde(flatten)]
    pub region: Region,
}

/// An image version.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImageVersion {
    /// Machine name, e.g. `20_04-lts`.
    pub name: String,
    /// Display name, e.g. `20.04 LTS`.
    pub display_name: String,
}

/// The operating system image of a VM.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Image {
    /// The version.
    pub version: ImageVersion,
    /// Distribution, e.g. `Ubuntu`.
    pub distribution: String,
}

/// A cloud provider: Kraud.Cloud, Azure or AWS.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct CloudProvider {
    /// Id.
    #[serde(rename = "_id")]
    pub id: CloudProviderId,
    /// Display name, e.g. `Kraud.Cloud`.
    pub name: String,
    /// Disabled providers accept no new VMs.
    pub is_disabled: bool,
}

/// A provider offering as shown on the wire (`cloudProvider` populated or as id).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Provider {
    /// Id.
    #[serde(rename = "_id")]
    pub id: ProviderId,
    /// Kind of offering, `vm` here.
    #[serde(rename = "type")]
    pub kind: String,
    /// Disabled providers accept no new VMs.
    pub is_disabled: bool,
    /// The cloud provider.
    pub cloud_provider: CloudProviderRef,
}

/// A cloud provider: its id, or the object.
pub type CloudProviderRef = Ref<CloudProviderId, CloudProvider>;

/// A provider offering: its id, or the object.
pub type ProviderRef = Ref<ProviderId, Provider>;

/// A provider as stored: the wire fields plus the locations and images it offers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProviderRecord {
    /// Id.
    #[serde(rename = "_id")]
    pub id: ProviderId,
    /// Kind of offering, `vm` here.
    #[serde(rename = "type")]
    pub kind: String,
    /// Disabled providers accept no new VMs.
    pub is_disabled: bool,
    /// The cloud provider's id.
    pub cloud_provider: CloudProviderId,
    /// Locations this provider offers.
    #[serde(default)]
    pub locations: Vec<Location>,
    /// Images this provider offers.
    #[serde(default)]
    pub images: Vec<Image>,
    /// The cloud's image reference per image (`"Ubuntu/22_04-lts"` → AMI id, ARM image URN or
    /// OCI image), used by the provisioner.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub image_refs: std::collections::BTreeMap<String, String>,
}

impl ProviderRecord {
    /// The location with this id or datacenter name.
    pub fn location(&self, id_or_name: &str) -> Option<&Location> {
        self.locations
            .iter()
            .find(|l| l.id.to_string() == id_or_name || l.region.datacenter.name == id_or_name)
    }

    /// Whether it offers `region`.
    pub fn offers_region(&self, region: &Region) -> bool {
        self.locations.iter().any(|l| &l.region == region)
    }

    /// The key of an image in `image_refs`: `{distribution}/{version}`.
    pub fn image_key(image: &Image) -> String {
        format!("{}/{}", image.distribution, image.version.name)
    }

    /// The wire form, with the cloud provider populated when given.
    pub fn to_wire(&self, cloud: Option<&CloudProvider>) -> Provider {
        Provider {
            id: self.id,
            kind: self.kind.clone(),
            is_disabled: self.is_disabled,
            cloud_provider: match cloud {
                Some(c) => Ref::Populated(c.clone()),
                None => Ref::Id(self.cloud_provider),
            },
        }
    }
}

/// A machine size.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Size {
    /// Id.
    #[serde(rename = "_id")]
    pub id: SizeId,
    /// The provider offering it.
    pub provider: ProviderId,
    /// The location (datacenter name) it is offered in.
    pub location: String,
    /// Provider's size name, e.g. `Standart_berlin_1_4_50` or `m6a.large`.
    pub name: String,
    /// Virtual CPUs.
    #[serde(rename = "vCPUs")]
    pub vcpus: u32,
    /// Memory in GB.
    #[serde(rename = "memoryGB")]
    pub memory_gb: u32,
    /// Disk in GB.
    #[serde(rename = "spaceGB")]
    pub space_gb: u32,
    /// Size group (catalog grouping).
    pub group: u32,
    /// Confidential-computing technology VMs of this size get, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub confidential: Option<ConfidentialTech>,
}

/// A size: its id, or the object.
pub type SizeRef = Ref<SizeId, Size>;

/// A confidential-computing technology a size provides.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ConfidentialTech {
    /// AMD SEV-SNP.
    #[serde(rename = "sev-snp")]
    SevSnp,
    /// Intel TDX.
    #[serde(rename = "tdx")]
    Tdx,
}

impl ConfidentialTech {
    /// The catalog name (`sev-snp`, `tdx`).
    pub fn name(self) -> &'static str {
        match self {
            ConfidentialTech::SevSnp => "sev-snp",
            ConfidentialTech::Tdx => "tdx",
        }
    }
}

/// The price of a size with an image in a location.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Price {
    /// Id.
    #[serde(rename = "_id")]
    pub id: PriceId,
    /// The provider offering it.
    pub provider: ProviderId,
    /// Datacenter name the price is for.
    pub location_name: String,
    /// Size name the price is for.
    pub size_name: String,
    /// Image distribution the price is for.
    pub image_name: String,
    /// Price per hour.
    pub price_per_hour: Money,
    /// Price per month.
    pub price_per_month: Money,
    /// ISO 4217 currency, e.g. `EUR`.
    pub currency_code: String,
    /// Created.
    pub created_at: Timestamp,
    /// Last changed.
    pub updated_at: Timestamp,
}

/// A price: its id, or the object.
pub type PriceRef = Ref<PriceId, Price>;

/// A price with its size populated: what the catalog's price lookup answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PriceOffer {
    /// The price.
    #[serde(flatten)]
    pub price: Price,
    /// The size the price is for.
    pub size: Size,
}

/// The whole catalog: what `vmctl catalog import` writes and `vmctl catalog list` reads
/// (the format: `docs/catalog.md`, `data/catalog.schema.json`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Catalog {
    /// Cloud providers.
    #[serde(default)]
    pub cloud_providers: Vec<CloudProvider>,
    /// Providers with their locations, images and image references.
    #[serde(default)]
    pub providers: Vec<ProviderRecord>,
    /// Sizes.
    #[serde(default)]
    pub sizes: Vec<Size>,
    /// Prices.
    #[serde(default)]
    pub prices: Vec<Price>,
}

impl Catalog {
    /// Number of entries.
    pub fn len(&self) -> usize {
        self.cloud_providers.len() + self.providers.len() + self.sizes.len() + self.prices.len()
    }

    /// Whether it has no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
