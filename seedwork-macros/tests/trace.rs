//! Correlation and causation ids travel by themselves: what handling a message writes carries
//! the message's correlation id (its own id when it had none) and, as causation, its id — one
//! message at a time and in a consumer's batch.

use std::sync::Arc;

use seedwork::memory::MemoryStore;
use seedwork::messaging::{Message, CORRELATION_ID};
use seedwork::prelude::*;
use serde::{Deserialize, Serialize};

/// Step 1 of a conversation: asks for a payment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, IntegrationCommand)]
#[integration(topic = "trace-pagar", key = id)]
struct PagarReserva {
    id: String,
}

/// Step 2: the payment happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, IntegrationEvent)]
#[integration(topic = "trace-pagos", key = id)]
struct PagoRealizado {
    id: String,
}

/// Step 3: asks for a confirmation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, IntegrationCommand)]
#[integration(topic = "trace-confirmar", key = id)]
struct ConfirmarReserva {
    id: String,
}

#[seedwork::message_handler]
async fn pagar(m: Envelope<PagarReserva>, uow: &mut UnitOfWork) -> Result<()> {
    uow.enqueue(&PagoRealizado { id: m.data.id })
}

#[seedwork::message_handler]
async fn confirmar(m: Envelope<PagoRealizado>, uow: &mut UnitOfWork) -> Result<()> {
    uow.enqueue(&ConfirmarReserva { id: m.data.id })
}

fn bus(store: &MemoryStore) -> Bus {
    Bus::builder()
        .store(Arc::new(store.clone()))
        .registered()
        .build()
        .expect("builds")
}

/// The messages of `topic` in the store's outbox.
fn written(store: &MemoryStore, topic: &str) -> Vec<Message> {
    store
        .outbox_snapshot()
        .into_iter()
        .map(|entry| entry.message)
        .filter(|m| m.topic == topic)
        .collect()
}

#[tokio::test]
async fn a_chain_of_messages_keeps_its_correlation_and_names_each_cause() {
    let store = MemoryStore::new();
    let bus = bus(&store);
    // The first message carries no correlation id: the conversation starts with it.
    let first = Message::encode(&PagarReserva { id: "r-1".into() }, "api").unwrap();
    assert_eq!(first.correlation_id(), None);
    bus.handle_message("pagos", &first).await.unwrap();
    let [pago] = <[Message; 1]>::try_from(written(&store, "trace-pagos")).unwrap();
    assert_eq!(pago.correlation_id(), Some(first.id()));
    assert_eq!(pago.causation_id(), Some(first.id()));

    bus.handle_message("gds", &pago).await.unwrap();
    let [confirmar] = <[Message; 1]>::try_from(written(&store, "trace-confirmar")).unwrap();
    assert_eq!(
        confirmar.correlation_id(),
        Some(first.id()),
        "the same conversation"
    );
    assert_eq!(
        confirmar.causation_id(),
        Some(pago.id()),
        "caused by the payment"
    );
}

#[tokio::test]
async fn a_given_correlation_is_kept_and_each_message_of_a_batch_has_its_own() {
    let store = MemoryStore::new();
    let bus = bus(&store);
    let a = Message::encode(&PagarReserva { id: "a".into() }, "api")
        .unwrap()
        .with_property(CORRELATION_ID, "peticion-a");
    let b = Message::encode(&PagarReserva { id: "b".into() }, "api").unwrap();
    bus.handle_messages("pagos", &[&a, &b]).await.unwrap();
    let pagos = written(&store, "trace-pagos");
    let of = |id: &str| {
        pagos
            .iter()
            .find(|m| m.key.as_deref() == Some(id))
            .unwrap_or_else(|| panic!("no payment for {id}: {pagos:?}"))
    };
    assert_eq!(of("a").correlation_id(), Some("peticion-a"));
    assert_eq!(of("a").causation_id(), Some(a.id()));
    assert_eq!(of("b").correlation_id(), Some(b.id()));
    assert_eq!(of("b").causation_id(), Some(b.id()));
}

#[tokio::test]
async fn baggage_travels_down_the_chain_and_stays_with_its_own_message_in_a_batch() {
    let store = MemoryStore::new();
    let bus = bus(&store);
    let a = Message::encode(&PagarReserva { id: "a".into() }, "api")
        .unwrap()
        .with_property("baggage-demo-falla", "pago");
    let b = Message::encode(&PagarReserva { id: "b".into() }, "api").unwrap();
    bus.handle_messages("pagos", &[&a, &b]).await.unwrap();
    let pagos = written(&store, "trace-pagos");
    let of = |id: &str| {
        pagos
            .iter()
            .find(|m| m.key.as_deref() == Some(id))
            .unwrap()
            .clone()
    };
    let baggage = |m: &Message| -> Vec<(String, String)> {
        m.baggage()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    assert_eq!(
        baggage(&of("a")),
        [("demo-falla".to_string(), "pago".to_string())]
    );
    assert!(
        baggage(&of("b")).is_empty(),
        "b's handling carries none of a's baggage"
    );
    // One more hop: still there.
    bus.handle_message("gds", &of("a")).await.unwrap();
    let confirmar = written(&store, "trace-confirmar");
    assert_eq!(
        baggage(&confirmar[0]),
        [("demo-falla".to_string(), "pago".to_string())]
    );
}

#[tokio::test]
async fn a_command_dispatched_with_a_context_hands_its_baggage_to_what_it_sends() {
    use seedwork::application::Context;

    #[derive(Debug, Command)]
    #[command(output = ())]
    struct Solicitar;

    #[seedwork::command_handler]
    async fn solicitar(_: Solicitar, uow: &mut UnitOfWork) -> Result<()> {
        assert_eq!(uow.baggage("tenant"), Some("acme"));
        uow.enqueue(&PagarReserva { id: "r".into() })
    }

    let store = MemoryStore::new();
    bus(&store)
        .dispatch_with(
            Solicitar,
            Context::new()
                .correlation_id("c-9")
                .baggage("tenant", "acme"),
        )
        .await
        .unwrap();
    let [pagar] = <[Message; 1]>::try_from(written(&store, "trace-pagar")).unwrap();
    assert_eq!(pagar.correlation_id(), Some("c-9"));
    assert_eq!(
        pagar.properties.get("baggage-tenant").map(String::as_str),
        Some("acme")
    );
}
