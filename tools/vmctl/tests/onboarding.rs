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

#[tokio::test]
async fn team_create_add_member_remove_member() {
    init_env();
    let (table, repo) = fresh_table().await;
    let t = Some(table.as_str());
    let id = ok(
        t,
        &[
            "team",
            "create",
            "--owner",
            "auth0|alice",
            "--name",
            "Acme",
            "--email",
            "ops@acme.example",
            "--max-active-vms",
            "5",
        ],
    )
    .trim()
    .to_string();
    let team = stored_team(&repo, &id).await.expect("the team is stored");
    assert_eq!(
        (team.name.as_str(), team.email.as_str()),
        ("Acme", "ops@acme.example")
    );
    assert_eq!(
        team.role_of(&UserId::parse("auth0|alice").unwrap()),
        Some(Role::Owner)
    );
    assert_eq!(team.quotas.unwrap().max_active_vms, Some(5));

    // The same id again: refused, the first team unchanged.
    let e = refused(
        t,
        &[
            "team",
            "create",
            "--id",
            &id,
            "--owner",
            "mallory",
            "--name",
            "X",
            "--email",
            "x@x.example",
        ],
    );
    assert!(e.contains("exists already"), "{e}");
    assert_eq!(stored_team(&repo, &id).await.unwrap(), team);
    let e = refused(
        t,
        &[
            "team", "create", "--owner", "bob", "--name", "Acme", "--email", "nobody",
        ],
    );
    assert!(e.contains("email"), "{e}");

    let out = ok(
        t,
        &[
            "team",
            "add-member",
            &id,
            "--user",
            "bob",
            "--role",
            "admin",
        ],
    );
    assert!(
        out.contains("bob joined team") && out.contains("as admin"),
        "{out}"
    );
    let out = ok(
        t,
        &["team", "add-member", &id, "--user", "bob", "--role", "3"],
    );
    assert!(
        out.contains("now viewer") && out.contains("was admin"),
        "{out}"
    );
    let e = refused(
        t,
        &["team", "add-member", &id, "--user", "bob", "--role", "boss"],
    );
    assert!(e.contains("'boss' is not a role"), "{e}");
    let e = refused(
        t,
        &[
            "team",
            "add-member",
            &id,
            "--user",
            "auth0|alice",
            "--role",
            "member",
        ],
    );
    assert!(e.contains("no owner left"), "{e}");

    let shown = ok(t, &["team", "show", &id]);
    let lines: Vec<&str> = shown.lines().collect();
    assert!(
        lines[1].starts_with("USER") && lines[1].contains("ROLE"),
        "{shown}"
    );
    assert!(shown.contains("bob          viewer (3)"), "{shown}");

    let e = refused(
        t,
        &[
            "team",
            "remove-member",
            &id,
            "--user",
            "bob",
            "--role",
            "admin",
        ],
    );
    assert!(
        e.contains("is viewer") && e.contains("nothing removed"),
        "{e}"
    );
    let out = ok(
        t,
        &[
            "team",
            "remove-member",
            &id,
            "--user",
            "bob",
            "--role",
            "viewer",
        ],
    );
    assert!(out.contains("bob (viewer) left team"), "{out}");
    let e = refused(t, &["team", "remove-member", &id, "--user", "auth0|alice"]);
    assert!(e.contains("no owner left"), "{e}");
    let members = stored_team(&repo, &id).await.unwrap().members;
    assert_eq!(members.len(), 1);
    assert_eq!(members[0].user.as_str(), "auth0|alice");

    let e = refused(
        t,
        &[
            "team",
            "add-member",
            &TeamId::new().to_string(),
            "--user",
            "bob",
            "--role",
            "member",
        ],
    );
    assert!(e.contains("not found"), "{e}");
}

#[tokio::test]
async fn project_create() {
    init_env();
    let (table, repo) = fresh_table().await;
    let t = Some(table.as_str());
    let team = ok(
        t,
        &[
            "team",
            "create",
            "--owner",
            "alice",
            "--name",
            "Acme",
            "--email",
            "ops@acme.example",
        ],
    )
    .trim()
    .to_string();
    ok(
        t,
        &[
            "team",
            "add-member",
            &team,
            "--user",
            "vera",
            "--role",
            "viewer",
        ],
    );
    let id = ok(
        t,
        &[
            "project",
            "create",
            "--team",
            &team,
            "--name",
            "web",
            "--owner",
            "alice",
            "--purpose",
            "shop",
            "--default",
        ],
    )
    .trim()
    .to_string();
    let pid: vmapi_models::ProjectId = id.parse().unwrap();
    let mut lookup = Lookup::default();
    lookup.projects.insert(pid);
    let p = repo
        .lookup(&lookup)
        .await
        .unwrap()
        .projects
        .remove(&pid)
        .expect("stored");
    assert_eq!(
        (
            p.name.as_str(),
            p.purpose.as_str(),
            p.is_default,
            p.team.to_string()
        ),
        ("web", "shop", true, team.clone())
    );

    let e = refused(
        t,
        &[
            "project", "create", "--team", &team, "--name", "x", "--owner", "vera",
        ],
    );
    assert!(e.contains("viewer"), "{e}");
    let e = refused(
        t,
        &[
            "project",
            "create",
            "--team",
            &TeamId::new().to_string(),
            "--name",
            "x",
            "--owner",
            "alice",
        ],
    );
    assert!(e.contains("Team") && e.contains("not found"), "{e}");
    let e = refused(
        t,
        &[
            "project", "create", "--id", &id, "--team", &team, "--name", "again", "--owner",
            "alice",
        ],
    );
    assert!(e.contains("exists already"), "{e}");
    assert_eq!(
        repo.lookup(&lookup).await.unwrap().projects[&pid].name,
        "web"
    );
}

#[tokio::test]
async fn catalog_validate_import_list() {
    init_env();
    let (table, repo) = fresh_table().await;
    let t = Some(table.as_str());
    assert!(ok(t, &["catalog", "list"]).contains("the catalog is empty"));
    let out = ok(None, &["catalog", "validate", "data/demo.json"]);
    assert!(
        out.contains("is a valid catalog: 3 cloud providers, 3 providers, 5 sizes, 5 prices"),
        "{out}"
    );

    // A broken file: refused by validate and by import alike, naming each problem; nothing written.
    let mut broken: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/demo.json"))
            .unwrap(),
    )
    .unwrap();
    broken["sizes"][3]["provider"] = "6548a383e2442d14b6bf0000".into();
    broken["prices"][0]["currencyCode"] = "euro".into();
    let path = std::env::temp_dir().join(format!("{table}-broken.json"));
    std::fs::write(&path, broken.to_string()).unwrap();
    let path = path.to_str().unwrap();
    let e = refused(None, &["catalog", "validate", path]);
    assert!(
        e.contains("is not a valid catalog (1 problem)") && e.contains("/prices/0/currencyCode"),
        "{e}"
    );
    broken["prices"][0]["currencyCode"] = "EUR".into();
    std::fs::write(path, broken.to_string()).unwrap();
    for cmd in ["validate", "import"] {
        let e = refused(t, &["catalog", cmd, path]);
        assert!(
            e.contains(
                "sizes[3].provider: 6548a383e2442d14b6bf0000 is not a provider of the catalog"
            ),
            "{cmd}: {e}"
        );
    }
    assert!(
        repo.catalog().await.unwrap().is_empty(),
        "a refused import wrote something"
    );

    let out = ok(t, &["catalog", "import", "data/demo.json"]);
    assert!(out.contains("imported 16 catalog entries"), "{out}");
    assert!(
        out.contains("not imported: 2 teams and 2 projects"),
        "{out}"
    );
    let stored = repo.catalog().await.unwrap();
    let demo: vmapi_models::Seed = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/demo.json"))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(stored.sizes.len(), 5);
    assert_eq!(stored.providers.len(), demo.providers.len());
    assert!(
        stored_team(&repo, DEMO_TEAM).await.is_none(),
        "teams are not imported"
    );

    let listed = ok(t, &["catalog", "list"]);
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines.len(), 6, "{listed}");
    assert!(
        lines[0].starts_with("CLOUD") && lines[0].contains("PRICE"),
        "{listed}"
    );
    let col = lines[0].find("SIZE").unwrap();
    let row = lines.iter().find(|l| l.contains("m6a.xlarge")).unwrap();
    assert_eq!(
        row.find("m6a.xlarge"),
        Some(col),
        "columns line up:\n{listed}"
    );
    assert!(
        row.starts_with("AWS") && row.contains("sev-snp") && row.contains("0.1728 EUR/h"),
        "{row}"
    );
    let json: vmapi_models::Catalog =
        serde_json::from_str(&ok(t, &["catalog", "list", "--json"])).unwrap();
    assert_eq!(json, stored);
}

/// A demo VM in `status` with `pending`, its age counting from `minutes_ago`.
fn vm_at(status: VmStatus, pending: Option<OpKind>, minutes_ago: i64) -> vmapi_models::VmRecord {
    let at =
        Timestamp::from_unix_millis(Timestamp::now().unix_millis() - minutes_ago * 60_000).unwrap();
    let mut vm = vmapi_core::memory::sample_vm();
    vm.name = vmapi_models::HostName::parse(&format!("vm-{}", vm.id)).unwrap();
    vm.status = status;
    vm.pending_op = pending.map(|op| PendingOp::new(op, at));
    vm.updated_at = at;
    vm
}

#[tokio::test]
async fn vms_stuck_and_retry() {
    init_env();
    let (table, repo) = fresh_table().await;
    let t = Some(table.as_str());
    let stuck = vm_at(VmStatus::Creating, Some(OpKind::Create), 90);
    let lost = vm_at(VmStatus::Stopping, None, 45);
    let young = vm_at(VmStatus::Starting, Some(OpKind::Start), 2);
    let running = vm_at(VmStatus::Running, None, 600);
    for vm in [&stuck, &lost, &young, &running] {
        repo.put_vm_unchecked(vm).await.unwrap();
    }
    let out = ok(t, &["vms", "stuck", "--minutes", "30"]);
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("ID") && lines[0].contains("PENDING"),
        "{out}"
    );
    assert_eq!(lines.len(), 3, "{out}");
    assert!(
        lines[1].starts_with(&stuck.id.to_string()) && lines[1].contains("create #0"),
        "{out}"
    );
    assert!(
        lines[2].starts_with(&lost.id.to_string()) && lines[2].contains("none (lost)"),
        "{out}"
    );
    let json: Vec<vmapi_models::VmRecord> =
        serde_json::from_str(&ok(t, &["vms", "stuck", "--minutes", "1", "--json"])).unwrap();
    assert_eq!(json.len(), 3);

    let out = ok(t, &["vms", "retry", &lost.id.to_string()]);
    assert!(
        out.contains("re-armed the stop") && out.contains("attempt 1, version 2"),
        "{out}"
    );
    let stored = repo.get_vm(lost.id).await.unwrap().unwrap();
    assert_eq!(stored.version, lost.version + 1);
    let op = stored.pending_op.unwrap();
    assert_eq!((op.op, op.attempt), (OpKind::Stop, 1));
    let events = repo.vm_events(lost.id, 10, None).await.unwrap().items;
    assert_eq!(events[0].kind, vmapi_models::EventKind::Retry);
    assert_eq!(events[0].actor, "operator:vmctl");

    let e = refused(t, &["vms", "retry", &running.id.to_string()]);
    assert!(e.contains("nothing to retry"), "{e}");
    assert_eq!(repo.get_vm(running.id).await.unwrap().unwrap(), running);
    let e = refused(t, &["vms", "retry", &vmapi_models::VmId::new().to_string()]);
    assert!(e.contains("not found"), "{e}");
}

#[tokio::test]
async fn vms_stale() {
    init_env();
    let (table, repo) = fresh_table().await;
    let t = Some(table.as_str());
    ok(t, &["load", "data/demo.json"]);
    let failed = vm_at(VmStatus::Failed, None, 8 * 24 * 60);
    let stuck = vm_at(VmStatus::Creating, Some(OpKind::Create), 90);
    let recent_failure = vm_at(VmStatus::Failed, None, 60);
    let running = vm_at(VmStatus::Running, None, 600);
    for vm in [&failed, &stuck, &recent_failure, &running] {
        repo.put_vm_unchecked(vm).await.unwrap();
    }
    let out = ok(t, &["vms", "stale"]);
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("ID") && lines[0].contains("NEXT CLEANUP RUN"),
        "{out}"
    );
    assert_eq!(lines.len(), 3, "{out}");
    assert!(
        lines[1].starts_with(&failed.id.to_string())
            && lines[1].contains("failed")
            && lines[1].contains("delete: failed for more than 168 hours"),
        "{out}"
    );
    assert!(
        lines[2].starts_with(&stuck.id.to_string())
            && lines[2].contains("transitional")
            && lines[2].contains("repair the stuck create"),
        "{out}"
    );
    let col = lines[0].find("STATUS").unwrap();
    assert_eq!(&lines[2][col..col + 8], "creating", "{out}");

    let json: serde_json::Value =
        serde_json::from_str(&ok(t, &["vms", "stale", "--json"])).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 2);
    // Reads only.
    assert_eq!(repo.get_vm(failed.id).await.unwrap().unwrap(), failed);
}

#[tokio::test]
async fn stack_option_reads_the_table_from_the_stack_outputs() {
    init_env();
    let cfn_url = endpoint("AWS_ENDPOINT_URL_CLOUDFORMATION");
    let (table, repo) = fresh_table().await;
    let stack = format!("vm-api-{}", vmapi_models::ObjectId::new());
    let template = serde_json::json!({
        "AWSTemplateFormatVersion": "2010-09-09",
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {
            "TableName": {"Value": table},
            "DeploymentId": {"Value": "staging-1"},
            "ApiUrl": {"Value": "https://example.invalid"}
        }
    });
    let config = vmapi_aws::sdk_config().await;
    let cfn = aws_sdk_cloudformation::Client::from_conf(
        aws_sdk_cloudformation::config::Builder::from(&config)
            .endpoint_url(cfn_url)
            .build(),
    );
    cfn.create_stack()
        .stack_name(&stack)
        .template_body(template.to_string())
        .send()
        .await
        .expect("moto creates the stack");

    // No --table: the stack names it.
    let out = vmctl(
        None,
        &[
            "--stack",
            &stack,
            "team",
            "create",
            "--owner",
            "alice",
            "--name",
            "Acme",
            "--email",
            "ops@acme.example",
        ],
    );
    assert!(out.ok, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains(&format!(
            "stack {stack}: table {table}, deployment staging-1"
        )),
        "{}",
        out.stderr
    );
    assert!(
        stored_team(&repo, out.stdout.trim()).await.is_some(),
        "written to the stack's table"
    );
    assert!(ok(None, &["--stack", &stack, "vms", "stale"]).starts_with("ID"));

    let e = refused(None, &["--stack", "no-such-stack", "catalog", "list"]);
    assert!(e.contains("no-such-stack"), "{e}");
}
