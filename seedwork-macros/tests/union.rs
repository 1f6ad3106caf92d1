//! An enum of payloads as several message types on one topic: each variant travels as its own
//! type, is decoded back to the right variant (even when two payloads look alike), registers
//! its schema under the topic, and one handler handles them all — here on the memory transport.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use seedwork::memory::{MemoryBroker, MemoryStore};
use seedwork::messaging::schema::{registered, AvroSchema, Schema};
use seedwork::messaging::{
    IntegrationMessage, Message, Publisher, Subscriber, SubscriptionOptions,
};
use seedwork::prelude::*;
use seedwork::AvroSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
struct ReservaAprobada {
    id_reserva: String,
    fecha: i64,
}

/// The same shape as [`ReservaAprobada`]: only the message type tells them apart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
struct ReservaCancelada {
    id_reserva: String,
    fecha: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
struct ReservaPagada {
    id_reserva: String,
    monto: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, IntegrationEvent)]
#[integration(topic = "union-ciclo-reserva", key = id_reserva)]
enum CicloReserva {
    #[integration(name = "EventoReservaAprobada")]
    Aprobada(ReservaAprobada),
    #[integration(name = "EventoReservaCancelada")]
    Cancelada(ReservaCancelada),
    /// Named after its payload type: `ReservaPagada`.
    Pagada(ReservaPagada),
}

fn samples() -> [CicloReserva; 3] {
    [
        CicloReserva::Aprobada(ReservaAprobada {
            id_reserva: "r-1".into(),
            fecha: 1,
        }),
        CicloReserva::Cancelada(ReservaCancelada {
            id_reserva: "r-1".into(),
            fecha: 2,
        }),
        CicloReserva::Pagada(ReservaPagada {
            id_reserva: "r-1".into(),
            monto: 9.5,
        }),
    ]
}

#[test]
fn each_variant_travels_as_its_own_type_with_its_payload_as_data() {
    let message = Message::encode(&samples()[1], "test").expect("encodes");
    assert_eq!(message.topic, "union-ciclo-reserva");
    assert_eq!(message.envelope.message_type, "EventoReservaCancelada");
    assert_eq!(message.key.as_deref(), Some("r-1"));
    // The data is the payload's own form, as if it travelled alone: no enum tag.
    assert_eq!(
        message.envelope.data,
        serde_json::json!({"id_reserva": "r-1", "fecha": 2})
    );
    assert_eq!(
        CicloReserva::TYPES,
        [
            "EventoReservaAprobada",
            "EventoReservaCancelada",
            "ReservaPagada"
        ]
    );
}

#[test]
fn decoding_picks_the_variant_by_type_not_by_shape() {
    for sample in samples() {
        let message = Message::encode(&sample, "test").expect("encodes");
        assert_eq!(
            message.decode::<CicloReserva>().expect("decodes").data,
            sample
        );
    }
    let mut stranger = Message::encode(&samples()[0], "test").expect("encodes");
    stranger.envelope.message_type = "EventoReservaOlvidada".into();
    assert!(matches!(
        stranger.decode::<CicloReserva>(),
        Err(Error::InvalidInput { .. })
    ));
}

#[test]
fn the_enum_registers_one_schema_per_variant_and_derives_their_union() {
    let mine: Vec<(&str, Schema)> = registered()
        .into_iter()
        .filter(|s| s.topic == "union-ciclo-reserva")
        .map(|s| (s.message_type, s.payload()))
        .collect();
    assert_eq!(
        mine,
        [
            ("EventoReservaAprobada", ReservaAprobada::avro_schema()),
            ("EventoReservaCancelada", ReservaCancelada::avro_schema()),
            ("ReservaPagada", ReservaPagada::avro_schema()),
        ]
    );
    assert_eq!(
        CicloReserva::avro_schema(),
        Schema::Union(vec![
            ReservaAprobada::avro_schema(),
            ReservaCancelada::avro_schema(),
            ReservaPagada::avro_schema(),
        ])
    );
}

/// What the handler saw, in order.
#[derive(Default)]
struct Vistos(Mutex<Vec<CicloReserva>>);

#[seedwork::message_handler]
async fn anotar(message: Envelope<CicloReserva>, vistos: Dep<Vistos>) -> Result<()> {
    vistos.0 .0.lock().unwrap().push(message.data);
    Ok(())
}

#[tokio::test]
async fn one_handler_handles_every_variant_through_the_memory_transport() {
    let store = MemoryStore::new();
    let vistos = Arc::new(Vistos::default());
    let bus = Bus::builder()
        .store(Arc::new(store))
        .provide_arc(vistos.clone())
        .registered()
        .build()
        .expect("builds");
    let broker = MemoryBroker::new();
    let mut consumer = broker
        .subscribe(SubscriptionOptions::new("union-ciclo-reserva", "s"))
        .await
        .expect("subscribed");
    for sample in samples() {
        let message = Message::encode(&sample, "test").expect("encodes");
        broker.publish(&message).await.expect("published");
    }
    for _ in 0..3 {
        let delivery = tokio::time::timeout(Duration::from_secs(5), consumer.receive())
            .await
            .expect("a delivery in time")
            .expect("received");
        bus.handle_message("s", &delivery.message)
            .await
            .expect("handled");
        consumer.ack(&delivery).await.expect("acked");
    }
    assert_eq!(*vistos.0.lock().unwrap(), samples());
}
