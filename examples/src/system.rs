//! Wiring: the whole system in one process — the HTTP API, the command consumer, the outbox
//! relay, `notificaciones` and the UI BFF — over one store and one broker.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use seedwork::domain::Repository;
use seedwork::memory::{MemoryBroker, MemoryRepository, MemoryStore};
use seedwork::messaging::{OutboxRelay, OutboxStore, Subscriber, SubscriptionOptions};
use seedwork::uow::TransactionalStore;
use seedwork::{BuildError, Bus};
use seedwork_sqlx::{PostgresJsonRepository, PostgresStore, SqliteJsonRepository, SqliteStore};

use crate::cliente::HistorialCliente;
use crate::notificaciones::{self, EnviadorCorreo};
use crate::ui::{self, Bff};
use crate::vuelos::dominio::Reserva;
use crate::vuelos::infraestructura::consumidores::SUSCRIPCION_COMANDOS;
use crate::vuelos::infraestructura::schema::v1::{TOPICO_COMANDOS, TOPICO_EVENTOS};

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
    store: Arc<dyn TransactionalStore>,
    outbox: Arc<dyn OutboxStore>,
    reservas: Arc<dyn Repository<Reserva>>,
    historiales: Arc<dyn Repository<HistorialCliente>>,
}

async fn backend(database: &Database) -> Result<Backend, StartError> {
    Ok(match database {
        Database::Memory => {
            let store = MemoryStore::new();
            Backend {
                store: Arc::new(store.clone()),
                outbox: Arc::new(store.clone()),
                reservas: Arc::new(MemoryRepository::<Reserva>::new(store.clone())),
                historiales: Arc::new(MemoryRepository::<HistorialCliente>::new(store)),
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
                store: Arc::new(store.clone()),
                outbox: Arc::new(store.clone()),
                reservas: Arc::new(SqliteJsonRepository::<Reserva>::new(&store)),
                historiales: Arc::new(SqliteJsonRepository::<HistorialCliente>::new(&store)),
            }
        }
        Database::Postgres(url) => {
            let store = PostgresStore::open(url).await?;
            Backend {
                store: Arc::new(store.clone()),
                outbox: Arc::new(store.clone()),
                reservas: Arc::new(PostgresJsonRepository::<Reserva>::new(&store)),
                historiales: Arc::new(PostgresJsonRepository::<HistorialCliente>::new(&store)),
            }
        }
    })
}

/// The running system.
pub struct System {
    /// Where the HTTP API listens.
    pub http_addr: SocketAddr,
    /// Where the UI BFF listens.
    pub ui_addr: SocketAddr,
    /// The application's bus.
    pub bus: Bus,
    /// The broker (embedded).
    pub broker: MemoryBroker,
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

/// Starts every part; returns once they all listen.
pub async fn start(config: Config) -> Result<System, StartError> {
    let backend = backend(&config.database).await?;
    let broker = MemoryBroker::new();
    let bus = Bus::builder()
        .service_name("alpespartners")
        .store(Arc::clone(&backend.store))
        .provide_arc(backend.reservas)
        .provide_arc(backend.historiales)
        .provide_arc(config.correo)
        .registered()
        .build()?;

    let (stop, stopped) = watch::channel(false);
    let mut tasks = Vec::new();

    // Subscriptions first: a subscription only gets what is published after it exists.
    let commands = broker
        .subscribe(SubscriptionOptions::new(
            TOPICO_COMANDOS,
            SUSCRIPCION_COMANDOS,
        ))
        .await?;
    let notifications = broker
        .subscribe(SubscriptionOptions::new(
            TOPICO_EVENTOS,
            notificaciones::SUSCRIPCION,
        ))
        .await?;
    let ui_events = broker
        .subscribe(SubscriptionOptions::new(TOPICO_EVENTOS, ui::SUSCRIPCION))
        .await?;

    for (name, consumer) in [("commands", commands), ("notificaciones", notifications)] {
        let bus = bus.clone();
        let shutdown = until(stopped.clone());
        tasks.push(tokio::spawn(async move {
            if let Err(error) = bus.consume(consumer, shutdown).await {
                tracing::error!(%error, consumer = name, "consumer stopped");
            }
        }));
    }

    let relay =
        OutboxRelay::new(backend.outbox, Arc::new(broker.clone())).poll_interval(config.relay_poll);
    tasks.push(tokio::spawn(relay.run(until(stopped.clone()))));

    let http = listen(config.http).await?;
    let ui_listener = listen(config.ui).await?;
    let http_addr = http.local_addr().map_err(|source| StartError::Listen {
        addr: config.http,
        source,
    })?;
    let ui_addr = ui_listener
        .local_addr()
        .map_err(|source| StartError::Listen {
            addr: config.ui,
            source,
        })?;

    let origins = vec![
        format!("http://{ui_addr}"),
        format!("http://localhost:{}", ui_addr.port()),
        format!("http://127.0.0.1:{}", ui_addr.port()),
    ];
    let bff = Bff::new(bus.clone(), origins);
    let forward = bff.clone().forward(ui_events, until(stopped.clone()));
    tasks.push(tokio::spawn(async move {
        if let Err(error) = forward.await {
            tracing::error!(%error, "ui forwarder stopped");
        }
    }));

    let api = crate::api::router(bus.clone());
    let shutdown = until(stopped.clone());
    tasks.push(tokio::spawn(async move {
        if let Err(error) = axum::serve(http, api)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!(%error, "http server stopped");
        }
    }));
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

    Ok(System {
        http_addr,
        ui_addr,
        bus,
        broker,
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
