//! Every log line of the test binary, captured for the tests that read them.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

/// Everything the test binary logged (every test's servers log here; see `capture_logs`).
static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();

#[derive(Clone)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Sends every log line of this process (the service's crates at TRACE, libraries at DEBUG,
/// in the JSON format Lambda uses) into a buffer, once.
pub(crate) fn capture_logs() {
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let writer = Capture(buf.clone());
        let filter = tracing_subscriber::EnvFilter::new(
            "debug,vmapi_core=trace,vmapi_http=trace,vmapi_secrets=trace,vmapi_store_dynamodb=trace,vmapi_aws=trace",
        );
        let _ = tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .with_current_span(true)
            .with_span_list(true)
            .with_writer(move || writer.clone())
            .try_init();
        buf
    });
}

/// The log output captured so far.
pub fn captured_logs() -> String {
    LOGS.get()
        .map(|b| String::from_utf8_lossy(&b.lock().unwrap()).into_owned())
        .unwrap_or_default()
}
