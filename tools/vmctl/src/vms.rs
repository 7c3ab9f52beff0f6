//! `vmctl vms stale | stuck | retry | backfill`: the cleanup job's candidates and stuck
//! operations as tables, re-arming a stuck operation (`vmapi_core::Operations`), and the
//! team-index keys of records from before the index.

use std::sync::Arc;
use std::time::Duration;

use clap::Subcommand;
use vmapi_core::{Cleanup, Operations, SystemClock};
use vmapi_models::{Timestamp, VmId, VmRecord};

use crate::ctx::Ctx;
use crate::error::AnyError;
use crate::output::table;

#[derive(Subcommand)]
pub enum VmsCommand {
    /// The cleanup job's candidates as a table: the VMs the stale index names as past the
    /// cleanup periods (CLEANUP_TRANSITIONAL_MINUTES, CLEANUP_FAILED_RETENTION_DAYS,
    /// CLEANUP_DELETED_RETENTION_DAYS, expiries), and the VMs of removed teams and projects,
    /// each with what the next run would do. Reads only.
    Stale {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// VMs whose pending operation was asked for more than N minutes ago, or which sit in a
    /// transitional status with no pending operation (their stream record was lost) for as
    /// long. Reads only; `vms retry` re-arms one.
    Stuck {
        /// Age in minutes.
        #[arg(long, default_value_t = 15)]
        minutes: u64,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Re-arm a VM's stuck operation: one write, conditional on the VM's version, that counts
    /// an attempt (and restores the pending operation its status needs when it was lost), so
    /// the table's stream hands it to the provisioner again; recorded as `vm.retry` by
    /// `operator:vmctl`. The answer to a batch in the provisioner's on-failure queue, whose
    /// message names shards and sequence numbers, not VMs: list them with `vms stuck`, retry
    /// each. Refused for a VM with nothing pending.
    Retry {
        /// The VM id.
        id: VmId,
    },
    /// Once, after upgrading a table from before team costs (docs/deploy.md "Upgrading"): give
    /// every VM record without team-index keys the keys its next write would give it, so it
    /// shows in the admin list and the team's costs. Scans the whole table; each record is
    /// one write, conditional on the version read (a record written meanwhile got its keys
    /// from that write). Safe to run again.
    Backfill {
        /// List the records without writing.
        #[arg(long)]
        dry_run: bool,
    },
}

fn age(since: Timestamp, now: Timestamp) -> String {
    let mins = (now.unix_millis() - since.unix_millis()).max(0) / 60_000;
    match mins {
        m if m < 120 => format!("{m}m"),
        m if m < 48 * 60 => format!("{}h", m / 60),
        m => format!("{}d", m / (24 * 60)),
    }
}

fn pending(vm: &VmRecord) -> String {
    match &vm.pending_op {
        Some(p) => format!("{} #{}", p.op.name(), p.attempt),
        None => "-".into(),
    }
}

pub async fn run(cmd: VmsCommand, ctx: &Ctx) -> Result<(), AnyError> {
    let repo = ctx.repo().await;
    let now = Timestamp::now();
    match cmd {
        VmsCommand::Stale { json } => {
            let policy = vmapi_provision::config::cleanup_policy(&ctx.settings.env())?;
            let cleanup = Cleanup::new(repo, Arc::new(SystemClock), None, policy);
            let candidates = cleanup.candidates().await?;
            if json {
                let rows: Vec<serde_json::Value> = candidates
                    .iter()
                    .map(|c| {
                        serde_json::json!({
                            "id": c.vm.id,
                            "category": c.stale.map(|(cat, _)| cat.name()),
                            "since": c.stale.map(|(_, since)| since),
                            "status": c.vm.status.name(),
                            "pendingOp": c.vm.pending_op,
                            "team": c.vm.team,
                            "project": c.vm.project,
                            "removed": c.removed.map(|g| g.to_string()),
                            "action": c.action,
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
                return Ok(());
            }
            let rows: Vec<Vec<String>> = candidates
                .iter()
                .map(|c| {
                    vec![
                        c.vm.id.to_string(),
                        c.stale.map_or_else(
                            || c.removed.map_or("-".into(), |g| g.to_string() + " removed"),
                            |(cat, _)| cat.name().to_string(),
                        ),
                        c.stale.map_or("-".into(), |(_, since)| age(since, now)),
                        c.vm.status.name().to_string(),
                        pending(&c.vm),
                        c.vm.team.to_string(),
                        c.vm.project.to_string(),
                        c.action
                            .clone()
                            .unwrap_or_else(|| "nothing (healthy by now)".into()),
                    ]
                })
                .collect();
            print!(
                "{}",
                table(
                    &[
                        "ID",
                        "CATEGORY",
                        "AGE",
                        "STATUS",
                        "PENDING",
                        "TEAM",
                        "PROJECT",
                        "NEXT CLEANUP RUN"
                    ],
                    &rows
                )
            );
            eprintln!(
                "{} cleanup candidates in table {}",
                rows.len(),
                ctx.settings.table
            );
        }
        VmsCommand::Stuck {
            minutes,
            limit,
            json,
        } => {
            let ops = Operations::new(repo, Arc::new(SystemClock));
            let stuck = ops.stuck(Duration::from_secs(minutes * 60), limit).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&stuck)?);
                return Ok(());
            }
            let rows: Vec<Vec<String>> = stuck
                .iter()
                .map(|vm| {
                    let since = vm
                        .pending_op
                        .as_ref()
                        .map_or(vm.updated_at, |p| p.requested_at);
                    vec![
                        vm.id.to_string(),
                        vm.status.name().to_string(),
                        vm.pending_op.as_ref().map_or_else(
                            || "none (lost)".into(),
                            |p| format!("{} #{}", p.op.name(), p.attempt),
                        ),
                        age(since, now),
                        vm.version.to_string(),
                        vm.name.to_string(),
                        vm.team.to_string(),
                        vm.status_reason.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            print!(
                "{}",
                table(
                    &["ID", "STATUS", "PENDING", "AGE", "VERSION", "NAME", "TEAM", "REASON"],
                    &rows
                )
            );
            eprintln!(
                "{} VMs stuck for more than {minutes} minutes in table {}",
                rows.len(),
                ctx.settings.table
            );
        }
        VmsCommand::Backfill { dry_run } => {
            let done = repo.backfill_team_index(dry_run).await?;
            for id in &done.missing {
                println!("{id}");
            }
            if dry_run {
                eprintln!(
                    "{} VM records without team-index keys in table {} (dry run: nothing written)",
                    done.missing.len(),
                    ctx.settings.table
                );
            } else {
                eprintln!(
                    "{} VM records without team-index keys in table {}: {} given them, {} written by someone else meanwhile (which gave them the keys)",
                    done.missing.len(),
                    ctx.settings.table,
                    done.added,
                    done.changed_meanwhile
                );
            }
        }
        VmsCommand::Retry { id } => {
            let ops = Operations::new(repo, Arc::new(SystemClock));
            let vm = ops.retry(id, "operator:vmctl").await?;
            let op = vm
                .pending_op
                .as_ref()
                .expect("a retried VM has a pending operation");
            println!(
                "re-armed the {} of virtual machine {id} ({}; attempt {}, version {}): the stream hands it to the provisioner",
                op.op.name(),
                vm.status.name(),
                op.attempt,
                vm.version
            );
        }
    }
    Ok(())
}
