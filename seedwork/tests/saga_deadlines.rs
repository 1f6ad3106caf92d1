//! The deadline task reports its health: down while the store cannot answer which deadlines
//! have passed, up again once it can.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use seedwork::application::Bus;
use seedwork::domain::ChangeTracker;
use seedwork::memory::MemoryStore;
use seedwork::saga::{SagaKey, SagaRecord, SagaStore, Sagas};
use seedwork::supervision::Health;
use seedwork::testing::contract::saga::order_saga;
use seedwork::{Error, Result};

/// The memory store's saga store, whose `due` fails while `down` is set.
struct Flaky {
    store: MemoryStore,
    down: AtomicBool,
}

#[seedwork::async_trait]
impl SagaStore for Flaky {
    async fn load(
        &self,
        uow: &mut dyn ChangeTracker,
        saga: &str,
        correlation_id: &str,
    ) -> Result<Option<SagaRecord>> {
        self.store.load(uow, saga, correlation_id).await
    }
    async fn save(&self, uow: &mut dyn ChangeTracker, record: &mut SagaRecord) -> Result<()> {
        self.store.save(uow, record).await
    }
    async fn get(&self, saga: &str, correlation_id: &str) -> Result<Option<SagaRecord>> {
        self.store.get(saga, correlation_id).await
    }
    async fn find(&self, correlation_id: &str) -> Result<Vec<SagaRecord>> {
        self.store.find(correlation_id).await
    }
    async fn due(&self, now: i64, limit: usize) -> Result<Vec<SagaKey>> {
        if self.down.load(Ordering::SeqCst) {
            return Err(Error::unavailable("the saga table is unreachable"));
        }
        self.store.due(now, limit).await
    }
}

async fn until(limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + limit;
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn the_deadline_task_reports_down_while_the_store_fails_and_up_after() {
    let memory = MemoryStore::new();
    let flaky = Arc::new(Flaky {
        store: memory.clone(),
        down: AtomicBool::new(false),
    });
    let sagas = Sagas::new(flaky.clone()).orchestration(order_saga(Duration::from_secs(60)));
    let bus = Bus::builder()
        .store(Arc::new(memory))
        .sagas(&sagas)
        .build()
        .unwrap();
    let health = Health::new();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(
        sagas
            .deadlines(bus)
            .poll_interval(Duration::from_millis(5))
            .report_to(health.part("saga:deadlines"))
            .run(async {
                let _ = stopped.await;
            }),
    );
    // Up once a round went through; down when the store fails; up again after.
    until(Duration::from_secs(5), || health.report().up()).await;
    flaky.down.store(true, Ordering::SeqCst);
    until(Duration::from_secs(5), || {
        health.report().down() == ["saga:deadlines"]
    })
    .await;
    flaky.down.store(false, Ordering::SeqCst);
    until(Duration::from_secs(5), || health.report().up()).await;
    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("the task stops on shutdown")
        .expect("no panic");
}
