//! The cleanup job as a Lambda function on an EventBridge schedule, and as a local loop.

use std::sync::Arc;
use std::time::Duration;

use lambda_runtime::LambdaEvent;
use vmapi_core::cleanup::emf_line;
use vmapi_core::{Cleanup, CleanupPolicy, ErrorChain, Summary, SystemClock};
use vmapi_models::Timestamp;

/// Runs once and prints the summary line (JSON, embedded metric format) on standard output. A
/// failed run is logged with its cause: the Lambda runtime reports only the error's own text.
pub async fn run_once(cleanup: &Cleanup) -> Result<Summary, vmapi_core::Error> {
    let summary = cleanup.run().await.inspect_err(|e| {
        tracing::error!(error = %ErrorChain(e), "cleanup run failed");
    })?;
    println!("{}", emf_line(&summary, Timestamp::now()));
    Ok(summary)
}

/// The Lambda entry point: builds everything once per cold start; each scheduled event runs the
/// job with a time budget below the invocation's deadline.
pub async fn run_lambda() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let env = vmapi_config::Env::process();
    let policy = crate::config::cleanup_policy(&env)?;
    let (repo, provisioner) = crate::from_env(&env).await?;
    let (repo, policy, provisioner) = (&repo, &policy, &provisioner);
    vmapi_aws::runtime::quiet_on_close(
        lambda_runtime::run(lambda_runtime::service_fn(
            move |event: LambdaEvent<serde_json::Value>| async move {
                let summary =
                    handle(repo.clone(), provisioner.clone(), policy.clone(), event).await?;
                Ok::<_, lambda_runtime::Error>(serde_json::to_value(summary)?)
            },
        ))
        .await,
    )
}

/// Handles one scheduled event: runs the job with a time budget 15 s below the invocation's
/// deadline (and at most the policy's) and prints the summary line.
pub async fn handle(
    repo: Arc<dyn vmapi_core::Repository>,
    provisioner: vmapi_core::Provisioner,
    mut policy: CleanupPolicy,
    event: LambdaEvent<serde_json::Value>,
) -> Result<Summary, vmapi_core::Error> {
    let left = event
        .context
        .deadline()
        .duration_since(std::time::SystemTime::now())
        .unwrap_or_default();
    policy.time_budget = policy
        .time_budget
        .min(left.saturating_sub(Duration::from_secs(15)));
    let cleanup = Cleanup::new(repo, Arc::new(SystemClock), Some(provisioner), policy);
    run_once(&cleanup).await
}
