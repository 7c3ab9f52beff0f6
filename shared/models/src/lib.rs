//! Wire and domain types of the VM API.
//!
//! Everything here is plain data with serde names exactly as the API page shows
//! (`_id`, camelCase, ISO-8601 UTC timestamps with milliseconds). Values are parsed
//! once at the edge into these newtypes; no I/O and no AWS crates live here.

pub mod activity;
pub mod admin;
pub mod billing;
pub mod catalog;
pub mod cloud;
pub mod credentials;
pub mod deployment;
pub mod error;
pub mod ids;
pub mod money;
pub mod names;
mod newtype;
pub mod reference;
pub mod requests;
pub mod rules;
pub mod seed;
pub mod status;
pub mod team;
pub mod timestamp;
pub mod vm;

pub use activity::{EventKind, VmEvent};
pub use admin::{AdminKeyName, AdminKeyRecord, AdminResult, AdminVmPage};
pub use billing::{Billing, TeamCosts, VmCost};
pub use catalog::{
    Catalog, CloudProvider, CloudProviderRef, ConfidentialTech, Datacenter, Image, ImageVersion,
    Location, Price, PriceOffer, PriceRef, Provider, ProviderRecord, ProviderRef, Region, Size,
    SizeRef,
};
pub use cloud::CloudKind;
pub use credentials::{
    CredentialScope, Login, LoginSecret, SecretOwner, SecretPath, SecretRef, Sensitive,
    SshPublicKey, VmCredentials,
};
pub use deployment::{DeploymentId, Ownership};
pub use error::ParseError;
pub use ids::{
    BillingSettingsId, CloudProviderId, IpConfigId, LocationId, ObjectId, PriceId, ProjectId,
    ProviderId, SecurityRuleId, SizeId, SubscriptionId, TeamId, UserId, VmId,
};
pub use money::Money;
pub use names::{HostName, Tag, Tags};
pub use reference::Ref;
pub use requests::{secret_fields, CreateVmRequest, ResizeVmRequest, UpdateVmRequest};
pub use rules::{
    Cidr, CreateRuleRequest, Direction, NewRule, PortRange, Ports, Protocol, RuleAccess,
    RuleDeleted, RuleName, SecurityRule, SecurityRuleView,
};
pub use seed::{DemoVm, Seed};
pub use status::{AuthMethod, Role, VmStatus};
pub use team::{Member, Project, ProjectRef, Team, TeamQuotas, TeamRef};
pub use timestamp::Timestamp;
pub use vm::{
    Access, ActionResult, CloudRef, IpConfiguration, OpKind, PendingOp, ResizeTarget,
    StaleCategory, VirtualMachine, VmRecord,
};
