//! What DynamoDB Local cannot show (it serialises transactions; real DynamoDB cancels one
//! that overlaps another with reason `TransactionConflict`), checked with `aws-smithy-mocks`:
//! a conflicted create is sent again and succeeds, lasting conflicts end in 409
//! `CONCURRENT_MODIFICATION`, and a refused quota condition is read from its position.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::operation::batch_get_item::BatchGetItemOutput;
use aws_sdk_dynamodb::operation::transact_write_items::{
    TransactWriteItemsError, TransactWriteItemsOutput,
};
use aws_sdk_dynamodb::types::error::TransactionCanceledException;
use aws_sdk_dynamodb::types::{AttributeValue, CancellationReason};
use aws_sdk_dynamodb::Client;
use aws_smithy_mocks::{mock, mock_client, RuleMode};
use vmapi_core::memory::MemorySecretStore;
use vmapi_core::{ConflictCode, Error, QuotaLimits, Repository, Service, SystemClock};
use vmapi_models::{
    AuthMethod, CreateVmRequest, CredentialScope, HostName, Seed, Timestamp, UserId, VmId,
    VmRecord, VmStatus,
};
use vmapi_store_dynamodb::{DynamoRepository, RepositoryOptions};

const TABLE: &str = "vm-api-mocked";
const OWNER: &str = "6548a41138406c14db33b606";

fn read(path: &str) -> String {
    let full = format!("{}/../../{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("reading {full}: {e}"))
}

/// The demo team, project and catalog as BatchGetItem returns them.
fn lookup_items() -> Vec<HashMap<String, AttributeValue>> {
    let seed: Seed = serde_json::from_str(&read("data/demo.json")).unwrap();
    let mut items = Vec::new();
    let mut push = |prefix: &str, id: String, mut item: HashMap<String, AttributeValue>| {
        item.insert("pk".into(), AttributeValue::S(format!("{prefix}#{id}")));
        item.insert("sk".into(), AttributeValue::S(prefix.into()));
        items.push(item);
    };
    for c in &seed.cloud_providers {
        push("CLOUD", c.id.to_string(), serde_dynamo::to_item(c).unwrap());
    }
    for p in &seed.providers {
        push(
            "PROVIDER",
            p.id.to_string(),
            serde_dynamo::to_item(p).unwrap(),
        );
    }
    for z in &seed.sizes {
        push("SIZE", z.id.to_string(), serde_dynamo::to_item(z).unwrap());
    }
    for p in &seed.prices {
        push("PRICE", p.id.to_string(), serde_dynamo::to_item(p).unwrap());
    }
    for t in &seed.teams {
        push("TEAM", t.id.to_string(), serde_dynamo::to_item(t).unwrap());
    }
    for p in &seed.projects {
        push(
            "PROJECT",
            p.id.to_string(),
            serde_dynamo::to_item(p).unwrap(),
        );
    }
    items
}

fn reason(code: &str) -> CancellationReason {
    CancellationReason::builder().code(code).build()
}

/// A cancellation with these reasons, one per transaction item.
fn cancelled(reasons: Vec<CancellationReason>) -> TransactWriteItemsError {
    TransactWriteItemsError::TransactionCanceledException(
        TransactionCanceledException::builder()
            .message(
                "Transaction cancelled, please refer cancellation reasons for specific reasons",
            )
            .set_cancellation_reasons(Some(reasons))
            .build(),
    )
}

/// The API page's create request.
fn spec_request() -> CreateVmRequest {
    serde_json::from_str(&read("shared/models/tests/fixtures/create-request.json")).unwrap()
}

fn new_vm(name: &str, vcpus: u32) -> VmRecord {
    let req = spec_request();
    let now = Timestamp::now();
    VmRecord {
        id: VmId::new(),
        name: HostName::parse(name).unwrap(),
        region: req.region,
        image: req.image,
        attestation_id: uuid::Uuid::new_v4(),
        access: None,
        auth_method: AuthMethod::SshKey,
        status: VmStatus::Creating,
        is_blocked: false,
        tags: Default::default(),
        subscription: None,
        cloud_provider: req.cloud_provider,
        provider: req.provider,
        size: req.size,
        price: req.price,
        owner: UserId::parse(OWNER).unwrap(),
        project: req.project,
        team: req.team,
        ip_configurations: vec![],
        created_at: now,
        updated_at: now,
        login: None,
        pending_op: None,
        status_reason: None,
        cloud: None,
        expires_at: None,
        purge_after_epoch: None,
        vcpus: Some(vcpus),
        rules: Vec::new(),
        rules_revision: 0,
        rules_applied: 0,
        billing: None,
        resize_to: None,
        version: 1,
    }
}

#[tokio::test]
async fn a_create_cancelled_by_a_transaction_conflict_is_sent_again_and_succeeds() {
    let items = lookup_items();
    let lookup = mock!(Client::batch_get_item).then_output(move || {
        BatchGetItemOutput::builder()
            .responses(TABLE, items.clone())
            .build()
    });
    // The kinds of the items of each attempt.
    let seen: Arc<Mutex<Vec<Vec<&'static str>>>> = Arc::default();
    let noted = seen.clone();
    let transact = mock!(Client::transact_write_items)
        .match_requests(move |r| {
            let kinds = r
                .transact_items()
                .iter()
                .map(|i| match (i.put(), i.update(), i.delete()) {
                    (Some(_), _, _) => "Put",
                    (_, Some(_), _) => "Update",
                    (_, _, Some(_)) => "Delete",
                    _ => "?",
                })
                .collect();
            noted.lock().unwrap().push(kinds);
            true
        })
        .sequence()
        // Real DynamoDB: another create of the team updated its usage item at the same time.
        .error(|| {
            cancelled(vec![
                reason("None"),
                reason("None"),
                reason("TransactionConflict"),
                reason("None"),
                reason("None"),
            ])
        })
        .output(|| TransactWriteItemsOutput::builder().build())
        .build();
    let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&lookup, &transact]);
    let repo = Arc::new(DynamoRepository::new(
        client,
        TABLE,
        RepositoryOptions::default(),
    ));
    let service = Service::new(repo, Arc::new(SystemClock))
        .with_logins(Arc::new(MemorySecretStore::new()), CredentialScope::Team);

    let created = service
        .create(&UserId::parse(OWNER).unwrap(), spec_request())
        .await
        .expect("the second attempt succeeds");
    assert_eq!(created.len(), 1);
    assert_eq!(transact.num_calls(), 2, "exactly one retry");
    assert_eq!(lookup.num_calls(), 1, "the lookup is not repeated");
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0], seen[1], "the same transaction is sent again");
    // VM, host-name claim, usage update, event, team's project note, default rule's pointer.
    assert_eq!(seen[0], ["Put", "Put", "Update", "Put", "Put", "Put"]);
}

#[tokio::test]
async fn lasting_transaction_conflicts_end_in_concurrent_modification() {
    let transact = mock!(Client::transact_write_items)
        .sequence()
        .error(|| {
            cancelled(vec![
                reason("TransactionConflict"),
                reason("None"),
                reason("None"),
            ])
        })
        .repeatedly()
        .build();
    let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&transact]);
    let repo = DynamoRepository::new(client, TABLE, RepositoryOptions::default());
    let e = repo
        .insert_vms(&[new_vm("web-1", 2)], &[], &QuotaLimits::default())
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::Conflict {
                code: ConflictCode::ConcurrentModification,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(
        transact.num_calls(),
        6,
        "the first attempt and five retries"
    );
}

#[tokio::test]
async fn a_failed_usage_condition_is_quota_exceeded_with_the_usage_it_saw() {
    // Two VMs: VM, claim, VM, claim, then the usage update at position 4 (returning the
    // usage item as it was, ALL_OLD), then the team's project note.
    let old = HashMap::from([
        ("activeVms".to_string(), AttributeValue::N("9".into())),
        ("vcpus".to_string(), AttributeValue::N("18".into())),
    ]);
    let transact = mock!(Client::transact_write_items)
        .match_requests(|r| {
            let Some(usage) = r.transact_items().get(4).and_then(|i| i.update()) else {
                return false;
            };
            let values = usage.expression_attribute_values().unwrap();
            // Limits 10 VMs / 200 vCPUs minus 2 VMs of 2 vCPUs each.
            values[":maxVms"] == AttributeValue::N("8".into())
                && values[":maxVcpus"] == AttributeValue::N("196".into())
                && values[":vms"] == AttributeValue::N("2".into())
                && values[":vcpus"] == AttributeValue::N("4".into())
        })
        .then_error(move || {
            cancelled(vec![
                reason("None"),
                reason("None"),
                reason("None"),
                reason("None"),
                CancellationReason::builder()
                    .code("ConditionalCheckFailed")
                    .set_item(Some(old.clone()))
                    .build(),
                reason("None"),
            ])
        });
    let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&transact]);
    let repo = DynamoRepository::new(client, TABLE, RepositoryOptions::default());
    let vms = [new_vm("web-1", 2), new_vm("web-2", 2)];
    let limits = QuotaLimits {
        max_active_vms: 10,
        max_vcpus: 200,
    };
    let e = repo.insert_vms(&vms, &[], &limits).await.unwrap_err();
    match e {
        Error::Conflict {
            code: ConflictCode::QuotaExceeded,
            message,
        } => assert!(
            message.contains("at most 10 active VMs; it has 9 and asked for 2 more"),
            "{message}"
        ),
        other => panic!("expected QUOTA_EXCEEDED, got {other:?}"),
    }
    assert_eq!(transact.num_calls(), 1, "a refusal is not retried");
}

#[tokio::test]
async fn a_taken_name_is_still_read_from_its_position() {
    let transact = mock!(Client::transact_write_items).then_error(|| {
        cancelled(vec![
            reason("None"),
            reason("None"),
            reason("None"),
            reason("ConditionalCheckFailed"),
            reason("None"),
            reason("None"),
        ])
    });
    let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&transact]);
    let repo = DynamoRepository::new(client, TABLE, RepositoryOptions::default());
    let vms = [new_vm("web-1", 2), new_vm("web-2", 2)];
    let e = repo
        .insert_vms(&vms, &[], &QuotaLimits::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::Conflict { code: ConflictCode::HostNameTaken, message } if message.contains("'web-2'") && !message.contains("'web-1'")),
        "{e:?}"
    );
}
