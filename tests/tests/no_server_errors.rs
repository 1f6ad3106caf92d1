//! No input makes the API answer 5xx or panic, on SQLite and on PostgreSQL: a property test
//! sends generated requests — valid-looking reservations mixed with garbage (NUL and control
//! characters, lone surrogates escaped in JSON, huge strings and numbers, wrong types, missing
//! and extra fields, invalid dates, deep nesting, bytes that are not UTF-8, `%00` and `%ff` in
//! path segments and cursors) — to every route that takes input, and checks each answer: below
//! 500, a 4xx carries `{"error": "…"}`, and a request that holds a NUL character where the
//! system would store or look it up is refused (4xx) rather than stored.
//!
//! The router is driven in-process (`tower::ServiceExt::oneshot`), so the 10 000 cases of a run
//! stay fast; the run is bounded by its count of cases, not by time.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use axum::body::{to_bytes, Body};
use axum::http::{Method, Request};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{json, Value};
use tower::ServiceExt;

use alpespartners::api::BODY_LIMIT;
use alpespartners::system::Database;
use seedwork_tests::system::{reserva_del_readme, start};

/// Requests sent per run (each a generated case).
const CASES: u32 = 10_000;

/// Stands in a generated body for a raw JSON fragment, spliced into the text after
/// serialisation (a private-use character no generated string holds).
const HOLE: &str = "\u{E000}hole\u{E000}";

/// The leg every mutation path below starts from.
const LEG: &str = "/itinerarios/0/odos/0/segmentos/0/legs/0";

/// Where a mutation may land in the README body.
fn paths() -> Vec<String> {
    let mut paths: Vec<String> = [
        "",
        "/id",
        "/id_cliente",
        "/fecha_creacion",
        "/fecha_actualizacion",
        "/itinerarios",
        "/itinerarios/0",
        "/itinerarios/0/odos",
        "/itinerarios/0/odos/0",
        "/itinerarios/0/odos/0/segmentos",
        "/itinerarios/0/odos/0/segmentos/0/legs",
    ]
    .iter()
    .map(|p| p.to_string())
    .collect();
    for tail in [
        "",
        "/fecha_salida",
        "/fecha_llegada",
        "/origen",
        "/destino",
        "/origen/codigo",
        "/origen/nombre",
        "/destino/codigo",
        "/destino/nombre",
    ] {
        paths.push(format!("{LEG}{tail}"));
    }
    paths
}

/// Raw JSON text no `serde_json::Value` can produce, and whether it decodes to a string with a
/// NUL character.
const FRAGMENTS: &[(&str, bool)] = &[
    (r#""\ud800""#, false),
    (r#""\udc00""#, false),
    (r#""a\ud800b""#, false),
    (r#""\ud800\ud800""#, false),
    (r#""\udbff\udfff""#, false),
    (r#""\u0000""#, true),
    (r#""gggg\u0000""#, true),
    (r#""\u0000\u0001\u001f""#, true),
    ("\"\0\"", false),
    ("\"\u{1}\"", false),
    (r#""\x41""#, false),
    (r#""\"#, false),
    ("1e999999", false),
    ("-1e999999", false),
    ("123456789012345678901234567890123456789", false),
    ("-0", false),
    ("0.00000000000000000000000000000000000001", false),
    ("tru", false),
    ("nul", false),
    ("NaN", false),
    ("[1,]", false),
    ("{\"a\":1,}", false),
];

/// A value to put somewhere in a body.
#[derive(Debug, Clone)]
enum Valor {
    Json(Value),
    /// Index into [`FRAGMENTS`].
    Fragment(usize),
}

#[derive(Debug, Clone)]
enum Mutation {
    Set(usize, Valor),
    Remove(usize),
    Extra(usize, String, Valor),
}

/// What happens to the serialised body.
#[derive(Debug, Clone)]
enum Raw {
    Keep,
    Truncate(usize),
    InvalidUtf8(usize),
    Bytes(Vec<u8>),
    Empty,
    DeepArray(usize),
    DeepObject(usize),
}

#[derive(Debug, Clone)]
struct Case {
    method: Method,
    uri: String,
    content_type: Option<&'static str>,
    body: Vec<u8>,
    /// Why the request must be refused (a NUL where it would be stored or looked up).
    must_refuse: Option<String>,
}

/// Text with the characters that break things: NUL and other controls, BOM, noncharacters,
/// the highest code point, bidi overrides, combining marks, emoji, replacement characters.
fn garbage_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        3 => any::<char>().prop_map(String::from),
        2 => "[a-zA-Z0-9 -]{1,6}",
        2 => Just("\0".to_string()),
        1 => prop::sample::select(vec![
            "\u{1}", "\u{1f}", "\u{7f}", "\u{85}", "\u{9f}", "\u{feff}", "\u{fffe}", "\u{ffff}",
            "\u{10ffff}", "\u{202e}", "e\u{301}", "\u{1F600}", "\u{fffd}", "\n", "\t", "\r",
            "\\", "\"", "'", "%00", "%ff", "../", "ñ",
        ])
        .prop_map(str::to_string),
    ];
    prop::collection::vec(piece, 0..8).prop_map(|pieces| pieces.concat())
}

fn string_value() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => garbage_text(),
        2 => any::<String>(),
        2 => prop::sample::select(vec![
            "2022-11-22T13:10:00Z", "2022-11-22T15:10:00Z", "9999-12-31T23:59:59Z",
            "0000-01-01T00:00:00Z", "2022-02-30T00:00:00Z", "2022-11-22T13:10:60Z",
            "2022-11-22T23:59:60Z", "2022-11-22T13:10:00+23:59", "2022-11-22T13:10:00-23:59",
            "2022-11-22", "ayer", "", " ", "anonimo", "gggg", "sasads", "BOG", "p-1",
            "+262143-12-31T23:59:59Z", "2022-11-22T13:10:00.999999999999Z",
        ])
        .prop_map(str::to_string),
        1 => (0usize..300, any::<char>()).prop_map(|(n, c)| c.to_string().repeat(n)),
        1 => prop::sample::select(vec![17usize, 129, 2_000, 40_000, BODY_LIMIT + 10])
            .prop_map(|n| "x".repeat(n)),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        6 => string_value().prop_map(Value::String),
        1 => any::<i64>().prop_map(Value::from),
        1 => Just(Value::from(u64::MAX)),
        1 => any::<f64>().prop_map(Value::from),
        1 => any::<bool>().prop_map(Value::Bool),
        1 => Just(Value::Null),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,12}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn valor() -> impl Strategy<Value = Valor> {
    prop_oneof![
        5 => json_value().prop_map(Valor::Json),
        1 => (0..FRAGMENTS.len()).prop_map(Valor::Fragment),
    ]
}

fn mutation(n_paths: usize) -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (0..n_paths, valor()).prop_map(|(p, v)| Mutation::Set(p, v)),
        2 => (0..n_paths).prop_map(Mutation::Remove),
        1 => (0..n_paths, "[a-z_]{1,10}", valor()).prop_map(|(p, k, v)| Mutation::Extra(p, k, v)),
    ]
}

fn raw() -> impl Strategy<Value = Raw> {
    prop_oneof![
        20 => Just(Raw::Keep),
        1 => any::<usize>().prop_map(Raw::Truncate),
        1 => any::<usize>().prop_map(Raw::InvalidUtf8),
        1 => prop::collection::vec(any::<u8>(), 0..64).prop_map(Raw::Bytes),
        1 => Just(Raw::Empty),
        1 => prop::sample::select(vec![10usize, 127, 129, 5_000]).prop_map(Raw::DeepArray),
        1 => prop::sample::select(vec![10usize, 127, 129, 2_000]).prop_map(Raw::DeepObject),
    ]
}

/// Ids shared by the generated bodies and paths, so creates conflict and transitions find
/// reservations to act on.
fn pool_id() -> impl Strategy<Value = String> {
    (0..8u8).prop_map(|i| format!("p-{i}"))
}

fn pool_cliente() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["c-0", "c-1", "anonimo", "añ ✈"]).prop_map(str::to_string)
}

/// Whether a string in `body`, where the system would read it (a known field; anything inside
/// `itinerarios`, where unknown fields are refused), holds a NUL character — counting the
/// spliced fragment.
fn nul_where_read(body: &Value, fragment: Option<usize>) -> Option<String> {
    fn holds_nul(value: &Value, fragment: Option<usize>) -> bool {
        match value {
            Value::String(s) if s == HOLE => fragment.is_some_and(|f| FRAGMENTS[f].1),
            Value::String(s) => s.contains('\0'),
            Value::Array(items) => items.iter().any(|v| holds_nul(v, fragment)),
            Value::Object(map) => map.values().any(|v| holds_nul(v, fragment)),
            _ => false,
        }
    }
    let Value::Object(top) = body else {
        return None;
    };
    [
        "id",
        "id_cliente",
        "fecha_creacion",
        "fecha_actualizacion",
        "itinerarios",
    ]
    .iter()
    .find(|key| top.get(**key).is_some_and(|v| holds_nul(v, fragment)))
    .map(|key| format!("a NUL in `{key}`"))
}

/// Applies the mutations; returns the body and the fragment its [`HOLE`] stands for.
fn mutate(mut body: Value, mutations: &[Mutation], paths: &[String]) -> (Value, Option<usize>) {
    let mut fragment = None;
    let mut materialise = |v: &Valor| match v {
        Valor::Json(value) => value.clone(),
        Valor::Fragment(f) => {
            fragment = Some(*f);
            Value::String(HOLE.to_string())
        }
    };
    for m in mutations {
        match m {
            Mutation::Set(p, v) => {
                let value = materialise(v);
                if paths[*p].is_empty() {
                    body = value;
                } else if let Some(slot) = body.pointer_mut(&paths[*p]) {
                    *slot = value;
                }
            }
            Mutation::Remove(p) => {
                let path = &paths[*p];
                if let Some((parent, key)) = path.rsplit_once('/') {
                    match body.pointer_mut(parent) {
                        Some(Value::Object(map)) => {
                            map.remove(key);
                        }
                        Some(Value::Array(items)) => {
                            if let Ok(i) = key.parse::<usize>() {
                                if i < items.len() {
                                    items.remove(i);
                                }
                            }
                        }
                        _ => {}
                    }
                }
            }
            Mutation::Extra(p, key, v) => {
                let value = materialise(v);
                if let Some(Value::Object(map)) = body.pointer_mut(&paths[*p]) {
                    map.insert(key.clone(), value);
                }
            }
        }
    }
    (body, fragment)
}

fn apply_raw(text: String, raw: &Raw) -> Vec<u8> {
    let mut bytes = text.into_bytes();
    match raw {
        Raw::Keep => {}
        Raw::Truncate(at) => bytes.truncate(at % (bytes.len() + 1)),
        Raw::InvalidUtf8(at) => {
            let at = at % (bytes.len() + 1);
            bytes.splice(at..at, [0xff, 0xfe, 0xc3]);
        }
        Raw::Bytes(garbage) => bytes = garbage.clone(),
        Raw::Empty => bytes.clear(),
        Raw::DeepArray(depth) => {
            bytes = format!("{}{}", "[".repeat(*depth), "]".repeat(*depth)).into_bytes()
        }
        Raw::DeepObject(depth) => {
            bytes = format!(
                "{}1{}",
                "{\"itinerarios\":".repeat(*depth),
                "}".repeat(*depth)
            )
            .into_bytes()
        }
    }
    bytes
}

fn body_case() -> impl Strategy<Value = Case> {
    let paths = paths();
    let n = paths.len();
    (
        prop::sample::select(vec![
            "/vuelos/reserva",
            "/vuelos/reserva-comando",
            "/vuelos/reserva-commando",
        ]),
        prop_oneof![pool_id(), "[a-z0-9-]{1,12}"],
        prop::option::of(pool_cliente()),
        prop::collection::vec(mutation(n), 0..4),
        raw(),
        prop_oneof![
            12 => Just(Some("application/json")),
            1 => Just(Some("application/json; charset=utf-8")),
            1 => Just(Some("text/plain")),
            1 => Just(None),
        ],
    )
        .prop_map(move |(route, id, cliente, mutations, raw, content_type)| {
            let mut body = reserva_del_readme(&id);
            if let Some(cliente) = cliente {
                body["id_cliente"] = json!(cliente);
            }
            let (body, fragment) = mutate(body, &mutations, &paths);
            let must_refuse = nul_where_read(&body, fragment);
            let mut text = body.to_string();
            if let Some(f) = fragment {
                let hole = Value::String(HOLE.to_string()).to_string();
                text = text.replace(&hole, FRAGMENTS[f].0);
            }
            Case {
                method: Method::POST,
                uri: route.to_string(),
                content_type,
                body: apply_raw(text, &raw),
                must_refuse,
            }
        })
}

/// A path segment as it appears in a URI (percent-encoded), and whether it decodes to text
/// with a NUL character.
fn segment() -> impl Strategy<Value = (String, bool)> {
    let piece = prop_oneof![
        4 => "[a-zA-Z0-9._~-]{1,6}",
        1 => prop::sample::select(vec![
            "%00", "%ff", "%fe%ff", "%C3", "%ED%A0%80", "%C0%80", "%2F", "%20", "%7F", "%0A",
            "%E2%80%AE", "%EF%BF%BF", "%F4%8F%BF%BF", "%F4%90%80%80", "%25", "%", "%2", "%zz",
            "%C3%B1", "%F0%9F%98%80", "..", ".",
        ])
        .prop_map(str::to_string),
        1 => any::<String>().prop_map(|s| percent_encode(&s)),
    ];
    prop_oneof![
        4 => pool_id().prop_map(|id| (id, false)),
        8 => prop::collection::vec(piece, 0..6).prop_map(|pieces| {
            let segment = pieces.concat();
            let nul = decodes_to_nul(&segment);
            (segment, nul)
        }),
        1 => (1usize..400).prop_map(|n| ("a".repeat(n), false)),
    ]
}

/// Whether the percent-decoding of `segment` holds a NUL byte.
fn decodes_to_nul(segment: &str) -> bool {
    segment.as_bytes().windows(3).any(|w| w == b"%00")
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn query() -> impl Strategy<Value = (String, bool)> {
    let limit = prop_oneof![
        (1u32..=600).prop_map(|n| n.to_string()),
        prop::sample::select(vec![
            "0",
            "-1",
            "abc",
            "",
            "1e3",
            "1.5",
            "99999999999999999999",
            "%00"
        ])
        .prop_map(str::to_string),
    ];
    (prop::option::of(limit), prop::option::of(segment())).prop_map(|(limit, after)| {
        let mut parts = Vec::new();
        if let Some(limit) = limit {
            parts.push(format!("limit={limit}"));
        }
        let mut nul = false;
        if let Some((after, after_nul)) = after {
            parts.push(format!("after={after}"));
            nul = after_nul;
        }
        if parts.is_empty() {
            (String::new(), false)
        } else {
            (format!("?{}", parts.join("&")), nul)
        }
    })
}

fn path_case() -> impl Strategy<Value = Case> {
    prop_oneof![
        (
            prop::sample::select(vec![
                (Method::GET, "/vuelos/reserva/{}"),
                (Method::GET, "/vuelos/reserva-query/{}"),
                (Method::POST, "/vuelos/reserva/{}/aprobar"),
                (Method::POST, "/vuelos/reserva/{}/cancelar"),
                (Method::POST, "/vuelos/reserva/{}/pagar"),
            ]),
            segment(),
        )
            .prop_map(|((method, template), (id, nul))| Case {
                method,
                uri: template.replace("{}", &id),
                content_type: None,
                body: Vec::new(),
                must_refuse: nul.then(|| "a NUL in the path id".to_string()),
            }),
        (
            prop::sample::select(vec![
                "/vuelos/reservas",
                "/vuelos/reservas/canceladas",
                "/vuelos/reservas/no-pagadas",
            ]),
            query(),
        )
            .prop_map(|(route, (query, nul))| Case {
                method: Method::GET,
                uri: format!("{route}{query}"),
                content_type: None,
                body: Vec::new(),
                must_refuse: nul.then(|| "a NUL in `after`".to_string()),
            }),
        (
            prop_oneof![
                pool_cliente().prop_map(|c| (percent_encode(&c), false)),
                segment()
            ],
            query()
        )
            .prop_map(|((cliente, cliente_nul), (query, after_nul))| Case {
                method: Method::GET,
                uri: format!("/clientes/{cliente}/reservas{query}"),
                content_type: None,
                body: Vec::new(),
                must_refuse: (cliente_nul || after_nul)
                    .then(|| "a NUL in the client id or `after`".to_string()),
            }),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    prop_oneof![body_case(), path_case()]
}

/// Sends `CASES` generated requests to a fresh system on `database`; fails on the first answer
/// of 500 or more, a 4xx without `{"error": "…"}`, or a NUL-bearing request that was not
/// refused (a panic in a handler fails the test too).
fn no_server_errors(database: impl FnOnce() -> Database) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let running = runtime.block_on(start(database()));
    let router = alpespartners::api::router(running.system.bus.clone());
    let sent = AtomicUsize::new(0);
    let unbuildable = AtomicUsize::new(0);
    let statuses = Mutex::new(BTreeMap::<u16, usize>::new());

    let mut runner = TestRunner::new(Config {
        cases: CASES,
        failure_persistence: None,
        max_shrink_iters: 2_000,
        ..Config::default()
    });
    let outcome = runner.run(&case(), |case| {
        let mut request = Request::builder()
            .method(case.method.clone())
            .uri(&case.uri);
        if let Some(content_type) = case.content_type {
            request = request.header("content-type", content_type);
        }
        let Ok(request) = request.body(Body::from(case.body.clone())) else {
            // Not a request a client could send (hyper refuses such a URI before routing).
            unbuildable.fetch_add(1, Ordering::Relaxed);
            return Err(TestCaseError::reject("not a valid URI"));
        };
        sent.fetch_add(1, Ordering::Relaxed);
        let (status, body) = runtime.block_on(async {
            let response = router
                .clone()
                .oneshot(request)
                .await
                .unwrap_or_else(|never| match never {});
            let status = response.status();
            let body = to_bytes(response.into_body(), usize::MAX).await;
            (status, body)
        });
        let body = body.map_err(|e| TestCaseError::fail(format!("reading the answer: {e}")))?;
        *statuses
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(status.as_u16())
            .or_default() += 1;
        prop_assert!(
            status.as_u16() < 500,
            "{} {} answered {status}: {}",
            case.method,
            case.uri,
            String::from_utf8_lossy(&body)
        );
        if status.is_client_error() {
            let error: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            prop_assert!(
                error["error"].as_str().is_some_and(|e| !e.is_empty()),
                "{} {} answered {status} without {{\"error\": …}}: {}",
                case.method,
                case.uri,
                String::from_utf8_lossy(&body)
            );
        }
        if let Some(reason) = &case.must_refuse {
            prop_assert!(
                status.is_client_error(),
                "{} {} with {reason} answered {status}, not a refusal: {}",
                case.method,
                case.uri,
                String::from_utf8_lossy(&body)
            );
        }
        Ok(())
    });
    runtime.block_on(running.system.shutdown());
    if let Err(failure) = outcome {
        panic!("{failure}");
    }
    let sent = sent.load(Ordering::Relaxed);
    let statuses = statuses.into_inner().unwrap_or_else(|e| e.into_inner());
    eprintln!("{sent} requests, answers by status: {statuses:?}");
    assert!(
        sent >= CASES as usize,
        "only {sent} requests sent ({} unbuildable)",
        unbuildable.load(Ordering::Relaxed)
    );
    // The generator reaches the paths that store and read, not only the refusals.
    for status in [200, 202, 404, 409] {
        assert!(
            statuses.get(&status).is_some_and(|n| *n > 0),
            "no request answered {status}: {statuses:?}"
        );
    }
}

#[test]
fn no_input_makes_a_server_error_on_sqlite() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("alpes.db").display().to_string();
    no_server_errors(|| Database::Sqlite(path));
}

#[test]
#[ignore = "needs PostgreSQL (SEEDWORK_POSTGRES_URL)"]
fn no_input_makes_a_server_error_on_postgres() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let url = runtime.block_on(seedwork_tests::processes::postgres_schema_url());
    drop(runtime);
    no_server_errors(|| Database::Postgres(url));
}
