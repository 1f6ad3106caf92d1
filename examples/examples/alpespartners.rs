//! AlpesPartners on the embedded default: one process, in-memory broker and store.
//!
//! This first cut runs the tutorial's reservation flow once, end to end — command → handler →
//! unit of work → outbox → relay → broker → notificaciones — and exits. The HTTP API, the UI
//! and the SQLite store arrive with the reference-system work (see the README).
//!
//! Run: `cargo run --example alpespartners`

use std::sync::Arc;
use std::time::Duration;

use alpespartners::notificaciones::{NotificarReserva, SUBSCRIPTION};
use alpespartners::vuelos::aplicacion::{CrearReserva, CrearReservaHandler};
use alpespartners::vuelos::infraestructura::{publicar_reserva_creada, EventoReservaCreada};
use seedwork::memory::{MemoryBroker, MemoryRepository, MemoryStore};
use seedwork::messaging::{
    IntegrationMessage, OutboxRelay, OutboxStore, Subscriber, SubscriptionOptions,
};
use seedwork::Bus;
use tokio::sync::watch;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();

    let store = MemoryStore::new();
    let broker = MemoryBroker::new();
    let bus = Bus::builder()
        .service_name("alpespartners")
        .store(Arc::new(store.clone()))
        .command(CrearReservaHandler {
            reservas: MemoryRepository::new(store.clone()),
        })
        .on_message(NotificarReserva)
        .publish(publicar_reserva_creada)
        .build()?;

    let (stop, stopped) = watch::channel(false);
    let until_stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };

    let relay = OutboxRelay::new(Arc::new(store.clone()), Arc::new(broker.clone()))
        .poll_interval(Duration::from_millis(50));
    let relay_task = tokio::spawn(relay.run(until_stopped(stopped.clone())));

    let consumer = broker
        .subscribe(SubscriptionOptions::new(
            EventoReservaCreada::TOPIC,
            SUBSCRIPTION,
        ))
        .await?;
    let consumer_bus = bus.clone();
    let consumer_stop = until_stopped(stopped.clone());
    let consumer_task =
        tokio::spawn(async move { consumer_bus.consume(consumer, consumer_stop).await });

    println!("AlpesPartners (embedded broker and store): creating reservation test-reserva-123");
    let id = bus
        .dispatch(CrearReserva {
            id: "test-reserva-123".into(),
            id_cliente: "cliente-1".into(),
        })
        .await?;
    println!("reservation {id} committed; waiting for the notification service");

    let delivered = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let pending = store.pending().await.unwrap_or(u64::MAX);
            let backlog = broker.backlog(EventoReservaCreada::TOPIC, SUBSCRIPTION);
            if pending == 0 && backlog == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;

    let _ = stop.send(true);
    relay_task.await?;
    consumer_task.await??;
    match delivered {
        Ok(()) => {
            println!("done: the event went through the outbox and the broker to notificaciones");
            Ok(())
        }
        Err(_) => Err("the notification did not arrive within 10 s".into()),
    }
}
