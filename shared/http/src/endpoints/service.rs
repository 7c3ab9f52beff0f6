//! The service's own endpoints.

use super::spec::{Auth, Param, Spec, Success, Tag, Verb};

pub(super) const HEALTH: Spec = Spec {
    verb: Verb::Get,
    path: "/health",
    function: "health",
    auth: Auth::Public,
    tag: Tag::Service,
    summary: "Health check",
    description: "Answers `{\"status\": \"ok\"}`; needs no token.",
    params: &[] as &[Param],
    request: None,
    success: Success::plain(200, "Health", "The service is up"),
    errors: &[],
    notes: &[],
    conditional: false,
    idempotent: false,
    logins: false,
};
