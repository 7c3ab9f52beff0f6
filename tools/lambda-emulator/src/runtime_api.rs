//! The Runtime API listener the measured binary polls: `next`, `response`, `error` and
//! `init/error` of the `2018-06-01` interface, each reported to the measuring side as a [`Msg`].

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tokio::sync::{mpsc, oneshot};

const API: &str = "/2018-06-01/runtime";

/// What the runtime client asked or reported, with the instant it arrived.
pub(crate) enum Msg {
    Next {
        at: Instant,
        reply: oneshot::Sender<(String, Bytes)>,
    },
    Done {
        at: Instant,
        id: String,
        body: Bytes,
        error: bool,
    },
    InitError {
        body: Bytes,
    },
}

type Tx = Arc<mpsc::UnboundedSender<Msg>>;

async fn next(State(tx): State<Tx>) -> Response {
    let at = Instant::now();
    let (reply, rx) = oneshot::channel();
    if tx.send(Msg::Next { at, reply }).is_err() {
        return StatusCode::GONE.into_response();
    }
    match rx.await {
        Ok((id, event)) => {
            let deadline = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis()
                + 900_000;
            let mut headers = HeaderMap::new();
            let mut put = |k: &'static str, v: String| {
                if let Ok(v) = HeaderValue::from_str(&v) {
                    headers.insert(k, v);
                }
            };
            put("lambda-runtime-aws-request-id", id);
            put("lambda-runtime-deadline-ms", deadline.to_string());
            put(
                "lambda-runtime-invoked-function-arn",
                "arn:aws:lambda:us-east-1:123456789012:function:local".into(),
            );
            put(
                "lambda-runtime-trace-id",
                "Root=1-00000000-000000000000000000000000;Sampled=0".into(),
            );
            put("content-type", "application/json".into());
            (StatusCode::OK, headers, event).into_response()
        }
        // The run is over: the process is about to be killed.
        Err(_) => StatusCode::GONE.into_response(),
    }
}

async fn done(tx: Tx, id: String, body: Bytes, at: Instant, error: bool) -> StatusCode {
    let _ = tx.send(Msg::Done {
        at,
        id,
        body,
        error,
    });
    StatusCode::ACCEPTED
}

async fn response(State(tx): State<Tx>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    // Headers have arrived when the handler runs; the body is a few KiB at most.
    let at = Instant::now();
    done(tx, id, body, at, false).await
}

async fn invocation_error(State(tx): State<Tx>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    let at = Instant::now();
    done(tx, id, body, at, true).await
}

async fn init_error(State(tx): State<Tx>, body: Bytes) -> StatusCode {
    let _ = tx.send(Msg::InitError { body });
    StatusCode::ACCEPTED
}

/// A Runtime API listener of its own (one per process started, so nothing of one run can
/// reach the next).
pub(crate) struct Server {
    pub(crate) addr: String,
    rx: mpsc::UnboundedReceiver<Msg>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    pub(crate) async fn start() -> std::io::Result<Server> {
        let (tx, rx) = mpsc::unbounded_channel();
        let app = Router::new()
            .route(&format!("{API}/invocation/next"), get(next))
            .route(&format!("{API}/invocation/{{id}}/response"), post(response))
            .route(
                &format!("{API}/invocation/{{id}}/error"),
                post(invocation_error),
            )
            .route(&format!("{API}/init/error"), post(init_error))
            .with_state(Arc::new(tx));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?.to_string();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Server { addr, rx, task })
    }

    pub(crate) async fn recv(&mut self, timeout: Duration) -> Result<Msg, String> {
        match tokio::time::timeout(timeout, self.rx.recv()).await {
            Ok(Some(m)) => Ok(m),
            Ok(None) => Err("runtime API server stopped".into()),
            Err(_) => Err(format!("no runtime API request within {timeout:?}")),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}
