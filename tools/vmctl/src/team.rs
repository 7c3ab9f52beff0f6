//! `vmctl team create | add-member | remove-member | show` and `vmctl project create`: the
//! onboarding use cases of the core (`vmapi_core::Accounts`), with their checks.

use clap::Subcommand;
use vmapi_core::{MemberChange, NewProject, NewTeam};
use vmapi_models::{ProjectId, Role, TeamId, TeamQuotas, UserId};

use crate::ctx::Ctx;
use crate::error::AnyError;
use crate::output::table;

/// A role by name (`owner`, `admin`, `member`, `viewer`) or number (0–3).
fn parse_role(s: &str) -> Result<Role, String> {
    Role::ALL
        .iter()
        .copied()
        .find(|r| r.name() == s || r.code().to_string() == s)
        .ok_or_else(|| {
            format!("'{s}' is not a role: owner (0), admin (1), member (2) or viewer (3)")
        })
}

fn parse_user(s: &str) -> Result<UserId, String> {
    UserId::parse(s).map_err(|e| e.to_string())
}

#[derive(Subcommand)]
pub enum TeamCommand {
    /// Create a team whose only member is its owner (role 0); prints the new team's id.
    Create {
        /// The owner: the `sub` claim of their tokens from your identity provider.
        #[arg(long, value_parser = parse_user)]
        owner: UserId,
        /// The team's name (1 to 100 characters).
        #[arg(long)]
        name: String,
        /// The team's contact e-mail.
        #[arg(long)]
        email: String,
        /// Use this id (24 hex digits, e.g. the platform's own) instead of a new one; an id
        /// that exists is refused.
        #[arg(long)]
        id: Option<TeamId>,
        /// The team's own limit of active VMs (default: QUOTA_MAX_ACTIVE_VMS of the functions).
        #[arg(long)]
        max_active_vms: Option<u32>,
        /// The team's own limit of vCPUs (default: QUOTA_MAX_VCPUS of the functions).
        #[arg(long)]
        max_vcpus: Option<u32>,
    },
    /// Add a user to a team with a role, or give a member another role. A team keeps at least
    /// one owner: demoting the last one is refused.
    AddMember {
        /// The team id.
        team: TeamId,
        /// The user: the `sub` claim of their tokens.
        #[arg(long, value_parser = parse_user)]
        user: UserId,
        /// owner, admin, member or viewer (or 0–3).
        #[arg(long, value_parser = parse_role)]
        role: Role,
    },
    /// Remove a user from a team. The last owner cannot be removed.
    RemoveMember {
        /// The team id.
        team: TeamId,
        /// The user: the `sub` claim of their tokens.
        #[arg(long, value_parser = parse_user)]
        user: UserId,
        /// Only if the member has this role (a guard against removing the wrong one).
        #[arg(long, value_parser = parse_role)]
        role: Option<Role>,
    },
    /// Print a team and its members.
    Show {
        /// The team id.
        team: TeamId,
        /// Print the team record as JSON instead.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub enum ProjectCommand {
    /// Create a project of a team; prints the new project's id.
    Create {
        /// The team it belongs to.
        #[arg(long)]
        team: TeamId,
        /// The project's name (1 to 100 characters).
        #[arg(long)]
        name: String,
        /// Its owner: a member of the team who is not a viewer.
        #[arg(long, value_parser = parse_user)]
        owner: UserId,
        /// Use this id (24 hex digits) instead of a new one; an id that exists is refused.
        #[arg(long)]
        id: Option<ProjectId>,
        /// Description.
        #[arg(long, default_value = "")]
        description: String,
        /// Environment label.
        #[arg(long, default_value = "Development")]
        environment: String,
        /// Purpose.
        #[arg(long, default_value = "")]
        purpose: String,
        /// Mark it as the team's default project.
        #[arg(long)]
        default: bool,
        /// Icon number.
        #[arg(long, default_value_t = 1)]
        icon: u32,
    },
}

pub async fn run_team(cmd: TeamCommand, ctx: &Ctx) -> Result<(), AnyError> {
    let accounts = ctx.accounts().await;
    match cmd {
        TeamCommand::Create {
            owner,
            name,
            email,
            id,
            max_active_vms,
            max_vcpus,
        } => {
            let quotas = (max_active_vms.is_some() || max_vcpus.is_some()).then_some(TeamQuotas {
                max_active_vms,
                max_vcpus,
            });
            let team = accounts
                .create_team(NewTeam {
                    id,
                    name,
                    email,
                    owner: owner.clone(),
                    quotas,
                })
                .await?;
            println!("{}", team.id);
            eprintln!(
                "created team {} '{}' in table {}, owned by {owner}",
                team.id, team.name, ctx.settings.table
            );
        }
        TeamCommand::AddMember { team, user, role } => {
            match accounts.set_member(team, user.clone(), role).await? {
                MemberChange::Added(r) => println!("{user} joined team {team} as {}", r.name()),
                MemberChange::RoleChanged(was, now) => println!(
                    "{user} is now {} of team {team} (was {})",
                    now.name(),
                    was.name()
                ),
                MemberChange::Unchanged(r) => {
                    println!("{user} was already {} of team {team}", r.name())
                }
                MemberChange::Removed(_) => unreachable!("set_member adds or changes"),
            }
        }
        TeamCommand::RemoveMember { team, user, role } => {
            if let Some(expected) = role {
                let current = accounts.team(team).await?.role_of(&user);
                if current.is_some_and(|r| r != expected) {
                    return Err(format!(
                        "{user} is {} of team {team}, not {}: nothing removed",
                        current.map_or("", |r| r.name()),
                        expected.name()
                    )
                    .into());
                }
            }
            if let MemberChange::Removed(r) = accounts.remove_member(team, user.clone()).await? {
                println!("{user} ({}) left team {team}", r.name());
            }
        }
        TeamCommand::Show { team, json } => {
            let team = accounts.team(team).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&team)?);
                return Ok(());
            }
            println!("team {} '{}' <{}>", team.id, team.name, team.email);
            let rows: Vec<Vec<String>> = team
                .members
                .iter()
                .map(|m| {
                    vec![
                        m.user.to_string(),
                        format!("{} ({})", m.role.name(), m.role.code()),
                    ]
                })
                .collect();
            print!("{}", table(&["USER", "ROLE"], &rows));
        }
    }
    Ok(())
}

pub async fn run_project(cmd: ProjectCommand, ctx: &Ctx) -> Result<(), AnyError> {
    let ProjectCommand::Create {
        team,
        name,
        owner,
        id,
        description,
        environment,
        purpose,
        default,
        icon,
    } = cmd;
    let project = ctx
        .accounts()
        .await
        .create_project(NewProject {
            id,
            team,
            name,
            owner,
            description,
            environment,
            purpose,
            is_default: default,
            icon,
        })
        .await?;
    println!("{}", project.id);
    eprintln!(
        "created project {} '{}' of team {team} in table {}",
        project.id, project.name, ctx.settings.table
    );
    Ok(())
}
