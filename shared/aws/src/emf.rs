//! CloudWatch metrics in the embedded metric format (EMF): one JSON line per measurement on
//! stdout, which Lambda's log pipeline turns into metrics. No API call, no latency, no rights.
//!
//! Every measurement carries the `Deployment` dimension, so that two stacks in one account
//! keep apart (the template's dashboard searches by it).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};
use vmapi_config::Env;
use vmapi_core::{FinishedOp, Metrics};

use crate::settings::{DEPLOYMENT_ID, METRICS_NAMESPACE};

/// Requests per route (Count; dimensions `Deployment`, `Route`).
pub const REQUESTS: &str = "Requests";
/// Server errors (5xx) per route (Count).
pub const ERRORS: &str = "Errors";
/// Client errors (4xx) per route (Count).
pub const CLIENT_ERRORS: &str = "ClientErrors";
/// Time to the response per route (Milliseconds).
pub const LATENCY: &str = "Latency";
/// Finished cloud operations (Count; dimensions `Deployment`, `Cloud`, `Operation`, `Outcome`).
pub const OPERATIONS: &str = "Operations";
/// From asking for an operation to its end (Seconds; same dimensions).
pub const OPERATION_SECONDS: &str = "OperationSeconds";
/// From asking for a VM to the VM running (Seconds; dimensions `Deployment`, `Cloud`).
pub const TIME_TO_RUNNING: &str = "TimeToRunning";

type Sink = Arc<dyn Fn(&str) + Send + Sync>;

/// One metric directive: its dimensions besides `Deployment`, and its metrics with their units.
type Directive<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)]);

/// Writes EMF documents.
#[derive(Clone)]
pub struct Emf {
    namespace: String,
    deployment: String,
    sink: Sink,
}

impl std::fmt::Debug for Emf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emf")
            .field("namespace", &self.namespace)
            .field("deployment", &self.deployment)
            .finish_non_exhaustive()
    }
}

impl Emf {
    /// Documents to stdout (Lambda), namespace [`METRICS_NAMESPACE`], deployment
    /// [`DEPLOYMENT_ID`] (else `local`, as the rest of the code reads it).
    pub fn from_env() -> Self {
        let env = Env::process();
        Emf::with_sink(
            env.string(&METRICS_NAMESPACE).unwrap_or_default(),
            env.string(&DEPLOYMENT_ID).unwrap_or_default(),
            |line| {
                use std::io::Write;
                // One write per line, so that lines of concurrent requests never interleave.
                let _ = std::io::stdout()
                    .lock()
                    .write_all(format!("{line}\n").as_bytes());
            },
        )
    }

    /// Documents to `sink`, one call per document.
    pub fn with_sink(
        namespace: impl Into<String>,
        deployment: impl Into<String>,
        sink: impl Fn(&str) + Send + Sync + 'static,
    ) -> Self {
        Emf {
            namespace: namespace.into(),
            deployment: deployment.into(),
            sink: Arc::new(sink),
        }
    }

    /// One answered request of `route` (`GET /api/virtual-machines/{id}`).
    pub fn request(&self, route: &str, status: u16, latency: Duration) {
        let mut values = Map::new();
        values.insert("Route".into(), route.into());
        values.insert("Status".into(), status.into());
        values.insert(REQUESTS.into(), 1.into());
        values.insert(ERRORS.into(), u8::from(status >= 500).into());
        values.insert(
            CLIENT_ERRORS.into(),
            u8::from((400..500).contains(&status)).into(),
        );
        values.insert(LATENCY.into(), millis(latency).into());
        self.emit(
            &[(
                &["Route"],
                &[
                    (REQUESTS, "Count"),
                    (ERRORS, "Count"),
                    (CLIENT_ERRORS, "Count"),
                    (LATENCY, "Milliseconds"),
                ],
            )],
            values,
        );
    }

    /// Writes one document; `values` holds the dimensions' and the metrics' values.
    fn emit(&self, directives: &[Directive<'_>], mut values: Map<String, Value>) {
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let metrics: Vec<Value> = directives
            .iter()
            .map(|(dimensions, metrics)| {
                let mut dims = vec!["Deployment"];
                dims.extend_from_slice(dimensions);
                json!({
                    "Namespace": self.namespace,
                    "Dimensions": [dims],
                    "Metrics": metrics
                        .iter()
                        .map(|(name, unit)| json!({"Name": name, "Unit": unit}))
                        .collect::<Vec<_>>(),
                })
            })
            .collect();
        values.insert("Deployment".into(), self.deployment.clone().into());
        values.insert(
            "_aws".into(),
            json!({"Timestamp": timestamp, "CloudWatchMetrics": metrics}),
        );
        (self.sink)(&Value::Object(values).to_string());
    }
}

impl Metrics for Emf {
    fn operation_finished(&self, op: &FinishedOp) {
        let seconds = op.duration.as_secs_f64();
        let mut values = Map::new();
        values.insert("Cloud".into(), op.cloud.clone().into());
        values.insert("Operation".into(), op.op.name().into());
        let outcome = if op.succeeded { "succeeded" } else { "failed" };
        values.insert("Outcome".into(), outcome.into());
        values.insert(OPERATIONS.into(), 1.into());
        values.insert(OPERATION_SECONDS.into(), seconds.into());
        let operation: Directive<'_> = (
            &["Cloud", "Operation", "Outcome"],
            &[(OPERATIONS, "Count"), (OPERATION_SECONDS, "Seconds")],
        );
        if op.succeeded && op.op == vmapi_models::OpKind::Create {
            values.insert(TIME_TO_RUNNING.into(), seconds.into());
            self.emit(
                &[operation, (&["Cloud"], &[(TIME_TO_RUNNING, "Seconds")])],
                values,
            );
        } else {
            self.emit(&[operation], values);
        }
    }
}

fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use vmapi_models::OpKind;

    use super::*;

    fn captured() -> (Emf, Arc<Mutex<Vec<Value>>>) {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        let emf = Emf::with_sink("VmApi", "prod-eu", move |line: &str| {
            assert!(!line.contains('\n'), "one line per document");
            sink.lock()
                .unwrap()
                .push(serde_json::from_str(line).unwrap());
        });
        (emf, lines)
    }

    /// The metric names a document declares, and that each has a value and every dimension
    /// named has one too (CloudWatch drops a document that breaks this).
    fn declared(doc: &Value) -> Vec<String> {
        let directives = doc["_aws"]["CloudWatchMetrics"].as_array().unwrap();
        assert!(doc["_aws"]["Timestamp"].as_u64().unwrap() > 1_600_000_000_000);
        let mut names = Vec::new();
        for d in directives {
            assert_eq!(d["Namespace"], "VmApi");
            for dim in d["Dimensions"][0].as_array().unwrap() {
                assert!(doc[dim.as_str().unwrap()].is_string(), "{dim} in {doc}");
            }
            for m in d["Metrics"].as_array().unwrap() {
                let name = m["Name"].as_str().unwrap();
                assert!(doc[name].is_number(), "{name} in {doc}");
                names.push(name.to_string());
            }
        }
        names
    }

    #[test]
    fn a_request_is_counted_per_route_with_its_latency_and_class() {
        let (emf, lines) = captured();
        emf.request(
            "GET /api/virtual-machines/{id}",
            503,
            Duration::from_micros(12_345),
        );
        emf.request("POST /api/virtual-machines", 409, Duration::from_millis(3));
        let docs = lines.lock().unwrap();
        assert_eq!(
            declared(&docs[0]),
            [REQUESTS, ERRORS, CLIENT_ERRORS, LATENCY]
        );
        assert_eq!(
            docs[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Deployment", "Route"]])
        );
        assert_eq!(docs[0]["Deployment"], "prod-eu");
        assert_eq!(docs[0]["Route"], "GET /api/virtual-machines/{id}");
        assert_eq!(
            (docs[0][ERRORS].clone(), docs[0][CLIENT_ERRORS].clone()),
            (json!(1), json!(0))
        );
        assert_eq!(docs[0][LATENCY], json!(12.345));
        assert_eq!(
            (docs[1][ERRORS].clone(), docs[1][CLIENT_ERRORS].clone()),
            (json!(0), json!(1))
        );
    }

    #[test]
    fn an_operation_is_counted_by_cloud_and_outcome_and_a_create_times_the_way_to_running() {
        let (emf, lines) = captured();
        let op = |op, succeeded| FinishedOp {
            cloud: "azure".into(),
            op,
            succeeded,
            duration: Duration::from_secs(95),
        };
        emf.operation_finished(&op(OpKind::Create, true));
        emf.operation_finished(&op(OpKind::Create, false));
        emf.operation_finished(&op(OpKind::Stop, true));
        let docs = lines.lock().unwrap();
        assert_eq!(
            declared(&docs[0]),
            [OPERATIONS, OPERATION_SECONDS, TIME_TO_RUNNING]
        );
        assert_eq!(
            docs[0]["_aws"]["CloudWatchMetrics"][1]["Dimensions"],
            json!([["Deployment", "Cloud"]])
        );
        assert_eq!(
            (
                docs[0]["Cloud"].clone(),
                docs[0]["Operation"].clone(),
                docs[0]["Outcome"].clone()
            ),
            (json!("azure"), json!("create"), json!("succeeded"))
        );
        assert_eq!(docs[0][TIME_TO_RUNNING], json!(95.0));
        // A failed create never ran; a stop is no way to running.
        assert_eq!(declared(&docs[1]), [OPERATIONS, OPERATION_SECONDS]);
        assert_eq!(docs[1]["Outcome"], "failed");
        assert_eq!(declared(&docs[2]), [OPERATIONS, OPERATION_SECONDS]);
        assert_eq!(docs[2]["Operation"], "stop");
    }
}
