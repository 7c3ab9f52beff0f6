//! The routers: the endpoints' handlers with the fallbacks and layers around them.

use axum::middleware;
use axum::routing::{on, MethodRouter};
use axum::Router;
use vmapi_core::Action;

use super::admin::{admin_block, admin_delete_vm, admin_list_team_vms};
use super::catalog::{catalog, cloud_providers, images, locations, prices, providers};
use super::context::{measured, method_not_allowed, request_context, route_not_found};
use super::costs::get_team_costs;
use super::rules::{create_security_rule, delete_security_rule, list_security_rules};
use super::vms::{
    action, create_vm, get_activity, get_credentials, get_vm, health, list_vms, resize_vm,
    update_vm,
};
use crate::endpoints::Endpoint;
use crate::state::AppState;

/// A router serving `endpoints` over `state`, with JSON 404/405 fallbacks (the local server and
/// the tests mount every endpoint this way).
pub fn router(state: AppState, endpoints: &[Endpoint]) -> Router {
    let mut router = Router::new();
    for &endpoint in endpoints {
        router = router.route(endpoint.path(), endpoint_route(&state, endpoint));
    }
    finish(router, state)
}

/// The router of the one endpoint with index `E` in [`Endpoint::ALL`], chosen at compile time:
/// each Lambda binary links only its own handler, so the others' code, data and relocations stay
/// out of its executable (docs/performance.md, "Where the rest of init goes").
pub fn single_router<const E: usize>(state: AppState) -> Router {
    let endpoint = const { Endpoint::ALL[E] };
    let route = endpoint_route(&state, endpoint);
    finish(Router::new().route(endpoint.path(), route), state)
}

/// The fallbacks, the state and the request-context layer around the routes.
fn finish(router: Router<AppState>, state: AppState) -> Router {
    router
        .fallback(route_not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
        .layer(middleware::from_fn(request_context))
}

/// The method filter and handler of `endpoint`, with the idempotency layer where it applies.
/// Inlined so that a constant `endpoint` ([`single_router`]) keeps only its own arm.
#[inline(always)]
fn endpoint_route(state: &AppState, endpoint: Endpoint) -> MethodRouter<AppState> {
    let filter = endpoint.spec().verb.filter();
    let method_router = match endpoint {
        Endpoint::Health => on(filter, health),
        Endpoint::CreateVm => on(filter, create_vm),
        Endpoint::ListVms => on(filter, list_vms),
        Endpoint::GetVm => on(filter, get_vm),
        Endpoint::UpdateVm => on(filter, update_vm),
        Endpoint::StartVm => action(filter, Action::Start),
        Endpoint::StopVm => action(filter, Action::Stop),
        Endpoint::RebootVm => action(filter, Action::Reboot),
        Endpoint::ResizeVm => on(filter, resize_vm),
        Endpoint::DeleteVm => action(filter, Action::Delete),
        Endpoint::GetCredentials => on(filter, get_credentials),
        Endpoint::GetActivity => on(filter, get_activity),
        Endpoint::CreateSecurityRule => on(filter, create_security_rule),
        Endpoint::ListSecurityRules => on(filter, list_security_rules),
        Endpoint::DeleteSecurityRule => on(filter, delete_security_rule),
        Endpoint::ListCloudProviders => catalog(filter, cloud_providers),
        Endpoint::ListProviders => catalog(filter, providers),
        Endpoint::ListLocations => catalog(filter, locations),
        Endpoint::ListImages => catalog(filter, images),
        Endpoint::ListPrices => catalog(filter, prices),
        Endpoint::GetTeamCosts => on(filter, get_team_costs),
        Endpoint::AdminListTeamVms => on(filter, admin_list_team_vms),
        Endpoint::AdminDeleteVm => on(filter, admin_delete_vm),
        Endpoint::AdminBlockVm => admin_block(filter, true),
        Endpoint::AdminUnblockVm => admin_block(filter, false),
    };
    let method_router = if endpoint.idempotent() {
        method_router.route_layer(middleware::from_fn_with_state(
            state.clone(),
            crate::idempotency::layer,
        ))
    } else {
        method_router
    };
    match &state.metrics {
        Some(metrics) => method_router.route_layer(middleware::from_fn_with_state(
            (metrics.clone(), endpoint),
            measured,
        )),
        None => method_router,
    }
}
