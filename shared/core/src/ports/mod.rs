//! Ports: every trait the use cases need from the outside, with the types they carry. The
//! adapters (DynamoDB, the secret stores, the cloud drivers, the idempotency store) implement
//! them; `memory` (feature `testing`) has in-memory ones.

pub mod cloud;
pub mod idempotency;
pub mod secrets;
mod storage;

pub use cloud::CloudDriver;
pub use idempotency::IdempotencyStore;
pub use secrets::SecretStore;
pub use storage::*;
