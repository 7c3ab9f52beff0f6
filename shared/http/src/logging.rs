//! Log set-up: JSON in Lambda when `AWS_LAMBDA_LOG_FORMAT=JSON`, readable text locally (stderr).
//!
//! Both turn off the error lines of vaultrs and of rustify (its HTTP layer): they carry only
//! "An error occurred with the request" or "Server returned error", at ERROR level, also for
//! an absent secret (Vault's 404), which is a normal answer. The service logs every real failure
//! itself, with its cause. A `RUST_LOG` that names either crate wins.

use tracing_subscriber::filter::{EnvFilter, LevelFilter};
use vmapi_config::{Env, Var, ALL};

/// The log filter.
pub const RUST_LOG: Var = Var::new(
    "RUST_LOG",
    ALL,
    "log filter (`AWS_LAMBDA_LOG_LEVEL` wins in Lambda)",
)
.default("info")
.values("`tracing` directives (`info,vmapi_core=debug`)");
/// Lambda's log level control.
pub const AWS_LAMBDA_LOG_LEVEL: Var = Var::new(
    "AWS_LAMBDA_LOG_LEVEL",
    ALL,
    "Lambda's log level control (set by Lambda when the function's logging config has one)",
)
.default("info")
.values("a level (`debug`, `info`, …)");
/// Lambda's log format control.
pub const AWS_LAMBDA_LOG_FORMAT: Var =
    Var::new("AWS_LAMBDA_LOG_FORMAT", ALL, "`JSON` gives JSON log lines")
        .note("set by Lambda")
        .values("`JSON` or `Text`");

/// Crates whose own lines are off unless `RUST_LOG` names them.
const QUIET: [&str; 2] = ["vaultrs", "rustify"];

/// The filter for `default` (a level, or directives such as `info,aws_config=warn`) and an
/// explicit `RUST_LOG`.
fn filter(default: &str, rust_log: Option<&str>) -> EnvFilter {
    let mut directives = rust_log.unwrap_or(default).to_string();
    for quiet in QUIET {
        if !directives.contains(quiet) {
            directives.push_str(&format!(",{quiet}=off"));
        }
    }
    EnvFilter::builder()
        .with_default_directive(LevelFilter::INFO.into())
        .parse_lossy(directives)
}

/// Lambda: as `lambda_http::tracing::init_default_subscriber` (honours `AWS_LAMBDA_LOG_FORMAT`,
/// and `AWS_LAMBDA_LOG_LEVEL` before `RUST_LOG`; no timestamps, CloudWatch adds them), with the
/// quiet crates off.
pub fn init_lambda() {
    let env = Env::process();
    let level = env.get(&AWS_LAMBDA_LOG_LEVEL);
    let rust_log = env.get(&RUST_LOG);
    let filter = filter(
        level.as_deref().unwrap_or("info"),
        level.is_none().then_some(rust_log.as_deref()).flatten(),
    );
    let collector = tracing_subscriber::fmt()
        .with_target(false)
        .without_time()
        .with_env_filter(filter)
        .with_writer(std::io::stdout);
    let json = env
        .get(&AWS_LAMBDA_LOG_FORMAT)
        .is_some_and(|f| f.eq_ignore_ascii_case("json"));
    let _ = if json {
        collector.json().try_init()
    } else {
        collector.try_init()
    };
}

/// Local runs: human-readable lines on stderr (colours only on a terminal), `RUST_LOG` filter
/// (default `info`).
pub fn init_local() {
    use std::io::IsTerminal;
    let rust_log = Env::process().get(&RUST_LOG);
    let filter = filter(
        "info,aws_config=warn,aws_smithy_runtime=warn",
        rust_log.as_deref(),
    );
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// The lines `filter` lets through of an error from each crate and one of the service's.
    fn logged(filter: EnvFilter) -> String {
        let buf = Arc::new(Mutex::new(Vec::<u8>::new()));
        let sink = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(move || -> Box<dyn std::io::Write> {
                struct W(Arc<Mutex<Vec<u8>>>);
                impl std::io::Write for W {
                    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                        self.0.lock().unwrap().extend_from_slice(b);
                        Ok(b.len())
                    }
                    fn flush(&mut self) -> std::io::Result<()> {
                        Ok(())
                    }
                }
                Box::new(W(sink.clone()))
            })
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::error!(target: "rustify::clients::reqwest", "Server returned error");
            tracing::error!(target: "vaultrs::api", "An error occurred with the request");
            tracing::error!(target: "vmapi_http::error", "the service's own line");
        });
        let text = String::from_utf8(buf.lock().unwrap().clone()).unwrap();
        text
    }

    #[test]
    fn vaultrs_and_rustify_lines_are_off_unless_rust_log_names_them() {
        for (default, rust_log) in [("info", None), ("warn", None), ("info", Some("debug"))] {
            let text = logged(filter(default, rust_log));
            assert!(text.contains("the service's own line"), "{text}");
            assert!(!text.contains("Server returned error"), "{text}");
            assert!(!text.contains("An error occurred"), "{text}");
        }
        let text = logged(filter("info", Some("info,rustify=error")));
        assert!(text.contains("Server returned error"), "{text}");
        assert!(!text.contains("An error occurred"), "{text}");
    }
}
