//! The end of a function process: the Lambda Runtime API closing its connection.

use std::error::Error;

/// Whether `err`, returned by the Lambda runtime's loop, means that the Runtime API closed the
/// connection (or is gone): the emulator of `sam local` stops the function this way after the
/// answer, while the runtime waits for the next event. Deployed Lambda freezes or ends the
/// process instead, so this is never a failure to report: the process ends quietly.
pub fn runtime_api_closed(err: &(dyn Error + 'static)) -> bool {
    let mut cause: Option<&(dyn Error + 'static)> = Some(err);
    while let Some(e) = cause {
        if let Some(h) = e.downcast_ref::<hyper::Error>() {
            if h.is_incomplete_message() || h.is_canceled() || h.is_closed() {
                return true;
            }
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::*;
            if matches!(
                io.kind(),
                ConnectionRefused
                    | ConnectionReset
                    | ConnectionAborted
                    | BrokenPipe
                    | UnexpectedEof
            ) {
                return true;
            }
        }
        cause = e.source();
    }
    false
}

/// Ends the runtime's loop: `Ok` when the Runtime API closed (logged at info), else the error.
pub fn quiet_on_close<E>(result: Result<(), E>) -> Result<(), E>
where
    E: AsRef<dyn Error + Send + Sync + 'static>,
{
    match result {
        Err(e) if runtime_api_closed(e.as_ref()) => {
            eprintln!("the Lambda Runtime API closed the connection; ending");
            Ok(())
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Wrapped(Box<dyn Error + Send + Sync>);
    impl std::fmt::Display for Wrapped {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("client error (SendRequest)")
        }
    }
    impl Error for Wrapped {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&*self.0)
        }
    }

    /// A hyper error of a response cut off (what `sam local`'s emulator leaves the runtime with).
    async fn incomplete_message() -> hyper::Error {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf).await;
            s.shutdown().await.unwrap(); // closes without an answer
        });
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let io = hyper_util::rt::TokioIo::new(stream);
        let (mut send, conn) = hyper::client::conn::http1::handshake::<_, String>(io)
            .await
            .unwrap();
        tokio::spawn(conn);
        let req = hyper::Request::get("/2018-06-01/runtime/invocation/next")
            .body(String::new())
            .unwrap();
        let err = send.send_request(req).await.unwrap_err();
        server.await.unwrap();
        err
    }

    #[tokio::test]
    async fn a_closed_runtime_api_ends_quietly_other_errors_do_not() {
        let closed = incomplete_message().await;
        assert!(closed.is_incomplete_message(), "{closed:?}");
        let boxed: Box<dyn Error + Send + Sync> = Box::new(Wrapped(Box::new(closed)));
        assert!(runtime_api_closed(boxed.as_ref()));
        assert!(quiet_on_close::<Box<dyn Error + Send + Sync>>(Err(boxed)).is_ok());
        let refused: Box<dyn Error + Send + Sync> = Box::new(Wrapped(Box::new(
            std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
        )));
        assert!(runtime_api_closed(refused.as_ref()));
        // A configuration error, or a handler's failure, is still an error.
        let other: Box<dyn Error + Send + Sync> = "configuration: CURSOR_SECRET must be set".into();
        assert!(!runtime_api_closed(other.as_ref()));
        let kept = quiet_on_close::<Box<dyn Error + Send + Sync>>(Err(other)).unwrap_err();
        assert!(kept.to_string().contains("CURSOR_SECRET"));
        let denied: Box<dyn Error + Send + Sync> = Box::new(Wrapped(Box::new(
            std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        )));
        assert!(!runtime_api_closed(denied.as_ref()));
    }
}
