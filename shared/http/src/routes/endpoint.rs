//! Every endpoint: its method, path template, function (binary) and traits.

use axum::http::Method;

/// Every endpoint, with its function (binary) name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `GET /health`
    Health,
    /// `POST /api/virtual-machines`
    CreateVm,
    /// `GET /api/teams/{team}/projects/{project}/virtual-machines`
    ListVms,
    /// `GET /api/virtual-machines/{id}`
    GetVm,
    /// `PATCH /api/virtual-machines/{id}`
    UpdateVm,
    /// `PUT /api/virtual-machines/{id}/start`
    StartVm,
    /// `PUT /api/virtual-machines/{id}/stop`
    StopVm,
    /// `PUT /api/virtual-machines/{id}/reboot`
    RebootVm,
    /// `DELETE /api/virtual-machines/{id}`
    DeleteVm,
    /// `GET /api/virtual-machines/{id}/credentials`
    GetCredentials,
    /// `GET /api/virtual-machines/{id}/activity`
    GetActivity,
    /// `POST /api/security-rules`
    CreateSecurityRule,
    /// `GET /api/virtual-machines/{id}/security-rules`
    ListSecurityRules,
    /// `DELETE /api/security-rules/{id}`
    DeleteSecurityRule,
}

impl Endpoint {
    /// All endpoints.
    pub const ALL: [Endpoint; 14] = [
        Endpoint::Health,
        Endpoint::CreateVm,
        Endpoint::ListVms,
        Endpoint::GetVm,
        Endpoint::UpdateVm,
        Endpoint::StartVm,
        Endpoint::StopVm,
        Endpoint::RebootVm,
        Endpoint::DeleteVm,
        Endpoint::GetCredentials,
        Endpoint::GetActivity,
        Endpoint::CreateSecurityRule,
        Endpoint::ListSecurityRules,
        Endpoint::DeleteSecurityRule,
    ];

    /// The index of the endpoint in [`Endpoint::ALL`] (the `E` of [`single_router`](crate::routes::single_router) and
    /// [`crate::lambda::run`]).
    pub const fn index(self) -> usize {
        self as usize
    }

    /// HTTP method.
    pub fn method(self) -> Method {
        match self {
            Endpoint::Health
            | Endpoint::ListVms
            | Endpoint::GetVm
            | Endpoint::GetCredentials
            | Endpoint::GetActivity
            | Endpoint::ListSecurityRules => Method::GET,
            Endpoint::CreateVm | Endpoint::CreateSecurityRule => Method::POST,
            Endpoint::UpdateVm => Method::PATCH,
            Endpoint::StartVm | Endpoint::StopVm | Endpoint::RebootVm => Method::PUT,
            Endpoint::DeleteVm | Endpoint::DeleteSecurityRule => Method::DELETE,
        }
    }

    /// Path template (API Gateway and axum syntax).
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::Health => "/health",
            Endpoint::CreateVm => "/api/virtual-machines",
            Endpoint::ListVms => "/api/teams/{team}/projects/{project}/virtual-machines",
            Endpoint::GetVm | Endpoint::UpdateVm | Endpoint::DeleteVm => {
                "/api/virtual-machines/{id}"
            }
            Endpoint::StartVm => "/api/virtual-machines/{id}/start",
            Endpoint::StopVm => "/api/virtual-machines/{id}/stop",
            Endpoint::RebootVm => "/api/virtual-machines/{id}/reboot",
            Endpoint::GetCredentials => "/api/virtual-machines/{id}/credentials",
            Endpoint::GetActivity => "/api/virtual-machines/{id}/activity",
            Endpoint::CreateSecurityRule => "/api/security-rules",
            Endpoint::ListSecurityRules => "/api/virtual-machines/{id}/security-rules",
            Endpoint::DeleteSecurityRule => "/api/security-rules/{id}",
        }
    }

    /// The Lambda function (binary and crate) serving it.
    pub fn function(self) -> &'static str {
        match self {
            Endpoint::Health => "health",
            Endpoint::CreateVm => "create-vm",
            Endpoint::ListVms => "list-vms",
            Endpoint::GetVm => "get-vm",
            Endpoint::UpdateVm => "update-vm",
            Endpoint::StartVm => "start-vm",
            Endpoint::StopVm => "stop-vm",
            Endpoint::RebootVm => "reboot-vm",
            Endpoint::DeleteVm => "delete-vm",
            Endpoint::GetCredentials => "get-credentials",
            Endpoint::GetActivity => "get-activity",
            Endpoint::CreateSecurityRule => "create-security-rule",
            Endpoint::ListSecurityRules => "list-security-rules",
            Endpoint::DeleteSecurityRule => "delete-security-rule",
        }
    }

    /// Whether the endpoint's function needs the secret store (create and credentials; the
    /// provisioner removes VM logins after a teardown).
    pub fn needs_logins(self) -> bool {
        matches!(self, Endpoint::CreateVm | Endpoint::GetCredentials)
    }

    /// Whether the endpoint honours `Idempotency-Key`: every write that creates or acts (POST,
    /// PUT, DELETE: create, the VM actions and the security-rule writes); see
    /// [`crate::idempotency`].
    pub fn idempotent(self) -> bool {
        matches!(self.method(), Method::POST | Method::PUT | Method::DELETE)
    }
}
