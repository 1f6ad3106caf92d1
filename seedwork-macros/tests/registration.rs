//! A module registered entirely with the macros: derives, handlers found through `inventory`,
//! dependencies resolved from the bus's resources.

use std::sync::Arc;

use seedwork::application::BuildProblem;
use seedwork::memory::{MemoryRepository, MemoryStore};
use seedwork::messaging::{IntegrationMessage, Message, MessageKind};
use seedwork::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, AggregateRoot)]
struct Reserva {
    id: String,
    state: AggregateState,
}

/// The client's read model, written by a domain-event handler in the same transaction.
#[derive(Clone, Debug, AggregateRoot)]
#[aggregate(name = "HistorialCliente")]
struct Historial {
    #[aggregate(id)]
    id: String,
    reservas: Vec<String>,
    #[aggregate(state)]
    state: AggregateState,
}

#[derive(Command)]
#[command(output = String)]
struct CrearReserva {
    id: String,
}

#[derive(Command)]
#[command(name = "Ping")]
struct Ping;

#[derive(Query)]
#[query(output = Option<String>)]
struct ObtenerReserva {
    id: String,
}

#[derive(DomainEvent, Debug)]
struct ReservaCreada {
    id_reserva: String,
    metadata: EventMetadata,
}

#[derive(DomainEvent, Debug)]
#[event(name = "Renombrado")]
struct EventoConOtroNombre(#[event(metadata)] EventMetadata);

/// A generic event: the derive adds the `Debug + Send + Sync + 'static` bounds.
#[derive(DomainEvent, Debug)]
struct Generico<T> {
    value: T,
    metadata: EventMetadata,
}

#[derive(IntegrationEvent, Serialize, Deserialize, Debug, PartialEq)]
#[integration(topic = "eventos-reserva", key = id_reserva)]
struct EventoReservaCreada {
    id_reserva: String,
}

#[derive(seedwork::IntegrationCommand, Serialize, Deserialize, Debug)]
#[integration(
    topic = "comandos-reserva",
    version = "v2",
    name = "ComandoCrearReserva"
)]
struct ComandoCrearReserva {
    id: String,
}

#[seedwork::command_handler]
async fn crear_reserva(
    command: CrearReserva,
    uow: &mut UnitOfWork,
    reservas: Dep<MemoryRepository<Reserva>>,
) -> Result<String> {
    let mut reserva = Reserva {
        id: command.id.clone(),
        state: AggregateState::new(),
    };
    reserva.record(ReservaCreada {
        id_reserva: command.id,
        metadata: EventMetadata::now(),
    });
    reservas.add(uow, &mut reserva).await?;
    Ok(reserva.id)
}

#[seedwork::command_handler]
async fn ping(_: Ping) -> Result<()> {
    Ok(())
}

#[seedwork::query_handler]
async fn obtener_reserva(
    query: ObtenerReserva,
    reservas: Dep<MemoryRepository<Reserva>>,
) -> Result<Option<String>> {
    Ok(reservas.get(&query.id).await?.map(|r| r.id))
}

#[seedwork::domain_event_handler]
async fn registrar_en_historial(
    event: &ReservaCreada,
    uow: &mut UnitOfWork,
    historiales: Dep<MemoryRepository<Historial>>,
) -> Result<()> {
    let mut historial = Historial {
        id: format!("historial-{}", event.id_reserva),
        reservas: vec![event.id_reserva.clone()],
        state: AggregateState::new(),
    };
    historiales.add(uow, &mut historial).await
}

#[seedwork::integration_mapper]
fn publicar(event: &ReservaCreada) -> EventoReservaCreada {
    EventoReservaCreada {
        id_reserva: event.id_reserva.clone(),
    }
}

#[seedwork::message_handler]
async fn ejecutar_comando(
    message: Envelope<ComandoCrearReserva>,
    uow: &mut UnitOfWork,
    reservas: Dep<MemoryRepository<Reserva>>,
) -> Result<()> {
    let mut reserva = Reserva {
        id: message.data.id,
        state: AggregateState::new(),
    };
    reservas.add(uow, &mut reserva).await
}

/// A generic command: the derive adds the `Send + 'static` bounds the trait needs.
#[derive(Command)]
#[command(output = T)]
struct Eco<T> {
    value: T,
}

/// A command whose handler fails with a `DomainError`, converted into `seedwork::Error`.
#[derive(Command)]
#[command(output = u32)]
struct Validar {
    value: i64,
}

/// Counts what the handlers below saw, provided as a dependency.
#[derive(Default)]
struct Contador(std::sync::atomic::AtomicUsize);

impl Contador {
    fn count(&self) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Never provided: an `Option<Dep<_>>` parameter receives `None`.
struct NoProvisto;

#[seedwork::command_handler]
async fn eco(Eco { value }: Eco<String>) -> Result<String> {
    Ok(value)
}

#[seedwork::command_handler]
async fn r#validar(
    mut command: Validar,
    _: &mut UnitOfWork,
    contador: Dep<Contador>,
    ausente: Option<Dep<NoProvisto>>,
) -> std::result::Result<u32, seedwork::domain::DomainError> {
    contador.count();
    assert!(ausente.is_none());
    command.value = command.value.abs();
    u32::try_from(command.value)
        .map_err(|_| seedwork::domain::DomainError::invalid_value("value", "too large"))
}

fn bus(store: &MemoryStore) -> Bus {
    Bus::builder()
        .store(Arc::new(store.clone()))
        .provide(MemoryRepository::<Reserva>::new(store.clone()))
        .provide(MemoryRepository::<Historial>::new(store.clone()))
        .provide(Contador::default())
        .registered()
        .build()
        .expect("every registered handler finds its dependencies")
}

#[test]
fn derives_implement_the_traits() {
    assert_eq!(
        <CrearReserva as seedwork::application::Command>::NAME,
        "CrearReserva"
    );
    assert_eq!(<Ping as seedwork::application::Command>::NAME, "Ping");
    assert_eq!(
        <ObtenerReserva as seedwork::application::Query>::NAME,
        "ObtenerReserva"
    );
    let event = EventoConOtroNombre(EventMetadata::now());
    assert_eq!(
        seedwork::domain::DomainEvent::event_name(&event),
        "Renombrado"
    );
    assert_eq!(
        <Historial as seedwork::domain::AggregateRoot>::TYPE,
        "HistorialCliente"
    );
    assert_eq!(
        <Reserva as seedwork::domain::AggregateRoot>::TYPE,
        "Reserva"
    );
    assert_eq!(EventoReservaCreada::TOPIC, "eventos-reserva");
    assert_eq!(EventoReservaCreada::TYPE, "EventoReservaCreada");
    assert_eq!(EventoReservaCreada::VERSION, "v1");
    assert_eq!(EventoReservaCreada::KIND, MessageKind::Event);
    let key = EventoReservaCreada {
        id_reserva: "r-9".into(),
    }
    .key();
    assert_eq!(key.as_deref(), Some("r-9"));
    assert_eq!(ComandoCrearReserva::TYPE, "ComandoCrearReserva");
    assert_eq!(ComandoCrearReserva::VERSION, "v2");
    assert_eq!(ComandoCrearReserva::KIND, MessageKind::Command);
    assert_eq!(<Eco<u8> as seedwork::application::Command>::NAME, "Eco");
    let generico = Generico {
        value: 5u8,
        metadata: EventMetadata::now(),
    };
    assert_eq!(
        seedwork::domain::DomainEvent::event_name(&generico),
        "Generico"
    );
    assert_eq!(generico.value, 5);
    let event = ReservaCreada {
        id_reserva: "r".into(),
        metadata: EventMetadata::now(),
    };
    let id = event.metadata.event_id;
    assert_eq!(seedwork::domain::DomainEvent::metadata(&event).event_id, id);
    assert!(seedwork::domain::DomainEvent::as_any(&event)
        .downcast_ref::<ReservaCreada>()
        .is_some());
}

#[tokio::test]
async fn patterns_generics_optional_dependencies_and_error_conversion() {
    let store = MemoryStore::new();
    let bus = bus(&store);
    let echoed = bus
        .dispatch(Eco {
            value: "hola".to_string(),
        })
        .await
        .unwrap();
    assert_eq!(echoed, "hola");
    assert!(!bus.handles_command::<Eco<u8>>());

    assert_eq!(bus.dispatch(Validar { value: -7 }).await.unwrap(), 7);
    let err = bus
        .dispatch(Validar {
            value: i64::from(u32::MAX) + 1,
        })
        .await
        .unwrap_err();
    assert!(
        matches!(err, seedwork::Error::Domain(_)),
        "the DomainError was converted: {err:?}"
    );
    let contador = bus
        .resources()
        .get::<Contador>()
        .expect("the counter was provided");
    assert_eq!(contador.0.load(std::sync::atomic::Ordering::SeqCst), 2);
}

#[tokio::test]
async fn registered_handlers_run_the_whole_round_trip() {
    let store = MemoryStore::new();
    let bus = bus(&store);
    assert!(bus.handles_command::<CrearReserva>());
    assert!(bus.handles_query::<ObtenerReserva>());

    let id = bus
        .dispatch(CrearReserva { id: "r-1".into() })
        .await
        .unwrap();
    assert_eq!(id, "r-1");
    bus.dispatch(Ping).await.unwrap();
    assert_eq!(
        bus.query(ObtenerReserva { id: "r-1".into() })
            .await
            .unwrap(),
        Some("r-1".to_string())
    );

    let historiales = MemoryRepository::<Historial>::new(store.clone());
    let historial = historiales
        .get(&"historial-r-1".to_string())
        .await
        .unwrap()
        .expect("the domain-event handler committed with the command");
    assert_eq!(historial.reservas, vec!["r-1".to_string()]);

    let outbox = store.outbox_snapshot();
    assert_eq!(outbox.len(), 1, "the mapper wrote one message");
    let event = outbox[0].message.decode::<EventoReservaCreada>().unwrap();
    assert_eq!(event.data.id_reserva, "r-1");
    assert_eq!(outbox[0].message.key.as_deref(), Some("r-1"));
}

#[tokio::test]
async fn the_message_handler_receives_decoded_envelopes() {
    let store = MemoryStore::new();
    let bus = bus(&store);
    let message = Message::encode(&ComandoCrearReserva { id: "r-2".into() }, "python").unwrap();
    bus.handle_message("aeroalpes-sub-comandos", &message)
        .await
        .unwrap();
    assert_eq!(
        bus.query(ObtenerReserva { id: "r-2".into() })
            .await
            .unwrap(),
        Some("r-2".to_string())
    );
}

#[test]
fn a_missing_dependency_fails_the_build_naming_the_handler() {
    // Everything but the historial repository, which only `registrar_en_historial` needs.
    let store = MemoryStore::new();
    let err = Bus::builder()
        .store(Arc::new(store.clone()))
        .provide(MemoryRepository::<Reserva>::new(store.clone()))
        .provide(Contador::default())
        .registered()
        .build()
        .unwrap_err();
    match err.problems() {
        [BuildProblem::MissingDependency {
            handler,
            dependency,
        }] => {
            assert_eq!(handler, "registration::registrar_en_historial");
            assert!(dependency.contains("MemoryRepository"), "{dependency}");
            assert!(dependency.contains("Historial"), "{dependency}");
        }
        other => panic!("unexpected {other:?}"),
    }
}
