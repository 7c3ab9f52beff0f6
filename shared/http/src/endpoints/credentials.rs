//! A VM's login.

use super::spec::{Auth, Param, Spec, Success, Tag, Verb};

pub(super) const GET_CREDENTIALS: Spec = Spec {
    verb: Verb::Get,
    path: "/api/virtual-machines/{id}/credentials",
    function: "get-credentials",
    auth: Auth::User,
    tag: Tag::Credentials,
    summary: "Read a virtual machine's login",
    description: "The VM's login: `password` (authMethod 0) or `privateKey` and `publicKey` \
        (authMethod 1 with a generated key pair), or only `publicKey` (the user's own key), \
        with `host` and `port`. For the VM's owner and the team's owners and admins (other \
        members: 403). Every read is recorded on the VM. Never cached (`Cache-Control: \
        no-store`).",
    params: &[Param::Vm],
    request: None,
    success: Success {
        no_store: true,
        ..Success::plain(200, "VmCredentials", "The VM's login")
    },
    errors: &[
        "INVALID_PARAMETER",
        "UNAUTHORIZED",
        "FORBIDDEN",
        "VM_NOT_FOUND",
        "CREDENTIALS_NOT_FOUND",
        "VM_BLOCKED",
        "INTERNAL_ERROR",
        "SERVICE_UNAVAILABLE",
    ],
    notes: &[(
        "FORBIDDEN",
        "only the VM's owner and the team's owners and admins read its credentials",
    )],
    conditional: false,
    idempotent: false,
    logins: true,
};
