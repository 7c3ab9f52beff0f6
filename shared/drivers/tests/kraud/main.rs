//! Contract tests of the Kraud.Cloud driver against the Kraud API test server in
//! `kraud_api/`: lifecycle, idempotent create, error mapping, confidential read-back and the
//! login injection (hash only, never a plaintext password).

#[path = "../kraud_api/mod.rs"]
mod kraud_api;
#[path = "../kraud_spec/mod.rs"]
mod kraud_spec;
#[path = "../spec_check/mod.rs"]
mod spec_check;

mod common;
mod confidential;
mod errors;
mod lifecycle;
mod listing;
mod login;
mod rules;
