//! The use cases: create, read, list, update, the actions, logins and credentials.

use vmapi_core::{Action, ConflictCode, Error, NotFoundKind};
use vmapi_models::OpKind;
use vmapi_models::*;

use crate::fixtures::*;

#[tokio::test]
async fn create_then_get_populates_everything() {
    let (_repo, svc) = setup();
    let created = svc
        .create(&user("owner"), request(&["web-1"]))
        .await
        .unwrap();
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].status, VmStatus::Creating);
    assert!(matches!(created[0].provider, Ref::Id(_)));
    let got = svc.get(&user("owner"), created[0].id).await.unwrap();
    assert!(matches!(got.team, Ref::Populated(_)));
    assert!(matches!(
        got.provider,
        Ref::Populated(Provider {
            cloud_provider: Ref::Populated(_),
            ..
        })
    ));
    assert_eq!(got.owner, user("owner"));
}

#[tokio::test]
async fn strangers_see_404_and_viewers_cannot_write() {
    let (repo, svc) = setup();
    let err = svc
        .create(&user("stranger"), request(&["a"]))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::NotFound {
                kind: NotFoundKind::Team,
                ..
            }
        ),
        "{err:?}"
    );
    let err = svc
        .create(&user("viewer"), request(&["a"]))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Forbidden(_)), "{err:?}");
    assert_eq!(repo.vm_count(), 0);

    let vm = svc
        .create(&user("owner"), request(&["a"]))
        .await
        .unwrap()
        .remove(0);
    assert!(matches!(
        svc.get(&user("stranger"), vm.id).await,
        Err(Error::NotFound {
            kind: NotFoundKind::Vm,
            ..
        })
    ));
    assert!(svc.get(&user("viewer"), vm.id).await.is_ok());
    assert!(matches!(
        svc.act(&user("viewer"), vm.id, Action::Delete).await,
        Err(Error::Forbidden(_))
    ));
    assert!(matches!(
        svc.act(&user("stranger"), vm.id, Action::Delete).await,
        Err(Error::NotFound { .. })
    ));
}

#[tokio::test]
async fn host_names_are_unique_per_project_and_freed_by_delete() {
    let (repo, svc) = setup();
    let err = svc
        .create(&user("owner"), request(&["a", "a"]))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Conflict {
                code: ConflictCode::DuplicateHostName,
                ..
            }
        ),
        "{err:?}"
    );
    let vm = svc
        .create(&user("owner"), request(&["a"]))
        .await
        .unwrap()
        .remove(0);
    let err = svc
        .create(&user("owner"), request(&["b", "a"]))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Conflict {
                code: ConflictCode::HostNameTaken,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        repo.vm_count(),
        1,
        "nothing of the failed request was written"
    );
    let res = svc
        .act(&user("owner"), vm.id, Action::Delete)
        .await
        .unwrap();
    assert_eq!(res.status, VmStatus::Deleting);
    let stored = repo.vm(vm.id).unwrap();
    assert_eq!(stored.pending_op.unwrap().op, OpKind::Delete);
    assert_eq!(
        svc.get(&user("owner"), vm.id).await.unwrap().status,
        VmStatus::Deleting,
        "GET shows a deleting VM until the cloud teardown is done"
    );
    // The name is free as soon as the VM is deleting.
    svc.create(&user("owner"), request(&["a"])).await.unwrap();
}

#[tokio::test]
async fn actions_follow_the_state_table() {
    let (repo, svc) = setup();
    let vm = svc
        .create(&user("owner"), request(&["a"]))
        .await
        .unwrap()
        .remove(0);
    let err = svc
        .act(&user("owner"), vm.id, Action::Start)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Conflict {
                code: ConflictCode::IllegalTransition,
                ..
            }
        ),
        "{err:?}"
    );

    let mut rec = repo.vm(vm.id).unwrap();
    rec.status = VmStatus::Running;
    repo.put_vm(rec);
    assert_eq!(
        svc.act(&user("owner"), vm.id, Action::Start)
            .await
            .unwrap()
            .status,
        VmStatus::Running
    );
    let stop = svc.act(&user("owner"), vm.id, Action::Stop).await.unwrap();
    assert_eq!(stop.status, VmStatus::Stopping);
    assert_eq!(stop.message, "Virtual machine is stopping");
    let stored = repo.vm(vm.id).unwrap();
    assert_eq!(stored.version, 2);
    assert_eq!(
        stored.pending_op.unwrap().op,
        OpKind::Stop,
        "the provisioner's work"
    );
    assert_eq!(
        svc.act(&user("owner"), vm.id, Action::Stop)
            .await
            .unwrap()
            .status,
        VmStatus::Stopping
    );
}

#[tokio::test]
async fn catalog_mismatches_are_named() {
    let (repo, svc) = setup();
    let mut req = request(&["a"]);
    req.region.datacenter.name = "paris".into();
    req.quantity = Some(1);
    let err = svc.create(&user("owner"), req).await.unwrap_err();
    let Error::Invalid { details, .. } = err else {
        panic!("{err:?}")
    };
    assert_eq!(details[0].field, "region");

    let mut req = request(&["a", "b"]);
    req.quantity = Some(3);
    let err = svc.create(&user("owner"), req).await.unwrap_err();
    let Error::Invalid { details, .. } = err else {
        panic!("{err:?}")
    };
    assert_eq!(details[0].field, "quantity");

    let mut req = request(&["a"]);
    req.size = SizeId::new();
    let err = svc.create(&user("owner"), req).await.unwrap_err();
    let Error::Invalid { details, .. } = err else {
        panic!("{err:?}")
    };
    assert_eq!(details[0].field, "size");
    assert_eq!(repo.vm_count(), 0);
}

#[tokio::test]
async fn update_renames_and_retags() {
    let (_repo, svc) = setup();
    let vm = svc
        .create(&user("owner"), request(&["a"]))
        .await
        .unwrap()
        .remove(0);
    svc.create(&user("owner"), request(&["b"])).await.unwrap();
    let patch = UpdateVmRequest {
        name: Some(HostName::parse("b").unwrap()),
        tags: None,
        expires_at: None,
    };
    let err = svc.update(&user("owner"), vm.id, patch).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Conflict {
                code: ConflictCode::HostNameTaken,
                ..
            }
        ),
        "{err:?}"
    );
    let patch = UpdateVmRequest {
        name: Some(HostName::parse("c").unwrap()),
        tags: Some(Tags::new(vec![Tag::parse("env:dev").unwrap()]).unwrap()),
        expires_at: None,
    };
    let updated = svc.update(&user("owner"), vm.id, patch).await.unwrap();
    assert_eq!(updated.name.as_str(), "c");
    assert_eq!(updated.tags.as_slice().len(), 1);
    assert!(matches!(
        svc.update(&user("owner"), vm.id, UpdateVmRequest::default())
            .await,
        Err(Error::Invalid { .. })
    ));
}

#[tokio::test]
async fn list_is_newest_first_and_pages() {
    let (_repo, svc) = setup();
    let names: Vec<String> = (0..5).map(|i| format!("vm-{i}")).collect();
    for n in &names {
        svc.create(&user("owner"), request(&[n])).await.unwrap();
    }
    let team = TeamId::parse(TEAM).unwrap();
    let project = ProjectId::parse(PROJECT).unwrap();
    let first = svc
        .list(&user("owner"), team, project, 3, None)
        .await
        .unwrap();
    assert_eq!(first.items.len(), 3);
    let second = svc
        .list(&user("owner"), team, project, 3, first.next.as_ref())
        .await
        .unwrap();
    assert_eq!(second.items.len(), 2);
    assert!(second.next.is_none());
    let all: Vec<String> = first
        .items
        .iter()
        .chain(&second.items)
        .map(|v| v.name.to_string())
        .collect();
    let mut expected = names.clone();
    expected.reverse();
    assert_eq!(all, expected);
    assert!(matches!(
        svc.list(&user("stranger"), team, project, 3, None).await,
        Err(Error::NotFound { .. })
    ));
}

#[tokio::test]
async fn team_scope_makes_one_login_per_team_and_reuses_it() {
    let (repo, store, svc) = setup_with(CredentialScope::Team);
    let a = svc
        .create(&user("owner"), request(&["a-1", "a-2"]))
        .await
        .unwrap();
    let mut pw = request(&["b-1"]);
    pw.auth_method = AuthMethod::Password;
    let b = svc.create(&user("member"), pw).await.unwrap();
    assert_eq!(
        store.paths(),
        vec![CredentialScope::Team.path(TeamId::parse(TEAM).unwrap(), a[0].id)]
    );
    for vm in a.iter().chain(&b) {
        let login = repo.vm(vm.id).unwrap().login.unwrap();
        assert_eq!(login.username, "root");
        assert_eq!(login.secret.unwrap().path, store.paths()[0]);
    }
    let key = svc.credentials(&user("owner"), a[1].id).await.unwrap();
    assert!(key.private_key.is_some() && key.public_key.is_some() && key.password.is_none());
    // The shared login opens every VM of the team: its member creator may not read it.
    assert!(matches!(
        svc.credentials(&user("member"), b[0].id).await,
        Err(Error::Forbidden(m)) if m.contains("shared login")
    ));
    let pass = svc.credentials(&user("owner"), b[0].id).await.unwrap();
    assert!(pass.password.is_some() && pass.private_key.is_none() && pass.public_key.is_none());
}

#[tokio::test]
async fn vm_scope_gives_each_vm_its_login() {
    let (repo, store, svc) = setup_with(CredentialScope::Vm);
    let vms = svc
        .create(&user("owner"), request(&["a-1", "a-2"]))
        .await
        .unwrap();
    assert_eq!(store.paths().len(), 2);
    let one = svc.credentials(&user("owner"), vms[0].id).await.unwrap();
    let two = svc.credentials(&user("owner"), vms[1].id).await.unwrap();
    assert_ne!(
        one.private_key.unwrap().expose(),
        two.private_key.unwrap().expose()
    );
    svc.act(&user("owner"), vms[0].id, Action::Delete)
        .await
        .unwrap();
    assert_eq!(
        store.paths().len(),
        2,
        "removed only after the cloud teardown"
    );
    assert_eq!(repo.vm(vms[0].id).unwrap().status, VmStatus::Deleting);
}

#[tokio::test]
async fn a_failed_vm_write_removes_the_logins_it_made() {
    let (repo, store, svc) = setup_with(CredentialScope::Vm);
    svc.create(&user("owner"), request(&["taken"]))
        .await
        .unwrap();
    let err = svc
        .create(&user("owner"), request(&["fresh", "taken"]))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Conflict {
                code: ConflictCode::HostNameTaken,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(store.paths().len(), 1, "only the first VM's login remains");
    assert_eq!(repo.vm_count(), 1);
}

#[tokio::test]
async fn an_unavailable_secret_store_stops_the_create_before_any_record() {
    for scope in [CredentialScope::Team, CredentialScope::Vm] {
        let (repo, store, svc) = setup_with(scope);
        store.set_down(true);
        let err = svc
            .create(&user("owner"), request(&["web-1"]))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Unavailable { .. }), "{err:?}");
        assert_eq!(repo.vm_count(), 0);
        store.set_down(false);
        assert!(store.paths().is_empty());
    }
}

#[tokio::test]
async fn credentials_go_to_the_vm_owner_and_team_owners_and_admins_only() {
    let (repo, _store, svc) = setup_with(CredentialScope::Vm);
    let vm = svc
        .create(&user("member"), request(&["web-1"]))
        .await
        .unwrap()[0]
        .id;
    for who in ["member", "owner", "admin"] {
        let c = svc.credentials(&user(who), vm).await.unwrap();
        assert_eq!(c.vm_id, vm);
        assert_eq!(c.port, 22);
    }
    let events = repo.events();
    assert_eq!(
        events[0].kind,
        EventKind::Create,
        "the create is recorded first"
    );
    let reads = &events[1..];
    assert_eq!(reads.len(), 3);
    assert!(reads
        .iter()
        .all(|e| e.kind == EventKind::CredentialsRead && e.vm_id == vm));
    assert_eq!(reads[1].actor, "owner");

    let (_repo, _store, svc2) = setup_with(CredentialScope::Vm);
    let theirs = svc2
        .create(&user("owner"), request(&["web-2"]))
        .await
        .unwrap()[0]
        .id;
    for who in ["member", "viewer"] {
        let err = svc2.credentials(&user(who), theirs).await.unwrap_err();
        assert!(matches!(err, Error::Forbidden(_)), "{who}: {err:?}");
    }
    let err = svc2
        .credentials(&user("stranger"), theirs)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::NotFound {
                kind: NotFoundKind::Vm,
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn own_public_key_stores_nothing_and_is_returned_as_is() {
    let (_repo, store, svc) = setup_with(CredentialScope::Vm);
    let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOAKEyfwmZRghqzj9JLL8xl+SfAN+bqcjzApJNJ0S2Ck user@host";
    let mut req = request(&["web-1"]);
    req.access = Some(Access {
        ssh_public_key: SshPublicKey::parse(key).unwrap(),
    });
    let vm = svc.create(&user("owner"), req).await.unwrap()[0].id;
    assert!(store.paths().is_empty());
    let c = svc.credentials(&user("owner"), vm).await.unwrap();
    assert_eq!(c.public_key.as_deref(), Some(key));
    assert!(c.private_key.is_none() && c.password.is_none());
}
