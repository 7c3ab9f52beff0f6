//! A team's estimated charges.

use super::spec::{Auth, Param, Spec, Success, Tag, Verb};

pub(super) const GET_TEAM_COSTS: Spec = Spec {
    verb: Verb::Get,
    path: "/api/teams/{team}/costs",
    function: "get-team-costs",
    auth: Auth::User,
    tag: Tag::Costs,
    summary: "A team's charges this month",
    description: "The estimated charge of each of the team's VMs for the current calendar month \
        (UTC) so far, and their sum, for members of the team. A VM is billed per second while \
        running, from the write that made it running to the one that made it stopped, failed \
        or deleted, at its price's `pricePerHour`; each VM's cost is rounded to cents once, at \
        the end (docs/costs.md). `vms` holds every VM that is not deleted and those deleted \
        this month that cost something, highest cost first; `total` is the sum when all share \
        one currency, else `null`, with `totals` per currency. `apps`, `dbs` and `k8s` are \
        always empty (the platform's shape; this service runs VMs only).",
    params: &[Param::Team],
    request: None,
    success: Success::plain(200, "TeamCosts", "The team's charges this month"),
    errors: &[
        "INVALID_PARAMETER",
        "UNAUTHORIZED",
        "TEAM_NOT_FOUND",
        "INTERNAL_ERROR",
        "SERVICE_UNAVAILABLE",
    ],
    notes: &[(
        "TEAM_NOT_FOUND",
        "no such team, or the caller is not a member of it",
    )],
    conditional: false,
    idempotent: false,
    logins: false,
};
