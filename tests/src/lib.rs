//! Harness of the black-box tests: a fresh table in DynamoDB Local per test, loaded with the
//! demo data, and the local server's routers listening on a free loopback port.
//!
//! `make test` starts DynamoDB Local, moto and OpenBao and sets `AWS_ENDPOINT_URL_DYNAMODB`,
//! `AWS_ENDPOINT_URL_SECRETS_MANAGER` and `VMAPI_VAULT_ADDR`; without them these tests fail with
//! a message saying so (they never talk to real AWS). Vault is OpenBao, see [`vault`].

pub mod vault;

mod admin;
mod app;
mod common;
mod local_service;
mod logs;
mod options;
mod records;

pub use app::*;
pub use common::*;
pub use local_service::*;
pub use logs::*;
pub use options::*;
pub use records::*;
