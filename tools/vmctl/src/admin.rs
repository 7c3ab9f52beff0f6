//! Operator commands over a deployed (or the local) table: `vm`, `remove`, `block`,
//! `unblock`, `cleanup`, `adopt`.

use std::sync::Arc;

use vmapi_secrets::SecretsConfig;
use vmapi_store_dynamodb::DynamoRepository;

use crate::ctx::Ctx;
use crate::error::AnyError;

/// The table, the provisioner and the cleanup settings as the cleanup function builds them
/// (`vmctl cleanup`, `vmctl adopt`).
pub async fn operator_provisioner(
    ctx: &Ctx,
) -> Result<
    (
        Arc<DynamoRepository>,
        vmapi_core::Provisioner,
        vmapi_core::CleanupPolicy,
    ),
    AnyError,
> {
    let repo = ctx.repo().await;
    let env = ctx.settings.env();
    let policy = vmapi_provision::config::cleanup_policy(&env)?;
    let secrets = SecretsConfig::read(&env)?;
    let sdk = vmapi_aws::sdk_config().await;
    let store = vmapi_secrets::build(&secrets, &sdk);
    let provision = vmapi_provision::ProvisionConfig::read(&env)?;
    let provisioner =
        vmapi_provision::provisioner(&provision, &secrets, &sdk, repo.clone(), store).await?;
    Ok((repo, provisioner, policy))
}

/// `vmctl block` / `vmctl unblock`.
pub async fn block(ctx: &Ctx, id: &str, blocked: bool) -> Result<(), AnyError> {
    let id = vmapi_models::VmId::parse(id)?;
    let repo = ctx.repo().await;
    let service = vmapi_core::Service::new(repo, Arc::new(vmapi_core::SystemClock));
    let changed = service.set_blocked(id, blocked, "operator:vmctl").await?;
    let state = if blocked { "blocked" } else { "not blocked" };
    match changed {
        true => println!("virtual machine {id} is now {state}"),
        false => println!("virtual machine {id} was already {state}"),
    }
    Ok(())
}

/// `vmctl cleanup`: one run of the cleanup job, as the scheduled function does.
pub async fn cleanup(ctx: &Ctx, dry_run: bool) -> Result<(), AnyError> {
    let (repo, provisioner, mut policy) = operator_provisioner(ctx).await?;
    policy.dry_run |= dry_run;
    let cleanup = vmapi_core::Cleanup::new(
        repo,
        Arc::new(vmapi_core::SystemClock),
        Some(provisioner),
        policy,
    );
    let summary = vmapi_provision::cleanup::run_once(&cleanup).await?;
    eprintln!(
        "cleanup{}: {} candidates, {} repaired, {} deleted, {} purged, {} failed, {} skipped, {} deferred, {} reconciled, {} untagged (reported, left alone; see vmctl adopt)",
        if summary.dry_run { " (dry run, nothing changed)" } else { "" },
        summary.candidates,
        summary.repaired,
        summary.deleted,
        summary.purged,
        summary.failed,
        summary.skipped,
        summary.deferred,
        summary.reconciled,
        summary.untagged
    );
    Ok(())
}

/// `vmctl adopt`: tags this deployment's untagged logins and cloud resources.
pub async fn adopt(ctx: &Ctx, dry_run: bool) -> Result<(), AnyError> {
    let (repo, provisioner, policy) = operator_provisioner(ctx).await?;
    let repo: Arc<dyn vmapi_core::Repository> = repo;
    let summary = vmapi_core::adopt::adopt(
        &repo,
        &provisioner,
        &policy.regions,
        &policy.deployment,
        dry_run,
    )
    .await;
    for line in &summary.actions {
        println!("{line}");
    }
    eprintln!(
        "adopt{} for deployment {}: {} tagged, {} left untagged (not this table's), {} failed",
        if dry_run {
            " (dry run, nothing changed)"
        } else {
            ""
        },
        policy.deployment,
        summary.adopted,
        summary.left,
        summary.failed
    );
    if summary.failed > 0 {
        return Err(format!("{} could not be tagged; run again", summary.failed).into());
    }
    Ok(())
}
