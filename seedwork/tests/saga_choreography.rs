//! A choreography's saga log: services react to each other's events with no coordinator; the
//! correlation id travels by itself from each message handled to the messages it causes, and
//! the observer records the conversation's messages in order, completing it at the last one.

use std::sync::Arc;

use seedwork::memory::MemoryStore;
use seedwork::messaging::{Message, CORRELATION_ID};
use seedwork::prelude::*;
use seedwork::saga::{Choreography, SagaLogKind, SagaStatus, Sagas};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, IntegrationEvent)]
#[integration(topic = "coreo-pedidos", key = id)]
struct PedidoCreado {
    id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, IntegrationEvent)]
#[integration(topic = "coreo-cobros", key = id)]
struct PedidoCobrado {
    id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, IntegrationEvent)]
#[integration(topic = "coreo-envios", key = id)]
struct PedidoEnviado {
    id: String,
}

/// `cobros` reacts to a created order by charging it.
struct Cobros;
#[seedwork::async_trait]
impl MessageHandler<PedidoCreado> for Cobros {
    async fn handle(&self, m: Envelope<PedidoCreado>, uow: &mut UnitOfWork) -> Result<()> {
        uow.enqueue(&PedidoCobrado { id: m.data.id })
    }
}

/// `envios` reacts to a charged order by shipping it.
struct Envios;
#[seedwork::async_trait]
impl MessageHandler<PedidoCobrado> for Envios {
    async fn handle(&self, m: Envelope<PedidoCobrado>, uow: &mut UnitOfWork) -> Result<()> {
        uow.enqueue(&PedidoEnviado { id: m.data.id })
    }
}

fn last_sent(store: &MemoryStore, topic: &str) -> Message {
    store
        .outbox_snapshot()
        .into_iter()
        .rev()
        .find(|e| e.message.topic == topic)
        .unwrap_or_else(|| panic!("nothing sent to {topic}"))
        .message
}

#[tokio::test]
async fn the_log_gathers_a_conversation_across_services_and_completes_it() {
    let store = MemoryStore::new();
    let sagas = Sagas::new(Arc::new(store.clone())).choreography(
        Choreography::new("pedidos")
            .observe::<PedidoCreado>()
            .observe::<PedidoCobrado>()
            .ends_with(|_: &PedidoEnviado| true),
    );
    let bus = Bus::builder()
        .store(Arc::new(store.clone()))
        .on_message(Cobros)
        .on_message(Envios)
        .sagas(&sagas)
        .build()
        .unwrap();
    let observer = Sagas::subscription_name("pedidos");
    let topics: Vec<String> = sagas.subscriptions().into_iter().map(|s| s.topic).collect();
    assert_eq!(topics, ["coreo-cobros", "coreo-envios", "coreo-pedidos"]);

    // The conversation starts at the edge; every hop after it carries the id by itself.
    let creado = Message::encode(&PedidoCreado { id: "p-1".into() }, "tienda")
        .unwrap()
        .with_property(CORRELATION_ID, "conversacion-1");
    // Each service and the observer read the topic through their own subscriptions.
    bus.handle_message("cobros", &creado).await.unwrap();
    bus.handle_message(&observer, &creado).await.unwrap();
    let cobrado = last_sent(&store, "coreo-cobros");
    assert_eq!(cobrado.correlation_id(), Some("conversacion-1"));
    bus.handle_message("envios", &cobrado).await.unwrap();
    bus.handle_message(&observer, &cobrado).await.unwrap();
    let enviado = last_sent(&store, "coreo-envios");
    assert_eq!(enviado.correlation_id(), Some("conversacion-1"));
    assert_eq!(enviado.causation_id(), Some(cobrado.id()));
    bus.handle_message(&observer, &enviado).await.unwrap();

    let [log] = <[_; 1]>::try_from(sagas.log("conversacion-1").await.unwrap()).unwrap();
    assert_eq!(log.status, SagaStatus::Completed);
    let seen: Vec<(&str, SagaLogKind, Option<&str>)> = log
        .log
        .iter()
        .map(|e| (e.message_type.as_str(), e.kind, e.message_id.as_deref()))
        .collect();
    assert_eq!(
        seen,
        [
            ("PedidoCreado", SagaLogKind::Observed, Some(creado.id())),
            ("PedidoCobrado", SagaLogKind::Observed, Some(cobrado.id())),
            ("PedidoEnviado", SagaLogKind::Observed, Some(enviado.id())),
            ("", SagaLogKind::Completed, None),
        ]
    );
    // A redelivery to the observer is absorbed by its inbox.
    assert_eq!(
        bus.handle_message(&observer, &enviado).await.unwrap(),
        seedwork::application::MessageOutcome::Duplicate
    );
    assert!(sagas.log("otra").await.unwrap().is_empty());
}

#[test]
fn a_choreography_that_observes_nothing_is_a_build_problem() {
    let store = MemoryStore::new();
    let sagas = Sagas::new(Arc::new(store.clone())).choreography(Choreography::new("nada"));
    let error = Bus::builder()
        .store(Arc::new(store))
        .sagas(&sagas)
        .build()
        .unwrap_err();
    assert!(
        error.to_string().contains("saga `nada` is invalid"),
        "{error}"
    );
}

#[test]
fn an_orchestration_that_cannot_run_names_each_problem() {
    use seedwork::saga::{Orchestration, Step};
    let store = MemoryStore::new();
    let sin_inicio = Orchestration::<String>::new("rota")
        .step(Step::new("a").command(|_: &String| PedidoCobrado { id: "x".into() }))
        .step(Step::new("b"))
        .step(Step::new("b"));
    let sagas = Sagas::new(Arc::new(store.clone())).orchestration(sin_inicio);
    let error = Bus::builder()
        .store(Arc::new(store))
        .sagas(&sagas)
        .build()
        .unwrap_err();
    let text = error.to_string();
    for expected in [
        "no starting message",
        "step `a` sends a command but reads no reply",
        "step `b` has no command",
        "two steps are named `b`",
    ] {
        assert!(text.contains(expected), "{expected}: {text}");
    }
}
