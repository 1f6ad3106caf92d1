//! An event-sourced aggregate whose `Event` is an enum of separate domain events: each variant
//! reaches the handlers and mappers of its own event type (and those of the enum), and stored
//! events of an older version are upcast before the aggregate or a projection sees them.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use seedwork::application::{Bus, DomainEventHandler};
use seedwork::domain::{AggregateRoot, AggregateState, EventMetadata, Repository};
use seedwork::eventsourcing::{
    Checkpoint, EventSourced, EventSourcedRepository, EventStore, NewEvent, Projection,
    ProjectionRunner, StoredEvent,
};
use seedwork::memory::{MemoryRepository, MemoryStore};
use seedwork::prelude::*;
use seedwork::uow::UnitOfWork;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
struct CuentaAbierta {
    titular: String,
    metadata: EventMetadata,
}

/// `v2` of a deposit: `v1` had no currency.
#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
struct Depositado {
    monto: i64,
    moneda: String,
    metadata: EventMetadata,
}

#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
enum EventoCuenta {
    Abierta(CuentaAbierta),
    Deposito(Depositado),
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, AggregateRoot)]
struct Cuenta {
    id: String,
    titular: String,
    saldo: i64,
    monedas: Vec<String>,
    #[serde(skip)]
    state: AggregateState,
}

impl EventSourced for Cuenta {
    type Event = EventoCuenta;
    const EVENT_VERSION: &'static str = "v2";

    fn empty(id: &String) -> Self {
        Cuenta {
            id: id.clone(),
            ..Cuenta::default()
        }
    }

    fn apply(&mut self, event: &EventoCuenta) {
        match event {
            EventoCuenta::Abierta(e) => self.titular = e.titular.clone(),
            EventoCuenta::Deposito(e) => {
                self.saldo += e.monto;
                self.monedas.push(e.moneda.clone());
            }
        }
    }
}

/// A deposit as `v1` stored it, inside the enum's serde form.
#[derive(Deserialize)]
enum EventoCuentaV1 {
    Deposito(DepositoV1),
}

#[derive(Deserialize)]
struct DepositoV1 {
    monto: i64,
    metadata: EventMetadata,
}

fn deposito_a_v2(v1: EventoCuentaV1) -> EventoCuenta {
    let EventoCuentaV1::Deposito(v1) = v1;
    EventoCuenta::Deposito(Depositado {
        monto: v1.monto,
        moneda: "COP".into(),
        metadata: v1.metadata,
    })
}
seedwork::event_upcaster!("Depositado", "v1" => "v2", deposito_a_v2);

#[derive(Debug, Clone, Serialize, Deserialize, IntegrationEvent)]
#[integration(topic = "depositos")]
struct DepositoIntegracion {
    monto: i64,
}

/// Counts what it is handed.
#[derive(Clone, Default)]
struct Contador(Arc<AtomicUsize>);

impl Contador {
    fn vistos(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

#[seedwork::async_trait]
impl DomainEventHandler<Depositado> for Contador {
    async fn handle(&self, _: &Depositado, _: &mut UnitOfWork) -> Result<()> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

#[seedwork::async_trait]
impl DomainEventHandler<EventoCuenta> for Contador {
    async fn handle(&self, _: &EventoCuenta, _: &mut UnitOfWork) -> Result<()> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

fn v1_deposit(monto: i64) -> NewEvent {
    NewEvent {
        event_type: "Depositado".into(),
        event_version: "v1".into(),
        data: serde_json::json!({ "Deposito": { "monto": monto, "metadata": EventMetadata::now() } }),
        occurred_at: 0,
    }
}

#[tokio::test]
async fn each_variant_reaches_its_own_handlers_and_mappers_and_the_enums() {
    let store = MemoryStore::new();
    let (de_depositos, de_la_enum) = (Contador::default(), Contador::default());
    let bus = Bus::builder()
        .store(Arc::new(store.clone()))
        .on_event::<Depositado>(de_depositos.clone())
        .on_event::<EventoCuenta>(de_la_enum.clone())
        .publish(|e: &Depositado| DepositoIntegracion { monto: e.monto })
        .build()
        .unwrap();
    let cuentas = EventSourcedRepository::<Cuenta>::new(Arc::new(store.clone()));

    let mut cuenta = Cuenta::empty(&"c-1".to_string());
    cuenta.raise(EventoCuenta::Abierta(CuentaAbierta {
        titular: "Ana".into(),
        metadata: EventMetadata::now(),
    }));
    for monto in [5, 7] {
        cuenta.raise(EventoCuenta::Deposito(Depositado {
            monto,
            moneda: "COP".into(),
            metadata: EventMetadata::now(),
        }));
    }
    let mut uow = bus.unit_of_work().await.unwrap();
    cuentas.add(&mut uow, &mut cuenta).await.unwrap();
    uow.commit().await.unwrap();

    assert_eq!(
        de_depositos.vistos(),
        2,
        "the variant's handler, per deposit"
    );
    assert_eq!(de_la_enum.vistos(), 3, "the enum's handler, per event");
    let montos: Vec<i64> = store
        .outbox_snapshot()
        .iter()
        .map(|entry| {
            entry
                .message
                .decode::<DepositoIntegracion>()
                .unwrap()
                .data
                .monto
        })
        .collect();
    assert_eq!(montos, [5, 7], "the variant's mapper, per deposit");
    let stored = store.load(Cuenta::TYPE, "c-1", 0).await.unwrap();
    let types: Vec<&str> = stored.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(types, ["CuentaAbierta", "Depositado", "Depositado"]);
}

#[tokio::test]
async fn old_versions_are_upcast_before_the_aggregate_folds_them() {
    let store = MemoryStore::new();
    let bus = Bus::builder()
        .store(Arc::new(store.clone()))
        .build()
        .unwrap();
    // Written by an older release: two v1 deposits, then a v2 one.
    let mut uow = bus.unit_of_work().await.unwrap();
    let v2 = NewEvent {
        event_type: "Depositado".into(),
        event_version: "v2".into(),
        data: serde_json::to_value(EventoCuenta::Deposito(Depositado {
            monto: 1,
            moneda: "USD".into(),
            metadata: EventMetadata::now(),
        }))
        .unwrap(),
        occurred_at: 0,
    };
    store
        .append(
            &mut uow,
            Cuenta::TYPE,
            "c-2",
            0,
            &[v1_deposit(10), v1_deposit(20), v2],
        )
        .await
        .unwrap();
    uow.commit().await.unwrap();

    let cuentas = EventSourcedRepository::<Cuenta>::new(Arc::new(store.clone()));
    let cuenta = cuentas.get(&"c-2".to_string()).await.unwrap().unwrap();
    assert_eq!(cuenta.saldo, 31);
    assert_eq!(cuenta.monedas, ["COP", "COP", "USD"]);
    assert_eq!(cuenta.version(), 3);
    // The stream itself is never rewritten.
    let stored = store.load(Cuenta::TYPE, "c-2", 0).await.unwrap();
    let versions: Vec<&str> = stored.iter().map(|e| e.event_version.as_str()).collect();
    assert_eq!(versions, ["v1", "v1", "v2"]);
}

#[tokio::test]
async fn an_upcaster_that_cannot_read_the_old_data_is_a_codec_error() {
    let mut broken = v1_deposit(1);
    broken.data = serde_json::json!({ "Deposito": { "cantidad": 1 } });
    let stored = StoredEvent {
        stream_type: Cuenta::TYPE.into(),
        stream_id: "c-3".into(),
        version: 1,
        position: 1,
        event_type: broken.event_type,
        event_version: broken.event_version,
        data: broken.data,
        occurred_at: 0,
    };
    let error = stored.decode::<EventoCuenta>("v2").unwrap_err();
    assert!(matches!(error, Error::Codec { .. }), "{error:?}");
    // A version with no registered step is handed over as it is.
    let other = StoredEvent {
        event_type: "Retirado".into(),
        ..stored.clone()
    };
    assert_eq!(*other.upcast(None).unwrap(), other);
}

/// Records the version and currency of every deposit it is handed.
struct Monedas(Arc<Mutex<Vec<(String, String)>>>);

#[seedwork::async_trait]
impl Projection for Monedas {
    fn name(&self) -> &str {
        "monedas"
    }

    async fn apply(&self, event: &StoredEvent, _: &mut UnitOfWork) -> Result<()> {
        if let EventoCuenta::Deposito(deposito) = event.decode::<EventoCuenta>("v2")? {
            let seen = (event.event_version.clone(), deposito.moneda);
            self.0.lock().unwrap().push(seen);
        }
        Ok(())
    }

    async fn reset(&self, _: &mut UnitOfWork) -> Result<()> {
        self.0.lock().unwrap().clear();
        Ok(())
    }
}

#[tokio::test]
async fn a_projection_is_handed_events_upcast_to_the_newest_version() {
    let store = MemoryStore::new();
    let bus = Bus::builder()
        .store(Arc::new(store.clone()))
        .build()
        .unwrap();
    let mut uow = bus.unit_of_work().await.unwrap();
    store
        .append(&mut uow, Cuenta::TYPE, "c-4", 0, &[v1_deposit(3)])
        .await
        .unwrap();
    uow.commit().await.unwrap();

    let seen = Arc::new(Mutex::new(Vec::new()));
    let runner = ProjectionRunner::new(
        bus,
        Arc::new(store.clone()),
        Arc::new(MemoryRepository::<Checkpoint>::new(store.clone())),
        Arc::new(Monedas(Arc::clone(&seen))),
    );
    assert_eq!(runner.catch_up().await.unwrap(), 1);
    assert_eq!(
        *seen.lock().unwrap(),
        [("v2".to_string(), "COP".to_string())]
    );
    assert!(!runner.behind().await.unwrap());
}
