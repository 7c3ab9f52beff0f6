//! Unit tests of the security-rule use cases over the in-memory repository.

use std::sync::Arc;

use serde_json::json;
use vmapi_core::memory::MemoryRepository;
use vmapi_core::{ConflictCode, Error, NotFoundKind, Service, SystemClock};
use vmapi_models::*;

const TEAM: &str = "6548a41f38406c14db33b61e";
const PROJECT: &str = "6548a41f38406c14db33b62c";
const KRAUD: &str = "6548a383e2442d14b6bf9685";
const AWS: &str = "6548a383e2442d14b6bf9686";

fn user(s: &str) -> UserId {
    UserId::parse(s).unwrap()
}

fn setup() -> (Arc<MemoryRepository>, Service) {
    let repo = Arc::new(MemoryRepository::new());
    for (id, name) in [(KRAUD, "Kraud.Cloud"), (AWS, "AWS")] {
        repo.put_cloud_provider(CloudProvider {
            id: CloudProviderId::parse(id).unwrap(),
            name: name.into(),
            is_disabled: false,
        });
    }
    let now = Timestamp::now();
    repo.put_team(Team {
        id: TeamId::parse(TEAM).unwrap(),
        name: "t".into(),
        email: "t@example.com".into(),
        members: vec![
            Member {
                user: user("owner"),
                role: Role::Owner,
            },
            Member {
                user: user("viewer"),
                role: Role::Viewer,
            },
        ],
        created_at: now,
        updated_at: now,
        billing_settings: None,
        quotas: None,
    });
    let service = Service::new(repo.clone(), Arc::new(SystemClock));
    (repo, service)
}

/// A VM of the team on `cloud` in `status`, with its cloud's default rule.
fn vm(repo: &MemoryRepository, cloud: &str, status: VmStatus) -> VmRecord {
    let now = Timestamp::now();
    let kind = if cloud == KRAUD {
        CloudKind::Kraud
    } else {
        CloudKind::Aws
    };
    let record = VmRecord {
        id: VmId::new(),
        name: HostName::parse(&format!("vm-{}", VmId::new())).unwrap(),
        region: serde_json::from_value(json!({"datacenter": {"name": "berlin",
            "displayName": "Berlin"}, "physicalLocation": "Germany"}))
        .unwrap(),
        image: serde_json::from_value(json!({"distribution": "Ubuntu", "version":
            {"name": "20_04-lts", "displayName": "20.04 LTS"}}))
        .unwrap(),
        attestation_id: uuid::Uuid::new_v4(),
        access: None,
        auth_method: AuthMethod::SshKey,
        status,
        is_blocked: false,
        tags: Tags::default(),
        subscription: None,
        cloud_provider: CloudProviderId::parse(cloud).unwrap(),
        provider: ProviderId::new(),
        size: SizeId::new(),
        price: PriceId::new(),
        owner: user("owner"),
        project: ProjectId::parse(PROJECT).unwrap(),
        team: TeamId::parse(TEAM).unwrap(),
        ip_configurations: vec![],
        created_at: now,
        updated_at: now,
        login: None,
        pending_op: None,
        status_reason: None,
        cloud: None,
        expires_at: None,
        purge_after_epoch: None,
        vcpus: None,
        rules: vec![SecurityRule::default_for(Some(kind), 1, now)],
        rules_revision: 1,
        rules_applied: 1,
        billing: None,
        resize_to: None,
        version: 1,
    };
    repo.put_vm(record.clone());
    record
}

fn body(vm: &VmRecord, v: serde_json::Value) -> CreateRuleRequest {
    let mut v = v;
    v["virtualMachine"] = json!(vm.id);
    serde_json::from_value(v).unwrap()
}

#[tokio::test]
async fn create_list_delete_keep_the_record_and_the_pointers_in_step() {
    let (repo, svc) = setup();
    let vm = vm(&repo, AWS, VmStatus::Running);
    assert_eq!(repo.rule_pointer_count(), 1);
    let https = svc
        .create_rule(
            &user("owner"),
            body(
                &vm,
                json!({"name": "https", "protocol": "Tcp", "portRange": "443"}),
            ),
        )
        .await
        .unwrap();
    assert_eq!(https.priority, 1010);
    assert!(!https.applied);
    let rec = repo.vm(vm.id).unwrap();
    assert_eq!(rec.rules_revision, 2);
    assert_eq!(rec.version, 2);
    assert_eq!(rec.pending_op.unwrap().op, OpKind::ApplyRules);
    assert_eq!(repo.rule_pointer_count(), 2);

    let listed = svc.list_rules(&user("viewer"), vm.id).await.unwrap();
    let names: Vec<&str> = listed.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["AllowAnySSHInbound", "https"]);
    assert!(
        listed[0].applied,
        "the default rule was applied (revision 1)"
    );

    let gone = svc.delete_rule(&user("owner"), https.id).await.unwrap();
    assert_eq!(gone.vm_id, vm.id);
    assert_eq!(gone.message, "Security rule deleted");
    assert_eq!(repo.rule_pointer_count(), 1);
    assert!(matches!(
        svc.delete_rule(&user("owner"), https.id).await,
        Err(Error::NotFound {
            kind: NotFoundKind::SecurityRule,
            ..
        })
    ));
    let kinds: Vec<EventKind> = repo.events().iter().map(|e| e.kind).collect();
    assert_eq!(kinds, [EventKind::RuleCreate, EventKind::RuleDelete]);
}

#[tokio::test]
async fn refusals_change_nothing() {
    let (repo, svc) = setup();
    let kraud = vm(&repo, KRAUD, VmStatus::Running);
    let aws = vm(&repo, AWS, VmStatus::Stopped);
    let ssh = json!({"name": "ssh2", "protocol": "Tcp", "portRange": "22"});
    let err = svc
        .create_rule(&user("owner"), body(&kraud, ssh.clone()))
        .await
        .unwrap_err();
    assert!(matches!(&err, Error::UnsupportedByProvider(m) if m.contains("Kraud.Cloud")));
    assert!(matches!(
        svc.create_rule(&user("viewer"), body(&aws, ssh.clone()))
            .await,
        Err(Error::Forbidden(_))
    ));
    assert!(matches!(
        svc.create_rule(&user("stranger"), body(&aws, ssh.clone()))
            .await,
        Err(Error::NotFound {
            kind: NotFoundKind::Vm,
            ..
        })
    ));
    let taken = json!({"name": "allowanysshinbound", "protocol": "Tcp", "portRange": "22"});
    assert!(matches!(
        svc.create_rule(&user("owner"), body(&aws, taken)).await,
        Err(Error::Conflict {
            code: ConflictCode::RuleNameTaken,
            ..
        })
    ));
    let same_priority =
        json!({"name": "x", "protocol": "Tcp", "portRange": "80", "priority": 1000});
    assert!(matches!(
        svc.create_rule(&user("owner"), body(&aws, same_priority))
            .await,
        Err(Error::Conflict {
            code: ConflictCode::PriorityTaken,
            ..
        })
    ));
    assert!(matches!(
        svc.create_rule(&user("owner"), body(&aws, json!({"name": "-"})))
            .await,
        Err(Error::Invalid { .. })
    ));
    let failed = vm(&repo, AWS, VmStatus::Failed);
    assert!(matches!(
        svc.create_rule(&user("owner"), body(&failed, ssh)).await,
        Err(Error::Conflict {
            code: ConflictCode::IllegalTransition,
            ..
        })
    ));
    for v in [&kraud, &aws, &failed] {
        assert_eq!(repo.vm(v.id).unwrap().version, 1, "unchanged");
    }
    assert!(repo.events().is_empty());
}
