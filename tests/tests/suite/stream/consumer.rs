//! The consumer behaves as the event source mapping: filters, LATEST, checkpoints, item
//! failures, bisect, the on-failure destination, lanes.

use super::*;

/// A handler that records what it was given; it fails (a function error) for batches holding
/// `poison`, and reports each key of `fail_once` as an item failure the first time.
#[derive(Clone, Default)]
struct Recorder {
    calls: Arc<Mutex<Vec<Vec<String>>>>,
    poison: Option<String>,
    fail_once: Arc<Mutex<HashSet<String>>>,
    /// (pk, the new image's `n`) of every record handed over, in order.
    order: Arc<Mutex<Vec<(String, String)>>>,
}

fn pk(r: &EventRecord) -> String {
    match r.change.keys.get("pk") {
        Some(serde_dynamo::AttributeValue::S(s)) => s.clone(),
        _ => String::new(),
    }
}

#[async_trait]
impl BatchHandler for Recorder {
    async fn handle(&self, records: Vec<EventRecord>) -> HandlerResult {
        let keys: Vec<String> = records.iter().map(pk).collect();
        self.calls.lock().unwrap().push(keys.clone());
        self.order.lock().unwrap().extend(records.iter().map(|r| {
            let n = match r.change.new_image.get("n") {
                Some(serde_dynamo::AttributeValue::N(n)) => n.clone(),
                _ => String::new(),
            };
            (pk(r), n)
        }));
        if let Some(p) = &self.poison {
            if keys.contains(p) {
                return Err(format!("cannot handle {p}"));
            }
        }
        let mut once = self.fail_once.lock().unwrap();
        Ok(records
            .iter()
            .filter(|r| once.remove(&pk(r)))
            .map(|r| r.change.sequence_number.clone().unwrap())
            .collect())
    }
}

impl Recorder {
    fn calls(&self) -> Vec<Vec<String>> {
        self.calls.lock().unwrap().clone()
    }
    /// Every key handed over, in order, with repeats.
    fn seen(&self) -> Vec<String> {
        self.calls().concat()
    }
}

/// Temporary files of one test.
struct Files {
    dir: PathBuf,
}

impl Files {
    fn new() -> Files {
        let dir = std::env::temp_dir().join(format!("vmapi-stream-{}", ObjectId::new()));
        std::fs::create_dir_all(&dir).unwrap();
        Files { dir }
    }
    fn checkpoints(&self) -> PathBuf {
        self.dir.join("stream-consumer.json")
    }
    fn failures(&self) -> PathBuf {
        self.dir.join("stream-failures.jsonl")
    }
    fn failure_lines(&self) -> Vec<Value> {
        std::fs::read_to_string(self.failures())
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
    fn options(&self) -> ConsumerOptions {
        let mut o = ConsumerOptions::new(Mapping::provisioner());
        // One lane: a page's passing records form one batch (the lanes have their own test).
        o.mapping.parallelization_factor = 1;
        o.checkpoints = CheckpointStore::file(self.checkpoints());
        o.failures = Some(self.failures());
        o.retry_delay = Duration::from_millis(1);
        o.idle_delay = Duration::from_millis(20);
        o
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Writes an item the provisioner's filter passes (a VM record with a pending operation);
/// `extra` attributes are added. Returns its `pk`.
async fn put_pending(app: &TestApp, extra: &[(&str, AttributeValue)]) -> String {
    let pk = format!("VM#{}", ObjectId::new());
    let mut req = app
        .repo
        .client()
        .put_item()
        .table_name(&app.table)
        .item("pk", AttributeValue::S(pk.clone()))
        .item("sk", AttributeValue::S("VM".into()))
        .item(
            "pendingOp",
            AttributeValue::M([("op".to_string(), AttributeValue::S("create".into()))].into()),
        );
    for (k, v) in extra {
        req = req.item(*k, v.clone());
    }
    req.send().await.unwrap();
    pk
}

/// Writes an item the filter does not pass.
async fn put_other(app: &TestApp) {
    app.repo
        .client()
        .put_item()
        .table_name(&app.table)
        .item("pk", AttributeValue::S(format!("NOTE#{}", ObjectId::new())))
        .item("sk", AttributeValue::S("NOTE".into()))
        .send()
        .await
        .unwrap();
}

async fn start(app: &TestApp, handler: Recorder, files: &Files) -> Consumer<Recorder> {
    let sdk = vmapi_aws::sdk_config().await;
    Consumer::start(
        app.repo.client(),
        StreamsApi::new(&sdk),
        &app.table,
        handler,
        files.options(),
    )
    .await
    .expect("the consumer starts")
}

/// Reads until `done` holds of the recorder (at most 10 s of rounds).
async fn rounds_until(c: &mut Consumer<Recorder>, r: &Recorder, done: impl Fn(&Recorder) -> bool) {
    for _ in 0..200 {
        if done(r) {
            return;
        }
        if !c.round().await {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    panic!(
        "the consumer did not get there; handled so far: {:?}",
        r.calls()
    );
}

/// The checkpoint file's positions.
fn positions(files: &Files) -> Value {
    serde_json::from_str(&std::fs::read_to_string(files.checkpoints()).unwrap()).unwrap()
}

/// The sequence number of the stream's newest record.
async fn last_sequence(app: &TestApp) -> String {
    all_records(app).await.last().unwrap()["dynamodb"]["SequenceNumber"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn starts_at_latest_filters_before_decoding_and_checkpoints_past_skipped_records() {
    let app = TestApp::spawn().await;
    let files = Files::new();
    let before = put_pending(&app, &[]).await;
    let r = Recorder::default();
    let mut c = start(&app, r.clone(), &files).await;
    put_other(&app).await;
    let after = put_pending(&app, &[]).await;
    put_other(&app).await;
    rounds_until(&mut c, &r, |r| r.seen().contains(&after)).await;
    for _ in 0..3 {
        c.round().await;
    }
    assert_eq!(
        r.seen(),
        vec![after],
        "LATEST: {before} was written before the start"
    );
    // Filtered-out records move the checkpoint too: it is the stream's newest record.
    let pos = positions(&files);
    let shard = pos["shards"]
        .as_object()
        .unwrap()
        .values()
        .find(|s| !s["checkpoint"].is_null())
        .unwrap();
    assert_eq!(shard["checkpoint"], last_sequence(&app).await);
}

#[tokio::test]
async fn a_record_that_cannot_be_decoded_goes_to_the_on_failure_file_and_the_rest_go_on() {
    let app = TestApp::spawn().await;
    let files = Files::new();
    let r = Recorder::default();
    let mut c = start(&app, r.clone(), &files).await;
    let first = put_pending(&app, &[]).await;
    // An empty map: DynamoDB Local's stream renders it as `{}`, which does not decode.
    let poisoned = put_pending(&app, &[("headers", AttributeValue::M(Default::default()))]).await;
    let next = put_pending(&app, &[]).await;
    rounds_until(&mut c, &r, |r| r.seen().contains(&next)).await;
    assert_eq!(r.seen(), vec![first, next.clone()]);
    let failures = files.failure_lines();
    assert_eq!(failures.len(), 1, "{failures:?}");
    let f = &failures[0];
    assert_eq!(f["requestContext"]["condition"], "RecordUndecodable");
    assert_eq!(f["DDBStreamBatchInfo"]["batchSize"], 1);
    assert_eq!(f["local"]["keys"][0]["pk"]["S"], poisoned, "{f}");
    // And the consumer is past all three.
    let records = all_records(&app).await;
    let shard = f["DDBStreamBatchInfo"]["shardId"].as_str().unwrap();
    assert_eq!(
        positions(&files)["shards"][shard]["checkpoint"],
        records.last().unwrap()["dynamodb"]["SequenceNumber"]
    );
}

#[tokio::test]
async fn a_restart_resumes_from_the_checkpoint_without_replaying() {
    let app = TestApp::spawn().await;
    let files = Files::new();
    let first = Recorder::default();
    let mut c = start(&app, first.clone(), &files).await;
    let mut done = Vec::new();
    for _ in 0..3 {
        done.push(put_pending(&app, &[]).await);
    }
    rounds_until(&mut c, &first, |r| r.seen().len() == 3).await;
    drop(c);
    // Written while no consumer runs.
    let mut later = Vec::new();
    for _ in 0..2 {
        later.push(put_pending(&app, &[]).await);
    }
    let second = Recorder::default();
    let mut c = start(&app, second.clone(), &files).await;
    rounds_until(&mut c, &second, |r| r.seen().len() >= 2).await;
    for _ in 0..3 {
        c.round().await;
    }
    assert_eq!(first.seen(), done);
    assert_eq!(second.seen(), later, "only what came after the checkpoint");
}

#[tokio::test]
async fn bisect_isolates_a_failing_record_in_a_batch_of_ten() {
    let app = TestApp::spawn().await;
    let files = Files::new();
    let sdk = vmapi_aws::sdk_config().await;
    let mut keys = Vec::new();
    // Positioned first, then ten records in one page.
    let probe = Recorder::default();
    let c = start(&app, probe, &files).await;
    drop(c);
    for _ in 0..10 {
        keys.push(put_pending(&app, &[]).await);
    }
    let poison = keys[6].clone();
    let r = Recorder {
        poison: Some(poison.clone()),
        ..Default::default()
    };
    let mut c = Consumer::start(
        app.repo.client(),
        StreamsApi::new(&sdk),
        &app.table,
        r.clone(),
        files.options(),
    )
    .await
    .unwrap();
    c.round().await;
    let calls = r.calls();
    assert_eq!(
        calls[0], keys,
        "the first delivery is the whole batch of ten"
    );
    // Every other record was handled in a batch without the poison, exactly once.
    let succeeded: Vec<String> = calls
        .iter()
        .filter(|c| !c.contains(&poison))
        .flatten()
        .cloned()
        .collect();
    let mut others = keys.clone();
    others.retain(|k| *k != poison);
    assert_eq!(succeeded, others, "{calls:?}");
    // The poison alone: the first try plus the mapping's ten retries, then the on-failure file.
    let alone = calls.iter().filter(|c| **c == [poison.clone()]).count();
    assert_eq!(
        alone as u32,
        Mapping::provisioner().maximum_retry_attempts + 1,
        "{calls:?}"
    );
    let failures = files.failure_lines();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(
        failures[0]["requestContext"]["condition"],
        "RetryAttemptsExhausted"
    );
    assert_eq!(failures[0]["DDBStreamBatchInfo"]["batchSize"], 1);
    assert_eq!(failures[0]["local"]["keys"][0]["pk"]["S"], poison);
    assert!(
        failures[0]["local"]["cause"]
            .as_str()
            .unwrap()
            .contains("cannot handle"),
        "the cause is kept: {}",
        failures[0]
    );
}

#[tokio::test]
async fn item_failures_are_retried_from_the_first_failed_record() {
    let app = TestApp::spawn().await;
    let files = Files::new();
    let r = Recorder::default();
    let c = start(&app, Recorder::default(), &files).await;
    drop(c);
    let mut keys = Vec::new();
    for _ in 0..5 {
        keys.push(put_pending(&app, &[]).await);
    }
    r.fail_once.lock().unwrap().insert(keys[2].clone());
    let mut c = start(&app, r.clone(), &files).await;
    c.round().await;
    assert_eq!(r.calls(), vec![keys.clone(), keys[2..].to_vec()]);
    assert!(files.failure_lines().is_empty());
}

#[tokio::test]
async fn parallel_lanes_keep_each_keys_records_in_order() {
    let app = TestApp::spawn().await;
    let files = Files::new();
    drop(start(&app, Recorder::default(), &files).await);
    // Five changes to each of four VM records, interleaved.
    let keys: Vec<String> = (0..4).map(|_| format!("VM#{}", ObjectId::new())).collect();
    for round in 0..5 {
        for pk in &keys {
            app.repo
                .client()
                .put_item()
                .table_name(&app.table)
                .item("pk", AttributeValue::S(pk.clone()))
                .item("sk", AttributeValue::S("VM".into()))
                .item("n", AttributeValue::N(round.to_string()))
                .item(
                    "pendingOp",
                    AttributeValue::M(
                        [("op".to_string(), AttributeValue::S("start".into()))].into(),
                    ),
                )
                .send()
                .await
                .unwrap();
        }
    }
    let r = Recorder::default();
    let mut options = files.options();
    options.mapping = Mapping::provisioner();
    let sdk = vmapi_aws::sdk_config().await;
    let mut c = Consumer::start(
        app.repo.client(),
        StreamsApi::new(&sdk),
        &app.table,
        r.clone(),
        options,
    )
    .await
    .unwrap();
    c.round().await;
    let calls = r.calls();
    assert_eq!(r.seen().len(), 20, "each record once: {calls:?}");
    assert!(calls.len() > 1, "more than one lane: {calls:?}");
    for batch in &calls {
        assert!(
            batch.len() <= Mapping::provisioner().batch_size,
            "{calls:?}"
        );
    }
    // Every key's five records, in the order they were written.
    let order = r.order.lock().unwrap().clone();
    for pk in &keys {
        let ns: Vec<&str> = order
            .iter()
            .filter(|(k, _)| k == pk)
            .map(|(_, n)| n.as_str())
            .collect();
        assert_eq!(ns, ["0", "1", "2", "3", "4"], "{pk}: {order:?}");
    }
    let pos = positions(&files);
    let shard = pos["shards"]
        .as_object()
        .unwrap()
        .values()
        .find(|s| !s["checkpoint"].is_null())
        .unwrap();
    assert_eq!(shard["checkpoint"], last_sequence(&app).await);
}

#[tokio::test]
async fn the_provisioner_moves_vms_through_the_consumer_after_an_idempotent_refusal() {
    // The stall of issue 15: a kept answer without headers used to stop every later record.
    let app = TestApp::spawn().await;
    let (_sim, p) = app.simulated();
    let _stream = app.stream_provisioner(p).await;
    let mut body = spec_create_request();
    body["hostNames"] = json!(["taken"]);
    let headers: &[(&str, &[u8])] = &[("Idempotency-Key", b"first")];
    app.call_with(
        Method::POST,
        "/api/virtual-machines",
        Some(OWNER),
        Some(&body),
        headers,
    )
    .await
    .expect(201);
    let headers: &[(&str, &[u8])] = &[("Idempotency-Key", b"second")];
    for _ in 0..2 {
        app.call_with(
            Method::POST,
            "/api/virtual-machines",
            Some(OWNER),
            Some(&body),
            headers,
        )
        .await
        .expect(409);
    }
    let id = app.create(OWNER, &["after-refusal"]).await.expect(201).json[0]["_id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = app
        .wait_for(&id, OWNER, 20, |r| r.json["status"] == 3)
        .await;
    assert_eq!(r.json["status"], 3, "{}", r.json);
}
