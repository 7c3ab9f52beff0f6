//! The cold-start baseline of `docs/performance.md`: the smallest `lambda_http` function, on the
//! same runtime flavour as the API's functions (current-thread Tokio), and nothing else.

use lambda_http::{service_fn, Body, Error, Request, Response};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_http::run(service_fn(|_req: Request| async {
        Response::builder()
            .status(200)
            .header("content-type", "text/plain")
            .body(Body::from("hello"))
            .map_err(Error::from)
    }))
    .await
}
