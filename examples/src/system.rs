//! Wiring: the HTTP API with its command consumer and outbox relay, `notificaciones` and the UI
//! BFF, over one store and one broker — all in one process (the default), or one service per
//! process on PostgreSQL (its durable transport, or Pulsar), as many copies of each as needed.
//! The broker is by default the durable transport of `seedwork-sqlx` on the store's database.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use std::future::Future;
use std::pin::Pin;

use seedwork::application::{BuildError, Bus, ConsumeOptions};
use seedwork::domain::Repository;
use seedwork::eventsourcing::{
    Checkpoint, EventSourcedRepository, EventStore, Projection, ProjectionRunner,
};
use seedwork::memory::{MemoryBroker, MemoryRepository, MemoryStore};
use seedwork::messaging::{
    Consumer, InboxRetention, InboxStore, OutboxRelay, OutboxStore, Publisher, Subscriber,
    SubscriptionKind, SubscriptionOptions,
};
use seedwork::saga::{SagaStore, Sagas};
use seedwork::supervision::{supervise, Health, RestartPolicy};
use seedwork::uow::TransactionalStore;
use seedwork_sqlx::{
    PostgresJsonRepository, PostgresStore, PostgresTransport, SqliteJsonRepository, SqliteStore,
    SqliteTransport, TransportSettings,
};

use crate::api::health::HealthCheck;
use crate::cliente::EntradaHistorialCliente;
use crate::integracion_gds::dominio::ConfirmacionGds;
use crate::integracion_gds::infraestructura::{
    consumidores as gds_consumidores, schema as gds_schema,
};
use crate::integracion_gds::RepositorioConfirmaciones;
use crate::notificaciones::{self, EnviadorCorreo, NotificacionesReserva};
use crate::pagos::dominio::Pago;
use crate::pagos::infraestructura::{consumidores as pagos_consumidores, schema as pagos_schema};
use crate::pagos::RepositorioPagos;
use crate::sagas::coordinadores::{coordinador_reservas, PLAZO_POR_PASO};
use crate::ui::{self, Bff};
use crate::vuelos::aplicacion::vistas::{ReservaAnalitica, ReservaListada};
use crate::vuelos::dominio::Reserva;
use crate::vuelos::infraestructura::consumidores::SUSCRIPCION_COMANDOS;
use crate::vuelos::infraestructura::consumidores::{SUSCRIPCION_APROBAR, SUSCRIPCION_CANCELAR};
use crate::vuelos::infraestructura::proyecciones::{
    ProyeccionReservasLista, ProyeccionReservasTotales,
};
use crate::vuelos::infraestructura::schema::v1::{
    TOPICO_APROBAR, TOPICO_CANCELAR, TOPICO_CICLO, TOPICO_COMANDOS,
};

/// Where the data lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    /// In memory (tests; nothing survives the process).
    Memory,
    /// A SQLite file (created with its directory on first run): the embedded default.
    Sqlite(String),
    /// A PostgreSQL URL (`postgres://…`).
    Postgres(String),
}

impl Database {
    /// Reads `memory`, `sqlite://path`, a plain file path, or `postgres://…`.
    pub fn parse(value: &str) -> Database {
        if value == "memory" {
            Database::Memory
        } else if value.starts_with("postgres://") || value.starts_with("postgresql://") {
            Database::Postgres(value.to_string())
        } else {
            Database::Sqlite(value.trim_start_matches("sqlite://").to_string())
        }
    }
}

/// Which broker carries the integration messages.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum BrokerChoice {
    /// The durable transport on the store's own database (the default): a SQLite file needs
    /// nothing installed; on PostgreSQL several processes share it, each running some of the
    /// services. On an in-memory store it is the in-memory broker.
    #[default]
    Database,
    /// The in-memory broker: one process only, and not durable (what was accepted but not yet
    /// processed is lost when the process stops). Tests inspect its topics.
    Memory,
    /// Apache Pulsar at this URL (`pulsar://host:6650`); needs the `pulsar` feature.
    Pulsar(String),
}

impl BrokerChoice {
    /// Reads `database` (the default, also the empty string), `memory` (`embedded`, its former
    /// name, too), a `pulsar://…` URL, or a bare host name (as the tutorial's
    /// `BROKER_HOST`/`PULSAR_ADDRESS` give it), which means `pulsar://HOST:6650`.
    pub fn parse(value: &str) -> BrokerChoice {
        match value {
            "" | "database" => BrokerChoice::Database,
            "memory" | "embedded" => BrokerChoice::Memory,
            url if url.contains("://") => BrokerChoice::Pulsar(url.to_string()),
            host => BrokerChoice::Pulsar(format!("pulsar://{host}:6650")),
        }
    }

    /// The broker the tutorial's environment names: `PULSAR_ADDRESS`, else `BROKER_HOST`.
    pub fn from_env() -> Option<BrokerChoice> {
        ["PULSAR_ADDRESS", "BROKER_HOST"]
            .iter()
            .find_map(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
            .map(|value| BrokerChoice::parse(&value))
    }

    /// Whether this broker lives in one process's memory on `database` (then every service
    /// must run in that process, and nothing in flight survives it).
    pub fn in_memory(&self, database: &Database) -> bool {
        match self {
            BrokerChoice::Memory => true,
            BrokerChoice::Database => *database == Database::Memory,
            BrokerChoice::Pulsar(_) => false,
        }
    }

    /// What the startup banner says about this broker on `database`.
    pub fn describe(&self, database: &Database) -> String {
        match (self, database) {
            (BrokerChoice::Pulsar(url), _) => format!("{url} (Avro; durable)"),
            (BrokerChoice::Database, Database::Sqlite(path)) => {
                format!("the store's database, SQLite {path} (durable)")
            }
            (BrokerChoice::Database, Database::Postgres(_)) => {
                "the store's database, PostgreSQL (durable; shared by every process on it)".into()
            }
            (BrokerChoice::Memory, _) | (BrokerChoice::Database, Database::Memory) => {
                "in memory (not durable: what is in flight is lost when the process stops)".into()
            }
        }
    }
}

/// Which services this process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Services {
    /// The HTTP API, the `vuelos` consumers (`comandos-reserva`, and the saga's approvals and
    /// cancellations), the reservation saga's coordinator with its deadlines, and the outbox
    /// relay.
    pub api: bool,
    /// The `notificaciones` consumer.
    pub notificaciones: bool,
    /// The UI BFF (page, websocket, its event subscription and an outbox relay for the
    /// commands its page sends).
    pub ui: bool,
    /// `pagos`: the saga's payments (`comando-pagar-reserva`, `comando-revertir-pago`).
    pub pagos: bool,
    /// `integracion_gds`: the saga's GDS confirmations (`comando-confirmar-reserva`,
    /// `comando-revertir-confirmacion`).
    pub integracion_gds: bool,
}

impl Services {
    /// Everything (the default).
    pub const ALL: Services = Services {
        api: true,
        notificaciones: true,
        ui: true,
        pagos: true,
        integracion_gds: true,
    };

    /// None; add with [`parse`](Self::parse).
    pub const NONE: Services = Services {
        api: false,
        notificaciones: false,
        ui: false,
        pagos: false,
        integracion_gds: false,
    };

    /// Reads `all` or a comma-separated list of `api`, `notificaciones`, `ui`, `pagos`,
    /// `integracion_gds`.
    pub fn parse(value: &str) -> Result<Services, String> {
        if value == "all" {
            return Ok(Services::ALL);
        }
        let mut services = Services::NONE;
        for name in value.split(',').map(str::trim) {
            match name {
                "api" => services.api = true,
                "notificaciones" => services.notificaciones = true,
                "ui" => services.ui = true,
                "pagos" => services.pagos = true,
                "integracion_gds" => services.integracion_gds = true,
                other => {
                    return Err(format!(
                        "unknown service `{other}` (expected api, notificaciones, ui, pagos, \
                         integracion_gds or all)"
                    ))
                }
            }
        }
        Ok(services)
    }

    /// Whether this process consumes any topic (and so keeps an inbox).
    fn consumes(&self) -> bool {
        self.api || self.notificaciones || self.pagos || self.integracion_gds
    }

    /// Whether this process writes messages to the outbox (so runs a relay).
    fn writes(&self) -> bool {
        self.api || self.ui || self.pagos || self.integracion_gds
    }
}

/// How to start the system.
#[derive(Clone)]
pub struct Config {
    /// The HTTP API's address (the tutorial uses port 5001).
    pub http: SocketAddr,
    /// The UI BFF's address (the tutorial uses port 5678).
    pub ui: SocketAddr,
    /// The store.
    pub database: Database,
    /// Sends the notifications; prints them by default.
    pub correo: Arc<dyn EnviadorCorreo>,
    /// How often the relay looks at the outbox when nothing wakes it.
    pub relay_poll: Duration,
    /// The broker.
    pub broker: BrokerChoice,
    /// The services to run.
    pub services: Services,
    /// Whether the reservation saga runs (with the API): every new reservation is then paid,
    /// confirmed with the GDS and approved by it, or cancelled when a step fails. Off, a
    /// reservation stays pending until approved by hand, as in the tutorial before sagas.
    pub sagas: bool,
    /// How long each step of the saga waits for its answer before it fails.
    pub plazo_saga: Duration,
    /// How often the saga's deadlines are looked for.
    pub sondeo_plazos: Duration,
    /// How often the projections look for new events once caught up: how far the list and
    /// the daily totals may trail the writes.
    pub sondeo_proyecciones: Duration,
    /// Empty the projections' read models and replay them from the first event at start.
    pub reconstruir_proyecciones: bool,
}

impl Config {
    /// The tutorial's ports on 127.0.0.1, SQLite under `data_dir`.
    pub fn local(data_dir: &Path) -> Self {
        Config {
            http: SocketAddr::from(([127, 0, 0, 1], 5001)),
            ui: SocketAddr::from(([127, 0, 0, 1], 5678)),
            database: Database::Sqlite(data_dir.join("alpespartners.db").display().to_string()),
            correo: notificaciones::enviador_por_defecto(),
            relay_poll: Duration::from_millis(200),
            broker: BrokerChoice::Database,
            services: Services::ALL,
            sagas: true,
            plazo_saga: PLAZO_POR_PASO,
            sondeo_plazos: Duration::from_millis(500),
            sondeo_proyecciones: Duration::from_millis(100),
            reconstruir_proyecciones: false,
        }
    }
}

/// Why the system did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The store could not be opened or migrated.
    #[error("cannot open the store: {0}")]
    Store(#[from] seedwork::Error),
    /// A handler is misconfigured.
    #[error("cannot build the bus: {0}")]
    Bus(#[from] BuildError),
    /// An address is taken or not allowed.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The broker cannot be reached, or this build cannot talk to it.
    #[error("cannot use the broker: {0}")]
    Broker(String),
    /// The data directory cannot be created.
    #[error("cannot create {path}: {source}")]
    DataDir {
        /// The directory.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

struct Backend {
    /// How busy the database's one writer is (SQLite; `/health` reports it).
    writer: Option<crate::api::health::WriterSource>,
    /// The durable transport on the same database (none for the in-memory store, or when
    /// another broker carries the messages).
    transport: Option<Wire>,
    store: Arc<dyn TransactionalStore>,
    outbox: Arc<dyn OutboxStore>,
    inbox: Arc<dyn InboxStore>,
    /// The reservations' event streams.
    eventos: Arc<dyn EventStore>,
    reservas: Arc<dyn Repository<Reserva>>,
    lista: Arc<dyn Repository<ReservaListada>>,
    analitica: Arc<dyn Repository<ReservaAnalitica>>,
    checkpoints: Arc<dyn Repository<Checkpoint>>,
    historiales: Arc<dyn Repository<EntradaHistorialCliente>>,
    notificaciones: Arc<dyn Repository<NotificacionesReserva>>,
    pagos: RepositorioPagos,
    confirmaciones: RepositorioConfirmaciones,
    sagas: Arc<dyn SagaStore>,
}

/// How many messages one consumer claims and handles in one unit of work. Each subscription
/// here has one consumer per process, which must keep up with every request the API accepts:
/// a claim is a write transaction that waits its turn among the requests', so the more it
/// takes per turn the fewer turns draining needs (measured with `bench/load`: at 64
/// connections on SQLite, 32 executed about a third of what was accepted; 256 kept up).
pub const CONSUMER_BATCH: usize = 256;

/// Outbox entries the relay claims per round. Every reservation writes two (its command and
/// its event) on the Pulsar broker; with the library's default (100) the relay fell behind
/// the API under load.
pub const RELAY_BATCH: usize = 512;

/// Keys the relay publishes concurrently within a round (the library's default is 16): on
/// Pulsar each publish waits for the broker's receipt, so throughput is in-flight sends
/// over the round trip.
pub const RELAY_IN_FLIGHT: usize = 256;

/// How many consumers of `comandos-reserva` one API process runs on PostgreSQL with the
/// durable transport. Each handles its batch in one transaction of many statements, each a
/// round trip; PostgreSQL runs several such transactions at once (SQLite would only queue
/// them at its one writer, so there one consumer runs).
pub const COMMAND_CONSUMERS_ON_POSTGRES: usize = 4;

fn transport_settings() -> TransportSettings {
    TransportSettings {
        prefetch: u32::try_from(CONSUMER_BATCH).unwrap_or(u32::MAX),
        ..TransportSettings::default()
    }
}

/// The reservations, event-sourced on `eventos` (decision record 0009). A reservation has at
/// most four events, so it is never worth a snapshot.
fn reservas(eventos: Arc<dyn EventStore>) -> Arc<dyn Repository<Reserva>> {
    Arc::new(EventSourcedRepository::<Reserva>::new(eventos))
}

/// The store, its repositories and — when `transport` — the durable transport on its database,
/// fed directly by the store's outbox (no relay hop: see `SqlStore::direct_transport`).
async fn backend(database: &Database, transport: bool) -> Result<Backend, StartError> {
    Ok(match database {
        Database::Memory => {
            let store = MemoryStore::new();
            Backend {
                writer: None,
                transport: None,
                store: Arc::new(store.clone()),
                outbox: Arc::new(store.clone()),
                inbox: Arc::new(store.clone()),
                eventos: Arc::new(store.clone()),
                reservas: reservas(Arc::new(store.clone())),
                lista: Arc::new(MemoryRepository::<ReservaListada>::new(store.clone())),
                analitica: Arc::new(MemoryRepository::<ReservaAnalitica>::new(store.clone())),
                checkpoints: Arc::new(MemoryRepository::<Checkpoint>::new(store.clone())),
                historiales: Arc::new(MemoryRepository::<EntradaHistorialCliente>::new(
                    store.clone(),
                )),
                notificaciones: Arc::new(MemoryRepository::<NotificacionesReserva>::new(
                    store.clone(),
                )),
                pagos: Arc::new(MemoryRepository::<Pago>::new(store.clone())),
                confirmaciones: Arc::new(MemoryRepository::<ConfirmacionGds>::new(store.clone())),
                sagas: Arc::new(store),
            }
        }
        Database::Sqlite(path) => {
            if let Some(dir) = Path::new(path)
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
            {
                std::fs::create_dir_all(dir).map_err(|source| StartError::DataDir {
                    path: dir.display().to_string(),
                    source,
                })?;
            }
            let store = SqliteStore::open(&format!("sqlite://{path}")).await?;
            Backend {
                writer: Some({
                    let store = store.clone();
                    Arc::new(move || store.writer_stats())
                }),
                transport: transport
                    .then(|| Wire::transport(store.direct_transport(transport_settings()))),
                store: Arc::new(store.clone()),
                outbox: Arc::new(store.clone()),
                inbox: Arc::new(store.clone()),
                eventos: Arc::new(store.clone()),
                reservas: reservas(Arc::new(store.clone())),
                lista: Arc::new(SqliteJsonRepository::<ReservaListada>::new(&store)),
                analitica: Arc::new(SqliteJsonRepository::<ReservaAnalitica>::new(&store)),
                checkpoints: Arc::new(SqliteJsonRepository::<Checkpoint>::new(&store)),
                historiales: Arc::new(SqliteJsonRepository::<EntradaHistorialCliente>::new(&store)),
                notificaciones: Arc::new(SqliteJsonRepository::<NotificacionesReserva>::new(
                    &store,
                )),
                pagos: Arc::new(SqliteJsonRepository::<Pago>::new(&store)),
                confirmaciones: Arc::new(SqliteJsonRepository::<ConfirmacionGds>::new(&store)),
                sagas: Arc::new(store),
            }
        }
        Database::Postgres(url) => {
            let store = PostgresStore::open(url).await?;
            Backend {
                writer: None,
                transport: transport
                    .then(|| Wire::transport(store.direct_transport(transport_settings()))),
                store: Arc::new(store.clone()),
                outbox: Arc::new(store.clone()),
                inbox: Arc::new(store.clone()),
                eventos: Arc::new(store.clone()),
                reservas: reservas(Arc::new(store.clone())),
                lista: Arc::new(PostgresJsonRepository::<ReservaListada>::new(&store)),
                analitica: Arc::new(PostgresJsonRepository::<ReservaAnalitica>::new(&store)),
                checkpoints: Arc::new(PostgresJsonRepository::<Checkpoint>::new(&store)),
                historiales: Arc::new(PostgresJsonRepository::<EntradaHistorialCliente>::new(
                    &store,
                )),
                notificaciones: Arc::new(PostgresJsonRepository::<NotificacionesReserva>::new(
                    &store,
                )),
                pagos: Arc::new(PostgresJsonRepository::<Pago>::new(&store)),
                confirmaciones: Arc::new(PostgresJsonRepository::<ConfirmacionGds>::new(&store)),
                sagas: Arc::new(store),
            }
        }
    })
}

/// The running system.
pub struct System {
    /// Where the HTTP API listens (when this process runs it).
    pub http_addr: Option<SocketAddr>,
    /// Where the UI BFF listens (when this process runs it).
    pub ui_addr: Option<SocketAddr>,
    /// The application's bus.
    pub bus: Bus,
    /// The in-memory broker, when the system runs on it (tests inspect its topics).
    pub embedded: Option<MemoryBroker>,
    /// The register the process's loops report to (what `/health` shows).
    pub health: Health,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

async fn listen(addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Listen { addr, source })
}

async fn until(mut stopped: watch::Receiver<bool>) {
    let _ = stopped.wait_for(|stop| *stop).await;
}

/// Spawns a supervisor; its restart count is in the log already.
fn spawn_supervised(supervisor: impl Future<Output = u32> + Send + 'static) -> JoinHandle<()> {
    tokio::spawn(async move {
        supervisor.await;
    })
}

/// A run for [`supervise`]: the first run uses `first` (subscribed before anything was
/// published), every restart subscribes again to the same durable subscription, then `run`s.
fn resubscribing<F, Fut>(
    broker: Arc<dyn Subscriber>,
    options: SubscriptionOptions,
    first: Box<dyn Consumer>,
    run: F,
) -> impl FnMut() -> Pin<Box<dyn Future<Output = seedwork::Result<()>> + Send>>
where
    F: Fn(Box<dyn Consumer>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = seedwork::Result<()>> + Send + 'static,
{
    let run = Arc::new(run);
    let mut first = Some(first);
    move || {
        let first = first.take();
        let (broker, options, run) = (Arc::clone(&broker), options.clone(), Arc::clone(&run));
        Box::pin(async move {
            let consumer = match first {
                Some(consumer) => consumer,
                None => broker.subscribe(options).await?,
            };
            run(consumer).await
        })
    }
}

/// Both ends of the wire, one broker behind them; the in-memory broker too when it is that one.
struct Wire {
    publisher: Arc<dyn Publisher>,
    subscriber: Arc<dyn Subscriber>,
    embedded: Option<MemoryBroker>,
    /// The durable transport's topic log, to purge (none for other brokers).
    log: Option<Arc<dyn TopicLog>>,
}

impl Wire {
    fn new<B: Publisher + Subscriber + 'static>(broker: B, embedded: Option<MemoryBroker>) -> Self {
        let broker = Arc::new(broker);
        Wire {
            publisher: broker.clone(),
            subscriber: broker,
            embedded,
            log: None,
        }
    }

    fn transport<T: Publisher + Subscriber + TopicLog + 'static>(transport: T) -> Self {
        let transport = Arc::new(transport);
        Wire {
            publisher: transport.clone(),
            subscriber: transport.clone(),
            embedded: None,
            log: Some(transport),
        }
    }
}

/// How long the durable transport keeps a message every subscription has acknowledged, for
/// inspection, before the retention task deletes it. Without the purge the log grows with
/// every message ever sent.
pub const TOPIC_LOG_RETENTION: Duration = Duration::from_secs(24 * 3600);
/// How often the topic log is purged.
pub const TOPIC_LOG_PURGE_EVERY: Duration = Duration::from_secs(3600);

/// The durable transport's log retention, whichever database it is on.
#[seedwork::async_trait]
trait TopicLog: Send + Sync {
    async fn purge_log(&self, older_than: Duration) -> seedwork::Result<u64>;
}

#[seedwork::async_trait]
impl TopicLog for SqliteTransport {
    async fn purge_log(&self, older_than: Duration) -> seedwork::Result<u64> {
        SqliteTransport::purge_log(self, older_than).await
    }
}

#[seedwork::async_trait]
impl TopicLog for PostgresTransport {
    async fn purge_log(&self, older_than: Duration) -> seedwork::Result<u64> {
        PostgresTransport::purge_log(self, older_than).await
    }
}

/// Purges the topic log every [`TOPIC_LOG_PURGE_EVERY`] until `shutdown`; a failed purge is
/// an error for the supervisor.
async fn purge_topic_log(
    log: Arc<dyn TopicLog>,
    shutdown: impl Future<Output = ()>,
) -> seedwork::Result<()> {
    tokio::pin!(shutdown);
    let mut every = tokio::time::interval(TOPIC_LOG_PURGE_EVERY);
    loop {
        tokio::select! {
            _ = &mut shutdown => return Ok(()),
            _ = every.tick() => {}
        }
        let purged = log.purge_log(TOPIC_LOG_RETENTION).await?;
        tracing::debug!(purged, "topic log purged");
    }
}

fn memory_broker() -> Wire {
    let broker = MemoryBroker::new();
    Wire::new(broker.clone(), Some(broker))
}

async fn broker(choice: &BrokerChoice, transport: Option<Wire>) -> Result<Wire, StartError> {
    match choice {
        BrokerChoice::Database => Ok(transport.unwrap_or_else(memory_broker)),
        BrokerChoice::Memory => Ok(memory_broker()),
        #[cfg(feature = "pulsar")]
        BrokerChoice::Pulsar(url) => {
            use crate::vuelos::infraestructura::schema::v1::TOPICO_EVENTOS;
            use seedwork_pulsar::{Batching, PulsarBroker};
            // No schema is declared: each topic gets the one derived from its message types
            // (schema/v1.rs), which the Python services' records match.
            let broker = PulsarBroker::builder(url.clone())
                // Batches for throughput, except on the events topics: the notification
                // service's copies share `ciclo-reserva` through a Key_Shared subscription,
                // which the broker routes by key only when each entry is one event.
                .batching(Batching::on())
                .unbatched(TOPICO_CICLO)
                .unbatched(TOPICO_EVENTOS)
                .connect()
                .await
                .map_err(|e| StartError::Broker(e.to_string()))?;
            Ok(Wire::new(broker, None))
        }
        #[cfg(not(feature = "pulsar"))]
        BrokerChoice::Pulsar(url) => Err(StartError::Broker(format!(
            "{url}: this build has no Pulsar support; build with `--features pulsar` \
             (needs protoc and the OpenSSL headers, see the README)"
        ))),
    }
}

/// This machine's name (`HOSTNAME`, else `/etc/hostname`), to tell processes on different
/// machines apart; `localhost` when neither says.
pub fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// Starts the configured services; returns once they all listen.
pub async fn start(config: Config) -> Result<System, StartError> {
    let services = config.services;
    let direct = matches!(config.broker, BrokerChoice::Database);
    let mut backend = backend(&config.database, direct).await?;
    let wire = broker(&config.broker, backend.transport.take()).await?;
    let broker = &wire.subscriber;
    let sagas = Sagas::new(Arc::clone(&backend.sagas))
        .orchestration(coordinador_reservas(config.plazo_saga));
    let coordinator = services.api && config.sagas;
    let mut builder = Bus::builder()
        .service_name("alpespartners")
        .store(Arc::clone(&backend.store))
        .provide_arc(backend.reservas)
        .provide_arc(Arc::clone(&backend.lista))
        .provide_arc(Arc::clone(&backend.analitica))
        .provide_arc(backend.historiales)
        .provide_arc(backend.notificaciones)
        .provide_arc(backend.pagos)
        .provide_arc(backend.confirmaciones)
        .provide_arc(Arc::clone(&backend.sagas))
        .provide_arc(config.correo)
        .registered();
    if coordinator {
        builder = builder.sagas(&sagas);
    }
    let bus = builder.build()?;

    let (stop, stopped) = watch::channel(false);
    let mut tasks = Vec::new();
    let health = Health::new();

    // Subscriptions first: a subscription only gets what is published after it exists.
    let mut consumers = Vec::new();
    if services.api {
        let options = SubscriptionOptions::new(TOPICO_COMANDOS, SUSCRIPCION_COMANDOS);
        // Several consumers of the Shared subscription where writers run in parallel.
        let count = match (&config.database, &config.broker) {
            (Database::Postgres(_), BrokerChoice::Database) => COMMAND_CONSUMERS_ON_POSTGRES,
            _ => 1,
        };
        for n in 1..=count {
            let consumer = broker.subscribe(options.clone()).await?;
            let name = match n {
                1 => "commands".to_string(),
                n => format!("commands-{n}"),
            };
            consumers.push((name, options.clone(), consumer));
        }
    }
    if services.api {
        // The saga's requests to `vuelos`.
        for (topic, subscription, name) in [
            (TOPICO_APROBAR, SUSCRIPCION_APROBAR, "aprobar"),
            (TOPICO_CANCELAR, SUSCRIPCION_CANCELAR, "cancelar"),
        ] {
            let options = SubscriptionOptions::new(topic, subscription);
            let consumer = broker.subscribe(options.clone()).await?;
            consumers.push((name.to_string(), options, consumer));
        }
    }
    if coordinator {
        // The coordinator reads each topic it listens to through a subscription of its own.
        for options in sagas.subscriptions() {
            let consumer = broker.subscribe(options.clone()).await?;
            consumers.push((format!("saga:{}", options.topic), options, consumer));
        }
    }
    if services.pagos {
        for (topic, subscription, name) in [
            (
                pagos_schema::TOPICO_PAGAR,
                pagos_consumidores::SUSCRIPCION_PAGAR,
                "pagos",
            ),
            (
                pagos_schema::TOPICO_REVERTIR,
                pagos_consumidores::SUSCRIPCION_REVERTIR,
                "pagos:revertir",
            ),
        ] {
            let options = SubscriptionOptions::new(topic, subscription);
            let consumer = broker.subscribe(options.clone()).await?;
            consumers.push((name.to_string(), options, consumer));
        }
    }
    if services.integracion_gds {
        for (topic, subscription, name) in [
            (
                gds_schema::TOPICO_CONFIRMAR,
                gds_consumidores::SUSCRIPCION_CONFIRMAR,
                "gds",
            ),
            (
                gds_schema::TOPICO_REVERTIR,
                gds_consumidores::SUSCRIPCION_REVERTIR,
                "gds:revertir",
            ),
        ] {
            let options = SubscriptionOptions::new(topic, subscription);
            let consumer = broker.subscribe(options.clone()).await?;
            consumers.push((name.to_string(), options, consumer));
        }
    }
    if services.notificaciones {
        // Key_Shared: a reservation's events (created, approved, paid) reach one copy of the
        // service at a time, in order, however many copies share the subscription.
        let options = SubscriptionOptions::new(TOPICO_CICLO, notificaciones::SUSCRIPCION)
            .kind(SubscriptionKind::KeyShared);
        let consumer = broker.subscribe(options.clone()).await?;
        consumers.push(("notificaciones".to_string(), options, consumer));
    }
    // Each UI process forwards every event to its own browsers, so each has a subscription of
    // its own, named after the address it serves (one process per address and host at a
    // time), non-durable: it goes away with the process (see `ui::suscripcion_de`). The
    // durable one an earlier version made for the same address is deleted first.
    let ui_side = if services.ui {
        let ui_listener = listen(config.ui).await?;
        let addr = ui_listener
            .local_addr()
            .map_err(|source| StartError::Listen {
                addr: config.ui,
                source,
            })?;
        let legacy = ui::suscripcion_durable_anterior(&host_name(), addr);
        if let Err(error) = broker.unsubscribe(TOPICO_CICLO, &legacy).await {
            tracing::warn!(%error, subscription = %legacy, "an earlier version's UI subscription was not deleted");
        }
        let name = ui::suscripcion_de(&host_name(), addr);
        let options = SubscriptionOptions::new(TOPICO_CICLO, name).durable(false);
        let events = broker.subscribe(options.clone()).await?;
        Some((ui_listener, addr, options, events))
    } else {
        None
    };

    for (name, options, consumer) in consumers {
        let part = health.part(format!("consumer:{name}"));
        let consume = ConsumeOptions::new()
            .report_to(part.clone())
            .batch(CONSUMER_BATCH);
        tasks.push(spawn_supervised(supervise(
            part,
            RestartPolicy::default(),
            until(stopped.clone()),
            resubscribing(Arc::clone(broker), options, consumer, {
                let bus = bus.clone();
                let stopped = stopped.clone();
                move |consumer| {
                    let (bus, consume, stopped) = (bus.clone(), consume.clone(), stopped.clone());
                    async move { bus.consume_with(consumer, &consume, until(stopped)).await }
                }
            }),
        )));
    }

    if coordinator {
        // Steps that get no answer in time take their failure path; the deadlines are in the
        // store, so those that passed while the process was down are taken on restart.
        let deadlines = sagas
            .deadlines(bus.clone())
            .poll_interval(config.sondeo_plazos);
        tasks.push(tokio::spawn(deadlines.run(until(stopped.clone()))));
    }

    if services.consumes() {
        // The consumers' inbox keeps processed message ids for the default deduplication
        // window (7 days); a duplicate arriving later is handled again.
        let retention = InboxRetention::new(Arc::clone(&backend.inbox));
        tasks.push(tokio::spawn(retention.run(until(stopped.clone()))));
    }

    if services.writes() {
        // They write the outbox (events; replies; the page's commands). Relays share it
        // safely.
        let part = health.part("relay");
        let outbox = Arc::clone(&backend.outbox);
        let publisher = Arc::clone(&wire.publisher);
        let poll = config.relay_poll;
        let stop_relay = stopped.clone();
        let relay_part = part.clone();
        tasks.push(spawn_supervised(supervise(
            part,
            RestartPolicy::default(),
            until(stopped.clone()),
            move || {
                let relay = OutboxRelay::new(Arc::clone(&outbox), Arc::clone(&publisher))
                    .poll_interval(poll)
                    .batch_size(RELAY_BATCH)
                    .max_in_flight(RELAY_IN_FLIGHT)
                    .report_to(relay_part.clone());
                let stopped = stop_relay.clone();
                async move {
                    relay.run(until(stopped)).await;
                    Ok(())
                }
            },
        )));
    }

    if let Some(log) = wire.log.clone() {
        let stopped_purge = stopped.clone();
        tasks.push(spawn_supervised(supervise(
            health.part("transport:retention"),
            RestartPolicy::default(),
            until(stopped.clone()),
            move || purge_topic_log(Arc::clone(&log), until(stopped_purge.clone())),
        )));
    }

    // The read models of the list queries, kept from the event store by the API's process.
    let mut projections = Vec::new();
    if services.api {
        let lista: Arc<dyn Projection> = Arc::new(ProyeccionReservasLista::new(backend.lista));
        let totales: Arc<dyn Projection> =
            Arc::new(ProyeccionReservasTotales::new(backend.analitica));
        for projection in [lista, totales] {
            let projection_name = projection.name().to_string();
            let runner = ProjectionRunner::new(
                bus.clone(),
                Arc::clone(&backend.eventos),
                Arc::clone(&backend.checkpoints),
                projection,
            )
            .poll_interval(config.sondeo_proyecciones)
            .report_to(health.part(format!("projection:{}", projection_name)));
            if config.reconstruir_proyecciones {
                let replayed = runner.rebuild().await?;
                tracing::info!(projection = runner.name(), replayed, "projection rebuilt");
            }
            let runner = Arc::new(runner);
            let following = Arc::clone(&runner);
            let shutdown = until(stopped.clone());
            tasks.push(tokio::spawn(async move { following.run(shutdown).await }));
            projections.push(runner);
        }
    }

    let mut http_addr = None;
    if services.api {
        let http = listen(config.http).await?;
        http_addr = Some(http.local_addr().map_err(|source| StartError::Listen {
            addr: config.http,
            source,
        })?);
        let mut check = HealthCheck::new(health.clone());
        if let Some(writer) = &backend.writer {
            check = check.writer(Arc::clone(writer));
        }
        let check = check
            .store(Arc::clone(&backend.store))
            .outbox(Arc::clone(&backend.outbox))
            .broker(Arc::clone(&wire.publisher))
            .with_projections(projections);
        let api = crate::api::router_with_health(bus.clone(), check);
        let shutdown = until(stopped.clone());
        tasks.push(tokio::spawn(async move {
            if let Err(error) = axum::serve(http, api)
                .with_graceful_shutdown(shutdown)
                .await
            {
                tracing::error!(%error, "http server stopped");
            }
        }));
    }

    let mut ui_addr = None;
    if let Some((ui_listener, addr, ui_options, ui_events)) = ui_side {
        ui_addr = Some(addr);
        let origins = vec![
            format!("http://{addr}"),
            format!("http://localhost:{}", addr.port()),
            format!("http://127.0.0.1:{}", addr.port()),
        ];
        let bff = Bff::new(bus.clone(), origins);
        tasks.push(spawn_supervised(supervise(
            health.part("ui:forwarder"),
            RestartPolicy::default(),
            until(stopped.clone()),
            resubscribing(Arc::clone(broker), ui_options, ui_events, {
                let (bff, stopped) = (bff.clone(), stopped.clone());
                move |consumer| bff.clone().forward(consumer, until(stopped.clone()))
            }),
        )));
        let ui_router = bff.router();
        let shutdown = until(stopped.clone());
        tasks.push(tokio::spawn(async move {
            if let Err(error) = axum::serve(ui_listener, ui_router)
                .with_graceful_shutdown(shutdown)
                .await
            {
                tracing::error!(%error, "ui server stopped");
            }
        }));
    }

    Ok(System {
        http_addr,
        ui_addr,
        bus,
        embedded: wire.embedded,
        health,
        stop,
        tasks,
    })
}

impl System {
    /// Stops every part and waits for them.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            // A websocket session may keep a server task alive; do not wait forever.
            if tokio::time::timeout(Duration::from_secs(5), task)
                .await
                .is_err()
            {
                tracing::warn!("a task did not stop within 5 s");
            }
        }
    }
}
