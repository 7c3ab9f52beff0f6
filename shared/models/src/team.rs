//! Teams, members and projects.

use serde::{Deserialize, Serialize};

use crate::ids::{BillingSettingsId, ProjectId, TeamId, UserId};
use crate::reference::Ref;
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
    /// The team's own limits, where they differ from the service's defaults
    /// (`QUOTA_MAX_ACTIVE_VMS`, `QUOTA_MAX_VCPUS`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub quotas: Option<TeamQuotas>,
}

/// A team: its id, or the object.
pub type TeamRef = Ref<TeamId, Team>;

/// A team's own quota limits; an absent limit is the service's default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TeamQuotas {
    /// Most active VMs (every status but 5 deleting and 8 deleted) the team may have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub max_active_vms: Option<u32>,
    /// Most vCPUs (the sizes' `vCPUs`, summed over the active VMs) the team may have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub max_vcpus: Option<u32>,
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

/// A project: its id, or the object.
pub type ProjectRef = Ref<ProjectId, Project>;

#[cfg(test)]
mod tests {
    use super::*;

    const TEAM: &str = r#"{"_id": "6548a41f38406c14db33b61e", "name": "t", "email": "t@example.com",
        "members": [], "createdAt": "2023-11-06T08:00:00.000Z", "updatedAt": "2023-11-06T08:00:00.000Z""#;

    #[test]
    fn quotas_are_optional_and_round_trip() {
        let plain: Team = serde_json::from_str(&format!("{TEAM}}}")).unwrap();
        assert_eq!(plain.quotas, None);
        assert!(serde_json::to_value(&plain)
            .unwrap()
            .get("quotas")
            .is_none());

        let own: Team =
            serde_json::from_str(&format!(r#"{TEAM}, "quotas": {{"maxActiveVms": 10}}}}"#))
                .unwrap();
        assert_eq!(
            own.quotas,
            Some(TeamQuotas {
                max_active_vms: Some(10),
                max_vcpus: None
            })
        );
        let back = serde_json::to_value(&own).unwrap();
        assert_eq!(back["quotas"], serde_json::json!({"maxActiveVms": 10}));
        assert_eq!(serde_json::from_value::<Team>(back).unwrap(), own);

        // A misspelt limit is refused rather than ignored.
        assert!(
            serde_json::from_str::<Team>(&format!(r#"{TEAM}, "quotas": {{"maxVms": 10}}}}"#))
                .is_err()
        );
    }
}
