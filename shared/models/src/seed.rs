//! The catalog and team/project file loaded by `vmctl load` (the demo data is one).

use serde::{Deserialize, Serialize};

use crate::catalog::{Catalog, CloudProvider, Price, ProviderRecord, Size};
use crate::team::{Project, Team};

/// Catalog entries plus teams and projects, as one JSON document.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Seed {
    /// Cloud providers.
    #[serde(default)]
    pub cloud_providers: Vec<CloudProvider>,
    /// Providers with their locations and images.
    #[serde(default)]
    pub providers: Vec<ProviderRecord>,
    /// Sizes.
    #[serde(default)]
    pub sizes: Vec<Size>,
    /// Prices.
    #[serde(default)]
    pub prices: Vec<Price>,
    /// Teams with members.
    #[serde(default)]
    pub teams: Vec<Team>,
    /// Projects.
    #[serde(default)]
    pub projects: Vec<Project>,
}

impl Seed {
    /// The catalog part of the file.
    pub fn catalog(&self) -> Catalog {
        Catalog {
            cloud_providers: self.cloud_providers.clone(),
            providers: self.providers.clone(),
            sizes: self.sizes.clone(),
            prices: self.prices.clone(),
        }
    }
}
