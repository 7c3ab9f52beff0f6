//! The integration suite: one test binary (one link step) with a module per area.

mod admin;
mod api;
mod authz_matrix;
mod bad_input;
mod blocked;
mod catalog;
mod cleanup;
mod configuration;
mod costs;
mod credentials;
mod deploy;
mod deployments;
mod faults;
mod iam;
mod idempotency;
mod monitoring;
mod properties;
mod provisioning;
mod quotas;
mod races;
mod resize;
mod round_trips;
mod rules_apply;
mod samconfig;
mod security_rules;
mod stream;
mod vault;

// The drivers' API description checker, which their test servers (included by `deployments`)
// use as `crate::spec_check`.
#[path = "../../../shared/drivers/tests/spec_check/mod.rs"]
mod spec_check;
