//! The admin API: the platform's routes under `/admin/api`, for the holder of an admin key in
//! `Api-Key` (user tokens are refused there, and keys everywhere else).

use super::spec::{Auth, Param, Spec, Success, Tag, Verb};

/// An admin request on one VM.
const ON_VM: Spec = Spec {
    verb: Verb::Put,
    path: "",
    function: "",
    auth: Auth::Admin,
    tag: Tag::Admin,
    summary: "",
    description: "",
    params: &[Param::Vm],
    request: None,
    success: Success::plain(200, "AdminResult", ""),
    errors: &[
        "INVALID_PARAMETER",
        "UNAUTHORIZED",
        "VM_NOT_FOUND",
        "CONCURRENT_MODIFICATION",
        "INTERNAL_ERROR",
        "SERVICE_UNAVAILABLE",
    ],
    notes: &[(
        "UNAUTHORIZED",
        "no `Api-Key`, or one that is unknown or revoked; nothing was read or written",
    )],
    conditional: false,
    idempotent: false,
    logins: false,
};

pub(super) const ADMIN_LIST_TEAM_VMS: Spec = Spec {
    verb: Verb::Get,
    path: "/admin/api/teams/{team}/virtual-machines",
    function: "admin-list-team-vms",
    summary: "A team's virtual machines (admin)",
    description: "Every VM of the team but the deleted ones (status 8), newest first, a page at a \
        time (`page` from 1, `limit` 1-100, default 1 and 10), populated as in GET of a VM. \
        `totalDocs`, `totalPages`, `hasNextPage` and `hasPrevPage` describe the whole list; a \
        page past the last has empty `docs`. Any page costs two DynamoDB round trips.",
    params: &[Param::Team, Param::Page, Param::AdminLimit],
    success: Success::plain(200, "AdminVmPage", "A page of the team's VMs"),
    errors: &[
        "INVALID_PARAMETER",
        "UNAUTHORIZED",
        "INTERNAL_ERROR",
        "SERVICE_UNAVAILABLE",
    ],
    ..ON_VM
};

pub(super) const ADMIN_DELETE_VM: Spec = Spec {
    verb: Verb::Delete,
    path: "/admin/api/virtual-machines/{id}",
    function: "admin-delete-vm",
    summary: "Delete a virtual machine (admin)",
    description: "The same teardown as a user's delete (the provisioner removes the VM from its \
        cloud, then its login), whatever the VM's team; recorded in its activity as \
        `admin:{key name}`. A VM already being deleted answers 200 again.",
    success: Success::plain(
        200,
        "AdminResult",
        "`{\"message\": \"Virtual machine deleted\", \"vmId\"}`",
    ),
    ..ON_VM
};

pub(super) const ADMIN_BLOCK_VM: Spec = Spec {
    path: "/admin/api/virtual-machines/{id}/block",
    function: "admin-block-vm",
    summary: "Block a virtual machine (admin)",
    description: "Sets `isBlocked`: its users may still read, stop and delete it, nothing else \
        (409 `VM_BLOCKED`). Recorded as `vm.block` by `admin:{key name}`; blocking a blocked VM \
        changes nothing.",
    success: Success::plain(
        200,
        "AdminResult",
        "`{\"message\": \"Virtual machine blocked\", \"vmId\"}`",
    ),
    ..ON_VM
};

pub(super) const ADMIN_UNBLOCK_VM: Spec = Spec {
    path: "/admin/api/virtual-machines/{id}/unblock",
    function: "admin-unblock-vm",
    summary: "Unblock a virtual machine (admin)",
    description: "Clears `isBlocked`. Recorded as `vm.unblock` by `admin:{key name}`; unblocking \
        a VM that is not blocked changes nothing.",
    success: Success::plain(
        200,
        "AdminResult",
        "`{\"message\": \"Virtual machine unblocked\", \"vmId\"}`",
    ),
    ..ON_VM
};
