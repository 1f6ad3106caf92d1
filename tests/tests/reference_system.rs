//! The AlpesPartners reference system, started in-process on free ports and driven over HTTP and
//! websocket: the README flow, every route, bad input, the asynchronous command path, the UI
//! and the cliente reaction. Each scenario runs on SQLite and, ignored without a server, on
//! PostgreSQL, with the in-memory broker (whose topics the tests can inspect); the asynchronous
//! ones run again on the default broker, the durable transport in the store's SQLite file.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use alpespartners::system::{BrokerChoice, Database};
use seedwork_tests::system::{projections_caught_up, reserva_del_readme, start, start_on, Running};

const WAIT: Duration = Duration::from_secs(10);

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

async fn post(r: &Running, path: &str, body: &Value) -> (StatusCode, Value) {
    let response = r
        .http
        .post(format!("{}{path}", r.api))
        .json(body)
        .send()
        .await
        .expect("request");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn get(r: &Running, path: &str) -> (StatusCode, Value) {
    let (status, body, _next) = get_page(r, path).await;
    (status, body)
}

async fn until_ok(r: &Running, path: &str) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (status, body) = get(r, path).await;
        if status == StatusCode::OK {
            return body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{path} never answered 200"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn connect(r: &Running) -> Ws {
    let (socket, _) = tokio_tungstenite::connect_async(r.ws.as_str())
        .await
        .expect("websocket connects");
    socket
}

/// Reads websocket messages until one satisfies `want`.
async fn ws_until(socket: &mut Ws, want: impl Fn(&Value) -> bool) -> Value {
    let read = async {
        while let Some(message) = socket.next().await {
            if let Ok(WsMessage::Text(text)) = message {
                let value: Value = serde_json::from_str(text.as_str()).expect("JSON");
                if want(&value) {
                    return value;
                }
            }
        }
        panic!("websocket closed");
    };
    tokio::time::timeout(WAIT, read)
        .await
        .expect("the expected websocket message arrived")
}

fn is_event(kind: &'static str, id: String) -> impl Fn(&Value) -> bool {
    move |v| v["type"] == kind && v["data"]["id_reserva"] == id.as_str()
}

async fn sqlite() -> (Running, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("alpes.db").display().to_string();
    (start(Database::Sqlite(path)).await, dir)
}

/// A system on SQLite with the default broker: the durable transport in the same file.
async fn sqlite_transport() -> (Running, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("alpes.db").display().to_string();
    (
        start_on(Database::Sqlite(path), BrokerChoice::Database).await,
        dir,
    )
}

/// A system on PostgreSQL, in a schema of its own: each test runs its own relay and in-memory
/// broker, so tests must not share an outbox.
async fn postgres() -> (Running, ()) {
    let scoped = seedwork_tests::processes::postgres_schema_url().await;
    (start(Database::Postgres(scoped)).await, ())
}

/// The tutorial README's curl flow: the request as printed, the reservation stored, and the
/// notification service "sending the email" with the lines the README shows.
async fn readme_flow(r: &Running) {
    let id = unique("test-reserva-123");
    let (status, body) = post(r, "/vuelos/reserva", &reserva_del_readme(&id)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["id"], id.as_str(), "the client-given id is kept");
    assert_eq!(body["estado"], "Pendiente");
    assert_eq!(
        body["itinerarios"][0]["odos"][0]["segmentos"][0]["legs"][0]["origen"]["codigo"],
        "gggg"
    );

    let deadline = tokio::time::Instant::now() + WAIT;
    let notificacion = loop {
        if let Some(n) = r.buzon.de(&id).into_iter().next() {
            break n;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no notification for {id}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        notificacion.lineas[1],
        format!(
            "Mensaje Recibido: 'id_reserva={id}, id_cliente=anonimo, estado=Pendiente, fecha_creacion=1756900800000'"
        )
    );
    assert_eq!(notificacion.lineas[3], "==== Envía correo a usuario ====");

    for path in [
        format!("/vuelos/reserva/{id}"),
        format!("/vuelos/reserva-query/{id}"),
    ] {
        let (status, found) = get(r, &path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(found, body, "{path} returns the stored reservation");
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(r.buzon.de(&id).len(), 1, "notified once");
}

/// Every route of the contract, and the state machine through HTTP.
async fn every_route(r: &Running) {
    // The loops report themselves up as they start: wait for it, bounded.
    let health = until_ok(r, "/health").await;
    assert_eq!(health["status"], "up", "{health}");
    let parts: Vec<&str> = health["parts"]
        .as_object()
        .expect("parts")
        .keys()
        .map(String::as_str)
        .collect();
    // SQLite's one writer is reported beside the rest; PostgreSQL has none.
    let sqlite = matches!(r.database, Database::Sqlite(_));
    let mut expected = vec![
        "broker",
        "consumer:aprobar",
        "consumer:cancelar",
        "consumer:commands",
        "consumer:gds",
        "consumer:gds:revertir",
        "consumer:notificaciones",
        "consumer:pagos",
        "consumer:pagos:revertir",
        "outbox",
        "projection:reservas-lista",
        "projection:reservas-totales",
        "relay",
        "store",
        "ui:forwarder",
    ];
    if sqlite {
        expected.push("writer");
        let writer = &health["parts"]["writer"];
        for figure in ["turns", "held_ms", "waited_ms"] {
            assert!(writer[figure].is_u64(), "{figure}: {health}");
        }
    }
    assert_eq!(parts, expected, "{health}");
    for (name, part) in health["parts"].as_object().unwrap() {
        assert_eq!(part["status"], "up", "{name}: {health}");
    }

    let (status, spec) = get(r, "/spec").await;
    assert_eq!(status, StatusCode::OK);
    assert!(spec["openapi"]
        .as_str()
        .is_some_and(|v| v.starts_with("3.")));
    for path in [
        "/health",
        "/spec",
        "/vuelos/reserva",
        "/vuelos/reserva-comando",
        "/vuelos/reserva-commando",
        "/vuelos/reserva/{id}",
        "/vuelos/reserva-query/{id}",
        "/vuelos/reserva/{id}/aprobar",
        "/vuelos/reserva/{id}/cancelar",
        "/vuelos/reserva/{id}/pagar",
        "/vuelos/reservas",
        "/vuelos/reservas/canceladas",
        "/vuelos/reservas/no-pagadas",
        "/clientes/{id}/reservas",
        "/notificaciones",
    ] {
        assert!(spec["paths"].get(path).is_some(), "/spec documents {path}");
    }

    let (pagada, cancelada) = (unique("pagada"), unique("cancelada"));
    for id in [&pagada, &cancelada] {
        let (status, _) = post(r, "/vuelos/reserva", &reserva_del_readme(id)).await;
        assert_eq!(status, StatusCode::OK);
    }
    let empty = json!({});
    assert_eq!(
        post(r, &format!("/vuelos/reserva/{pagada}/aprobar"), &empty).await,
        (StatusCode::ACCEPTED, json!({}))
    );
    assert_eq!(
        post(r, &format!("/vuelos/reserva/{pagada}/pagar"), &empty)
            .await
            .0,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        post(r, &format!("/vuelos/reserva/{cancelada}/cancelar"), &empty)
            .await
            .0,
        StatusCode::ACCEPTED
    );

    let ids = |list: &Value| -> Vec<String> {
        list.as_array()
            .expect("a list")
            .iter()
            .filter_map(|r| r["id"].as_str().map(str::to_string))
            .collect()
    };
    // The lists read the projections' read models, which trail the writes.
    projections_caught_up(&r.http, &r.api, WAIT).await;
    let (status, todas) = get(r, "/vuelos/reservas").await;
    assert_eq!(status, StatusCode::OK);
    assert!(ids(&todas).contains(&pagada) && ids(&todas).contains(&cancelada));
    let (_, canceladas) = get(r, "/vuelos/reservas/canceladas").await;
    assert!(ids(&canceladas).contains(&cancelada) && !ids(&canceladas).contains(&pagada));
    let (_, no_pagadas) = get(r, "/vuelos/reservas/no-pagadas").await;
    assert!(!ids(&no_pagadas).contains(&pagada) && !ids(&no_pagadas).contains(&cancelada));
    let (_, estado) = get(r, &format!("/vuelos/reserva-query/{pagada}")).await;
    assert_eq!(estado["estado"], "Pagada");

    let deadline = tokio::time::Instant::now() + WAIT;
    while r.buzon.de(&pagada).len() < 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "created, approved and paid are notified"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The record commits with the inbox entry; the sender ran inside that unit of work, so
    // the record is there by now or within a moment.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (status, record) = get(r, &format!("/notificaciones?id_reserva={pagada}")).await;
        assert_eq!(status, StatusCode::OK);
        let tipos: Vec<&str> = record
            .as_array()
            .expect("a list")
            .iter()
            .filter_map(|n| n["tipo"].as_str())
            .collect();
        if tipos == ["Creada", "Aprobada", "Pagada"] {
            let secuencias: Vec<u64> = record
                .as_array()
                .expect("a list")
                .iter()
                .filter_map(|n| n["secuencia"].as_u64())
                .collect();
            assert_eq!(secuencias, [1, 2, 3]);
            break;
        }
        assert!(
            tipos.len() < 3 && tokio::time::Instant::now() < deadline,
            "the record holds created, approved and paid, once each, in order: {record}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, _) = get(r, "/notificaciones").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "id_reserva is required");
}

/// `/spec` and the router are one declaration: every operation the document lists is served
/// by a handler (not the JSON 404 of the fallback, not a 405); every documented 4xx answer is
/// `{"error": …}`; an operation that takes a body or query parameters documents its 400, one
/// that names a reservation its 404. (That no route escapes the document is the crate's
/// `clippy.toml`: routes are registered only through `routes!`, which reads the handler's
/// `#[utoipa::path]`.)
async fn spec_covers_every_route(r: &Running) {
    let (status, spec) = get(r, "/spec").await;
    assert_eq!(status, StatusCode::OK);
    let paths = spec["paths"].as_object().expect("paths");
    // The contract's routes (original-system.md) and the ones this port adds, each documented.
    let routes = [
        ("get", "/health"),
        ("get", "/spec"),
        ("post", "/vuelos/reserva"),
        ("post", "/vuelos/reserva-comando"),
        ("post", "/vuelos/reserva-commando"),
        ("get", "/vuelos/reserva/{id}"),
        ("get", "/vuelos/reserva-query/{id}"),
        ("post", "/vuelos/reserva/{id}/aprobar"),
        ("post", "/vuelos/reserva/{id}/cancelar"),
        ("post", "/vuelos/reserva/{id}/pagar"),
        ("get", "/vuelos/reservas"),
        ("get", "/vuelos/reservas/canceladas"),
        ("get", "/vuelos/reservas/no-pagadas"),
        ("get", "/clientes/{id}/reservas"),
        ("get", "/notificaciones"),
        ("get", "/outbox/parked"),
        ("post", "/outbox/parked/{sequence}/redrive"),
        ("delete", "/outbox/parked/{sequence}"),
        ("get", "/sagas/{id}"),
        ("get", "/vuelos/reservas/totales"),
        ("get", "/proyecciones"),
        ("post", "/proyecciones/{nombre}/reconstruir"),
    ];
    for (method, path) in routes {
        assert!(
            paths.get(path).and_then(|item| item.get(method)).is_some(),
            "{method} {path} is served but not in /spec"
        );
    }
    assert_eq!(
        paths
            .values()
            .map(|item| item.as_object().map_or(0, |o| o.len()))
            .sum::<usize>(),
        routes.len(),
        "no undocumented extras: {paths:?}"
    );
    let missing = unique("missing");
    for (path, item) in paths {
        let concrete = path.replace("{id}", &missing);
        for (method, operation) in item.as_object().expect("a path item") {
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes())
                .expect("an HTTP method");
            let response = r
                .http
                .request(method.clone(), format!("{}{concrete}", r.api))
                .json(&json!({}))
                .send()
                .await
                .expect("request");
            let status = response.status();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            assert_ne!(
                status,
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path} is documented but not routed"
            );
            assert_ne!(
                body["error"], "no such route",
                "{method} {path} is documented but not routed"
            );

            let responses = operation["responses"].as_object().expect("responses");
            for (code, response) in responses.iter().filter(|(code, _)| code.starts_with('4')) {
                assert_eq!(
                    response["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/ErrorBody",
                    "{method} {path}: the {code} answer is documented as {{\"error\": …}}"
                );
            }
            let takes_input = operation.get("requestBody").is_some()
                || operation["parameters"]
                    .as_array()
                    .is_some_and(|p| p.iter().any(|p| p["in"] == "query"));
            if takes_input {
                assert!(
                    responses.contains_key("400"),
                    "{method} {path} takes input but documents no 400"
                );
            }
            if path.contains("/reserva/{id}") || path.contains("/reserva-query/{id}") {
                assert!(
                    responses.contains_key("404"),
                    "{method} {path} names a reservation but documents no 404"
                );
            }
        }
    }
    assert!(
        spec["components"]["schemas"]["ErrorBody"]["required"]
            .as_array()
            .is_some_and(|r| r.contains(&json!("error"))),
        "the error schema is documented"
    );
}

/// GETs `path`; the status, the body and the `x-next-cursor` header.
async fn get_page(r: &Running, path: &str) -> (StatusCode, Value, Option<String>) {
    let response = r
        .http
        .get(format!("{}{path}", r.api))
        .send()
        .await
        .expect("request");
    let status = response.status();
    let next = response
        .headers()
        .get("x-next-cursor")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    (status, response.json().await.unwrap_or(Value::Null), next)
}

/// Follows `x-next-cursor` from the first page of `path` with `limit`; the pages' items.
async fn every_page(r: &Running, path: &str, limit: usize) -> Vec<Vec<Value>> {
    let mut pages = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let cursor = after
            .as_ref()
            .map(|a| format!("&after={a}"))
            .unwrap_or_default();
        let (status, body, next) = get_page(r, &format!("{path}?limit={limit}{cursor}")).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        let items = body.as_array().expect("a bare JSON list").clone();
        assert!(items.len() <= limit, "{path}: a page holds at most {limit}");
        pages.push(items);
        match next {
            Some(next) => after = Some(next),
            None => return pages,
        }
        assert!(pages.len() <= 100, "{path}: the cursor never ends");
    }
}

/// The list routes page: `limit` bounds a page, `x-next-cursor` leads to the next one, and
/// following it visits every item once; a bad `limit` is 400, never a clamp or a 500.
async fn pagination(r: &Running) {
    let cliente = unique("paginado");
    // Ids in a known order, the cancelled ones last: a filtered page must read past the
    // reservations it filters out.
    let base = unique("pag");
    let mut creadas = Vec::new();
    for i in 0..7 {
        let id = format!("{base}-{i}");
        let mut body = reserva_del_readme(&id);
        body["id_cliente"] = json!(cliente);
        assert_eq!(post(r, "/vuelos/reserva", &body).await.0, StatusCode::OK);
        creadas.push(id);
    }
    for id in &creadas[5..] {
        let path = format!("/vuelos/reserva/{id}/cancelar");
        assert_eq!(post(r, &path, &json!({})).await.0, StatusCode::ACCEPTED);
    }
    let ids = |pages: &[Vec<Value>]| -> Vec<String> {
        pages
            .iter()
            .flatten()
            .map(|r| r["id"].as_str().unwrap_or_default().to_string())
            .collect()
    };

    projections_caught_up(&r.http, &r.api, WAIT).await;
    let (status, first, next) = get_page(r, "/vuelos/reservas?limit=3").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(first.as_array().map(Vec::len), Some(3), "{first}");
    assert!(next.is_some(), "a next cursor after a full page");

    let todas = every_page(r, "/vuelos/reservas", 3).await;
    assert_eq!(
        todas.iter().map(Vec::len).collect::<Vec<_>>(),
        [3, 3, 1],
        "7 reservations in pages of 3"
    );
    let mut esperadas = creadas.clone();
    esperadas.sort();
    assert_eq!(
        ids(&todas),
        esperadas,
        "every reservation once, in id order"
    );
    assert_eq!(ids(&every_page(r, "/vuelos/reservas", 7).await), esperadas);
    assert_eq!(
        ids(&every_page(r, "/vuelos/reservas", 500).await),
        esperadas
    );

    let pages = every_page(r, "/vuelos/reservas/canceladas", 1).await;
    assert_eq!(ids(&pages), creadas[5..]);
    assert_eq!(
        ids(&every_page(r, "/vuelos/reservas/no-pagadas", 2).await),
        creadas[..5]
    );
    let (_, default, next) = get_page(r, "/vuelos/reservas").await;
    assert_eq!(
        default.as_array().map(Vec::len),
        Some(7),
        "default limit 50"
    );
    assert_eq!(next, None, "no next page");

    let del_cliente = every_page(r, &format!("/clientes/{cliente}/reservas"), 3).await;
    assert_eq!(
        del_cliente.iter().map(Vec::len).collect::<Vec<_>>(),
        [3, 3, 1]
    );
    let del_cliente: Vec<String> = del_cliente
        .iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    assert_eq!(
        del_cliente, creadas,
        "the client's reservations once, oldest first"
    );

    for path in [
        "/vuelos/reservas",
        "/vuelos/reservas/canceladas",
        "/vuelos/reservas/no-pagadas",
        &format!("/clientes/{cliente}/reservas"),
    ] {
        for limit in [
            "501",
            "0",
            "-1",
            "abc",
            "1.5",
            "99999999999999999999999",
            "",
        ] {
            let (status, error, _) = get_page(r, &format!("{path}?limit={limit}")).await;
            assert_eq!(
                status,
                StatusCode::BAD_REQUEST,
                "{path}?limit={limit}: {error}"
            );
            assert!(
                error["error"].as_str().is_some_and(|e| !e.is_empty()),
                "{path}?limit={limit}: {error}"
            );
        }
    }
    let (status, error, _) = get_page(
        r,
        &format!("/clientes/{cliente}/reservas?after={}", unique("ajena")),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a foreign cursor: {error}");

    let (_, spec) = get(r, "/spec").await;
    for path in [
        "/vuelos/reservas",
        "/vuelos/reservas/canceladas",
        "/vuelos/reservas/no-pagadas",
        "/clientes/{id}/reservas",
    ] {
        let operation = &spec["paths"][path]["get"];
        let params: Vec<&str> = operation["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["in"] == "query")
            .filter_map(|p| p["name"].as_str())
            .collect();
        assert_eq!(params, ["limit", "after"], "{path} documents its query");
        assert!(
            operation["responses"]["200"]["headers"]
                .get("x-next-cursor")
                .is_some(),
            "{path} documents x-next-cursor"
        );
    }
}

/// Bad input is a 4xx with `{"error": …}` naming the problem; never a 500.
async fn bad_input(r: &Running) {
    let mut same_airport = reserva_del_readme(&unique("r"));
    same_airport["itinerarios"][0]["odos"][0]["segmentos"][0]["legs"][0]["destino"]["codigo"] =
        json!("gggg");
    let mut bad_date = reserva_del_readme(&unique("r"));
    bad_date["itinerarios"][0]["odos"][0]["segmentos"][0]["legs"][0]["fecha_salida"] =
        json!("ayer");
    let mut no_itinerary = reserva_del_readme(&unique("r"));
    no_itinerary["itinerarios"] = json!([]);
    let mut missing_field = reserva_del_readme(&unique("r"));
    missing_field["itinerarios"][0]["odos"][0]["segmentos"][0]["legs"][0]
        .as_object_mut()
        .expect("leg")
        .remove("origen");
    let cases: Vec<(&str, Value, StatusCode, &str)> = vec![
        (
            "origin = destination",
            same_airport,
            StatusCode::BAD_REQUEST,
            "origen y el destino",
        ),
        (
            "bad date",
            bad_date,
            StatusCode::BAD_REQUEST,
            "fecha_salida",
        ),
        (
            "empty itinerary list",
            no_itinerary,
            StatusCode::BAD_REQUEST,
            "al menos un itinerario",
        ),
        (
            "missing field",
            missing_field,
            StatusCode::UNPROCESSABLE_ENTITY,
            "origen",
        ),
        (
            "wrong type",
            json!({"itinerarios": "many"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "itinerarios",
        ),
    ];
    for path in ["/vuelos/reserva", "/vuelos/reserva-comando"] {
        for (case, body, status, mentions) in &cases {
            let (got, error) = post(r, path, body).await;
            assert_eq!(got, *status, "{path}, {case}: {error}");
            let message = error["error"].as_str().unwrap_or_default();
            assert!(
                message.contains(mentions),
                "{path}, {case}: {message:?} should mention {mentions:?}"
            );
        }
    }

    let send_raw = |body: &'static str, content_type: &'static str| {
        r.http
            .post(format!("{}/vuelos/reserva", r.api))
            .header("content-type", content_type)
            .body(body)
    };
    let malformed = send_raw("{\"id\": ", "application/json")
        .send()
        .await
        .expect("request");
    assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);
    assert!(malformed.json::<Value>().await.expect("json")["error"].is_string());
    let not_json = send_raw("id=1", "text/plain")
        .send()
        .await
        .expect("request");
    assert_eq!(not_json.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(not_json.json::<Value>().await.expect("json")["error"].is_string());

    let huge = "x".repeat(alpespartners::api::BODY_LIMIT + 1);
    let too_big = r
        .http
        .post(format!("{}/vuelos/reserva", r.api))
        .json(&json!({"id": huge, "itinerarios": []}))
        .send()
        .await
        .expect("request");
    assert_eq!(too_big.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(too_big.json::<Value>().await.expect("json")["error"].is_string());

    let missing = unique("missing");
    for path in [
        format!("/vuelos/reserva/{missing}"),
        format!("/vuelos/reserva-query/{missing}"),
    ] {
        let (status, error) = get(r, &path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert!(error["error"]
            .as_str()
            .unwrap_or_default()
            .contains(&missing));
    }
    let (status, _) = post(r, &format!("/vuelos/reserva/{missing}/aprobar"), &json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, error) = get(r, "/no/such/route").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(error["error"].is_string());

    let id = unique("dup");
    assert_eq!(
        post(r, "/vuelos/reserva", &reserva_del_readme(&id)).await.0,
        StatusCode::OK
    );
    let (status, error) = post(r, "/vuelos/reserva", &reserva_del_readme(&id)).await;
    assert_eq!(status, StatusCode::CONFLICT, "a taken id: {error}");
    let (status, error) = post(r, &format!("/vuelos/reserva/{id}/pagar"), &json!({})).await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "paying a pending reservation: {error}"
    );
    assert!(error["error"]
        .as_str()
        .unwrap_or_default()
        .contains("Pendiente"));
    let (status, _) = post(r, &format!("/vuelos/reserva/{id}/cancelar"), &json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, _) = post(r, &format!("/vuelos/reserva/{id}/pagar"), &json!({})).await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "a cancelled reservation cannot be paid"
    );
}

/// Text no backend can store (a NUL character), ids that cannot be ids and bytes that are not
/// UTF-8 are refused at the edge with 400 naming the field and the reason, on every backend;
/// other Unicode is stored and found again.
async fn unstorable_input(r: &Running) {
    let nombre = "/itinerarios/0/odos/0/segmentos/0/legs/0/origen/nombre";
    let codigo = "/itinerarios/0/odos/0/segmentos/0/legs/0/destino/codigo";
    let cases: Vec<(&str, &str, Value, &str)> = vec![
        (
            "NUL in a name",
            nombre,
            json!("El\u{0}Dorado"),
            "invalid itinerarios[0].odos[0].segmentos[0].legs[0].origen.nombre: contains the NUL \
             character (U+0000) at byte 2, which cannot be stored",
        ),
        (
            "NUL in the id",
            "/id",
            json!("r-\u{0}"),
            "invalid id: contains the control character U+0000 at byte 2; an id cannot hold \
             control characters",
        ),
        (
            "control character in the client",
            "/id_cliente",
            json!("c\u{1b}[31m"),
            "invalid id_cliente: contains the control character U+001B at byte 1",
        ),
        (
            "NUL in an airport code",
            codigo,
            json!("JF\u{0}K"),
            "invalid codigo: an airport code cannot hold control characters (found U+0000)",
        ),
        (
            "an overlong id",
            "/id",
            json!("r".repeat(129)),
            "invalid id: an id has at most 128 characters",
        ),
    ];
    for path in ["/vuelos/reserva", "/vuelos/reserva-comando"] {
        for (case, pointer, value, message) in &cases {
            let mut body = reserva_del_readme(&unique("nul"));
            body["id_cliente"] = json!(unique("cliente"));
            if let Some(slot) = body.pointer_mut(pointer) {
                *slot = value.clone();
            }
            let (status, error) = post(r, path, &body).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{path}, {case}: {error}");
            let got = error["error"].as_str().unwrap_or_default();
            assert!(got.starts_with(message), "{path}, {case}: {got:?}");
        }
    }

    let raw = |text: String| {
        r.http
            .post(format!("{}/vuelos/reserva", r.api))
            .header("content-type", "application/json")
            .body(text)
    };
    let body = reserva_del_readme(&unique("s")).to_string();
    for escape in [r#"\u0000"#, r#"\ud800"#] {
        let text = body.replacen("El Dorado", &format!("El{escape}Dorado"), 1);
        let response = raw(text).send().await.expect("request");
        let status = response.status();
        let error: Value = response.json().await.expect("json");
        assert_eq!(status, StatusCode::BAD_REQUEST, "{escape}: {error}");
        assert!(error["error"].is_string(), "{escape}: {error}");
    }

    for (path, mentions) in [
        ("/vuelos/reserva/a%00b", "U+0000"),
        ("/vuelos/reserva-query/%00", "U+0000"),
        ("/vuelos/reserva/%ff", "UTF-8"),
        ("/vuelos/reserva/%20", "blank"),
        ("/clientes/%00/reservas", "U+0000"),
        ("/clientes/%ff%fe/reservas", "UTF-8"),
        ("/vuelos/reservas?after=%00", "invalid after"),
        ("/clientes/anonimo/reservas?after=x%00", "invalid after"),
    ] {
        let (status, error) = get(r, path).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {error}");
        let got = error["error"].as_str().unwrap_or_default();
        assert!(
            got.contains(mentions),
            "{path}: {got:?} should mention {mentions:?}"
        );
    }
    for action in ["aprobar", "cancelar", "pagar"] {
        let (status, error) = post(r, &format!("/vuelos/reserva/x%00/{action}"), &json!({})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{action}: {error}");
    }

    // Unicode that is not a control character is an id like any other.
    let id = unique("reserva-ñ-✈-\u{202e}-\u{1F600}");
    let mut body = reserva_del_readme(&id);
    body["id_cliente"] = json!("cliente ñ ✈");
    let (status, stored) = post(r, "/vuelos/reserva", &body).await;
    assert_eq!(status, StatusCode::OK, "{stored}");
    let encoded: String = id
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'-' {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    let (status, found) = get(r, &format!("/vuelos/reserva/{encoded}")).await;
    assert_eq!((status, &found["id"]), (StatusCode::OK, &json!(id)));
    let (status, del_cliente) = get(r, "/clientes/cliente%20%C3%B1%20%E2%9C%88/reservas").await;
    assert_eq!((status, del_cliente), (StatusCode::OK, json!([id])));
}

/// The command endpoint answers 202 at once; the command goes through the broker, the consumer
/// creates the reservation, and its event reaches the websocket. Both spellings work.
async fn asynchronous_command(r: &Running) {
    let mut socket = connect(r).await;
    for path in ["/vuelos/reserva-comando", "/vuelos/reserva-commando"] {
        let id = unique("async");
        let response = r
            .http
            .post(format!("{}{path}", r.api))
            .json(&reserva_del_readme(&id))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), StatusCode::ACCEPTED, "{path}");
        let location = response
            .headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
            .map(str::to_string)
            .expect("a Location header");
        assert_eq!(location, format!("/vuelos/reserva-query/{id}"));
        assert_eq!(response.json::<Value>().await.expect("json"), json!({}));
        let stored = until_ok(r, &location).await;
        assert_eq!(stored["id"], id.as_str());
        let event = ws_until(&mut socket, is_event("EventoReservaCreada", id.clone())).await;
        assert_eq!(event["service_name"], "alpespartners");
    }

    let generated = r
        .http
        .post(format!("{}/vuelos/reserva-comando", r.api))
        .json(&json!({"itinerarios": reserva_del_readme("x")["itinerarios"]}))
        .send()
        .await
        .expect("request");
    assert_eq!(generated.status(), StatusCode::ACCEPTED);
    let location = generated.headers()["location"]
        .to_str()
        .expect("ascii")
        .to_string();
    let stored = until_ok(r, &location).await;
    assert!(
        stored["id"].as_str().is_some_and(|id| !id.is_empty()),
        "an id was generated"
    );
}

/// A command the domain refuses (its reservation id is taken) is rejected to the command
/// subscription's dead-letter topic at once, with the reason, and has no effect.
async fn refused_command_is_dead_lettered(r: &Running) {
    let id = unique("taken");
    let (status, _) = post(r, "/vuelos/reserva", &reserva_del_readme(&id)).await;
    assert_eq!(status, StatusCode::OK);
    let mut again = reserva_del_readme(&id);
    again["itinerarios"][0]["odos"][0]["segmentos"][0]["legs"][0]["destino"]["codigo"] =
        json!("OTRO");
    let (status, _) = post(r, "/vuelos/reserva-comando", &again).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let broker = r.system.embedded.as_ref().expect("the embedded broker");
    let dead_letters = "comandos-reserva-aeroalpes-sub-comandos-DLQ";
    let deadline = tokio::time::Instant::now() + WAIT;
    let dead = loop {
        let found = broker
            .published(dead_letters)
            .into_iter()
            .find(|m| m.key.as_deref() == Some(id.as_str()));
        if let Some(dead) = found {
            break dead;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the refused command was not dead-lettered"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let reason = &dead.properties[seedwork::messaging::dead_letter::REASON];
    assert!(reason.contains("already taken"), "{reason}");
    assert_eq!(
        dead.properties[seedwork::messaging::dead_letter::DELIVERIES],
        "1"
    );
    let (_, stored) = get(r, &format!("/vuelos/reserva/{id}")).await;
    assert_eq!(
        stored["itinerarios"][0]["odos"][0]["segmentos"][0]["legs"][0]["destino"]["codigo"],
        "sasads",
        "the refused command changed nothing"
    );
}

/// The page's form: a websocket message becomes a command through the broker, and the
/// resulting event comes back on the same socket. A foreign origin is refused.
async fn ui_round_trip(r: &Running) {
    let page = r.http.get(&r.ui).send().await.expect("page");
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.expect("html");
    assert!(
        html.contains("Reservar") && html.contains("/ws"),
        "the page has the form"
    );

    let mut socket = connect(r).await;
    socket
        .send(WsMessage::Text(
            json!({"origen": "BOG", "destino": "JFK"})
                .to_string()
                .into(),
        ))
        .await
        .expect("send");
    let accepted = ws_until(&mut socket, |v| v["tipo"] == "aceptado").await;
    let id = accepted["id_reserva"].as_str().expect("an id").to_string();
    ws_until(&mut socket, is_event("EventoReservaCreada", id.clone())).await;
    let (status, stored) = get(r, &format!("/vuelos/reserva-query/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(stored["id_cliente"], "cliente-web");

    socket
        .send(WsMessage::Text(
            json!({"origen": "BOG", "destino": "BOG"})
                .to_string()
                .into(),
        ))
        .await
        .expect("send");
    let refused = ws_until(&mut socket, |v| v["tipo"] == "error").await;
    assert!(refused["error"]
        .as_str()
        .unwrap_or_default()
        .contains("origen y el destino"));
    socket
        .send(WsMessage::Text("not json".into()))
        .await
        .expect("send");
    ws_until(&mut socket, |v| v["tipo"] == "error").await;

    let mut request = r.ws.as_str().into_client_request().expect("request");
    request
        .headers_mut()
        .insert("origin", "http://evil.example".parse().expect("header"));
    let refused = tokio_tungstenite::connect_async(request).await;
    assert!(refused.is_err(), "a foreign origin is refused");
}

/// The cliente module records the reservation in the same transaction: visible as soon as the
/// synchronous create answers.
async fn cliente_reaction(r: &Running) {
    let cliente = unique("cliente");
    let mut first = reserva_del_readme(&unique("r"));
    first["id_cliente"] = json!(cliente);
    let mut second = reserva_del_readme(&unique("r"));
    second["id_cliente"] = json!(cliente);
    for body in [&first, &second] {
        assert_eq!(post(r, "/vuelos/reserva", body).await.0, StatusCode::OK);
    }
    let (status, reservas) = get(r, &format!("/clientes/{cliente}/reservas")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(reservas, json!([first["id"], second["id"]]));
    let (_, none) = get(r, &format!("/clientes/{}/reservas", unique("nadie"))).await;
    assert_eq!(none, json!([]));
}

/// The correlation id of the HTTP request travels with the command through the broker, into
/// the consumer's unit of work and onto the event it publishes.
async fn correlation_id_flows_to_the_events(r: &Running) {
    let id = unique("corr");
    let correlation = unique("request");
    let response = r
        .http
        .post(format!("{}/vuelos/reserva-comando", r.api))
        .header("x-correlation-id", &correlation)
        .json(&reserva_del_readme(&id))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let published = r
            .system
            .embedded
            .as_ref()
            .expect("the embedded broker")
            .published("eventos-reserva");
        if let Some(event) = published
            .iter()
            .find(|m| m.key.as_deref() == Some(id.as_str()))
        {
            assert_eq!(event.correlation_id(), Some(correlation.as_str()));
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no event for {id}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let command = r
        .system
        .embedded
        .as_ref()
        .expect("the embedded broker")
        .published("comandos-reserva")
        .into_iter()
        .find(|m| m.key.as_deref() == Some(id.as_str()))
        .expect("the command went through the broker");
    assert_eq!(command.correlation_id(), Some(correlation.as_str()));
}

/// The reservations created on `dia` (`YYYY-MM-DD`), as `GET /vuelos/reservas/totales` counts
/// them (0 for a day it does not list).
async fn total_del_dia(r: &Running, dia: &str) -> u64 {
    let pages = every_page(r, "/vuelos/reservas/totales", 500).await;
    pages
        .iter()
        .flatten()
        .find(|fila| fila["fecha"] == dia)
        .and_then(|fila| fila["total"].as_u64())
        .unwrap_or(0)
}

/// Waits for the projections, then checks that `dia` counts `total` and that the list holds
/// this test's reservations `{base}-0…2` once each, the last one cancelled.
async fn las_proyecciones_dicen(r: &Running, base: &str, dia: &str, total: u64) {
    projections_caught_up(&r.http, &r.api, WAIT).await;
    assert_eq!(total_del_dia(r, dia).await, total);
    let lista = every_page(r, "/vuelos/reservas", 500).await;
    let nuestras: Vec<(String, String)> = lista
        .iter()
        .flatten()
        .filter(|fila| fila["id"].as_str().is_some_and(|id| id.starts_with(base)))
        .map(|fila| {
            let campo = |k: &str| fila[k].as_str().unwrap_or_default().to_string();
            (campo("id"), campo("estado"))
        })
        .collect();
    let esperadas: Vec<(String, String)> = ["Pendiente", "Pendiente", "Cancelada"]
        .iter()
        .enumerate()
        .map(|(i, estado)| (format!("{base}-{i}"), estado.to_string()))
        .collect();
    assert_eq!(nuestras, esperadas);
}

/// Tutorial 7's projections over HTTP: the daily totals count each created reservation once,
/// the list follows its changes of state, and a rebuild replays both to the same read model.
async fn projections(r: &Running) {
    // A day of its own, so that the count is this test's on a shared database too.
    let n = uuid::Uuid::new_v4().as_u128() % 36_500;
    let dia = (chrono::NaiveDate::from_ymd_opt(1900, 1, 1).expect("a date")
        + chrono::Days::new(u64::try_from(n).expect("small")))
    .to_string();
    projections_caught_up(&r.http, &r.api, WAIT).await;
    let antes = total_del_dia(r, &dia).await;
    let base = unique("proy");
    for i in 0..3 {
        let mut body = reserva_del_readme(&format!("{base}-{i}"));
        body["fecha_creacion"] = json!(format!("{dia}T10:00:00Z"));
        assert_eq!(post(r, "/vuelos/reserva", &body).await.0, StatusCode::OK);
    }
    let cancelada = format!("{base}-2");
    let path = format!("/vuelos/reserva/{cancelada}/cancelar");
    assert_eq!(post(r, &path, &json!({})).await.0, StatusCode::ACCEPTED);

    let (status, estado) = get(r, "/proyecciones").await;
    assert_eq!(status, StatusCode::OK);
    let nombres: Vec<&str> = estado
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|p| p["nombre"].as_str())
        .collect();
    assert_eq!(nombres, ["reservas-lista", "reservas-totales"]);

    las_proyecciones_dicen(r, &base, &dia, antes + 3).await;

    let (_, estado) = get(r, "/proyecciones").await;
    for proyeccion in estado.as_array().expect("a list") {
        let nombre = proyeccion["nombre"].as_str().expect("a name");
        let antes = proyeccion["posicion"].as_u64().expect("a position");
        let path = format!("/proyecciones/{nombre}/reconstruir");
        let (status, body) = post(r, &path, &json!({})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["nombre"], nombre);
        assert!(body["eventos"].is_u64(), "{body}");
        assert!(
            body["posicion"].as_u64().is_some_and(|p| p >= antes),
            "replayed back to where it was ({antes}): {body}"
        );
    }
    las_proyecciones_dicen(r, &base, &dia, antes + 3).await;

    let (status, body) = post(r, "/proyecciones/otra/reconstruir", &json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        body["error"].as_str().is_some_and(|e| e.contains("otra")),
        "{body}"
    );
}

macro_rules! scenarios {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let (running, _dir) = sqlite().await;
                    super::$name(&running).await;
                    running.system.shutdown().await;
                }
            )*
        }
        mod on_postgres {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[ignore = "needs PostgreSQL: scripts/services up"]
                async fn $name() {
                    let (running, _guard) = postgres().await;
                    super::$name(&running).await;
                    running.system.shutdown().await;
                }
            )*
        }
    };
}

/// The scenarios that go through the broker, on the default one: the durable transport in the
/// store's SQLite file.
mod on_sqlite_transport {
    use super::*;

    macro_rules! on_transport {
        ($($name:ident),* $(,)?) => {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let (running, _dir) = sqlite_transport().await;
                    assert!(running.system.embedded.is_none(), "not the in-memory broker");
                    super::$name(&running).await;
                    running.system.shutdown().await;
                }
            )*
        };
    }

    on_transport!(
        readme_flow,
        asynchronous_command,
        ui_round_trip,
        cliente_reaction
    );
}

scenarios!(
    readme_flow,
    every_route,
    spec_covers_every_route,
    pagination,
    bad_input,
    unstorable_input,
    asynchronous_command,
    refused_command_is_dead_lettered,
    ui_round_trip,
    cliente_reaction,
    correlation_id_flows_to_the_events,
    projections,
);
