//! The routers: the endpoints' handlers with the fallbacks and layers around them.

use axum::middleware;
use axum::routing::{on, MethodFilter, MethodRouter};
use axum::Router;
use vmapi_core::Action;

use super::context::{measured, method_not_allowed, request_context, route_not_found};
use super::endpoint::Endpoint;
use super::rules::{create_security_rule, delete_security_rule, list_security_rules};
use super::vms::{
    action, create_vm, get_activity, get_credentials, get_vm, health, list_vms, update_vm,
};
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
    let method_router = match endpoint {
        Endpoint::Health => on(MethodFilter::GET, health),
        Endpoint::CreateVm => on(MethodFilter::POST, create_vm),
        Endpoint::ListVms => on(MethodFilter::GET, list_vms),
        Endpoint::GetVm => on(MethodFilter::GET, get_vm),
        Endpoint::UpdateVm => on(MethodFilter::PATCH, update_vm),
        Endpoint::StartVm => action(MethodFilter::PUT, Action::Start),
        Endpoint::StopVm => action(MethodFilter::PUT, Action::Stop),
        Endpoint::RebootVm => action(MethodFilter::PUT, Action::Reboot),
        Endpoint::DeleteVm => action(MethodFilter::DELETE, Action::Delete),
        Endpoint::GetCredentials => on(MethodFilter::GET, get_credentials),
        Endpoint::GetActivity => on(MethodFilter::GET, get_activity),
        Endpoint::CreateSecurityRule => on(MethodFilter::POST, create_security_rule),
        Endpoint::ListSecurityRules => on(MethodFilter::GET, list_security_rules),
        Endpoint::DeleteSecurityRule => on(MethodFilter::DELETE, delete_security_rule),
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
