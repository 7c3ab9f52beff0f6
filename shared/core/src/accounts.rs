//! Onboarding use cases of the operator: teams, their members, projects and the catalog.
//! Every write is conditional (a new id must be new; a member change applies to the team as it
//! was read), so two operators never overwrite each other's changes.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use vmapi_models::{
    Catalog, Member, Project, ProjectId, ProviderRecord, Role, Team, TeamId, TeamQuotas, UserId,
};

use crate::error::{Error, FieldError, NotFoundKind, Result};
use crate::ports::{AccountStore, Clock, Lookup, Repository};

/// Attempts of a member change that lost to a concurrent change of the same team.
const MEMBER_ATTEMPTS: u32 = 3;

/// A team to create.
#[derive(Clone, Debug)]
pub struct NewTeam {
    /// Its id (the platform's, when migrating); a new one when absent.
    pub id: Option<TeamId>,
    /// Name.
    pub name: String,
    /// Contact e-mail.
    pub email: String,
    /// Its first member, with role 0 owner (the `sub` of their tokens).
    pub owner: UserId,
    /// Its own quota limits, if any.
    pub quotas: Option<TeamQuotas>,
}

/// A project to create.
#[derive(Clone, Debug)]
pub struct NewProject {
    /// Its id; a new one when absent.
    pub id: Option<ProjectId>,
    /// The team it belongs to.
    pub team: TeamId,
    /// Name.
    pub name: String,
    /// Its owner: a member of the team who may change resources (not a viewer).
    pub owner: UserId,
    /// Description.
    pub description: String,
    /// Environment label, e.g. `Development`.
    pub environment: String,
    /// Purpose.
    pub purpose: String,
    /// Whether it is the team's default project.
    pub is_default: bool,
    /// Icon number.
    pub icon: u32,
}

/// What a member change did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MemberChange {
    /// The user joined with this role.
    Added(Role),
    /// The user's role changed from the first to the second.
    RoleChanged(Role, Role),
    /// The user already had this role; nothing was written.
    Unchanged(Role),
    /// The user, who had this role, left the team.
    Removed(Role),
}

/// The onboarding use cases.
pub struct Accounts {
    repo: Arc<dyn Repository>,
    store: Arc<dyn AccountStore>,
    clock: Arc<dyn Clock>,
}

fn check_name(field: &str, value: &str, problems: &mut Vec<FieldError>) {
    let n = value.trim().chars().count();
    if n == 0 || n > 100 || value.trim() != value {
        problems.push(FieldError::new(
            field,
            "must be 1 to 100 characters without leading or trailing spaces",
        ));
    }
}

impl Accounts {
    /// Over the repository (reads), the account store (writes) and a clock.
    pub fn new(
        repo: Arc<dyn Repository>,
        store: Arc<dyn AccountStore>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Accounts { repo, store, clock }
    }

    /// A team as stored.
    pub async fn team(&self, id: TeamId) -> Result<Team> {
        let mut lookup = Lookup::default();
        lookup.teams.insert(id);
        self.repo
            .lookup(&lookup)
            .await?
            .teams
            .remove(&id)
            .ok_or_else(|| Error::not_found(NotFoundKind::Team, id))
    }

    /// Creates a team whose only member is its owner.
    pub async fn create_team(&self, new: NewTeam) -> Result<Team> {
        let mut problems = Vec::new();
        check_name("name", &new.name, &mut problems);
        let email = new.email.trim();
        if email != new.email
            || email.len() > 254
            || email.chars().any(char::is_whitespace)
            || !email
                .split_once('@')
                .is_some_and(|(user, host)| !user.is_empty() && host.contains('.'))
        {
            problems.push(FieldError::new("email", "must be an e-mail address"));
        }
        if !problems.is_empty() {
            return Err(Error::invalid_fields(problems));
        }
        let now = self.clock.now();
        let team = Team {
            id: new.id.unwrap_or_default(),
            name: new.name,
            email: new.email,
            members: vec![Member {
                user: new.owner,
                role: Role::Owner,
            }],
            created_at: now,
            updated_at: now,
            billing_settings: None,
            quotas: new.quotas,
        };
        self.store.insert_team(&team).await?;
        Ok(team)
    }

    /// Adds `user` to a team with `role`, or gives a member `role`. A team keeps at least one
    /// owner: demoting the last one is refused.
    pub async fn set_member(&self, team: TeamId, user: UserId, role: Role) -> Result<MemberChange> {
        self.change_members(team, |t| {
            let change = match t.members.iter_mut().find(|m| m.user == user) {
                Some(m) if m.role == role => return Ok(MemberChange::Unchanged(role)),
                Some(m) => {
                    let was = m.role;
                    m.role = role;
                    MemberChange::RoleChanged(was, role)
                }
                None => {
                    t.members.push(Member {
                        user: user.clone(),
                        role,
                    });
                    MemberChange::Added(role)
                }
            };
            Ok(change)
        })
        .await
    }

    /// Removes `user` from a team. The last owner cannot leave.
    pub async fn remove_member(&self, team: TeamId, user: UserId) -> Result<MemberChange> {
        self.change_members(team, |t| {
            let Some(at) = t.members.iter().position(|m| m.user == user) else {
                return Err(Error::invalid_field(
                    "user",
                    format!("{user} is not a member of team {}", t.id),
                ));
            };
            Ok(MemberChange::Removed(t.members.remove(at).role))
        })
        .await
    }

    /// Reads the team, applies `change` and writes it back if the team is still as read
    /// (retrying a few times when another change came first).
    async fn change_members(
        &self,
        id: TeamId,
        change: impl Fn(&mut Team) -> Result<MemberChange>,
    ) -> Result<MemberChange> {
        let mut attempt = 1;
        loop {
            let before = self.team(id).await?;
            let mut team = before.clone();
            let done = change(&mut team)?;
            if matches!(done, MemberChange::Unchanged(_)) {
                return Ok(done);
            }
            if !team.members.iter().any(|m| m.role == Role::Owner) {
                return Err(Error::invalid_field(
                    "role",
                    format!("team {id} would have no owner left; make another member owner first"),
                ));
            }
            let now = self.clock.now();
            // Strictly later, so the condition on the old value cannot match a newer write.
            team.updated_at = if now > before.updated_at {
                now
            } else {
                vmapi_models::Timestamp::from_unix_millis(before.updated_at.unix_millis() + 1)
                    .unwrap_or(now)
            };
            match self.store.replace_team(&team, before.updated_at).await {
                Ok(()) => return Ok(done),
                Err(Error::VersionConflict) if attempt < MEMBER_ATTEMPTS => attempt += 1,
                Err(e) => return Err(e),
            }
        }
    }

    /// Creates a project of an existing team, owned by one of its members who may change
    /// resources.
    pub async fn create_project(&self, new: NewProject) -> Result<Project> {
        let mut problems = Vec::new();
        check_name("name", &new.name, &mut problems);
        if !problems.is_empty() {
            return Err(Error::invalid_fields(problems));
        }
        let team = self.team(new.team).await?;
        match team.role_of(&new.owner) {
            Some(role) if role.can_write() => {}
            Some(role) => {
                return Err(Error::invalid_field(
                    "owner",
                    format!(
                    "{} is a {} of team {}: a project's owner must be allowed to change resources",
                    new.owner,
                    role.name(),
                    team.id
                ),
                ))
            }
            None => {
                return Err(Error::invalid_field(
                    "owner",
                    format!("{} is not a member of team {}", new.owner, team.id),
                ))
            }
        }
        let now = self.clock.now();
        let project = Project {
            id: new.id.unwrap_or_default(),
            name: new.name,
            description: new.description,
            environment: new.environment,
            purpose: new.purpose,
            is_default: new.is_default,
            icon: new.icon,
            owner: new.owner,
            team: new.team,
            created_at: now,
            updated_at: now,
        };
        self.store.insert_project(&project).await?;
        Ok(project)
    }

    /// Checks a catalog ([`catalog_problems`]) and, when it has none, writes it.
    pub async fn import_catalog(&self, catalog: &Catalog) -> Result<usize> {
        let problems = catalog_problems(catalog);
        if !problems.is_empty() {
            return Err(Error::invalid_fields(problems));
        }
        self.store.put_catalog(catalog).await
    }

    /// The catalog as stored.
    pub async fn catalog(&self) -> Result<Catalog> {
        self.store.catalog().await
    }
}

/// What is wrong with a catalog beyond its shape (the JSON Schema's part): ids given twice
/// (a location's within its provider),
/// references to entries the catalog does not have, sizes in locations their provider does
/// not offer, prices for no size, image references for no image. One entry per problem,
/// naming the field (`sizes[2].location`) and what is wrong; empty when it is consistent.
pub fn catalog_problems(c: &Catalog) -> Vec<FieldError> {
    let mut out = Vec::new();
    fn dupes<T: Ord + std::fmt::Display>(
        list: &str,
        ids: impl Iterator<Item = T>,
        out: &mut Vec<FieldError>,
    ) {
        let mut seen = BTreeSet::new();
        for (i, id) in ids.enumerate() {
            let text = id.to_string();
            if !seen.insert(id) {
                out.push(FieldError::new(
                    format!("{list}[{i}]._id"),
                    format!("{text} is given twice"),
                ));
            }
        }
    }
    dupes(
        "cloudProviders",
        c.cloud_providers.iter().map(|x| x.id),
        &mut out,
    );
    dupes("providers", c.providers.iter().map(|x| x.id), &mut out);
    dupes("sizes", c.sizes.iter().map(|x| x.id), &mut out);
    dupes("prices", c.prices.iter().map(|x| x.id), &mut out);
    for (i, p) in c.providers.iter().enumerate() {
        dupes(
            &format!("providers[{i}].locations"),
            p.locations.iter().map(|l| l.id),
            &mut out,
        );
    }

    let clouds: BTreeSet<_> = c.cloud_providers.iter().map(|x| x.id).collect();
    let providers: HashMap<_, &ProviderRecord> = c.providers.iter().map(|p| (p.id, p)).collect();
    for (i, p) in c.providers.iter().enumerate() {
        if !clouds.contains(&p.cloud_provider) {
            out.push(FieldError::new(
                format!("providers[{i}].cloudProvider"),
                format!(
                    "{} is not a cloud provider of the catalog",
                    p.cloud_provider
                ),
            ));
        }
        let images: BTreeSet<String> = p.images.iter().map(ProviderRecord::image_key).collect();
        for key in p.image_refs.keys() {
            if !images.contains(key) {
                out.push(FieldError::new(
                    format!("providers[{i}].imageRefs.{key}"),
                    format!(
                        "names no image of the provider (its images: {})",
                        images.iter().cloned().collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
        }
    }
    for (i, z) in c.sizes.iter().enumerate() {
        match providers.get(&z.provider) {
            None => out.push(FieldError::new(
                format!("sizes[{i}].provider"),
                format!("{} is not a provider of the catalog", z.provider),
            )),
            Some(p)
                if !p
                    .locations
                    .iter()
                    .any(|l| l.region.datacenter.name == z.location) =>
            {
                out.push(FieldError::new(
                    format!("sizes[{i}].location"),
                    format!(
                        "provider {} offers no location '{}'",
                        z.provider, z.location
                    ),
                ))
            }
            Some(_) => {}
        }
    }
    for (i, pr) in c.prices.iter().enumerate() {
        let Some(p) = providers.get(&pr.provider) else {
            out.push(FieldError::new(
                format!("prices[{i}].provider"),
                format!("{} is not a provider of the catalog", pr.provider),
            ));
            continue;
        };
        if !c.sizes.iter().any(|z| {
            z.provider == pr.provider && z.name == pr.size_name && z.location == pr.location_name
        }) {
            out.push(FieldError::new(
                format!("prices[{i}].sizeName"),
                format!(
                    "provider {} has no size '{}' in '{}'",
                    pr.provider, pr.size_name, pr.location_name
                ),
            ));
        }
        if !p.images.iter().any(|im| im.distribution == pr.image_name) {
            out.push(FieldError::new(
                format!("prices[{i}].imageName"),
                format!(
                    "provider {} offers no image of distribution '{}'",
                    pr.provider, pr.image_name
                ),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemoryRepository;
    use crate::SystemClock;

    fn accounts() -> (Arc<MemoryRepository>, Accounts) {
        let repo = Arc::new(MemoryRepository::new());
        let a = Accounts::new(repo.clone(), repo.clone(), Arc::new(SystemClock));
        (repo, a)
    }

    fn user(s: &str) -> UserId {
        UserId::parse(s).unwrap()
    }

    fn new_team(owner: &str) -> NewTeam {
        NewTeam {
            id: None,
            name: "Acme".into(),
            email: "ops@acme.example".into(),
            owner: user(owner),
            quotas: None,
        }
    }

    #[tokio::test]
    async fn members_change_but_a_team_keeps_an_owner() {
        let (_, a) = accounts();
        let team = a.create_team(new_team("alice")).await.unwrap();
        assert_eq!(team.role_of(&user("alice")), Some(Role::Owner));
        assert_eq!(
            a.set_member(team.id, user("bob"), Role::Member)
                .await
                .unwrap(),
            MemberChange::Added(Role::Member)
        );
        assert_eq!(
            a.set_member(team.id, user("bob"), Role::Member)
                .await
                .unwrap(),
            MemberChange::Unchanged(Role::Member)
        );
        let e = a
            .set_member(team.id, user("alice"), Role::Admin)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("no owner left"), "{e}");
        let e = a.remove_member(team.id, user("alice")).await.unwrap_err();
        assert!(e.to_string().contains("no owner left"), "{e}");
        assert_eq!(
            a.set_member(team.id, user("bob"), Role::Owner)
                .await
                .unwrap(),
            MemberChange::RoleChanged(Role::Member, Role::Owner)
        );
        assert_eq!(
            a.remove_member(team.id, user("alice")).await.unwrap(),
            MemberChange::Removed(Role::Owner)
        );
        let stored = a.team(team.id).await.unwrap();
        assert_eq!(
            stored.members,
            vec![Member {
                user: user("bob"),
                role: Role::Owner
            }]
        );
        assert!(a.remove_member(team.id, user("carol")).await.is_err());
    }

    #[tokio::test]
    async fn a_team_needs_a_name_and_an_email_and_a_new_id() {
        let (_, a) = accounts();
        let mut bad = new_team("alice");
        bad.name = " ".into();
        bad.email = "nobody".into();
        let Error::Invalid { details, .. } = a.create_team(bad).await.unwrap_err() else {
            panic!("not invalid")
        };
        let fields: Vec<&str> = details.iter().map(|d| d.field.as_str()).collect();
        assert_eq!(fields, vec!["name", "email"]);
        let team = a.create_team(new_team("alice")).await.unwrap();
        let mut again = new_team("mallory");
        again.id = Some(team.id);
        assert!(a.create_team(again).await.is_err());
        assert_eq!(a.team(team.id).await.unwrap(), team);
    }

    #[tokio::test]
    async fn a_project_needs_its_team_and_an_owner_who_may_write() {
        let (_, a) = accounts();
        let team = a.create_team(new_team("alice")).await.unwrap();
        a.set_member(team.id, user("vera"), Role::Viewer)
            .await
            .unwrap();
        let new = |owner: &str, team: TeamId| NewProject {
            id: None,
            team,
            name: "web".into(),
            owner: user(owner),
            description: String::new(),
            environment: "Development".into(),
            purpose: String::new(),
            is_default: true,
            icon: 1,
        };
        assert!(matches!(
            a.create_project(new("alice", TeamId::new())).await,
            Err(Error::NotFound { .. })
        ));
        let e = a.create_project(new("vera", team.id)).await.unwrap_err();
        assert!(e.to_string().contains("viewer"), "{e}");
        let e = a.create_project(new("zed", team.id)).await.unwrap_err();
        assert!(e.to_string().contains("not a member"), "{e}");
        let p = a.create_project(new("alice", team.id)).await.unwrap();
        assert_eq!((p.team, p.owner.as_str()), (team.id, "alice"));
    }
}
