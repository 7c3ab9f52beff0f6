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
