//! DynamoDB requests per endpoint stay fixed whatever the page size (counted by an SDK interceptor).

use reqwest::Method;
use serde_json::{json, Value};
use vmapi_models::VmStatus;
use vmapi_tests::*;

/// The test app with the counter its DynamoDB client reports to.
struct Counted<'a> {
    app: &'a TestApp,
    counter: &'a RequestCounter,
}

impl Counted<'_> {
    /// The owner's `method path` with `body`, which must succeed after exactly the DynamoDB
    /// requests `want`, in order.
    async fn call(&self, method: Method, path: &str, body: Option<Value>, want: &[&str]) -> Reply {
        let reply = self
            .app
            .call(method.clone(), path, Some(OWNER), body.as_ref())
            .await;
        assert!(reply.status.is_success(), "{method} {path}: {}", reply.json);
        assert_eq!(self.counter.take(), want, "{method} {path}");
        reply
    }
}

/// Reads the VM, then its team (with what the use case needs of the catalog).
const READ: [&str; 2] = ["GetItem", "BatchGetItem"];

/// [`READ`], then `next` (the write, or the activity's Query).
fn read_then(next: &str) -> [&str; 3] {
    [READ[0], READ[1], next]
}

#[tokio::test]
async fn requests_per_endpoint_do_not_grow_with_the_page() {
    let counter = RequestCounter::default();
    let app = TestApp::spawn_with(counter.client().await).await;
    counter.take();
    let probe = Counted {
        app: &app,
        counter: &counter,
    };

    // Create: validate (BatchGetItem) + one transaction, for 1 or 10 VMs.
    for batch in 0..20 {
        let names: Vec<String> = (0..10).map(|i| format!("vm-{batch}-{i}")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        app.create(OWNER, &refs).await.expect(201);
        // The transaction also updates the team's quota usage.
        assert_eq!(
            counter.take(),
            ["BatchGetItem", "TransactWriteItems[PutItem,UpdateItem]"],
            "create of 10"
        );
    }
    app.create(OWNER, &["single"]).await.expect(201);
    assert_eq!(counter.take().len(), 2, "create of 1");

    let list = format!("/api/teams/{TEAM}/projects/{PROJECT}/virtual-machines");
    for limit in [1, 50, 200] {
        let path = format!("{list}?limit={limit}");
        let r = probe
            .call(Method::GET, &path, None, &["Query", "BatchGetItem"])
            .await;
        assert_eq!(r.json.as_array().unwrap().len(), limit);
        // Filters ride on the same Query.
        let path = format!("{list}?limit={limit}&status=0,3&tag=x&name=vm-");
        probe
            .call(Method::GET, &path, None, &["Query", "BatchGetItem"])
            .await;
    }
    // A cold catalog cache (a new container) still takes two requests.
    let cold_counter = RequestCounter::default();
    let cold_repo = vmapi_store_dynamodb::DynamoRepository::new(
        cold_counter.client().await,
        &app.table,
        Default::default(),
    );
    let cold = vmapi_core::Service::new(
        std::sync::Arc::new(cold_repo),
        std::sync::Arc::new(vmapi_core::SystemClock),
    );
    let page = cold
        .list(
            &vmapi_models::UserId::parse(OWNER).unwrap(),
            TEAM.parse().unwrap(),
            PROJECT.parse().unwrap(),
            200,
            None,
        )
        .await
        .unwrap();
    assert_eq!(page.items.len(), 200);
    assert_eq!(
        cold_counter.take(),
        ["Query", "BatchGetItem"],
        "cold list of 200"
    );

    let id = app.get(&format!("{list}?limit=1"), OWNER).await.json[0]["_id"]
        .as_str()
        .unwrap()
        .to_string();
    counter.take();
    let vm = format!("/api/virtual-machines/{id}");
    probe.call(Method::GET, &vm, None, &READ).await;
    let tags = Some(json!({"tags": ["a"]}));
    probe
        .call(
            Method::PATCH,
            &vm,
            tags,
            &read_then("TransactWriteItems[PutItem]"),
        )
        .await;
    let name = Some(json!({"name": "renamed"}));
    probe
        .call(
            Method::PATCH,
            &vm,
            name,
            &read_then("TransactWriteItems[PutItem,DeleteItem]"),
        )
        .await;
    // Deleting a VM the API made also takes it off the team's quota usage, in the same write.
    probe
        .call(
            Method::DELETE,
            &vm,
            None,
            &read_then("TransactWriteItems[PutItem,DeleteItem,UpdateItem]"),
        )
        .await;

    let running = demo_vm("running-rt", VmStatus::Running);
    app.seed_vm(&running).await;
    counter.take();
    let path = format!("/api/virtual-machines/{}", running.id);
    let stop = format!("{path}/stop");
    probe
        .call(
            Method::PUT,
            &stop,
            None,
            &read_then("TransactWriteItems[PutItem]"),
        )
        .await;
    probe.call(Method::PUT, &stop, None, &READ).await;
    probe
        .call(
            Method::DELETE,
            &path,
            None,
            &read_then("TransactWriteItems[PutItem,DeleteItem]"),
        )
        .await;

    let stopped = demo_vm("stopped-rt", VmStatus::Stopped);
    app.seed_vm(&stopped).await;
    counter.take();
    let start = format!("/api/virtual-machines/{}/start", stopped.id);
    probe
        .call(
            Method::PUT,
            &start,
            None,
            &read_then("TransactWriteItems[PutItem]"),
        )
        .await;

    // A VM's history (the write above and the seed make it short; the bound holds for any page).
    for limit in [1, 50, 200] {
        let path = format!(
            "/api/virtual-machines/{}/activity?limit={limit}",
            stopped.id
        );
        probe
            .call(Method::GET, &path, None, &read_then("Query"))
            .await;
    }

    // Security rules: create 3 (VM, team and cloud provider, one transaction with the rule's
    // pointer and event), list 2, delete 3 (pointer, VM with its team, one transaction).
    let body = json!({"virtualMachine": stopped.id, "name": "rt-open", "protocol": "*",
        "portRange": "*", "access": "Deny"});
    let r = probe
        .call(
            Method::POST,
            "/api/security-rules",
            Some(body),
            &read_then("TransactWriteItems[PutItem]"),
        )
        .await;
    let rule = format!("/api/security-rules/{}", r.json["_id"].as_str().unwrap());
    let rules = format!("/api/virtual-machines/{}/security-rules", stopped.id);
    probe.call(Method::GET, &rules, None, &READ).await;
    probe
        .call(
            Method::DELETE,
            &rule,
            None,
            &read_then("TransactWriteItems[PutItem,DeleteItem]"),
        )
        .await;

    // Resize (an AWS VM: Kraud.Cloud cannot): the VM, its team with the sizes and the price,
    // one transaction.
    let mut on_aws = as_aws_demo_vm(&demo_vm("resize-rt", VmStatus::Running));
    on_aws.vcpus = Some(2);
    // Billed as every VM made since costs exist (an old record's price would be read for the
    // cost estimate below).
    on_aws.billing = Some(vmapi_models::Billing {
        price_per_hour: vmapi_models::Money::parse("0.0864").unwrap(),
        currency_code: "EUR".into(),
        month: vmapi_models::Timestamp::now().month(),
        price_seconds: vmapi_models::Money::default(),
        running_since: None,
    });
    app.seed_vm(&on_aws).await;
    counter.take();
    let resize = format!("/api/virtual-machines/{}/resize", on_aws.id);
    let larger =
        Some(json!({"size": "6548a383e2442d14b6bf9747", "price": "6548a383e2442d14b6bf970d"}));
    probe
        .call(
            Method::PUT,
            &resize,
            larger,
            &read_then("TransactWriteItems[PutItem,UpdateItem]"),
        )
        .await;

    // Catalog discovery: one Query each.
    for path in [
        "/api/cloud-providers".to_string(),
        format!("/api/cloud-providers/{CLOUD}/providers"),
        format!("/api/providers/{PROVIDER}/locations"),
        format!("/api/providers/{PROVIDER}/locations/berlin/images"),
        format!("/api/providers/{PROVIDER}/locations/berlin/images/Ubuntu/prices"),
    ] {
        probe.call(Method::GET, &path, None, &["Query"]).await;
    }

    // A team's costs: the team (authorization) and the team index together, then the records
    // in chunks of 100 sent together: 2 + ⌈VMs/100⌉ whatever their history.
    let costs = app
        .get(&format!("/api/teams/{TEAM}/costs"), OWNER)
        .await
        .expect(200);
    let vms = costs.json["vms"].as_array().unwrap().len();
    assert!(vms > 200, "{vms} VMs in the estimate");
    let mut ops = counter.take();
    ops.sort();
    let mut want = vec!["BatchGetItem"; 1 + vms.div_ceil(100)];
    want.push("Query");
    assert_eq!(ops, want, "costs of {vms} VMs");

    // The admin API. A page: the key's GetItem and the team index's Query together, then one
    // BatchGetItem of the page's VMs with their team, projects and catalog.
    let (_, key) = app.admin_key("round-trips").await;
    counter.take();
    for limit in [1, 50] {
        let path = format!("/admin/api/teams/{TEAM}/virtual-machines?limit={limit}");
        let page = app.as_admin(Method::GET, &path, &key).await.expect(200);
        assert_eq!(page.json["docs"].as_array().unwrap().len(), limit);
        let mut ops = counter.take();
        ops.sort();
        assert_eq!(ops, ["BatchGetItem", "GetItem", "Query"], "{path}");
    }
    // Block, unblock, delete: the key, the VM, one transaction.
    let target = demo_vm("admin-rt", VmStatus::Running);
    app.seed_vm(&target).await;
    counter.take();
    let vm = format!("/admin/api/virtual-machines/{}", target.id);
    for (method, path, write) in [
        (
            Method::PUT,
            format!("{vm}/block"),
            "TransactWriteItems[PutItem]",
        ),
        (
            Method::PUT,
            format!("{vm}/unblock"),
            "TransactWriteItems[PutItem]",
        ),
        (
            Method::DELETE,
            vm.clone(),
            "TransactWriteItems[PutItem,DeleteItem]",
        ),
    ] {
        app.as_admin(method, &path, &key).await.expect(200);
        assert_eq!(counter.take(), ["GetItem", "GetItem", write], "{path}");
    }
}
