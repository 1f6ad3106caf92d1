//! The two frameworks' write and read paths, behind one [`Side`].

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::{anyhow, ensure, Context, Result};
use cqrs_es::persist::PersistedEventStore;
use cqrs_es::{AggregateContext, EventStore as _};
use postgres_es::{PostgresCqrs, PostgresEventRepository};
use seedwork::application::Bus;
use seedwork::domain::{EventMetadata, Repository};
use seedwork::eventsourcing::{EventSourced, EventSourcedRepository};
use seedwork_sqlx::PostgresStore;
use sqlx08::PgPool;

use crate::model::{cqrs_side, seedwork_side, Deposit};

/// Which framework.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Framework {
    /// seedwork's PostgreSQL event store (`seedwork-sqlx`).
    Seedwork,
    /// cqrs-es with postgres-es's event repository.
    CqrsEs,
}

impl Framework {
    /// Its name in the report.
    pub fn label(self) -> &'static str {
        match self {
            Framework::Seedwork => "seedwork",
            Framework::CqrsEs => "cqrs-es",
        }
    }

    /// The table its events are in (for the harness's checks).
    pub fn events_table(self) -> &'static str {
        match self {
            Framework::Seedwork => "seedwork_events",
            Framework::CqrsEs => "events",
        }
    }

    /// The statements that empty its tables.
    pub fn reset_sql(self) -> &'static [&'static str] {
        match self {
            Framework::Seedwork => &["TRUNCATE seedwork_events, seedwork_snapshots"],
            Framework::CqrsEs => &["TRUNCATE events, snapshots"],
        }
    }
}

/// seedwork: a unit of work per command, the aggregate loaded and saved through
/// [`EventSourcedRepository`] (no snapshots), committed through the bus's unit of work.
pub struct SeedworkSide {
    bus: Bus,
    accounts: EventSourcedRepository<seedwork_side::Account>,
}

impl SeedworkSide {
    /// On `store` (connected and migrated).
    pub fn new(store: &PostgresStore) -> Result<Self> {
        let bus = Bus::builder()
            .store(Arc::new(store.clone()))
            .build()
            .context("building seedwork's bus")?;
        Ok(SeedworkSide {
            bus,
            accounts: EventSourcedRepository::new(Arc::new(store.clone())),
        })
    }

    async fn execute(&self, id: &str, command: Deposit) -> Result<()> {
        let id = id.to_string();
        let mut uow = self.bus.unit_of_work().await?;
        let (mut account, new) = match self.accounts.get_for_update(&mut uow, &id).await? {
            Some(account) => (account, false),
            None => (seedwork_side::Account::empty(&id), true),
        };
        account.deposit(command)?;
        if new {
            self.accounts.add(&mut uow, &mut account).await?;
        } else {
            self.accounts.update(&mut uow, &mut account).await?;
        }
        uow.commit().await?;
        Ok(())
    }

    async fn load(&self, id: &str) -> Result<u64> {
        let account = self
            .accounts
            .get(&id.to_string())
            .await?
            .with_context(|| format!("seedwork: account {id} not found"))?;
        Ok(account.deposits)
    }
}

/// cqrs-es: `CqrsFramework::execute` on postgres-es's event repository (no snapshots, no
/// queries); loads through the same event store's `load_aggregate`, what `execute` does before
/// it handles a command.
pub struct CqrsSide {
    cqrs: PostgresCqrs<cqrs_side::Account>,
    events: PersistedEventStore<PostgresEventRepository, cqrs_side::Account>,
    with_metadata: bool,
}

impl CqrsSide {
    /// On `pool`, whose database has the `events` and `snapshots` tables; `with_metadata`:
    /// each command passes an event id and a time as the events' metadata (`--cqrs-metadata`).
    pub fn new(pool: &PgPool, with_metadata: bool) -> Self {
        CqrsSide {
            cqrs: postgres_es::postgres_cqrs(pool.clone(), Vec::new(), ()),
            events: PersistedEventStore::new_event_store(PostgresEventRepository::new(
                pool.clone(),
            )),
            with_metadata,
        }
    }

    async fn execute(&self, id: &str, command: Deposit) -> Result<()> {
        let metadata = if self.with_metadata {
            event_id_and_time()?
        } else {
            HashMap::new()
        };
        self.cqrs
            .execute_with_metadata(id, command, metadata)
            .await
            .map_err(|error| anyhow!("cqrs-es: {error}"))
    }

    async fn load(&self, id: &str) -> Result<u64> {
        let mut context = self
            .events
            .load_aggregate(id)
            .await
            .map_err(|error| anyhow!("cqrs-es: {error}"))?;
        Ok(context.aggregate().deposits)
    }
}

/// One framework under test.
pub enum Side {
    /// seedwork.
    Seedwork(SeedworkSide),
    /// cqrs-es + postgres-es.
    CqrsEs(Box<CqrsSide>),
}

impl Side {
    /// Which framework.
    pub fn framework(&self) -> Framework {
        match self {
            Side::Seedwork(_) => Framework::Seedwork,
            Side::CqrsEs(_) => Framework::CqrsEs,
        }
    }

    /// Runs the `n`-th command on account `id` (the first one creates it).
    pub async fn command(&self, id: &str, n: u64) -> Result<()> {
        let command = Deposit::nth(n);
        match self {
            Side::Seedwork(side) => side.execute(id, command).await,
            Side::CqrsEs(side) => side.execute(id, command).await,
        }
    }

    /// Loads account `id` whole and checks it has `deposits` events.
    pub async fn load(&self, id: &str, deposits: u64) -> Result<()> {
        let found = match self {
            Side::Seedwork(side) => side.load(id).await?,
            Side::CqrsEs(side) => side.load(id).await?,
        };
        ensure!(
            found == deposits,
            "{}: account {id} loaded with {found} deposits, {deposits} expected",
            self.framework().label()
        );
        Ok(())
    }
}

/// What seedwork's event carries in its payload (`EventMetadata`: an id and a time, as seedwork
/// writes them), as cqrs-es metadata: the same information stored on both sides.
fn event_id_and_time() -> Result<HashMap<String, String>> {
    let metadata = serde_json::to_value(EventMetadata::now())?;
    ["event_id", "occurred_at"]
        .into_iter()
        .map(|key| {
            let value = metadata[key]
                .as_str()
                .with_context(|| format!("EventMetadata has no text `{key}`"))?;
            Ok((key.to_string(), value.to_string()))
        })
        .collect()
}
