//! # seedwork-sqlx
//!
//! SQLite and PostgreSQL for [`seedwork`], on sqlx: the unit of work's transactions (with
//! savepoints), the transactional outbox and the store its relay reads, the consumers' inbox, a
//! document repository for aggregates, and the migrations for all of it.
//!
//! | feature | module | store |
//! |---|---|---|
//! | `sqlite` (default) | [`sqlite`] | [`SqliteStore`] |
//! | `postgres` | [`postgres`] | [`PostgresStore`] |
//!
//! Both implement [`TransactionalStore`](seedwork::uow::TransactionalStore) (give it to
//! `Bus::builder().store(...)`) and [`OutboxStore`](seedwork::messaging::OutboxStore) (give it
//! to an [`OutboxRelay`](seedwork::messaging::OutboxRelay)). No `DATABASE_URL` is needed to
//! build: every statement is checked at run time, and the migrations are embedded with
//! `sqlx::migrate!` and applied by [`SqliteStore::migrate`] (or `open`, which connects and
//! migrates).
//!
//! The store, its transaction and the document repository are written once, generic over a
//! sealed [`Dialect`](dialect::Dialect) ([`SqlStore`], [`SqlTransaction`], [`JsonRepository`]);
//! the backend names above are aliases of them, and each backend module holds its own SQL.
//!
//! Failures are [`seedwork::Error`]s: `Store` when the database fails, `Codec` (a fault of the
//! system, never of the caller) when stored data does not read back, with the adapter's typed
//! error, then sqlx's or serde_json's, reachable through [`std::error::Error::source`].
//!
//! ## Writing a repository
//! The shortest path is [`SqliteJsonRepository`] / [`PostgresJsonRepository`]: any aggregate
//! that serializes with serde (its `AggregateState` marked `#[serde(skip)]`) is stored as a
//! versioned JSON document, with optimistic concurrency, and nothing else to write.
#![cfg_attr(
    feature = "sqlite",
    doc = r##"
```
use std::sync::Arc;
use serde::{Deserialize, Serialize};
use seedwork::prelude::*;
use seedwork::domain::{AggregateState, Entity};
use seedwork_sqlx::{SqliteJsonRepository, SqliteStore};

#[derive(Clone, Serialize, Deserialize)]
struct Cliente {
    id: String,
    nombre: String,
    #[serde(skip)]
    state: AggregateState,
}
impl Entity for Cliente {
    type Id = String;
    fn id(&self) -> &String { &self.id }
}
impl AggregateRoot for Cliente {
    const TYPE: &'static str = "Cliente";
    fn state(&self) -> &AggregateState { &self.state }
    fn state_mut(&mut self) -> &mut AggregateState { &mut self.state }
}

# tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
let path = std::env::temp_dir().join(format!("seedwork-doc-{}.db", std::process::id()));
let store = SqliteStore::open(path.to_str().unwrap()).await?;
let clientes = SqliteJsonRepository::<Cliente>::new(&store);
let bus = Bus::builder().store(Arc::new(store.clone())).build()?;

let mut uow = bus.unit_of_work().await?;
let mut ana = Cliente { id: "c-1".into(), nombre: "Ana".into(), state: AggregateState::new() };
clientes.add(&mut uow, &mut ana).await?;
uow.commit().await?;

let mut stale = clientes.get(&"c-1".to_string()).await?.expect("stored");
let mut fresh = stale.clone();
fresh.nombre = "Ana María".into();
let mut uow = bus.unit_of_work().await?;
clientes.update(&mut uow, &mut fresh).await?;
uow.commit().await?;

// The copy loaded before that update is stale: a typed conflict, not a lost update.
stale.nombre = "Anita".into();
let mut uow = bus.unit_of_work().await?;
let err = clientes.update(&mut uow, &mut stale).await.unwrap_err();
assert!(matches!(err, Error::Conflict { expected: 1, .. }));
# drop(uow);
# std::fs::remove_file(&path).ok();
# Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
```
"##
)]
//!
//! For a table of your own, run statements on the unit of work's connection, and map "zero
//! rows updated" to a conflict with [`expect_one_row`]:
#![cfg_attr(
    feature = "sqlite",
    doc = r##"
```
use seedwork::prelude::*;
use seedwork_sqlx::{expect_one_row, SqliteTransaction};

struct Asientos;

impl Asientos {
    /// Takes one seat of a flight, if the caller's view (version) is current.
    async fn reservar(&self, uow: &mut UnitOfWork, vuelo: &str, version: u64) -> Result<()> {
        let tx = uow.transaction::<SqliteTransaction>()?;
        let done = sqlx::query(
            "UPDATE asientos SET libres = libres - 1, version = version + 1 \
             WHERE vuelo = ? AND version = ? AND libres > 0",
        )
        .bind(vuelo)
        .bind(version as i64)
        .execute(tx.connection().await?)
        .await
        .map_err(Error::store)?;
        expect_one_row(done.rows_affected(), "Vuelo", vuelo, version)
    }
}
```
"##
)]
//!
//! ## Relaying the outbox
//! ```no_run
//! # #[cfg(feature = "sqlite")]
//! # async fn run(publisher: std::sync::Arc<dyn seedwork::messaging::Publisher>) -> seedwork::Result<()> {
//! use std::sync::Arc;
//! use seedwork::messaging::OutboxRelay;
//! let store = seedwork_sqlx::SqliteStore::open("sqlite://data/app.db").await?;
//! OutboxRelay::new(Arc::new(store), publisher).run(std::future::pending()).await;
//! # Ok(()) }
//! ```
#![deny(missing_docs)]
// The crate-level docs and a few others name both backends; with one of the two features off,
// the other's items do not exist and those links cannot resolve. docs.rs builds with every
// feature (`package.metadata.docs.rs`), where they all do.
#![cfg_attr(
    not(all(feature = "sqlite", feature = "postgres")),
    allow(rustdoc::broken_intra_doc_links)
)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod dialect;
mod error;
mod event_store;
mod repository;
mod saga_store;
mod shared;
mod store;
mod transaction;

#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "sqlite")]
pub mod sqlite;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub mod transport;

pub use repository::JsonRepository;
pub use shared::writer_gate::WriterStats;
pub use store::SqlStore;
pub use transaction::SqlTransaction;

/// The PostgreSQL store: [`SqlStore`] on the [`postgres::Postgres`] dialect.
#[cfg(feature = "postgres")]
pub type PostgresStore = SqlStore<postgres::Postgres>;
/// A PostgreSQL transaction: reach it with `uow.transaction::<PostgresTransaction>()`.
#[cfg(feature = "postgres")]
pub type PostgresTransaction = SqlTransaction<postgres::Postgres>;
/// The PostgreSQL document repository for aggregate `A`.
#[cfg(feature = "postgres")]
pub type PostgresJsonRepository<A> = JsonRepository<postgres::Postgres, A>;

/// The SQLite store: [`SqlStore`] on the [`sqlite::Sqlite`] dialect.
#[cfg(feature = "sqlite")]
pub type SqliteStore = SqlStore<sqlite::Sqlite>;
/// A SQLite transaction: reach it with `uow.transaction::<SqliteTransaction>()`.
#[cfg(feature = "sqlite")]
pub type SqliteTransaction = SqlTransaction<sqlite::Sqlite>;
/// The SQLite document repository for aggregate `A`.
#[cfg(feature = "sqlite")]
pub type SqliteJsonRepository<A> = JsonRepository<sqlite::Sqlite, A>;

#[cfg(feature = "postgres")]
pub use transport::postgres::PostgresTransport;
#[cfg(feature = "sqlite")]
pub use transport::sqlite::SqliteTransport;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub use transport::{SqlTransport, TransportConsumer, TransportSettings};

/// Re-exported so repositories can name the driver types without a separate dependency.
pub use sqlx;

/// Maps the row count of a versioned `UPDATE … WHERE id = ? AND version = ?` to the outcome:
/// one row is success, zero rows is [`Conflict`](seedwork::Error::Conflict) (someone changed
/// it, or it is gone).
pub fn expect_one_row(
    rows_affected: u64,
    aggregate: &'static str,
    id: impl std::fmt::Display,
    expected_version: u64,
) -> seedwork::Result<()> {
    if rows_affected == 1 {
        Ok(())
    } else {
        Err(seedwork::Error::Conflict {
            aggregate,
            id: id.to_string(),
            expected: expected_version,
        })
    }
}
