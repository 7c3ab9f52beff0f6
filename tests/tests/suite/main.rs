//! The integration suite: one test binary (one link step) with a module per area.

mod api;
mod cleanup;
mod credentials;
mod deploy;
mod iam;
mod provisioning;
mod round_trips;
