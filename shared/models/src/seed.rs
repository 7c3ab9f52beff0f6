//! The catalog and team/project file loaded by `vmctl load` (the demo data is one).

use serde::{Deserialize, Serialize};

use crate::catalog::{Catalog, CloudProvider, Price, ProviderRecord, Size};
use crate::ids::{SecurityRuleId, UserId, VmId};
use crate::requests::CreateVmRequest;
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
    /// VMs the local run (`vmctl dev`) creates, with fixed ids, through the create use case
    /// (logins, default rule, pending create for the provisioner). `vmctl load` leaves them out.
    #[serde(default)]
    pub demo_vms: Vec<DemoVm>,
}

/// A VM of the demo data: the create request of its owner, with the ids it gets.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DemoVm {
    /// The VM's id (the events in `events/` name these).
    pub id: VmId,
    /// The id of its default security rule.
    pub default_rule: SecurityRuleId,
    /// Who creates it (its owner).
    pub owner: UserId,
    /// The create request, with one host name.
    pub request: CreateVmRequest,
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
