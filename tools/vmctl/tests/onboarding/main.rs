//! The onboarding and operations commands, as an operator runs them: the real binary against a
//! fresh table in DynamoDB Local (and CloudFormation on moto for `--stack`), checking what it
//! prints and what it stored. `make test` (or `scripts/test.sh`) starts both services.

use std::process::Command;
use std::sync::Arc;

use vmapi_core::{AccountStore, Lookup, Repository};
use vmapi_models::{OpKind, PendingOp, Role, TeamId, Timestamp, UserId, VmStatus};
use vmapi_store_dynamodb::{DynamoRepository, RepositoryOptions};

const DEMO_TEAM: &str = "6548a41f38406c14db33b61e";

fn endpoint(var: &str) -> String {
    let url = std::env::var(var).unwrap_or_default();
    assert!(
        url.contains("127.0.0.1") || url.contains("localhost"),
        "{var} must point at a local stand-in: run the tests with `make test`"
    );
    url
}

struct Out {
    ok: bool,
    stdout: String,
    stderr: String,
}

/// Runs vmctl with `args` on `table` (none: `--stack` gives it).
fn vmctl(table: Option<&str>, args: &[&str]) -> Out {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vmctl"));
    if let Some(t) = table {
        cmd.args(["--table", t]);
    }
    cmd.args(args)
        .env(
            "AWS_ENDPOINT_URL_DYNAMODB",
            endpoint("AWS_ENDPOINT_URL_DYNAMODB"),
        )
        .env_remove("TABLE_NAME")
        .env_remove("DEPLOYMENT_ID")
        .env_remove("JWKS_URL")
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    for var in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"] {
        if std::env::var(var).is_err() {
            cmd.env(var, "local");
        }
    }
    if std::env::var("AWS_REGION").is_err() {
        cmd.env("AWS_REGION", "us-east-1");
    }
    let out = cmd.output().expect("vmctl runs");
    Out {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into(),
        stderr: String::from_utf8_lossy(&out.stderr).into(),
    }
}

fn ok(table: Option<&str>, args: &[&str]) -> String {
    let out = vmctl(table, args);
    assert!(
        out.ok,
        "vmctl {args:?} failed: {}{}",
        out.stdout, out.stderr
    );
    out.stdout
}

fn refused(table: Option<&str>, args: &[&str]) -> String {
    let out = vmctl(table, args);
    assert!(!out.ok, "vmctl {args:?} succeeded: {}", out.stdout);
    // Ours, or clap's for an argument it refuses.
    assert!(
        out.stderr.starts_with("vmctl: ") || out.stderr.starts_with("error: "),
        "{}",
        out.stderr
    );
    out.stderr
}

/// A fresh table (made by `vmctl create-table`) and a repository over it.
async fn fresh_table() -> (String, Arc<DynamoRepository>) {
    let table = format!("vmctl-{}", vmapi_models::ObjectId::new());
    assert!(ok(Some(&table), &["create-table"]).contains("created table"));
    let repo = DynamoRepository::new(
        vmapi_http::state::dynamodb_client().await,
        &table,
        RepositoryOptions::default(),
    );
    (table, Arc::new(repo))
}

async fn stored_team(repo: &DynamoRepository, id: &str) -> Option<vmapi_models::Team> {
    let id: TeamId = id.parse().unwrap();
    let mut lookup = Lookup::default();
    lookup.teams.insert(id);
    repo.lookup(&lookup).await.unwrap().teams.remove(&id)
}

fn init_env() {
    std::env::set_var(
        "AWS_ENDPOINT_URL_DYNAMODB",
        endpoint("AWS_ENDPOINT_URL_DYNAMODB"),
    );
    for (var, value) in [
        ("AWS_ACCESS_KEY_ID", "local"),
        ("AWS_SECRET_ACCESS_KEY", "local"),
        ("AWS_REGION", "us-east-1"),
    ] {
        if std::env::var(var).is_err() {
            std::env::set_var(var, value);
        }
    }
}

mod accounts;
mod backfill;
mod catalog;
mod stack;
mod vms;
