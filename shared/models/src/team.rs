//! Teams, members and projects.

use serde::{Deserialize, Serialize};

use crate::ids::{BillingSettingsId, ProjectId, TeamId, UserId};
use crate::status::Role;
use crate::timestamp::Timestamp;

/// A team member and their role.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Member {
    /// The user.
    pub user: UserId,
    /// Their role.
    pub role: Role,
}

/// A team: the unit of access to VMs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Team {
    /// Id.
    #[serde(rename = "_id")]
    pub id: TeamId,
    /// Name.
    pub name: String,
    /// Contact e-mail.
    pub email: String,
    /// Members with roles.
    pub members: Vec<Member>,
    /// Created.
    pub created_at: Timestamp,
    /// Last changed.
    pub updated_at: Timestamp,
    /// Billing settings id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub billing_settings: Option<BillingSettingsId>,
}

impl Team {
    /// The role of `user`, if a member.
    pub fn role_of(&self, user: &UserId) -> Option<Role> {
        self.members
            .iter()
            .find(|m| &m.user == user)
            .map(|m| m.role)
    }
}

/// A project of a team; VMs belong to one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Project {
    /// Id.
    #[serde(rename = "_id")]
    pub id: ProjectId,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Environment label, e.g. `Development`.
    pub environment: String,
    /// Purpose.
    pub purpose: String,
    /// Whether this is the team's default project.
    pub is_default: bool,
    /// Icon number.
    pub icon: u32,
    /// Owner.
    pub owner: UserId,
    /// The team it belongs to.
    pub team: TeamId,
    /// Created.
    pub created_at: Timestamp,
    /// Last changed.
    pub updated_at: Timestamp,
}
