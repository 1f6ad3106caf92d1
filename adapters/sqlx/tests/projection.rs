//! A projection on SQLite and PostgreSQL: its read model (a JSON repository) and its
//! checkpoint commit together, so a batch that fails half-way leaves nothing and each event is
//! applied once; a rebuild gives the same read model.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use seedwork::application::Bus;
use seedwork::domain::{AggregateRoot, AggregateState, Entity, Repository};
use seedwork::eventsourcing::{
    Checkpoint, EventStore, NewEvent, Projection, ProjectionRunner, StoredEvent,
};
use seedwork::uow::{TransactionalStore, UnitOfWork};
use seedwork::{Error, Result};
use seedwork_sqlx::dialect::Dialect;
use seedwork_sqlx::{JsonRepository, SqlStore};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Suma {
    id: String,
    eventos: u64,
    total: i64,
    #[serde(skip)]
    state: AggregateState,
}

impl Entity for Suma {
    type Id = String;
    fn id(&self) -> &String {
        &self.id
    }
}

impl AggregateRoot for Suma {
    const TYPE: &'static str = "proyeccion_suma";
    fn state(&self) -> &AggregateState {
        &self.state
    }
    fn state_mut(&mut self) -> &mut AggregateState {
        &mut self.state
    }
}

struct ProyeccionSuma<D: Dialect> {
    sumas: JsonRepository<D, Suma>,
    fail_once_on: i64,
    failed: AtomicBool,
}

#[seedwork::async_trait]
impl<D: Dialect> Projection for ProyeccionSuma<D> {
    fn name(&self) -> &str {
        "suma"
    }

    async fn apply(&self, event: &StoredEvent, uow: &mut UnitOfWork) -> Result<()> {
        let n = event.data["n"].as_i64().unwrap_or_default();
        if n == self.fail_once_on && !self.failed.swap(true, Ordering::SeqCst) {
            return Err(Error::other("a read model write failed"));
        }
        let id = "total".to_string();
        match self.sumas.get_for_update(uow, &id).await? {
            Some(mut suma) => {
                suma.eventos += 1;
                suma.total += n;
                self.sumas.update(uow, &mut suma).await
            }
            None => {
                let mut suma = Suma {
                    id,
                    eventos: 1,
                    total: n,
                    state: AggregateState::new(),
                };
                self.sumas.add(uow, &mut suma).await
            }
        }
    }

    async fn reset(&self, uow: &mut UnitOfWork) -> Result<()> {
        match self.sumas.remove(uow, &"total".to_string()).await {
            Ok(()) | Err(Error::NotFound { .. }) => Ok(()),
            Err(error) => Err(error),
        }
    }
}

async fn exercise<D: Dialect>(store: SqlStore<D>)
where
    SqlStore<D>: EventStore + TransactionalStore,
{
    let bus = Bus::builder()
        .store(Arc::new(store.clone()))
        .build()
        .unwrap();
    let mut uow = bus.unit_of_work().await.unwrap();
    let events: Vec<NewEvent> = (1..=6).map(cambio).collect();
    store.append(&mut uow, "t", "s", 0, &events).await.unwrap();
    uow.commit().await.unwrap();
    readable(&store, 6).await;

    let sumas = JsonRepository::<D, Suma>::new(&store);
    let runner = ProjectionRunner::new(
        bus.clone(),
        Arc::new(store.clone()),
        Arc::new(JsonRepository::<D, Checkpoint>::new(&store)),
        Arc::new(ProyeccionSuma::<D> {
            sumas: sumas.clone(),
            fail_once_on: 5,
            failed: AtomicBool::new(false),
        }),
    )
    .batch(10);
    let total = || async {
        sumas
            .get(&"total".to_string())
            .await
            .unwrap()
            .map(|s| (s.eventos, s.total))
    };
    assert!(
        runner.run_once().await.is_err(),
        "the fifth event fails once"
    );
    assert_eq!(total().await, None, "nothing of the batch committed");
    assert_eq!(runner.position().await.unwrap(), 0);
    assert_eq!(runner.catch_up().await.unwrap(), 6);
    assert_eq!(total().await, Some((6, 21)), "each event once");
    assert_eq!(runner.rebuild().await.unwrap(), 6);
    assert_eq!(
        total().await,
        Some((6, 21)),
        "the same read model after a rebuild"
    );
    assert_eq!(
        runner.position().await.unwrap(),
        store.last_position().await.unwrap()
    );
}

/// Waits (at most 10 s) until `read_all` answers `count` events: PostgreSQL holds committed
/// events back while an older transaction runs, other tests' included. Once answered, they
/// stay answered.
async fn readable<D: Dialect>(store: &SqlStore<D>, count: usize)
where
    SqlStore<D>: EventStore,
{
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let answered = store.read_all(0, count + 1).await.unwrap().len();
        if answered >= count {
            assert_eq!(answered, count);
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{answered} of {count} events readable after 10 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

fn cambio(n: i64) -> NewEvent {
    NewEvent {
        event_type: "Cambio".into(),
        event_version: "v1".into(),
        data: serde_json::json!({ "n": n }),
        occurred_at: 0,
    }
}

/// On PostgreSQL an append still open holds back the events committed after it: the runner
/// reports itself behind, applies nothing meanwhile, and once the append commits catches up
/// with both events, each once.
#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: scripts/services up"]
async fn a_projection_on_postgres_waits_for_an_append_still_open() {
    let store = support::postgres::fresh_store().await;
    let bus = Bus::builder()
        .store(Arc::new(store.clone()))
        .build()
        .unwrap();
    let mut early = bus.unit_of_work().await.unwrap();
    store
        .append(&mut early, "t", "early", 0, &[cambio(1)])
        .await
        .unwrap();
    let mut late = bus.unit_of_work().await.unwrap();
    store
        .append(&mut late, "t", "late", 0, &[cambio(2)])
        .await
        .unwrap();
    late.commit().await.unwrap();

    let sumas = JsonRepository::<_, Suma>::new(&store);
    let runner = ProjectionRunner::new(
        bus.clone(),
        Arc::new(store.clone()),
        Arc::new(JsonRepository::<_, Checkpoint>::new(&store)),
        Arc::new(ProyeccionSuma {
            sumas: sumas.clone(),
            fail_once_on: i64::MIN,
            failed: AtomicBool::new(false),
        }),
    );
    assert!(runner.behind().await.unwrap(), "a committed event is ahead");
    assert_eq!(
        runner.run_once().await.unwrap(),
        0,
        "held back while the earlier append is open"
    );
    early.commit().await.unwrap();
    assert_eq!(runner.catch_up().await.unwrap(), 2);
    let total = sumas.get(&"total".to_string()).await.unwrap();
    assert_eq!(total.map(|s| (s.eventos, s.total)), Some((2, 3)));
    assert!(!runner.behind().await.unwrap());
}

#[cfg(feature = "sqlite")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_projection_on_sqlite_applies_each_event_once() {
    let (store, _dir) = support::sqlite::fresh_store().await;
    exercise(store).await;
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: scripts/services up"]
async fn a_projection_on_postgres_applies_each_event_once() {
    exercise(support::postgres::fresh_store().await).await;
}
