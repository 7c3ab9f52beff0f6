//! Cloud drivers of the VM API behind the core's `CloudDriver` port: AWS EC2 (feature `aws`),
//! Azure Resource Manager (feature `azure`), Kraud.Cloud (feature `kraud`), and a simulated
//! cloud for local development.

#[cfg(feature = "aws")]
pub mod aws;
#[cfg(feature = "azure")]
pub mod azure;
#[cfg(feature = "kraud")]
pub mod kraud;
pub mod simulated;

pub use simulated::SimulatedDriver;

/// Captures what the code under test logs (tests only).
#[cfg(test)]
pub(crate) mod test_log {
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Runs `f` with a subscriber that writes into a buffer; returns the log text and the result.
    pub(crate) fn capture<T>(f: impl FnOnce() -> T) -> (String, T) {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let out = tracing::subscriber::with_default(subscriber, f);
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        (text, out)
    }
}
