//! Projections on the memory store: caught up from the start in batches and then following new
//! events, each event applied exactly once even when a batch fails half-way or two runners
//! compete, and rebuilt from the first event to the same read model.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use seedwork::application::Bus;
use seedwork::domain::{AggregateRoot, AggregateState, Entity, Repository};
use seedwork::eventsourcing::{
    Checkpoint, EventStore, NewEvent, Projection, ProjectionRunner, StoredEvent,
};
use seedwork::memory::{MemoryRepository, MemoryStore};
use seedwork::{Error, Result};
use serde::{Deserialize, Serialize};

/// The read model: how many events each stream type has, and the sum of their `n`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Totales {
    id: String,
    eventos: u64,
    suma: i64,
    #[serde(skip)]
    state: AggregateState,
}

impl Entity for Totales {
    type Id = String;
    fn id(&self) -> &String {
        &self.id
    }
}

impl AggregateRoot for Totales {
    const TYPE: &'static str = "proyeccion_totales";
    fn state(&self) -> &AggregateState {
        &self.state
    }
    fn state_mut(&mut self) -> &mut AggregateState {
        &mut self.state
    }
}

/// Counts events per stream type; fails once on the event whose `n` is `fail_on`.
struct ProyeccionTotales {
    totales: MemoryRepository<Totales>,
    fail_on: Option<i64>,
    failed: AtomicUsize,
}

#[seedwork::async_trait]
impl Projection for ProyeccionTotales {
    fn name(&self) -> &str {
        "totales"
    }

    async fn apply(&self, event: &StoredEvent, uow: &mut seedwork::uow::UnitOfWork) -> Result<()> {
        let n = event.data["n"].as_i64().unwrap_or_default();
        if Some(n) == self.fail_on && self.failed.fetch_add(1, Ordering::SeqCst) == 0 {
            return Err(Error::other("a read model write failed"));
        }
        let id = event.stream_type.clone();
        match self.totales.get_in(uow, &id).await? {
            Some(mut totales) => {
                totales.eventos += 1;
                totales.suma += n;
                self.totales.update(uow, &mut totales).await
            }
            None => {
                let mut totales = Totales {
                    id,
                    eventos: 1,
                    suma: n,
                    state: AggregateState::new(),
                };
                self.totales.add(uow, &mut totales).await
            }
        }
    }

    async fn reset(&self, uow: &mut seedwork::uow::UnitOfWork) -> Result<()> {
        for id in ["a", "b"] {
            if self.totales.get_in(uow, &id.to_string()).await?.is_some() {
                self.totales.remove(uow, &id.to_string()).await?;
            }
        }
        Ok(())
    }
}

struct Setup {
    store: MemoryStore,
    bus: Bus,
    totales: MemoryRepository<Totales>,
}

impl Setup {
    fn new() -> Self {
        let store = MemoryStore::new();
        let bus = Bus::builder()
            .store(Arc::new(store.clone()))
            .build()
            .unwrap();
        Setup {
            totales: MemoryRepository::new(store.clone()),
            store,
            bus,
        }
    }

    async fn append(&self, stream_type: &str, stream: &str, ns: &[i64]) {
        let mut uow = self.bus.unit_of_work().await.unwrap();
        let current = self
            .store
            .load_in(&mut uow, stream_type, stream, 0)
            .await
            .unwrap()
            .len() as u64;
        let events: Vec<NewEvent> = ns
            .iter()
            .map(|n| NewEvent {
                event_type: "Cambio".into(),
                event_version: "v1".into(),
                data: serde_json::json!({ "n": n }),
                occurred_at: 0,
            })
            .collect();
        self.store
            .append(&mut uow, stream_type, stream, current, &events)
            .await
            .unwrap();
        uow.commit().await.unwrap();
    }

    fn runner(&self, fail_on: Option<i64>, batch: usize) -> ProjectionRunner {
        ProjectionRunner::new(
            self.bus.clone(),
            Arc::new(self.store.clone()),
            Arc::new(MemoryRepository::<Checkpoint>::new(self.store.clone())),
            Arc::new(ProyeccionTotales {
                totales: self.totales.clone(),
                fail_on,
                failed: AtomicUsize::new(0),
            }),
        )
        .batch(batch)
    }

    async fn totales(&self, id: &str) -> (u64, i64) {
        self.totales
            .get(&id.to_string())
            .await
            .unwrap()
            .map_or((0, 0), |t| (t.eventos, t.suma))
    }
}

#[tokio::test]
async fn catches_up_in_batches_then_follows_new_events() {
    let s = Setup::new();
    s.append("a", "x", &[1, 2, 3]).await;
    s.append("b", "y", &[10, 20]).await;
    s.append("a", "z", &[4]).await;
    let runner = s.runner(None, 2);
    assert_eq!(runner.catch_up().await.unwrap(), 6);
    assert_eq!(
        (s.totales("a").await, s.totales("b").await),
        ((4, 10), (2, 30))
    );
    assert_eq!(runner.position().await.unwrap(), 6);
    assert_eq!(runner.run_once().await.unwrap(), 0, "nothing new");
    s.append("b", "y", &[5]).await;
    assert_eq!(runner.catch_up().await.unwrap(), 1);
    assert_eq!(s.totales("b").await, (3, 35));
    assert_eq!(runner.position().await.unwrap(), 7);
}

#[tokio::test]
async fn a_batch_that_fails_half_way_commits_nothing_and_is_applied_once_after() {
    let s = Setup::new();
    s.append("a", "x", &[1, 2, 3, 4, 5]).await;
    let runner = s.runner(Some(4), 10);
    let error = runner.run_once().await.expect_err("the fourth event fails");
    assert!(error.to_string().contains("read model"), "{error}");
    assert_eq!(s.totales("a").await, (0, 0), "none of the batch committed");
    assert_eq!(runner.position().await.unwrap(), 0);
    assert_eq!(runner.catch_up().await.unwrap(), 5);
    assert_eq!(s.totales("a").await, (5, 15), "each event once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runners_of_one_projection_apply_each_event_once() {
    let s = Setup::new();
    for n in 0..40 {
        s.append("a", &format!("s{}", n % 5), &[n]).await;
    }
    let (one, two) = (Arc::new(s.runner(None, 3)), Arc::new(s.runner(None, 3)));
    let run = |runner: Arc<ProjectionRunner>| async move {
        let mut applied = 0;
        loop {
            match runner.run_once().await {
                Ok(0) => return applied,
                Ok(n) => applied += n,
                Err(Error::Conflict { .. }) => tokio::task::yield_now().await,
                Err(error) => panic!("{error}"),
            }
        }
    };
    let (a, b) = tokio::join!(tokio::spawn(run(one)), tokio::spawn(run(two)));
    assert_eq!(
        a.unwrap() + b.unwrap(),
        40,
        "the runners applied 40 between them"
    );
    assert_eq!(s.totales("a").await, (40, (0..40).sum()));
}

#[tokio::test]
async fn a_rebuild_replays_from_the_first_event_to_the_same_read_model() {
    let s = Setup::new();
    s.append("a", "x", &[1, 2]).await;
    s.append("b", "y", &[3]).await;
    let runner = s.runner(None, 100);
    runner.catch_up().await.unwrap();
    let before = (s.totales("a").await, s.totales("b").await);
    assert_eq!(runner.rebuild().await.unwrap(), 3);
    assert_eq!((s.totales("a").await, s.totales("b").await), before);
    assert_eq!(runner.position().await.unwrap(), 3);
}
