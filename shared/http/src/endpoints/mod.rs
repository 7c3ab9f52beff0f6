//! The endpoint table: every endpoint declared once, with its method, path, function, docs,
//! answers and traits ([`Spec`]). The routes, the OpenAPI document, the deploy checks (template,
//! `cargo lambda watch` routes, events), the bench list and the endpoint list in docs/api.md
//! all follow from it; docs/adding-an-endpoint.md says what else a new endpoint needs.

mod admin;
mod catalog;
mod costs;
mod credentials;
mod rules;
mod service;
mod spec;
mod vms;

use axum::http::Method;

pub use spec::{Auth, Param, RequestBody, Spec, Success, Tag, Verb};

/// Declares [`Endpoint`], [`Endpoint::ALL`] (in this order) and each one's [`Spec`].
macro_rules! endpoints {
    ($($(#[$doc:meta])* $variant:ident => $spec:path,)*) => {
        /// An endpoint of the API; its facts are [`Endpoint::spec`].
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Endpoint {
            $($(#[$doc])* $variant,)*
        }

        impl Endpoint {
            /// Every endpoint, in table order.
            pub const ALL: [Endpoint; [$(stringify!($variant)),*].len()] =
                [$(Endpoint::$variant),*];

            /// Its entry of the table.
            pub const fn spec(self) -> &'static Spec {
                match self {
                    $(Endpoint::$variant => &$spec,)*
                }
            }
        }
    };
}

endpoints! {
    Health => service::HEALTH,
    CreateVm => vms::CREATE_VM,
    ListVms => vms::LIST_VMS,
    GetVm => vms::GET_VM,
    UpdateVm => vms::UPDATE_VM,
    StartVm => vms::START_VM,
    StopVm => vms::STOP_VM,
    RebootVm => vms::REBOOT_VM,
    ResizeVm => vms::RESIZE_VM,
    DeleteVm => vms::DELETE_VM,
    GetCredentials => credentials::GET_CREDENTIALS,
    GetActivity => vms::GET_ACTIVITY,
    CreateSecurityRule => rules::CREATE_SECURITY_RULE,
    ListSecurityRules => rules::LIST_SECURITY_RULES,
    DeleteSecurityRule => rules::DELETE_SECURITY_RULE,
    ListCloudProviders => catalog::LIST_CLOUD_PROVIDERS,
    ListProviders => catalog::LIST_PROVIDERS,
    ListLocations => catalog::LIST_LOCATIONS,
    ListImages => catalog::LIST_IMAGES,
    ListPrices => catalog::LIST_PRICES,
    GetTeamCosts => costs::GET_TEAM_COSTS,
    AdminListTeamVms => admin::ADMIN_LIST_TEAM_VMS,
    AdminDeleteVm => admin::ADMIN_DELETE_VM,
    AdminBlockVm => admin::ADMIN_BLOCK_VM,
    AdminUnblockVm => admin::ADMIN_UNBLOCK_VM,
}

impl Endpoint {
    /// The index of the endpoint in [`Endpoint::ALL`] (the `E` of
    /// [`single_router`](crate::routes::single_router) and [`crate::lambda::run`]).
    pub const fn index(self) -> usize {
        self as usize
    }

    pub fn method(self) -> Method {
        self.spec().verb.method()
    }

    /// Path template (API Gateway and axum syntax).
    pub const fn path(self) -> &'static str {
        self.spec().path
    }

    /// The Lambda function (binary and crate) serving it.
    pub const fn function(self) -> &'static str {
        self.spec().function
    }

    /// Whether the endpoint's function needs the secret store (the provisioner removes VM
    /// logins after a teardown).
    pub const fn needs_logins(self) -> bool {
        self.spec().logins
    }

    /// Whether the endpoint honours `Idempotency-Key` ([`crate::idempotency`]).
    pub const fn idempotent(self) -> bool {
        self.spec().idempotent
    }

    /// Whether the endpoint honours `If-Match`.
    pub const fn conditional(self) -> bool {
        self.spec().conditional
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn every_entry_is_complete_and_its_own() {
        let mut routes = BTreeSet::new();
        let mut functions = BTreeSet::new();
        for (i, endpoint) in Endpoint::ALL.into_iter().enumerate() {
            let spec = endpoint.spec();
            assert_eq!(endpoint.index(), i);
            assert!(spec.path.starts_with('/'), "{endpoint:?} has a path");
            assert!(!spec.summary.is_empty() && !spec.description.is_empty());
            assert!(
                spec.function.len() > 2 && functions.insert(spec.function),
                "{endpoint:?}: a function of its own"
            );
            assert!(
                routes.insert((spec.verb, spec.path)),
                "{endpoint:?}: a route of its own"
            );
        }
    }

    #[test]
    fn path_parameters_are_the_paths_variables_in_order() {
        for endpoint in Endpoint::ALL {
            let spec = endpoint.spec();
            let in_path: Vec<&str> = spec
                .path
                .split('/')
                .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
                .collect();
            let declared: Vec<&str> = spec
                .params
                .iter()
                .filter(|p| p.in_path())
                .map(|p| p.name())
                .collect();
            assert_eq!(in_path, declared, "{endpoint:?}");
        }
    }

    /// API Gateway refuses two variable names at one level of the path tree
    /// (`/api/teams/{team}/...` and `/api/teams/{id}` cannot both be routes).
    #[test]
    fn routes_name_the_variables_at_one_level_alike() {
        let mut names: std::collections::BTreeMap<String, &str> = Default::default();
        for endpoint in Endpoint::ALL {
            let mut prefix = String::new();
            for segment in endpoint.path().split('/').skip(1) {
                if let Some(var) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    let seen = *names.entry(prefix.clone()).or_insert(var);
                    assert_eq!(seen, var, "{endpoint:?}: {{{var}}} after {prefix}");
                    prefix.push_str("/{}");
                } else {
                    prefix.push('/');
                    prefix.push_str(segment);
                }
            }
        }
    }

    #[test]
    fn traits_agree_with_the_method() {
        for endpoint in Endpoint::ALL {
            let spec = endpoint.spec();
            // Every user's write but PATCH takes an Idempotency-Key; reads never do, nor the
            // admin routes (keys are scoped to a user; each admin action repeats harmlessly).
            let write = !matches!(spec.verb, Verb::Get);
            assert_eq!(
                spec.idempotent,
                write && spec.verb != Verb::Patch && spec.auth == Auth::User,
                "{endpoint:?}"
            );
            if spec.conditional {
                assert!(write && spec.success.etag, "{endpoint:?}");
            }
            assert_eq!(
                spec.request.is_some(),
                matches!(spec.verb, Verb::Post | Verb::Patch) || endpoint == Endpoint::ResizeVm,
                "{endpoint:?} takes a body exactly when it posts or patches (or resizes)"
            );
        }
    }
}
