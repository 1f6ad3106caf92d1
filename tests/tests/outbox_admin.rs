//! The operators' outbox routes on the reference API: a message the broker refuses for good
//! is parked by the relay, listed with its error, re-driven, parked again and discarded.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::Value;
use tower::ServiceExt;

use alpespartners::api::health::HealthCheck;
use alpespartners::api::router_with_health;
use seedwork::application::Bus;
use seedwork::memory::MemoryStore;
use seedwork::messaging::{Message, OutboxRelay, OutboxStore, Publisher};
use seedwork::supervision::Health;
use seedwork::testing::contract::store::AccountChanged;

/// A broker that refuses every message for good (as a schema it does not fit would).
struct Refusing;

#[seedwork::async_trait]
impl Publisher for Refusing {
    async fn publish(&self, _message: &Message) -> seedwork::Result<()> {
        Err(seedwork::Error::broker(
            "the topic's schema refuses this payload",
        ))
    }
}

async fn call(router: &axum::Router, method: &str, uri: &str) -> (StatusCode, Value) {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .body(Body::empty())
        .expect("a request");
    let response = router.clone().oneshot(request).await.expect("an answer");
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("a body");
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).expect("a JSON body")
    };
    (status, body)
}

async fn park_one(store: &MemoryStore, bus: &Bus) {
    let mut uow = bus.unit_of_work().await.unwrap();
    uow.enqueue(&AccountChanged {
        account_id: "a-1".into(),
        change: "opened".into(),
        amount: 0,
    })
    .unwrap();
    uow.commit().await.unwrap();
    let relay = OutboxRelay::new(Arc::new(store.clone()), Arc::new(Refusing)).max_attempts(1);
    let round = relay.run_once().await.unwrap();
    assert_eq!(round.parked, 1, "{round:?}");
}

#[tokio::test]
async fn a_parked_message_is_listed_re_driven_and_discarded_over_http() {
    let store = MemoryStore::new();
    let bus = Bus::builder()
        .store(Arc::new(store.clone()))
        .build()
        .unwrap();
    let outbox: Arc<dyn OutboxStore> = Arc::new(store.clone());
    let router = router_with_health(
        bus.clone(),
        HealthCheck::new(Health::new()).outbox(Arc::clone(&outbox)),
    );
    park_one(&store, &bus).await;

    let (status, listed) = call(&router, "GET", "/outbox/parked").await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    let entries = listed.as_array().expect("a list");
    assert_eq!(entries.len(), 1, "{listed}");
    let entry = &entries[0];
    assert_eq!(entry["topic"], "contract-accounts");
    assert_eq!(entry["attempts"], 1);
    assert!(
        entry["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("schema refuses")),
        "{entry}"
    );
    assert_eq!(entry["envelope"]["type"], "AccountChanged", "{entry}");
    let sequence = entry["sequence"].as_u64().expect("a sequence");

    for (method, uri) in [
        ("GET", "/outbox/parked?limit=0".to_string()),
        ("GET", "/outbox/parked?limit=abc".to_string()),
        ("POST", "/outbox/parked/abc/redrive".to_string()),
        ("DELETE", "/outbox/parked/%ff".to_string()),
    ] {
        let (status, body) = call(&router, method, &uri).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{method} {uri}: {body}");
        assert!(body["error"].is_string(), "{method} {uri}: {body}");
    }
    let (status, _) = call(&router, "POST", "/outbox/parked/999999/redrive").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let redrive = format!("/outbox/parked/{sequence}/redrive");
    let (status, _) = call(&router, "POST", &redrive).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        call(&router, "GET", "/outbox/parked").await.1,
        Value::Array(vec![])
    );
    let lag = outbox.lag().await.unwrap();
    assert_eq!((lag.pending, lag.parked), (1, 0), "back in line");

    let relay = OutboxRelay::new(Arc::clone(&outbox), Arc::new(Refusing)).max_attempts(1);
    assert_eq!(relay.run_once().await.unwrap().parked, 1, "parked again");
    let discard = format!("/outbox/parked/{sequence}");
    let (status, _) = call(&router, "DELETE", &discard).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = call(&router, "DELETE", &discard).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "discarded for good");
    let lag = outbox.lag().await.unwrap();
    assert_eq!((lag.pending, lag.parked), (0, 0));
}

#[tokio::test]
async fn without_an_outbox_the_routes_say_so() {
    let store = MemoryStore::new();
    let bus = Bus::builder().store(Arc::new(store)).build().unwrap();
    let router = alpespartners::api::router(bus);
    let (status, body) = call(&router, "GET", "/outbox/parked").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error"], "this process has no outbox");
}
