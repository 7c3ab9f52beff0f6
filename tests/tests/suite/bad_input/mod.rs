//! Bad-input corpus: hundreds of malformed requests, generated in code from the spec's create
//! body and from the other endpoints' inputs, against create, PATCH, list and the actions.
//!
//! Every answer must be a 4xx (no 5xx at all) in the API's one error shape (`statusCode` equal to
//! the status, a documented `code` of that status, `error`, `message`), and the table must be
//! exactly as before (a full dump compared). Some families also pin the exact status or code.

mod case;
mod create;
mod lists;
mod rules;
mod send;
mod vms;

use std::sync::Arc;

use vmapi_tests::*;

use create::create_cases;
use lists::list_cases;
use rules::rule_cases;
use send::run;
use vms::vm_cases;

#[tokio::test]
async fn a_corpus_of_bad_requests_is_refused_with_4xx_and_writes_nothing() {
    let app = Arc::new(TestApp::spawn().await);
    // A VM to aim at, one whose name is taken, and one still being created.
    let created = app
        .create(OWNER, &["corpus-target", "corpus-taken"])
        .await
        .expect(201)
        .json;
    let target = created[0]["_id"].as_str().unwrap().to_string();
    let running = demo_vm("corpus-running", vmapi_models::VmStatus::Running);
    app.seed_vm(&running).await;

    let mut corpus = create_cases("corpus-taken");
    let creating_vm = target.clone();
    // PATCH and actions aim at the running VM; start/stop "while creating" at the new one.
    corpus.extend(vm_cases(
        &running.id.to_string(),
        "corpus-taken",
        &creating_vm,
    ));
    corpus.extend(list_cases());
    corpus.extend(rule_cases(&running.id.to_string()));
    let by_family = |prefix: &str| {
        corpus
            .iter()
            .filter(|c| c.label.starts_with(prefix))
            .count()
    };
    let (creates, patches, lists) = (by_family("create:"), by_family("PATCH"), by_family("list"));
    eprintln!(
        "bad-input corpus: {} requests ({creates} create, {patches} PATCH, {lists} list, {} other)",
        corpus.len(),
        corpus.len() - creates - patches - lists
    );
    assert!(corpus.len() >= 200, "corpus has {} cases", corpus.len());

    let before = app.dump().await;
    let token = app.token(OWNER);
    // Eight at a time.
    let mut problems = Vec::new();
    for chunk in corpus.chunks(8) {
        let mut set = tokio::task::JoinSet::new();
        for c in chunk {
            let c = c.clone();
            let app = app.clone();
            let token = token.clone();
            set.spawn(async move { run(&app, &token, &c).await });
        }
        while let Some(r) = set.join_next().await {
            if let Some(p) = r.expect("case task") {
                problems.push(p);
            }
        }
    }
    let after = app.dump().await;
    assert!(
        problems.is_empty(),
        "{} of {} bad requests were not answered as they should be:\n{}",
        problems.len(),
        corpus.len(),
        problems.join("\n")
    );
    assert_eq!(after.len(), before.len(), "no item added or removed");
    assert!(after == before, "the table changed");
    // The targets are as they were.
    let vm = app
        .get(&format!("/api/virtual-machines/{}", running.id), OWNER)
        .await
        .expect(200)
        .json;
    assert_eq!(vm["name"], "corpus-running");
    assert_eq!(vm["status"], 3);
}
