//! Two versions of one message type: a `v2` consumer reads `v1` messages through the
//! registered upcaster, a `v1` consumer keeps reading `v2` messages — on the memory transport.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use seedwork::memory::{MemoryBroker, MemoryStore};
use seedwork::messaging::{Message, Publisher, Subscriber, SubscriptionOptions};
use seedwork::prelude::*;
use serde::{Deserialize, Serialize};

mod v1 {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, IntegrationEvent)]
    #[integration(topic = "upcast-reservas", name = "ReservaCreada", key = id_reserva)]
    pub struct ReservaCreada {
        pub id_reserva: String,
        pub fecha_creacion: i64,
    }
}

mod v2 {
    use super::*;

    /// Adds `creada_en`, with a default, computed from `v1` by the upcaster.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, IntegrationEvent)]
    #[integration(topic = "upcast-reservas", name = "ReservaCreada", version = "v2", key = id_reserva)]
    pub struct ReservaCreada {
        pub id_reserva: String,
        pub fecha_creacion: i64,
        pub creada_en: Option<String>,
    }
}

#[seedwork::upcaster]
fn a_v2(v1: v1::ReservaCreada) -> v2::ReservaCreada {
    v2::ReservaCreada {
        creada_en: Some(format!("t+{}", v1.fecha_creacion)),
        id_reserva: v1.id_reserva,
        fecha_creacion: v1.fecha_creacion,
    }
}

fn v1_message(n: i64) -> Message {
    Message::encode(
        &v1::ReservaCreada {
            id_reserva: format!("r-{n}"),
            fecha_creacion: n,
        },
        "old-producer",
    )
    .expect("encodes")
}

#[test]
fn a_v2_reader_gets_v1_data_through_the_upcaster() {
    let message = v1_message(7);
    assert_eq!(message.envelope.specversion, "v1");
    let read = message.decode::<v2::ReservaCreada>().expect("upcast");
    assert_eq!(
        read.data,
        v2::ReservaCreada {
            id_reserva: "r-7".into(),
            fecha_creacion: 7,
            creada_en: Some("t+7".into()),
        }
    );
    // The envelope tells what arrived.
    assert_eq!(read.specversion, "v1");
}

#[test]
fn a_v1_reader_keeps_reading_v2_data() {
    let message = Message::encode(
        &v2::ReservaCreada {
            id_reserva: "r-1".into(),
            fecha_creacion: 1,
            creada_en: Some("now".into()),
        },
        "new-producer",
    )
    .expect("encodes");
    assert_eq!(message.envelope.specversion, "v2");
    assert_eq!(
        message.decode::<v1::ReservaCreada>().expect("reads").data,
        v1::ReservaCreada {
            id_reserva: "r-1".into(),
            fecha_creacion: 1,
        }
    );
}

#[test]
fn a_v1_that_the_upcaster_cannot_read_is_the_senders_fault() {
    let mut message = v1_message(1);
    message.envelope.data = serde_json::json!({"id_reserva": 5});
    assert!(matches!(
        message.decode::<v2::ReservaCreada>(),
        Err(Error::InvalidInput { .. })
    ));
}

#[derive(Default)]
struct Vistos(Mutex<Vec<v2::ReservaCreada>>);

#[seedwork::message_handler]
async fn registrar(message: Envelope<v2::ReservaCreada>, vistos: Dep<Vistos>) -> Result<()> {
    vistos.0 .0.lock().unwrap().push(message.data);
    Ok(())
}

#[tokio::test]
async fn the_v2_handler_sees_v1_messages_upcast_through_the_memory_transport() {
    let vistos = Arc::new(Vistos::default());
    let bus = Bus::builder()
        .store(Arc::new(MemoryStore::new()))
        .provide_arc(vistos.clone())
        .registered()
        .build()
        .expect("builds");
    let broker = MemoryBroker::new();
    let mut consumer = broker
        .subscribe(SubscriptionOptions::new("upcast-reservas", "s"))
        .await
        .expect("subscribed");
    broker.publish(&v1_message(3)).await.expect("published");
    let delivery = tokio::time::timeout(Duration::from_secs(5), consumer.receive())
        .await
        .expect("a delivery in time")
        .expect("received");
    bus.handle_message("s", &delivery.message)
        .await
        .expect("handled");
    consumer.ack(&delivery).await.expect("acked");
    assert_eq!(
        *vistos.0.lock().unwrap(),
        [v2::ReservaCreada {
            id_reserva: "r-3".into(),
            fecha_creacion: 3,
            creada_en: Some("t+3".into()),
        }]
    );
}
