//! `--breakdown`: where one command's and one load's time goes, one at a time, through the
//! frameworks' public pieces (medians).
//!
//! seedwork's command is timed piece by piece: `Bus::unit_of_work` (a pooled connection and
//! `BEGIN`), `get_for_update` (the events: no snapshot lookup without `snapshot_every`), `add`/`update`
//! (the append) and `commit`; its load as `Repository::get` and, apart, `EventStore::load`
//! and the snapshot lookup `EventStore::load_snapshot` that a repository with snapshots adds. cqrs-es's command is timed whole
//! (`execute`), its load as `load_aggregate` and the repository's `get_events` alone.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use cqrs_es::persist::{PersistedEventRepository, PersistedEventStore};
use cqrs_es::EventStore as _;
use postgres_es::PostgresEventRepository;
use seedwork::application::Bus;
use seedwork::domain::{AggregateRoot, Repository};
use seedwork::eventsourcing::{EventSourced, EventSourcedRepository, EventStore};
use seedwork_sqlx::PostgresStore;
use sqlx08::PgPool;

use crate::model::{cqrs_side, seedwork_side, Deposit};

/// Medians, in milliseconds.
#[derive(Debug, Clone, Default)]
pub struct Breakdown {
    /// Commands timed per framework.
    pub commands: usize,
    /// Loads timed per piece.
    pub loads: usize,
    /// seedwork: the whole command.
    pub seedwork_command: f64,
    /// seedwork: `Bus::unit_of_work`.
    pub seedwork_begin: f64,
    /// seedwork: `get_for_update`.
    pub seedwork_get_for_update: f64,
    /// seedwork: `add` or `update`.
    pub seedwork_save: f64,
    /// seedwork: `UnitOfWork::commit`.
    pub seedwork_commit: f64,
    /// cqrs-es: `execute`.
    pub cqrs_execute: f64,
    /// seedwork: `Repository::get`.
    pub seedwork_get: f64,
    /// seedwork: `EventStore::load_snapshot` alone.
    pub seedwork_load_snapshot: f64,
    /// seedwork: `EventStore::load` alone.
    pub seedwork_load_events: f64,
    /// cqrs-es: `load_aggregate`.
    pub cqrs_load_aggregate: f64,
    /// postgres-es: `get_events` alone.
    pub cqrs_get_events: f64,
}

fn median(mut times: Vec<Duration>) -> f64 {
    if times.is_empty() {
        return 0.0;
    }
    times.sort_unstable();
    times[times.len() / 2].as_secs_f64() * 1000.0
}

/// Runs `commands` commands (accounts of `events`) on each framework, taking turns, then
/// `loads` loads of each piece; one at a time.
pub async fn measure(
    store: &PostgresStore,
    pool: &PgPool,
    commands: usize,
    loads: usize,
    events: u64,
) -> Result<Breakdown> {
    let bus = Bus::builder().store(Arc::new(store.clone())).build()?;
    let accounts: EventSourcedRepository<seedwork_side::Account> =
        EventSourcedRepository::new(Arc::new(store.clone()));
    let streams: Arc<dyn EventStore> = Arc::new(store.clone());
    let cqrs = postgres_es::postgres_cqrs::<cqrs_side::Account>(pool.clone(), Vec::new(), ());
    let cqrs_events: PersistedEventStore<PostgresEventRepository, cqrs_side::Account> =
        PersistedEventStore::new_event_store(PostgresEventRepository::new(pool.clone()));
    let cqrs_repository = PostgresEventRepository::new(pool.clone());

    let aggregates = commands.div_ceil(events as usize).max(1);
    let (mut begin, mut get, mut save, mut commit, mut whole, mut execute) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    let mut ids = Vec::with_capacity(aggregates);
    for _ in 0..aggregates {
        let id = format!("breakdown-{}", uuid::Uuid::new_v4().simple());
        for n in 0..events {
            let t0 = Instant::now();
            let mut uow = bus.unit_of_work().await?;
            let t1 = Instant::now();
            let found = accounts.get_for_update(&mut uow, &id).await?;
            let t2 = Instant::now();
            let new = found.is_none();
            let mut account = found.unwrap_or_else(|| seedwork_side::Account::empty(&id));
            account.deposit(Deposit::nth(n))?;
            if new {
                accounts.add(&mut uow, &mut account).await?;
            } else {
                accounts.update(&mut uow, &mut account).await?;
            }
            let t3 = Instant::now();
            uow.commit().await?;
            let t4 = Instant::now();
            begin.push(t1 - t0);
            get.push(t2 - t1);
            save.push(t3 - t2);
            commit.push(t4 - t3);
            whole.push(t4 - t0);

            let t = Instant::now();
            cqrs.execute(&id, Deposit::nth(n))
                .await
                .map_err(|e| anyhow!("cqrs-es: {e}"))?;
            execute.push(t.elapsed());
        }
        ids.push(id);
    }

    let (mut sw_get, mut snapshot, mut stream, mut aggregate, mut rows) =
        (vec![], vec![], vec![], vec![], vec![]);
    for i in 0..loads {
        let id = &ids[i % ids.len()];
        let t = Instant::now();
        accounts
            .get(id)
            .await?
            .ok_or_else(|| anyhow!("seedwork: {id} not found"))?;
        sw_get.push(t.elapsed());
        let t = Instant::now();
        streams
            .load_snapshot(<seedwork_side::Account as AggregateRoot>::TYPE, id)
            .await?;
        snapshot.push(t.elapsed());
        let t = Instant::now();
        streams
            .load(<seedwork_side::Account as AggregateRoot>::TYPE, id, 0)
            .await?;
        stream.push(t.elapsed());
        let t = Instant::now();
        cqrs_events
            .load_aggregate(id)
            .await
            .map_err(|e| anyhow!("cqrs-es: {e}"))?;
        aggregate.push(t.elapsed());
        let t = Instant::now();
        cqrs_repository
            .get_events::<cqrs_side::Account>(id)
            .await
            .map_err(|e| anyhow!("postgres-es: {e:?}"))?;
        rows.push(t.elapsed());
    }

    Ok(Breakdown {
        commands: whole.len(),
        loads,
        seedwork_command: median(whole),
        seedwork_begin: median(begin),
        seedwork_get_for_update: median(get),
        seedwork_save: median(save),
        seedwork_commit: median(commit),
        cqrs_execute: median(execute),
        seedwork_get: median(sw_get),
        seedwork_load_snapshot: median(snapshot),
        seedwork_load_events: median(stream),
        cqrs_load_aggregate: median(aggregate),
        cqrs_get_events: median(rows),
    })
}
