//! Per-team quotas: how many active VMs a team may have, and how many vCPUs (the sizes'
//! `vCPUs`, summed) those VMs may have. Defaults come from the configuration; a team's record
//! may set its own. The repository enforces them in the create's own atomic write, so
//! concurrent creates never exceed them.

use vmapi_models::{Team, TeamId, VmRecord};

use crate::error::{ConflictCode, Error};

/// Default of `QUOTA_MAX_ACTIVE_VMS`.
pub const DEFAULT_MAX_ACTIVE_VMS: u32 = 50;
/// Default of `QUOTA_MAX_VCPUS`.
pub const DEFAULT_MAX_VCPUS: u32 = 200;

/// A team's usage (its active VMs and their vCPUs), or what a request adds to it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Active VMs (every status but deleting and deleted).
    pub active_vms: u64,
    /// Their vCPUs.
    pub vcpus: u64,
}

impl Usage {
    /// What `vms` count: the VMs that carry a vCPU count (every VM made since quotas exist).
    pub fn of(vms: &[VmRecord]) -> Usage {
        vms.iter()
            .filter_map(|vm| vm.vcpus)
            .fold(Usage::default(), |u, c| Usage {
                active_vms: u.active_vms + 1,
                vcpus: u.vcpus + u64::from(c),
            })
    }

    /// Whether nothing is counted.
    pub fn is_zero(&self) -> bool {
        self.active_vms == 0 && self.vcpus == 0
    }
}

/// The limits a team's usage must stay within.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuotaLimits {
    /// Most active VMs.
    pub max_active_vms: u32,
    /// Most vCPUs of active VMs.
    pub max_vcpus: u32,
}

impl Default for QuotaLimits {
    fn default() -> Self {
        QuotaLimits {
            max_active_vms: DEFAULT_MAX_ACTIVE_VMS,
            max_vcpus: DEFAULT_MAX_VCPUS,
        }
    }
}

impl QuotaLimits {
    /// These defaults with the team's own limits where its record sets them.
    pub fn for_team(&self, team: &Team) -> QuotaLimits {
        let own = team.quotas.unwrap_or_default();
        QuotaLimits {
            max_active_vms: own.max_active_vms.unwrap_or(self.max_active_vms),
            max_vcpus: own.max_vcpus.unwrap_or(self.max_vcpus),
        }
    }

    /// The most usage a team may have for `add` still to fit (the thresholds of the write's
    /// condition), or `None` when `add` alone is over a limit.
    pub fn room_before(&self, add: Usage) -> Option<Usage> {
        Some(Usage {
            active_vms: u64::from(self.max_active_vms).checked_sub(add.active_vms)?,
            vcpus: u64::from(self.max_vcpus).checked_sub(add.vcpus)?,
        })
    }

    /// Whether `current + add` stays within the limits.
    pub fn admits(&self, current: Usage, add: Usage) -> bool {
        self.room_before(add).is_some_and(|room| {
            current.active_vms <= room.active_vms && current.vcpus <= room.vcpus
        })
    }

    /// The 409 `QUOTA_EXCEEDED` for `team`, naming each limit `current + add` exceeds
    /// (`current` unknown: only what was asked).
    pub fn refusal(&self, team: TeamId, current: Option<Usage>, add: Usage) -> Error {
        let have = current.unwrap_or_default();
        let mut over = Vec::new();
        let vms_over = have.active_vms + add.active_vms > u64::from(self.max_active_vms);
        let vcpus_over = have.vcpus + add.vcpus > u64::from(self.max_vcpus);
        let describe = |what: &str, max: u32, has: u64, asked: u64| match current {
            Some(_) => format!("at most {max} {what}; it has {has} and asked for {asked} more"),
            None => format!("at most {max} {what}; the request asks for {asked}"),
        };
        if vms_over || !vcpus_over {
            over.push(describe(
                "active VMs",
                self.max_active_vms,
                have.active_vms,
                add.active_vms,
            ));
        }
        if vcpus_over {
            over.push(describe(
                "vCPUs in active VMs",
                self.max_vcpus,
                have.vcpus,
                add.vcpus,
            ));
        }
        Error::conflict(
            ConflictCode::QuotaExceeded,
            format!(
                "quota exceeded: team {team} may have {}; delete VMs or ask for a higher quota",
                over.join(", and ")
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vmapi_models::TeamQuotas;

    fn usage(active_vms: u64, vcpus: u64) -> Usage {
        Usage { active_vms, vcpus }
    }

    const LIMITS: QuotaLimits = QuotaLimits {
        max_active_vms: 10,
        max_vcpus: 20,
    };

    #[test]
    fn the_thresholds_are_the_limits_minus_what_is_asked() {
        assert_eq!(LIMITS.room_before(usage(2, 4)), Some(usage(8, 16)));
        assert_eq!(LIMITS.room_before(usage(10, 20)), Some(usage(0, 0)));
        assert_eq!(
            LIMITS.room_before(usage(11, 2)),
            None,
            "more VMs than allowed"
        );
        assert_eq!(
            LIMITS.room_before(usage(1, 21)),
            None,
            "more vCPUs than allowed"
        );
    }

    #[test]
    fn admits_up_to_the_limit_and_not_beyond() {
        assert!(LIMITS.admits(usage(0, 0), usage(10, 20)));
        assert!(LIMITS.admits(usage(9, 18), usage(1, 2)));
        assert!(!LIMITS.admits(usage(9, 18), usage(2, 2)));
        assert!(!LIMITS.admits(usage(9, 19), usage(1, 2)));
        assert!(!LIMITS.admits(usage(0, 0), usage(11, 0)));
    }

    #[test]
    fn a_team_overrides_each_limit_on_its_own() {
        let mut team: Team = serde_json::from_value(serde_json::json!({
            "_id": "6548a41f38406c14db33b61e", "name": "t", "email": "t@example.com",
            "members": [], "createdAt": "2023-11-06T08:00:00.000Z",
            "updatedAt": "2023-11-06T08:00:00.000Z"
        }))
        .unwrap();
        assert_eq!(LIMITS.for_team(&team), LIMITS);
        team.quotas = Some(TeamQuotas {
            max_active_vms: Some(3),
            max_vcpus: None,
        });
        assert_eq!(
            LIMITS.for_team(&team),
            QuotaLimits {
                max_active_vms: 3,
                max_vcpus: 20
            }
        );
    }

    #[test]
    fn the_refusal_names_the_limit_the_usage_and_the_request() {
        let team = TeamId::parse("6548a41f38406c14db33b61e").unwrap();
        let e = LIMITS.refusal(team, Some(usage(9, 9)), usage(2, 2));
        assert!(matches!(
            &e,
            Error::Conflict { code: ConflictCode::QuotaExceeded, message }
                if message.contains("at most 10 active VMs; it has 9 and asked for 2 more")
                    && !message.contains("vCPU")
        ));
        let e = LIMITS.refusal(team, Some(usage(1, 19)), usage(1, 4));
        assert!(e
            .to_string()
            .contains("at most 20 vCPUs in active VMs; it has 19 and asked for 4 more"));
        assert!(!e.to_string().contains("at most 10 active VMs"), "{e}");
        let e = LIMITS.refusal(team, None, usage(11, 2));
        assert!(e
            .to_string()
            .contains("at most 10 active VMs; the request asks for 11"));
    }
}
