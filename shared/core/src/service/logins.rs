//! VM logins: storing them at create (team or VM scope) and reading them back.

use futures_util::future::join_all;
use vmapi_models::{
    AuthMethod, CredentialScope, EventKind, Login, LoginSecret, Role, SecretPath, SecretRef,
    TeamId, UserId, VmCredentials, VmEvent, VmId, VmRecord,
};

use super::base::{Logins, Service};
use crate::authz::{not_blocked, Need};
use crate::credentials::{
    generate_team_login, generate_vm_login, remove_secrets, Created, SecretLabels,
};
use crate::error::{Error, NotFoundKind, Result};

impl Service {
    /// Stores the logins of new VMs and notes where on each record. Returns the paths written
    /// now that belong to these VMs alone (VM scope), for removal if the create fails later.
    pub(super) async fn store_logins(
        &self,
        logins: &Logins,
        records: &mut [VmRecord],
        username: &str,
    ) -> Result<Vec<SecretPath>> {
        let Some(first) = records.first() else {
            return Ok(Vec::new());
        };
        let (team, auth_method) = (first.team, first.auth_method);
        if first.access.is_some() {
            // The user's own public key: nothing secret to store.
            for vm in records.iter_mut() {
                vm.login = Some(Login {
                    username: username.to_string(),
                    secret: None,
                });
            }
            return Ok(Vec::new());
        }
        match logins.scope {
            CredentialScope::Team => {
                let path = CredentialScope::Team.path(team, first.id);
                self.ensure_team_login(logins, &path, team, auth_method)
                    .await?;
                for vm in records.iter_mut() {
                    vm.login = Some(Login {
                        username: username.to_string(),
                        secret: Some(SecretRef {
                            path: path.clone(),
                            scope: CredentialScope::Team,
                        }),
                    });
                }
                Ok(Vec::new())
            }
            CredentialScope::Vm => {
                let mut planned = Vec::with_capacity(records.len());
                for vm in records.iter() {
                    let path = CredentialScope::Vm.path(team, vm.id);
                    let secret = generate_vm_login(vm.id, username, auth_method)?;
                    let labels = SecretLabels {
                        team,
                        vm: Some(vm.id),
                    };
                    planned.push((path, secret, labels));
                }
                let results = join_all(
                    planned
                        .iter()
                        .map(|(path, secret, labels)| logins.store.create(path, secret, *labels)),
                )
                .await;
                let mut written = Vec::new();
                let mut failure = None;
                for ((path, _, _), result) in planned.iter().zip(results) {
                    match result {
                        Ok(Created::Created) => written.push(path.clone()),
                        Ok(Created::AlreadyExists) => {
                            failure.get_or_insert(Error::Internal {
                                context: format!("a secret already exists at new VM path {path}"),
                                source: None,
                            });
                        }
                        Err(e) => {
                            failure.get_or_insert(e);
                        }
                    }
                }
                if let Some(e) = failure {
                    remove_secrets(logins.store.as_ref(), &written, "a failed create").await;
                    return Err(e);
                }
                for (vm, (path, _, _)) in records.iter_mut().zip(planned) {
                    vm.login = Some(Login {
                        username: username.to_string(),
                        secret: Some(SecretRef {
                            path,
                            scope: CredentialScope::Vm,
                        }),
                    });
                }
                Ok(written)
            }
        }
    }

    /// Makes sure the team's login exists and has what `auth_method` needs.
    async fn ensure_team_login(
        &self,
        logins: &Logins,
        path: &SecretPath,
        team: TeamId,
        auth_method: AuthMethod,
    ) -> Result<()> {
        let existing = match logins.store.read(path).await? {
            Some(secret) => secret,
            None => {
                let secret = generate_team_login(team, auth_method)?;
                let labels = SecretLabels { team, vm: None };
                match logins.store.create(path, &secret, labels).await? {
                    Created::Created => {
                        tracing::info!(team = %team, backend = logins.store.backend(), "team login created");
                        return Ok(());
                    }
                    // A concurrent create of the team's first VM won; use its login.
                    Created::AlreadyExists => {
                        logins
                            .store
                            .read(path)
                            .await?
                            .ok_or_else(|| Error::Internal {
                                context: format!("team login {path} vanished while being created"),
                                source: None,
                            })?
                    }
                }
            }
        };
        let usable = match auth_method {
            AuthMethod::Password => existing.password.is_some(),
            AuthMethod::SshKey => existing.private_key.is_some() && existing.public_key.is_some(),
        };
        if !usable {
            return Err(Error::Internal {
                context: format!(
                    "the team login at {path} has no {} for authMethod {}",
                    if auth_method == AuthMethod::Password {
                        "password"
                    } else {
                        "key pair"
                    },
                    auth_method.code()
                ),
                source: None,
            });
        }
        Ok(())
    }

    /// The login of a VM, for its owner and the team's owners and admins. Every read is
    /// recorded in the VM's history before the secret is handed out.
    pub async fn credentials(&self, caller: &UserId, id: VmId) -> Result<VmCredentials> {
        let (vm, found) = self.load_visible(caller, id, Need::Read).await?;
        let role = found.teams.get(&vm.team).and_then(|t| t.role_of(caller));
        let manager = matches!(role, Some(Role::Owner | Role::Admin));
        if !(&vm.owner == caller || manager) {
            return Err(Error::Forbidden(
                "only the virtual machine's owner and the team's owners and admins may read its credentials"
                    .into(),
            ));
        }
        not_blocked(&vm, "reading its credentials")?;
        let login = vm
            .login
            .as_ref()
            .ok_or_else(|| Error::not_found(NotFoundKind::Credentials, id))?;
        // A team login opens every VM of the team: only those who may reach all of them read it.
        let shared = login
            .secret
            .as_ref()
            .is_some_and(|r| r.scope == CredentialScope::Team);
        if shared && !manager {
            return Err(Error::Forbidden(
                "this virtual machine uses the team's shared login (credential scope team), which opens every virtual machine of the team; only the team's owners and admins may read it (create with access.sshPublicKey to log in with your own key)"
                    .into(),
            ));
        }
        let secret: Option<LoginSecret> = match &login.secret {
            Some(r) => {
                let found = self.logins()?.store.read(&r.path).await?;
                if found.is_none() {
                    tracing::warn!(vm = %id, scope = ?r.scope, "the VM's login is missing from the secret store");
                    return Err(Error::not_found(NotFoundKind::Credentials, id));
                }
                found
            }
            None => None,
        };
        let mut answer = VmCredentials {
            vm_id: id,
            username: login.username.clone(),
            auth_method: vm.auth_method,
            password: None,
            private_key: None,
            public_key: None,
            host: vm
                .ip_configurations
                .iter()
                .find(|ip| ip.kind == "public")
                .map(|ip| ip.address.clone()),
            port: vmapi_models::credentials::SSH_PORT,
        };
        match (vm.auth_method, secret) {
            (AuthMethod::Password, Some(s)) => answer.password = s.password,
            (AuthMethod::SshKey, Some(s)) => {
                answer.private_key = s.private_key;
                answer.public_key = s.public_key;
            }
            (_, None) => {
                answer.public_key = vm.access.as_ref().map(|a| a.ssh_public_key.to_string());
            }
        }
        self.repo
            .record_event(&VmEvent::new(
                id,
                self.clock.now(),
                caller.to_string(),
                EventKind::CredentialsRead,
            ))
            .await?;
        tracing::info!(vm = %id, "credentials read");
        Ok(answer)
    }
}
