//! `lambda-emulator`: a minimal local Lambda Runtime API (the `2018-06-01` interface a
//! function's runtime client polls) for measuring the function binaries as Lambda runs them.
//!
//! - `cold`: starts a binary N times, one process per run, with `AWS_LAMBDA_RUNTIME_API`
//!   pointed at a fresh listener; measures process start → first `GET .../invocation/next`
//!   (init) and the first invocation (event handed out → `POST .../response`), then kills the
//!   process. Prints a JSON summary (medians of the runs; `--warmup` starts first are not
//!   counted). With `--baseline BIN`, a start of that binary (the bare `lambda_http` function)
//!   is paired with each measured start, in alternating order, and the summary adds its init
//!   and the ratio of the two medians: both sides see the same state of the machine, so drift
//!   during a long run cannot move the ratio.
//! - `load`: starts a binary once and hands it the event again and again for D seconds, as
//!   one warm Lambda container would be fed; then reads the peak resident set (`VmHWM` of
//!   `/proc/PID/status`) and prints a JSON summary.
//!
//! Events are files (API Gateway v2 or any other JSON); `--subst KEY=VALUE` replaces `KEY`
//! in them, `{{RUN}}` (cold) and `{{N}}` (load) are replaced by the run or invocation number.
//! The child inherits this process's environment plus the variables Lambda sets.

mod runtime_api;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use clap::{Args, Parser, Subcommand};
use runtime_api::{Msg, Server};
use serde::Serialize;

#[derive(Parser)]
#[command(about = "Local Lambda Runtime API for cold-start, latency and memory measurements")]
struct Cli {
    #[command(subcommand)]
    command: Mode,
}

#[derive(Subcommand)]
enum Mode {
    /// Start the binary N times; measure init and the first invocation of each start.
    Cold {
        #[command(flatten)]
        common: Common,
        /// Number of starts.
        #[arg(long, default_value_t = 30)]
        runs: usize,
        /// Starts before the measured ones, not recorded (the binary into the page cache).
        #[arg(long, default_value_t = 1)]
        warmup: usize,
        /// Shell command run before each start (not timed), e.g. to reset a record.
        #[arg(long)]
        before_each: Option<String>,
        /// A baseline binary started next to each measured start (alternately before and
        /// after it); the summary reports its init and the ratio of the medians.
        #[arg(long, requires = "baseline_event")]
        baseline: Option<PathBuf>,
        /// The event for the baseline binary.
        #[arg(long, requires = "baseline")]
        baseline_event: Option<PathBuf>,
    },
    /// Start the binary once and feed it the event in a loop; report the peak RSS.
    Load {
        #[command(flatten)]
        common: Common,
        /// How long to feed events.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
    },
}

#[derive(Args, Clone)]
struct Common {
    /// The function binary (Lambda's `bootstrap`).
    #[arg(long)]
    bin: PathBuf,
    /// The event file.
    #[arg(long)]
    event: PathBuf,
    /// Name in the report and AWS_LAMBDA_FUNCTION_NAME (default: the binary's file name).
    #[arg(long)]
    name: Option<String>,
    /// `KEY=VALUE`: replace KEY by VALUE in the event (repeatable).
    #[arg(long = "subst", value_parser = parse_pair)]
    subst: Vec<(String, String)>,
    /// The function's stdout and stderr are appended here (default: discarded).
    #[arg(long)]
    log: Option<PathBuf>,
    /// Give up on a start or an invocation after this many seconds.
    #[arg(long, default_value_t = 30)]
    timeout_secs: u64,
    /// Also write the JSON summary to this file.
    #[arg(long)]
    out: Option<PathBuf>,
}

fn parse_pair(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("expected KEY=VALUE, got '{s}'"))
}

fn spawn(common: &Common, name: &str, api: &str) -> std::io::Result<Child> {
    let (out, err) = match &common.log {
        Some(path) => {
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)?;
            (Stdio::from(f.try_clone()?), Stdio::from(f))
        }
        None => (Stdio::null(), Stdio::null()),
    };
    Command::new(&common.bin)
        .env("AWS_LAMBDA_RUNTIME_API", api)
        .env("AWS_LAMBDA_FUNCTION_NAME", name)
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}"))
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "local")
        .env("AWS_EXECUTION_ENV", "AWS_Lambda_rust")
        .env("_HANDLER", "bootstrap")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
}

fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// The HTTP status of an API Gateway answer, `ok` for other payloads, `error` for errors.
fn outcome(body: &[u8], error: bool) -> String {
    if error {
        return "error".into();
    }
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("statusCode").and_then(|s| s.as_u64()))
        .map_or_else(|| "ok".to_string(), |s| s.to_string())
}

#[derive(Serialize)]
struct Stats {
    median: f64,
    p10: f64,
    p90: f64,
    min: f64,
    max: f64,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn stats(values: &[f64]) -> Option<Stats> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let at = |q: f64| {
        let i = ((v.len() - 1) as f64 * q).round() as usize;
        (v[i] * 1000.0).round() / 1000.0
    };
    let median = if v.len() % 2 == 1 {
        v[v.len() / 2]
    } else {
        (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
    };
    Some(Stats {
        median: (median * 1000.0).round() / 1000.0,
        p10: at(0.1),
        p90: at(0.9),
        min: at(0.0),
        max: at(1.0),
    })
}

#[derive(Serialize)]
struct ColdReport {
    function: String,
    binary: String,
    runs: usize,
    init_ms: Option<Stats>,
    first_invocation_ms: Option<Stats>,
    outcomes: BTreeMap<String, usize>,
    failures: Vec<String>,
    /// The paired baseline starts (`--baseline`).
    #[serde(skip_serializing_if = "Option::is_none")]
    baseline: Option<BaselineReport>,
}

#[derive(Serialize)]
struct BaselineReport {
    binary: String,
    init_ms: Option<Stats>,
    /// Median init of the measured binary / median init of the baseline, over the same
    /// interleaved runs.
    init_ratio: Option<f64>,
    failures: Vec<String>,
}

fn event_text(common: &Common) -> Result<String, String> {
    let mut text = std::fs::read_to_string(&common.event)
        .map_err(|e| format!("{}: {e}", common.event.display()))?;
    for (k, v) in &common.subst {
        text = text.replace(k, v);
    }
    Ok(text)
}

fn name_of(common: &Common) -> String {
    common.name.clone().unwrap_or_else(|| {
        common
            .bin
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "function".into())
    })
}

async fn cold_run(
    common: &Common,
    name: &str,
    event: Bytes,
    run: usize,
) -> Result<(Duration, Duration, String), String> {
    let timeout = Duration::from_secs(common.timeout_secs);
    let mut server = Server::start().await.map_err(|e| e.to_string())?;
    let started = Instant::now();
    let mut child = spawn(common, name, &server.addr).map_err(|e| e.to_string())?;
    let expected = format!("cold-{run}");
    let result = async {
        let (init, handed_out) = match server.recv(timeout).await? {
            Msg::Next { at, reply } => {
                let init = at - started;
                let handed_out = Instant::now();
                reply
                    .send((expected.clone(), event))
                    .map_err(|_| "the runtime client went away".to_string())?;
                (init, handed_out)
            }
            Msg::InitError { body } => {
                return Err(format!("init error: {}", String::from_utf8_lossy(&body)))
            }
            Msg::Done { .. } => return Err("a response before any event".into()),
        };
        loop {
            match server.recv(timeout).await? {
                Msg::Done {
                    at,
                    id,
                    body,
                    error,
                } if id == expected => return Ok((init, at - handed_out, outcome(&body, error))),
                Msg::Done { id, .. } => return Err(format!("an answer for unknown request {id}")),
                Msg::InitError { body } => {
                    return Err(format!("init error: {}", String::from_utf8_lossy(&body)))
                }
                // A second poll before the answer cannot happen with one event; ignore it.
                Msg::Next { .. } => {}
            }
        }
    }
    .await;
    kill(&mut child);
    result
}

/// `--baseline`: the binary and its event, paired with each measured start.
struct Baseline {
    common: Common,
    event: String,
}

async fn cold(
    common: Common,
    runs: usize,
    warmup: usize,
    before_each: Option<String>,
    baseline: Option<Baseline>,
) -> Result<(), String> {
    let name = name_of(&common);
    let template = event_text(&common)?;
    let (mut init, mut first) = (Vec::new(), Vec::new());
    let mut outcomes = BTreeMap::new();
    let mut failures = Vec::new();
    let (mut base_init, mut base_failures) = (Vec::new(), Vec::new());
    for run in 0..warmup + runs {
        if let Some(cmd) = &before_each {
            let status = Command::new("sh")
                .arg("-c")
                .arg(cmd)
                .env("RUN", run.to_string())
                .status()
                .map_err(|e| format!("--before-each: {e}"))?;
            if !status.success() {
                return Err(format!("--before-each failed: {status}"));
            }
        }
        let measured = run >= warmup;
        // The baseline goes first on even runs and second on odd ones.
        let base_first = run % 2 == 0;
        if let (Some(b), true) = (&baseline, base_first) {
            base_start(b, run, measured, &mut base_init, &mut base_failures).await;
        }
        let event = Bytes::from(template.replace("{{RUN}}", &run.to_string()));
        let result = cold_run(&common, &name, event, run).await;
        if let (Some(b), false) = (&baseline, base_first) {
            base_start(b, run, measured, &mut base_init, &mut base_failures).await;
        }
        if !measured {
            if let Err(e) = result {
                eprintln!("{name}: warm-up start {run}: {e}");
            }
            continue;
        }
        match result {
            Ok((i, f, o)) => {
                init.push(ms(i));
                first.push(ms(f));
                *outcomes.entry(o).or_insert(0) += 1;
            }
            Err(e) => {
                eprintln!("{name}: run {run}: {e}");
                failures.push(e);
            }
        }
    }
    let init_ms = stats(&init);
    let baseline = baseline.map(|b| {
        let base_ms = stats(&base_init);
        let init_ratio = match (&init_ms, &base_ms) {
            (Some(m), Some(b)) if b.median > 0.0 => {
                Some((m.median / b.median * 100.0).round() / 100.0)
            }
            _ => None,
        };
        BaselineReport {
            binary: b.common.bin.display().to_string(),
            init_ms: base_ms,
            init_ratio,
            failures: base_failures,
        }
    });
    let report = ColdReport {
        function: name,
        binary: common.bin.display().to_string(),
        runs,
        init_ms,
        first_invocation_ms: stats(&first),
        outcomes,
        failures,
        baseline,
    };
    emit(&report, common.out.as_ref())
}

/// One start of the baseline binary; its init is recorded when `measured`.
async fn base_start(
    b: &Baseline,
    run: usize,
    measured: bool,
    init: &mut Vec<f64>,
    failures: &mut Vec<String>,
) {
    let name = name_of(&b.common);
    let event = Bytes::from(b.event.replace("{{RUN}}", &run.to_string()));
    match cold_run(&b.common, &name, event, run).await {
        Ok((i, _, _)) if measured => init.push(ms(i)),
        Ok(_) => {}
        Err(e) => {
            eprintln!("baseline {name}: run {run}: {e}");
            if measured {
                failures.push(e);
            }
        }
    }
}

#[derive(Serialize)]
struct LoadReport {
    function: String,
    binary: String,
    seconds: f64,
    invocations: u64,
    outcomes: BTreeMap<String, u64>,
    latency_ms: Option<Stats>,
    vm_hwm_kib: Option<u64>,
    vm_rss_kib: Option<u64>,
}

fn proc_status_kib(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.trim_start_matches(':').split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

async fn load(common: Common, seconds: u64) -> Result<(), String> {
    let name = name_of(&common);
    let template = event_text(&common)?;
    let timeout = Duration::from_secs(common.timeout_secs);
    let mut server = Server::start().await.map_err(|e| e.to_string())?;
    let mut child = spawn(&common, &name, &server.addr).map_err(|e| e.to_string())?;
    let pid = child.id();
    let started = Instant::now();
    let until = started + Duration::from_secs(seconds);
    let mut outcomes = BTreeMap::new();
    let mut latencies = Vec::new();
    let mut n: u64 = 0;
    let mut handed_out = started;
    // The last poll is kept unanswered (as Lambda freezes an idle container) until the end.
    let mut parked = None;
    let result: Result<(), String> = async {
        loop {
            match server.recv(timeout).await? {
                Msg::Next { reply, .. } => {
                    if Instant::now() >= until {
                        parked = Some(reply);
                        return Ok(());
                    }
                    n += 1;
                    let event = template
                        .replace("{{N}}", &n.to_string())
                        .replace("{{RUN}}", &n.to_string());
                    handed_out = Instant::now();
                    reply
                        .send((format!("load-{n}"), Bytes::from(event)))
                        .map_err(|_| "the runtime client went away".to_string())?;
                }
                Msg::Done {
                    at, body, error, ..
                } => {
                    latencies.push(ms(at - handed_out));
                    *outcomes.entry(outcome(&body, error)).or_insert(0) += 1;
                }
                Msg::InitError { body } => {
                    return Err(format!("init error: {}", String::from_utf8_lossy(&body)))
                }
            }
        }
    }
    .await;
    let elapsed = started.elapsed();
    let hwm = proc_status_kib(pid, "VmHWM");
    let rss = proc_status_kib(pid, "VmRSS");
    drop(parked);
    kill(&mut child);
    result?;
    let report = LoadReport {
        function: name,
        binary: common.bin.display().to_string(),
        seconds: (elapsed.as_secs_f64() * 10.0).round() / 10.0,
        invocations: n,
        outcomes,
        latency_ms: stats(&latencies),
        vm_hwm_kib: hwm,
        vm_rss_kib: rss,
    };
    emit(&report, common.out.as_ref())
}

fn emit(report: &impl Serialize, out: Option<&PathBuf>) -> Result<(), String> {
    let text = serde_json::to_string_pretty(report).map_err(|e| e.to_string())?;
    println!("{text}");
    if let Some(path) = out {
        std::fs::write(path, format!("{text}\n"))
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Mode::Cold {
            common,
            runs,
            warmup,
            before_each,
            baseline,
            baseline_event,
        } => {
            let baseline = match (baseline, baseline_event) {
                (Some(bin), Some(event)) => {
                    let base = Common {
                        name: bin.file_name().map(|n| n.to_string_lossy().into_owned()),
                        bin,
                        event,
                        subst: Vec::new(),
                        out: None,
                        ..common.clone()
                    };
                    match event_text(&base) {
                        Ok(event) => Ok(Some(Baseline {
                            common: base,
                            event,
                        })),
                        Err(e) => Err(e),
                    }
                }
                _ => Ok(None),
            };
            match baseline {
                Ok(baseline) => cold(common, runs, warmup, before_each, baseline).await,
                Err(e) => Err(e),
            }
        }
        Mode::Load { common, seconds } => load(common, seconds).await,
    };
    if let Err(e) = result {
        eprintln!("lambda-emulator: {e}");
        std::process::exit(1);
    }
}
