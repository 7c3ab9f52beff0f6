//! In-memory [`Repository`](crate::ports::Repository) and
//! [`SecretStore`](crate::credentials::SecretStore) for fast unit tests of the use cases. Not
//! adapters: the real ones are tested against DynamoDB Local, moto and OpenBao.

mod accounts;
mod admin_keys;
mod idempotency;
mod repository;
mod secrets;

pub use idempotency::MemoryIdempotencyStore;
pub use repository::{sample_vm, MemoryRepository};
pub use secrets::MemorySecretStore;
