//! Dispatch overhead: a command and a query through the [`Bus`] against calling the same
//! handler directly with the same work around it (for the command: open a unit of work on the
//! same memory store, run the handler, commit).
//!
//! Run: `cargo bench -p seedwork --bench dispatch`

// criterion_group! generates an undocumented pub fn.
#![allow(missing_docs)]

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use seedwork::memory::MemoryStore;
use seedwork::prelude::*;
use seedwork::uow::{EventDispatch, NoDispatch};

struct Increment(u64);
impl Command for Increment {
    type Output = u64;
    const NAME: &'static str = "Increment";
}

struct IncrementHandler;
#[seedwork::async_trait]
impl CommandHandler<Increment> for IncrementHandler {
    async fn handle(&self, command: Increment, _uow: &mut UnitOfWork) -> Result<u64> {
        Ok(std::hint::black_box(command.0 + 1))
    }
}

struct Lookup(u64);
impl Query for Lookup {
    type Output = u64;
    const NAME: &'static str = "Lookup";
}

struct LookupHandler;
#[seedwork::async_trait]
impl QueryHandler<Lookup> for LookupHandler {
    async fn handle(&self, query: Lookup) -> Result<u64> {
        Ok(std::hint::black_box(query.0 * 2))
    }
}

fn dispatch(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let store = Arc::new(MemoryStore::new());
    let bus = Bus::builder()
        .store(store.clone())
        .command(IncrementHandler)
        .query(LookupHandler)
        .build()
        .expect("bus");
    let handler = IncrementHandler;
    let query_handler = LookupHandler;
    let dispatch: Arc<dyn EventDispatch> = Arc::new(NoDispatch::default());

    let mut group = c.benchmark_group("command");
    group.bench_function("direct: begin + handler + commit", |b| {
        b.to_async(&runtime).iter(|| async {
            let mut uow = UnitOfWork::begin(&*store, Arc::clone(&dispatch))
                .await
                .expect("begin");
            let out = handler
                .handle(Increment(1), &mut uow)
                .await
                .expect("handled");
            uow.commit().await.expect("commit");
            out
        })
    });
    group.bench_function("bus.dispatch", |b| {
        b.to_async(&runtime)
            .iter(|| async { bus.dispatch(Increment(1)).await.expect("dispatched") })
    });
    group.finish();

    let mut group = c.benchmark_group("query");
    group.bench_function("direct: handler", |b| {
        b.to_async(&runtime)
            .iter(|| async { query_handler.handle(Lookup(1)).await.expect("answered") })
    });
    group.bench_function("bus.query", |b| {
        b.to_async(&runtime)
            .iter(|| async { bus.query(Lookup(1)).await.expect("answered") })
    });
    group.finish();
}

criterion_group!(benches, dispatch);
criterion_main!(benches);
