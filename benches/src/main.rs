//! `vmapi-bench`: the parts of `scripts/bench.sh` that need the service's own crates.
//!
//! - `seed`: puts the benchmark VMs into `TABLE_NAME` (after `vmctl create-table` and
//!   `vmctl load data/demo.json`): the VM of the `events/*.json` files with its team login in
//!   the configured secret store, and `--vms` more running VMs in the demo project.
//! - `reset-vm`: puts the events' VM back in a given status (run before each cold start of a
//!   function that changes it, so every start sees the same record).
//! - `warm`: warm latency of GET one VM and list 50 VMs through the functions' handler (the
//!   router the Lambda binary serves, fed the API Gateway event), against the raw DynamoDB
//!   calls the handler makes for them, interleaved in one process; prints p50/p99 and ratios.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, ReturnConsumedCapacity};
use clap::{Parser, Subcommand};
use serde::Serialize;
use tower::ServiceExt;
use vmapi_core::credentials::generate_team_login;
use vmapi_core::SecretLabels;
use vmapi_http::auth::mint_local_token;
use vmapi_http::{router, AppState, Config, Endpoint};
use vmapi_models::{
    CloudKind, CredentialScope, Login, SecretRef, SecurityRule, SecurityRuleId, UserId, VmId,
    VmRecord, VmStatus,
};
use vmapi_store_dynamodb::table::{GSI1, GSI1_PK, PK, SK};
use vmapi_store_dynamodb::{DynamoRepository, RepositoryOptions};
use vmapi_tests::{as_aws_demo_vm, demo_vm, root, OWNER, PROJECT, TEAM};

/// The VM id of `events/*.json`.
const EVENT_VM: &str = "654a11e60b23ef1b0f36d44e";
/// The security rule `events/delete-security-rule.json` names: the events' VM's default rule.
const EVENT_RULE: &str = "654a11e60b23ef1b0f36d450";
/// Its host name.
const EVENT_VM_NAME: &str = "event-demo-vm";

type AnyError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Parser)]
#[command(about = "Benchmark helpers of scripts/bench.sh (DynamoDB Local, TABLE_NAME)")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Seed the events' VM (with its login) and `--vms` more VMs of the demo project.
    Seed {
        /// Running VMs added to the demo project (list reads 50 of them).
        #[arg(long, default_value_t = 60)]
        vms: usize,
    },
    /// Put the events' VM back in `--status` (version 1, its original name).
    ResetVm {
        /// Status code (3 running, 7 stopped, ...).
        #[arg(long, default_value_t = 3)]
        status: u8,
        /// Also drop the host-name claim of this name (the name update-vm's event gives it).
        #[arg(long)]
        release_name: Option<String>,
        /// The AWS demo VM instead (the one resize-vm's event names).
        #[arg(long)]
        aws: bool,
    },
    /// Warm latency: handler against raw SDK calls, interleaved.
    Warm {
        /// Measured requests per case (after the warm-up).
        #[arg(long, default_value_t = 2000)]
        iterations: usize,
        /// Unmeasured requests per case first (JIT of DynamoDB Local, connection pools, caches).
        #[arg(long, default_value_t = 300)]
        warmup: usize,
        /// Also write the JSON result here.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

async fn repo() -> DynamoRepository {
    let table = std::env::var("TABLE_NAME").unwrap_or_else(|_| "vm-api".into());
    DynamoRepository::new(
        vmapi_http::state::dynamodb_client().await,
        table,
        RepositoryOptions::default(),
    )
}

fn event_vm(status: VmStatus) -> VmRecord {
    let mut vm = demo_vm(EVENT_VM_NAME, status);
    vm.id = VmId::parse(EVENT_VM).expect("the events' VM id");
    vm.login = Some(Login {
        username: "root".into(),
        secret: Some(SecretRef {
            path: CredentialScope::Team.path(vm.team, vm.id),
            scope: CredentialScope::Team,
        }),
    });
    let mut rule = SecurityRule::default_for(Some(CloudKind::Kraud), 1, vm.created_at);
    rule.id = SecurityRuleId::parse(EVENT_RULE).expect("the events' rule id");
    vm.rules = vec![rule];
    vm.rules_revision = 1;
    vm.rules_applied = 1;
    vm
}

async fn seed(vms: usize) -> Result<(), AnyError> {
    let repo = repo().await;
    let vm = event_vm(VmStatus::Running);
    // The team login the events' VM points at, as a create through the API would store it.
    let secrets = vmapi_secrets::SecretsConfig::from_env()?;
    let store = vmapi_secrets::build(&secrets, &vmapi_aws::sdk_config().await);
    let path = CredentialScope::Team.path(vm.team, vm.id);
    let login = generate_team_login(vm.team, vm.auth_method)?;
    store
        .create(
            &path,
            &login,
            SecretLabels {
                team: vm.team,
                vm: None,
            },
        )
        .await?;
    repo.put_vm_unchecked(&vm).await?;
    let mut many = Vec::with_capacity(vms);
    for i in 0..vms {
        let mut v = demo_vm(&format!("bench-{i:03}"), VmStatus::Running);
        // Distinct creation times: the list's index is ordered by them.
        v.created_at = vmapi_models::Timestamp::from_unix_millis(
            v.created_at.unix_millis() - (i as i64) * 1000,
        )?;
        many.push(v);
    }
    repo.put_vms_unchecked(&many).await?;
    println!("seeded the events' VM {EVENT_VM} and {vms} VMs in project {PROJECT}");
    Ok(())
}

async fn reset_vm(status: u8, release_name: Option<String>, aws: bool) -> Result<(), AnyError> {
    let repo = repo().await;
    let status: VmStatus = serde_json::from_value(serde_json::json!(status))?;
    if aws {
        repo.put_vms_unchecked(&[as_aws_demo_vm(&event_vm(status))])
            .await?;
        return Ok(());
    }
    repo.put_vms_unchecked(&[event_vm(status)]).await?;
    // The default rule's pointer (delete-security-rule removes it with the rule).
    repo.client()
        .put_item()
        .table_name(repo.table())
        .item(PK, s(format!("RULE#{EVENT_RULE}")))
        .item(SK, s("RULE"))
        .item("entity", s("rule"))
        .item("vmId", s(EVENT_VM))
        .item("teamId", s(TEAM))
        .send()
        .await?;
    if let Some(name) = release_name {
        repo.client()
            .delete_item()
            .table_name(repo.table())
            .key(PK, s(format!("NAME#{PROJECT}#{name}")))
            .key(SK, s("NAME"))
            .send()
            .await?;
    }
    Ok(())
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

#[derive(Serialize)]
struct Percentiles {
    p50_ms: f64,
    p99_ms: f64,
    mean_ms: f64,
}

fn percentiles(samples: &mut [f64]) -> Percentiles {
    samples.sort_by(f64::total_cmp);
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    let round = |v: f64| (v * 1000.0).round() / 1000.0;
    Percentiles {
        p50_ms: round(at(0.5)),
        p99_ms: round(at(0.99)),
        mean_ms: round(samples.iter().sum::<f64>() / samples.len() as f64),
    }
}

#[derive(Serialize)]
struct Case {
    handler: Percentiles,
    raw_sdk: Percentiles,
    raw_calls: &'static str,
    ratio_p50: f64,
    ratio_p99: f64,
}

#[derive(Serialize)]
struct WarmReport {
    iterations: usize,
    warmup: usize,
    get_vm: Case,
    list_50_vms: Case,
}

/// The API Gateway event of `function` with a fresh token, as Lambda hands it over.
fn event(function: &str, token: &str) -> Result<String, AnyError> {
    let text = std::fs::read_to_string(root().join(format!("events/{function}.json")))?;
    Ok(text.replace("{{TOKEN}}", token))
}

/// One invocation of a function's handler: the event parsed as `lambda_http` does, the
/// request through the function's router, the body read whole.
async fn through_handler(router: &axum::Router, event: &str) -> Result<usize, AnyError> {
    let request = lambda_http::request::from_str(event)?;
    let response = router.clone().oneshot(request).await?;
    if response.status() != 200 {
        return Err(format!("handler answered {}", response.status()).into());
    }
    Ok(axum::body::to_bytes(response.into_body(), 1 << 22)
        .await?
        .len())
}

struct Raw {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl Raw {
    /// Team and project: what the handler's BatchGetItem asks for once the catalog is cached.
    async fn team_and_project(&self) -> Result<(), AnyError> {
        let key = |kind: &str, id: &str| {
            HashMap::from([
                (PK.to_string(), s(format!("{kind}#{id}"))),
                (SK.to_string(), s(kind)),
            ])
        };
        let keys = KeysAndAttributes::builder()
            .keys(key("TEAM", TEAM))
            .keys(key("PROJECT", PROJECT))
            .build()?;
        let out = self
            .client
            .batch_get_item()
            .request_items(&self.table, keys)
            .send()
            .await?;
        if out
            .responses()
            .and_then(|r| r.get(&self.table))
            .map(Vec::len)
            != Some(2)
        {
            return Err("BatchGetItem: team and project expected".into());
        }
        Ok(())
    }

    /// GetItem of the VM, then BatchGetItem of its team and project (round_trips.rs: get).
    async fn get(&self) -> Result<(), AnyError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, s(format!("VM#{EVENT_VM}")))
            .key(SK, s("VM"))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await?;
        if out.item.is_none() {
            return Err("GetItem: the events' VM is missing".into());
        }
        self.team_and_project().await
    }

    /// Query of the project's index (51 for a page of 50), then BatchGetItem of team and
    /// project (round_trips.rs: list).
    async fn list(&self) -> Result<(), AnyError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(GSI1)
            .key_condition_expression(format!("{GSI1_PK} = :p"))
            .expression_attribute_values(":p", s(format!("PROJECT#{PROJECT}#VMS")))
            .scan_index_forward(false)
            .limit(51)
            .send()
            .await?;
        if out.items().len() < 50 {
            return Err("Query: fewer than 50 VMs; run `vmapi-bench seed` first".into());
        }
        self.team_and_project().await
    }
}

async fn timed<F, T>(samples: &mut Vec<f64>, f: F) -> Result<T, AnyError>
where
    F: std::future::Future<Output = Result<T, AnyError>>,
{
    let start = Instant::now();
    let out = f.await?;
    samples.push(start.elapsed().as_secs_f64() * 1000.0);
    Ok(out)
}

async fn warm(iterations: usize, warmup: usize, out: Option<PathBuf>) -> Result<(), AnyError> {
    // The function's own construction: configuration from the environment, one SDK config.
    let config = Config::from_env()?;
    let secret = match &config.jwt.mode {
        vmapi_http::config::JwtMode::LocalHs256 { secret } => secret.clone(),
        vmapi_http::config::JwtMode::Jwks { .. } => return Err("unset JWKS_URL".into()),
    };
    let sdk = vmapi_aws::sdk_config().await;
    let state = AppState::from_sdk(&config, &sdk);
    let get_router = router(state.clone(), &[Endpoint::GetVm]);
    let list_router = router(state, &[Endpoint::ListVms]);
    let raw = Raw {
        client: aws_sdk_dynamodb::Client::new(&sdk),
        table: config.table_name.clone(),
    };
    let token = mint_local_token(
        &secret,
        &UserId::parse(OWNER)?,
        Duration::from_secs(24 * 3600),
    );
    let get_event = event("get-vm", &token)?;
    let list_event = event("list-vms", &token)?;

    let (mut hg, mut rg, mut hl, mut rl) = (vec![], vec![], vec![], vec![]);
    for i in 0..warmup + iterations {
        let measured = i >= warmup;
        let (mut a, mut b, mut c, mut d) = (vec![], vec![], vec![], vec![]);
        // Alternate which goes first, so neither side always meets a just-busy server.
        if i % 2 == 0 {
            timed(&mut a, through_handler(&get_router, &get_event)).await?;
            timed(&mut b, raw.get()).await?;
            timed(&mut c, through_handler(&list_router, &list_event)).await?;
            timed(&mut d, raw.list()).await?;
        } else {
            timed(&mut b, raw.get()).await?;
            timed(&mut a, through_handler(&get_router, &get_event)).await?;
            timed(&mut d, raw.list()).await?;
            timed(&mut c, through_handler(&list_router, &list_event)).await?;
        }
        if measured {
            hg.extend(a);
            rg.extend(b);
            hl.extend(c);
            rl.extend(d);
        }
    }
    let case = |h: &mut Vec<f64>, r: &mut Vec<f64>, calls| {
        let (h, r) = (percentiles(h), percentiles(r));
        let ratio = |a: f64, b: f64| ((a / b) * 100.0).round() / 100.0;
        Case {
            ratio_p50: ratio(h.p50_ms, r.p50_ms),
            ratio_p99: ratio(h.p99_ms, r.p99_ms),
            handler: h,
            raw_sdk: r,
            raw_calls: calls,
        }
    };
    let report = WarmReport {
        iterations,
        warmup,
        get_vm: case(&mut hg, &mut rg, "GetItem, BatchGetItem (team, project)"),
        list_50_vms: case(
            &mut hl,
            &mut rl,
            "Query (gsi1, Limit 51), BatchGetItem (team, project)",
        ),
    };
    let text = serde_json::to_string_pretty(&report)?;
    println!("{text}");
    if let Some(path) = out {
        std::fs::write(path, format!("{text}\n"))?;
    }
    Ok(())
}

// The functions run on a current-thread runtime; so does the comparison.
#[tokio::main(flavor = "current_thread")]
async fn main() {
    let result = match Cli::parse().command {
        Cmd::Seed { vms } => seed(vms).await,
        Cmd::ResetVm {
            status,
            release_name,
            aws,
        } => reset_vm(status, release_name, aws).await,
        Cmd::Warm {
            iterations,
            warmup,
            out,
        } => warm(iterations, warmup, out).await,
    };
    if let Err(e) = result {
        eprintln!("vmapi-bench: {e}");
        std::process::exit(1);
    }
}
