//! Checks every exchange of a test server against the provider's API description: the request
//! the driver sent (method, path, query, headers, body) and the answer the test server gave.
//!
//! The checking is done by `openapi-core` (PyPI, pinned in scripts/lib.sh) in one long-lived
//! Python process per test binary, `tests/specs/validate.py`, started by the first test server
//! ([`ensure`]) and fed one JSON line per exchange. The interpreter is `VMAPI_SPECS_PYTHON`
//! (exported by `ensure_spec_validator` in scripts/lib.sh), else `.local/specs/bin/python`;
//! without either, starting a test server panics and says how to install it (no silent skip).
//! A validator that cannot answer fails the test too.
//!
//! A test server adds [`layer`] as its outermost middleware and keeps a [`Violations`]: each
//! exchange the documents do not allow is recorded (and printed at once), and the server's
//! `Drop` calls [`Violations::assert_none`], which fails the test with the validator's messages.

#![allow(dead_code)]

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde_json::{json, Value};

/// Largest body the middleware buffers (the drivers send and read far less).
const MAX_BODY: usize = 4 << 20;

/// One HTTP exchange to check.
#[derive(Clone, Debug, Default)]
pub struct Exchange {
    /// `"kraud"` or `"azure"`: which documents apply.
    pub api: &'static str,
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// `None`: check the request only.
    pub status: Option<u16>,
    pub response_headers: Vec<(String, String)>,
    pub response_body: Vec<u8>,
}

/// What the validator said about an exchange.
#[derive(Clone, Debug, Default)]
pub struct Verdict {
    /// The document's `operationId`, when an operation matched.
    pub operation: Option<String>,
    /// Why the documents do not allow the request (empty: allowed).
    pub request: Vec<String>,
    /// Why the documents do not allow the response (empty: allowed).
    pub response: Vec<String>,
    /// An error status the operation does not describe (not a violation; see docs/providers.md).
    pub note: Option<String>,
}

impl Verdict {
    pub fn allowed(&self) -> bool {
        self.request.is_empty() && self.response.is_empty()
    }
}

struct Validator {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

/// The workspace root, found from the crate that includes this module (the drivers' tests, or
/// the integration suite in tests/, which includes the test servers too).
fn workspace_root() -> PathBuf {
    let mut dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    while !dir.join(VALIDATOR).exists() {
        assert!(
            dir.pop(),
            "no {VALIDATOR} above {}",
            env!("CARGO_MANIFEST_DIR")
        );
    }
    dir
}

/// The validator script, from the workspace root.
const VALIDATOR: &str = "shared/drivers/tests/specs/validate.py";

pub fn python() -> PathBuf {
    let root = workspace_root();
    let program = std::env::var_os("VMAPI_SPECS_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join(".local/specs/bin/python"));
    assert!(
        program.exists(),
        "the API description validator (openapi-core) is not installed: VMAPI_SPECS_PYTHON is \
         unset or names no file, and {} does not exist. Run the tests with `make test`, or \
         install it with `bash -c 'source scripts/lib.sh && ensure_spec_validator'`",
        program.display()
    );
    program
}

fn start() -> Validator {
    let script = workspace_root().join(VALIDATOR);
    let program = python();
    let mut child = Command::new(&program)
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start {} {}: {e}",
                program.display(),
                script.display()
            )
        });
    let stdin = child.stdin.take().unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    Validator {
        child,
        stdin,
        stdout,
    }
}

/// Starts the validator now (a test server calls this when it starts), so a missing
/// installation fails the test at once with the message of [`python`].
pub fn ensure() {
    drop(validator().lock());
}

fn validator() -> &'static Mutex<Validator> {
    static VALIDATOR: OnceLock<Mutex<Validator>> = OnceLock::new();
    VALIDATOR.get_or_init(|| Mutex::new(start()))
}

fn pairs(headers: &[(String, String)]) -> Value {
    let mut map = serde_json::Map::new();
    for (k, v) in headers {
        map.insert(k.to_ascii_lowercase(), json!(v));
    }
    Value::Object(map)
}

/// Checks one exchange (blocking: one line to the validator and its answer).
pub fn check(exchange: &Exchange) -> Verdict {
    let mut ask = json!({
        "api": exchange.api,
        "method": exchange.method,
        "path": exchange.path,
        "query": exchange.query,
        "headers": pairs(&exchange.headers),
        "body": B64.encode(&exchange.body),
    });
    if let Some(status) = exchange.status {
        ask["status"] = json!(status);
        ask["response_headers"] = pairs(&exchange.response_headers);
        ask["response_body"] = json!(B64.encode(&exchange.response_body));
    }
    let mut v = validator().lock().unwrap_or_else(|p| p.into_inner());
    let mut line = ask.to_string();
    line.push('\n');
    let mut answer = String::new();
    let ok = v.stdin.write_all(line.as_bytes()).is_ok()
        && v.stdin.flush().is_ok()
        && v.stdout.read_line(&mut answer).is_ok_and(|n| n > 0);
    if !ok {
        let status = v.child.try_wait().ok().flatten();
        panic!("the API description validator (tests/specs/validate.py) stopped ({status:?}); its error output is above");
    }
    let answer: Value = serde_json::from_str(&answer)
        .unwrap_or_else(|e| panic!("unreadable validator answer {answer:?}: {e}"));
    let strings = |key: &str| -> Vec<String> {
        answer[key]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    Verdict {
        operation: answer["operation"].as_str().map(String::from),
        request: strings("request"),
        response: strings("response"),
        note: answer["note"].as_str().map(String::from),
    }
}

/// The violations a test server saw, and the operations it had checked.
#[derive(Clone, Default)]
pub struct Violations {
    inner: Arc<Mutex<Record>>,
}

#[derive(Default)]
struct Record {
    violations: Vec<String>,
    operations: BTreeSet<String>,
    notes: Vec<String>,
    checked: usize,
}

impl Violations {
    /// Records what the validator said about `exchange`.
    pub fn record(&self, exchange: &Exchange, verdict: &Verdict) {
        let mut r = self.inner.lock().unwrap();
        r.checked += 1;
        if let Some(op) = &verdict.operation {
            r.operations.insert(op.clone());
        }
        if let Some(note) = &verdict.note {
            r.notes.push(note.clone());
        }
        let what = format!(
            "{} {}{}{} ({})",
            exchange.method,
            exchange.path,
            if exchange.query.is_empty() { "" } else { "?" },
            exchange.query,
            verdict.operation.as_deref().unwrap_or("no operation")
        );
        for m in &verdict.request {
            let text = format!("request {what} is not allowed by the API description:\n{m}");
            eprintln!("{text}");
            r.violations.push(text);
        }
        for m in &verdict.response {
            let status = exchange.status.unwrap_or(0);
            let text =
                format!("response {status} to {what} is not allowed by the API description:\n{m}");
            eprintln!("{text}");
            r.violations.push(text);
        }
    }

    /// Records a violation found by a check in code (e.g. a shape the documents do not cover).
    pub fn push(&self, text: String) {
        eprintln!("{text}");
        self.inner.lock().unwrap().violations.push(text);
    }

    /// `operationId`s of the exchanges checked so far.
    pub fn operations(&self) -> BTreeSet<String> {
        self.inner.lock().unwrap().operations.clone()
    }

    /// Exchanges checked so far.
    pub fn checked(&self) -> usize {
        self.inner.lock().unwrap().checked
    }

    /// Violations so far.
    pub fn list(&self) -> Vec<String> {
        self.inner.lock().unwrap().violations.clone()
    }

    /// Panics with every violation (unless the thread is already panicking: then it prints
    /// them, since a second panic would abort).
    pub fn assert_none(&self) {
        let list = std::mem::take(&mut self.inner.lock().unwrap().violations);
        if list.is_empty() {
            return;
        }
        let text = format!(
            "{} exchange(s) not allowed by the providers' API descriptions:\n\n{}",
            list.len(),
            list.join("\n\n")
        );
        if std::thread::panicking() {
            eprintln!("{text}");
        } else {
            panic!("{text}");
        }
    }
}

/// What the middleware needs: the API, where to record, and the paths checked elsewhere
/// (in code: e.g. Azure's token endpoint and operation URLs, which no document describes).
#[derive(Clone)]
pub struct Context {
    pub api: &'static str,
    pub violations: Violations,
    pub skip: fn(&str) -> bool,
}

fn header_list(headers: &axum::http::HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
        .collect()
}

/// Axum middleware: buffers request and response, checks both, records violations.
pub async fn layer(State(ctx): State<Context>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    if (ctx.skip)(&path) {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let body = to_bytes(body, MAX_BODY).await.unwrap_or_default();
    let mut exchange = Exchange {
        api: ctx.api,
        method: parts.method.to_string(),
        path,
        query: parts.uri.query().unwrap_or("").to_string(),
        headers: header_list(&parts.headers),
        body: body.to_vec(),
        ..Exchange::default()
    };
    let response = next.run(Request::from_parts(parts, Body::from(body))).await;
    let (parts, body) = response.into_parts();
    let body = to_bytes(body, MAX_BODY).await.unwrap_or_default();
    exchange.status = Some(parts.status.as_u16());
    exchange.response_headers = header_list(&parts.headers);
    exchange.response_body = body.to_vec();
    let checked = tokio::task::spawn_blocking({
        let exchange = exchange.clone();
        move || check(&exchange)
    })
    .await;
    match checked {
        Ok(verdict) => ctx.violations.record(&exchange, &verdict),
        Err(e) => {
            let panic = e.into_panic();
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            ctx.violations.push(format!(
                "{} {} could not be checked: {message}",
                exchange.method, exchange.path
            ));
        }
    }
    Response::from_parts(parts, Body::from(body))
}
