//! Message types that change, on the durable SQL transport (SQLite): an enum of several types
//! on one topic comes back as the right variants, and a `v1` message reaches a `v2` reader
//! through its upcaster, and a `v1` reader keeps reading `v2`, after a trip through the outbox
//! and the transport's tables.

use std::time::Duration;

use seedwork::messaging::{Message, Subscriber, SubscriptionKind, SubscriptionOptions};
use seedwork::testing::contract::broker::{expect_delivery, unique_topic};
use seedwork::uow::TransactionalStore;
use seedwork::{AvroSchema, IntegrationEvent};
use seedwork_sqlx::TransportSettings;
use serde::{Deserialize, Serialize};

mod support;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
struct Aprobada {
    id_reserva: String,
    fecha: i64,
}

/// The same shape as [`Aprobada`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
struct Cancelada {
    id_reserva: String,
    fecha: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, IntegrationEvent)]
#[integration(topic = "sql-ciclo", key = id_reserva)]
enum Ciclo {
    Aprobada(Aprobada),
    Cancelada(Cancelada),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, IntegrationEvent)]
#[integration(topic = "sql-reservas", name = "ReservaCreada")]
struct CreadaV1 {
    id_reserva: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, IntegrationEvent)]
#[integration(topic = "sql-reservas", name = "ReservaCreada", version = "v2")]
struct CreadaV2 {
    id_reserva: String,
    origen: Option<String>,
}

#[seedwork::upcaster]
fn creada_a_v2(v1: CreadaV1) -> CreadaV2 {
    CreadaV2 {
        id_reserva: v1.id_reserva,
        origen: Some("v1".into()),
    }
}

fn settings() -> TransportSettings {
    TransportSettings {
        poll_interval: Duration::from_millis(50),
        ..TransportSettings::default()
    }
}

/// `messages` moved to `topic`, committed in one transaction.
async fn commit(store: &dyn TransactionalStore, topic: &str, mut messages: Vec<Message>) {
    for message in &mut messages {
        message.topic = topic.to_string();
    }
    let mut tx = store.begin().await.expect("begin");
    tx.append_outbox(messages).await.expect("append");
    tx.commit().await.expect("commit");
}

#[tokio::test]
async fn an_enum_of_types_and_an_old_version_come_back_typed_through_sqlite() {
    let (store, _dir) = support::sqlite::fresh_store().await;
    let transport = store.direct_transport(settings());
    let topic = unique_topic("versions");
    let mut consumer = transport
        .subscribe(SubscriptionOptions::new(&topic, "s").kind(SubscriptionKind::Shared))
        .await
        .expect("subscribed");
    let sent = [
        Ciclo::Aprobada(Aprobada {
            id_reserva: "r-1".into(),
            fecha: 1,
        }),
        Ciclo::Cancelada(Cancelada {
            id_reserva: "r-1".into(),
            fecha: 2,
        }),
    ];
    let mut messages: Vec<Message> = sent
        .iter()
        .map(|e| Message::encode(e, "test").expect("encodes"))
        .collect();
    messages.push(
        Message::encode(
            &CreadaV1 {
                id_reserva: "r-1".into(),
            },
            "old",
        )
        .expect("encodes"),
    );
    let nueva = CreadaV2 {
        id_reserva: "r-1".into(),
        origen: Some("web".into()),
    };
    messages.push(Message::encode(&nueva, "new").expect("encodes"));
    for message in &mut messages {
        message.key = Some("r-1".into());
    }
    commit(&store, &topic, messages).await;

    let mut received = Vec::new();
    for _ in 0..4 {
        let delivery = expect_delivery(&mut *consumer).await;
        consumer.ack(&delivery).await.expect("acked");
        received.push(delivery.message);
    }
    assert_eq!(
        received[0].decode::<Ciclo>().expect("Aprobada").data,
        sent[0]
    );
    assert_eq!(
        received[1].decode::<Ciclo>().expect("Cancelada").data,
        sent[1]
    );
    assert_eq!(received[2].envelope.specversion, "v1");
    assert_eq!(
        received[2].decode::<CreadaV2>().expect("upcast").data,
        CreadaV2 {
            id_reserva: "r-1".into(),
            origen: Some("v1".into()),
        }
    );
    // A v1 reader keeps reading v2: the field it does not know is skipped.
    assert_eq!(received[3].envelope.specversion, "v2");
    assert_eq!(
        received[3].decode::<CreadaV1>().expect("v1 reads v2").data,
        CreadaV1 {
            id_reserva: "r-1".into()
        }
    );
    assert_eq!(received[3].decode::<CreadaV2>().expect("v2").data, nueva);
}
