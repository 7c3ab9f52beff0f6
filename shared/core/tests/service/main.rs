//! Unit tests of the use cases and the provisioner over the in-memory ports (one test binary).

mod cloud;
mod costs;
mod fixtures;
mod provisioner;
mod resize;
mod use_cases;
