//! (c) Error codes: the document, `ALL_CODES` and the error mapping agree, and every error
//! body fits its documented response.

use super::*;

/// Every error the mapping knows, one value per `code`-producing branch.
fn every_api_error() -> Vec<ApiError> {
    // A new ConflictCode must be added here (and to ALL_CODES).
    fn conflict_codes() -> [ConflictCode; 9] {
        let all = [
            ConflictCode::IllegalTransition,
            ConflictCode::HostNameTaken,
            ConflictCode::DuplicateHostName,
            ConflictCode::ConcurrentModification,
            ConflictCode::QuotaExceeded,
            ConflictCode::RuleNameTaken,
            ConflictCode::PriorityTaken,
            ConflictCode::RuleLimitReached,
            ConflictCode::VmBlocked,
        ];
        for c in all {
            match c {
                ConflictCode::IllegalTransition
                | ConflictCode::HostNameTaken
                | ConflictCode::DuplicateHostName
                | ConflictCode::ConcurrentModification
                | ConflictCode::QuotaExceeded
                | ConflictCode::RuleNameTaken
                | ConflictCode::PriorityTaken
                | ConflictCode::RuleLimitReached
                | ConflictCode::VmBlocked => {}
            }
        }
        all
    }
    let not_found = |kind: NotFoundKind| {
        match kind {
            NotFoundKind::Vm
            | NotFoundKind::Team
            | NotFoundKind::Project
            | NotFoundKind::Credentials
            | NotFoundKind::SecurityRule
            | NotFoundKind::CloudProvider
            | NotFoundKind::Provider
            | NotFoundKind::Location
            | NotFoundKind::Image => {}
        }
        ApiError::Core(Error::not_found(kind, "654a11e60b23ef1b0f36d44e"))
    };
    let mut errors = vec![
        ApiError::Core(Error::invalid_field("hostNames[0]", "bad")),
        ApiError::Core(Error::Forbidden("viewers cannot".into())),
        not_found(NotFoundKind::Vm),
        not_found(NotFoundKind::Team),
        not_found(NotFoundKind::Project),
        not_found(NotFoundKind::Credentials),
        not_found(NotFoundKind::SecurityRule),
        not_found(NotFoundKind::CloudProvider),
        not_found(NotFoundKind::Provider),
        not_found(NotFoundKind::Location),
        not_found(NotFoundKind::Image),
        ApiError::Core(Error::UnsupportedByProvider("Kraud.Cloud cannot".into())),
        ApiError::Core(Error::VersionConflict),
        ApiError::Core(Error::PreconditionFailed("stale".into())),
        ApiError::Core(Error::Unavailable {
            message: "the database is throttling".into(),
            retry_after_secs: 2,
            source: None,
        }),
        ApiError::Core(Error::internal("a test", "boom")),
        ApiError::Auth(AuthError::Missing),
        ApiError::Auth(AuthError::Invalid("expired".into())),
        ApiError::Auth(AuthError::KeysUnavailable("unreachable".into())),
        ApiError::BadBody {
            code: "INVALID_JSON",
            message: "not JSON".into(),
            details: vec![],
        },
        ApiError::BadBody {
            code: "VALIDATION_FAILED",
            message: "name: bad".into(),
            details: vec![FieldError::new("name", "bad")],
        },
        ApiError::BadParameter(FieldError::new("limit", "too big")),
        ApiError::PayloadTooLarge(64 * 1024),
        ApiError::UnsupportedMediaType("text/plain".into()),
        ApiError::RouteNotFound("GET /x".into()),
        ApiError::MethodNotAllowed("POST".into()),
        ApiError::IdempotencyKeyReused,
        ApiError::IdempotencyInProgress,
    ];
    for code in conflict_codes() {
        errors.push(ApiError::Core(Error::conflict(code, "conflict")));
    }
    errors
}

/// The answer of `error`, inside a request (so 5xx bodies carry the request id).
async fn body_of(error: ApiError) -> (u16, Value, axum::http::HeaderMap) {
    let resp = REQUEST_ID
        .scope(
            "test-request".to_string(),
            async move { error.into_response() },
        )
        .await;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, serde_json::from_slice(&bytes).unwrap(), headers)
}

#[tokio::test]
async fn all_codes_is_exactly_what_the_error_mapping_produces() {
    let listed: BTreeMap<&str, u16> = ALL_CODES.iter().copied().collect();
    assert_eq!(listed.len(), ALL_CODES.len(), "ALL_CODES has no duplicates");
    let mut produced = BTreeMap::new();
    for error in every_api_error() {
        let (status, body, _) = body_of(error).await;
        let code = body["code"].as_str().unwrap().to_string();
        assert_eq!(body["statusCode"], status);
        assert_eq!(
            listed.get(code.as_str()),
            Some(&status),
            "{code} answers {status}: listed so in error::ALL_CODES"
        );
        produced.insert(code, status);
    }
    let listed: BTreeMap<String, u16> = listed
        .into_iter()
        .map(|(c, s)| (c.to_string(), s))
        .collect();
    assert_eq!(produced, listed, "every code of ALL_CODES is produced");
}

/// The name of the error response of `status` in `components.responses` (`Conflict`).
fn response_name(status: u16) -> String {
    StatusCode::from_u16(status)
        .unwrap()
        .canonical_reason()
        .unwrap()
        .replace([' ', '-'], "")
}

/// The `code`s a response description lists (each as `` `CODE`: ``).
fn codes_in(description: &str) -> BTreeSet<String> {
    let known: BTreeSet<&str> = ALL_CODES.iter().map(|(c, _)| *c).collect();
    description
        .split('`')
        .filter(|w| known.contains(w))
        .map(str::to_string)
        .collect()
}

/// (status, code) of every error response in the document: each operation's error responses
/// refer to the response of their status in `components.responses` and name their own codes
/// in their description; each of those lists every code of its status.
fn documented_codes(doc: &Value) -> BTreeSet<(u16, String)> {
    let mut out = BTreeSet::new();
    for (method, path, op) in operations(doc) {
        for (status, resp) in op["responses"].as_object().unwrap() {
            let status: u16 = status.parse().unwrap();
            if status < 400 {
                assert!(
                    resp["$ref"].is_null(),
                    "{method} {path} {status} is its own"
                );
                continue;
            }
            assert_eq!(
                resp["$ref"],
                format!("#/components/responses/{}", response_name(status)),
                "{method} {path} {status} refers to the response of its status"
            );
            let codes = codes_in(resp["description"].as_str().unwrap());
            assert!(
                !codes.is_empty(),
                "{method} {path} {status} names its codes"
            );
            let listed = codes_in(resolve(doc, resp)["description"].as_str().unwrap());
            assert!(codes.is_subset(&listed), "{method} {path} {status}");
            out.extend(codes.into_iter().map(|c| (status, c)));
        }
    }
    for (name, resp) in doc["components"]["responses"].as_object().unwrap() {
        let status = (400..600)
            .find(|s| {
                StatusCode::from_u16(*s).is_ok_and(|c| c.canonical_reason().is_some())
                    && response_name(*s) == *name
            })
            .unwrap_or_else(|| panic!("{name} is named after no status"));
        let codes = codes_in(resp["description"].as_str().unwrap());
        assert!(!codes.is_empty(), "{name} lists its codes");
        out.extend(codes.into_iter().map(|c| (status, c)));
    }
    out
}

#[test]
fn the_document_lists_every_code_under_its_status() {
    let doc = doc();
    let documented = documented_codes(&doc);
    let listed: BTreeSet<(u16, String)> =
        ALL_CODES.iter().map(|(c, s)| (*s, c.to_string())).collect();
    for pair in &documented {
        assert!(
            listed.contains(pair),
            "the document lists {} under {}, error::ALL_CODES does not",
            pair.1,
            pair.0
        );
    }
    for pair in &listed {
        assert!(
            documented.contains(pair),
            "{} ({}) is in no response of the document",
            pair.1,
            pair.0
        );
    }
    // The Error schema's own enum is ALL_CODES.
    let all: Vec<&str> = ALL_CODES.iter().map(|(c, _)| *c).collect();
    assert_eq!(
        schema(&doc, "Error")["properties"]["code"]["enum"],
        json!(all)
    );
}

#[tokio::test]
async fn every_error_body_fits_its_documented_response() {
    let doc = doc();
    for error in every_api_error() {
        let (status, body, headers) = body_of(error).await;
        let code = body["code"].as_str().unwrap().to_string();
        // The response of this status lists the code, and the body fits its schema.
        let resp = &doc["components"]["responses"][response_name(status)];
        assert!(resp.is_object(), "{code} ({status}) is documented");
        assert!(
            codes_in(resp["description"].as_str().unwrap()).contains(&code),
            "the {status} response lists {code}"
        );
        let schema = &resp["content"]["application/json"]["schema"];
        let errors = validate(&doc, schema, &body);
        assert!(errors.is_empty(), "{code}: {body} does not fit: {errors:?}");
        for header in resp["headers"].as_object().unwrap().keys() {
            if header != "X-Request-Id" {
                // (X-Request-Id is set by the request middleware, not the mapping.)
                assert!(
                    headers.contains_key(header.as_str()),
                    "{code}: the {header} header is documented and sent"
                );
            }
        }
    }
}
