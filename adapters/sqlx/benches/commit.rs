//! A unit-of-work commit (one aggregate update + its outbox row) against the same statements in
//! a raw sqlx transaction, on SQLite (WAL) and PostgreSQL, with 1 and 8 concurrent writers
//! (each writer updates its own aggregate).
//!
//! Run: `cargo bench -p seedwork-sqlx --bench commit` (PostgreSQL from `scripts/services up`, or
//! `SEEDWORK_POSTGRES_URL`; its groups are skipped when no server answers).

// criterion_group! generates an undocumented pub fn.
#![allow(missing_docs)]

use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use seedwork::messaging::Envelope;
use seedwork::prelude::*;
use seedwork::testing::contract::store::{publish_account_events, Account};
use seedwork_sqlx::sqlx::{self, Row};
use seedwork_sqlx::{PostgresJsonRepository, PostgresStore, SqliteJsonRepository, SqliteStore};

const WRITERS: [usize; 2] = [1, 8];

fn bus(store: Arc<dyn seedwork::uow::TransactionalStore>) -> Bus {
    publish_account_events(Bus::builder().service_name("bench").store(store))
        .build()
        .expect("bus")
}

/// What a raw transaction writes to the outbox: the same envelope the framework writes.
fn outbox_columns(account: &Account) -> (String, String, String) {
    let envelope = Envelope::new(
        "AccountChanged",
        "v1",
        "bench",
        serde_json::json!({"account_id": account.id, "change": "deposited", "amount": 1}),
    );
    let id = envelope.id.clone();
    let envelope = serde_json::to_string(&envelope).expect("json");
    (id, envelope, "{}".to_string())
}

/// Runs `op(writer)` `iters` times in total, spread over `writers` concurrent tasks.
async fn spread<F, Fut>(iters: u64, writers: usize, op: F) -> Duration
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let per_writer = iters.div_ceil(writers as u64);
    let start = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|writer| {
            let op = op.clone();
            tokio::spawn(async move {
                for _ in 0..per_writer {
                    op(writer).await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("writer");
    }
    start.elapsed()
}

macro_rules! backend_bench {
    ($fn_name:ident, $Store:ty, $Repo:ty, $Tx:literal, $select:literal, $update:literal, $insert:literal) => {
        fn $fn_name(
            c: &mut Criterion,
            runtime: &tokio::runtime::Runtime,
            store: $Store,
            label: &str,
        ) {
            let bus = bus(Arc::new(store.clone()));
            let repo = <$Repo>::new(&store);
            runtime.block_on(async {
                for writer in 0..8 {
                    let mut uow = bus.unit_of_work().await.expect("begin");
                    let mut account = Account::open(format!("bench-{writer}"));
                    repo.add(&mut uow, &mut account).await.expect("add");
                    uow.commit().await.expect("commit");
                }
            });
            let mut group = c.benchmark_group(format!("commit/{label}"));
            group.throughput(Throughput::Elements(1));
            group.sample_size(10);
            group.measurement_time(Duration::from_secs(6));
            for writers in WRITERS {
                let (bus, repo) = (bus.clone(), repo.clone());
                group.bench_function(BenchmarkId::new("unit of work", writers), |b| {
                    b.to_async(runtime).iter_custom(|iters| {
                        let (bus, repo) = (bus.clone(), repo.clone());
                        spread(iters, writers, move |writer| {
                            let (bus, repo) = (bus.clone(), repo.clone());
                            async move {
                                let id = format!("bench-{writer}");
                                let mut uow = bus.unit_of_work().await.expect("begin");
                                let mut account = repo
                                    .get_in(&mut uow, &id)
                                    .await
                                    .expect("get")
                                    .expect("exists");
                                account.deposit(1);
                                repo.update(&mut uow, &mut account).await.expect("update");
                                uow.commit().await.expect("commit");
                            }
                        })
                    })
                });
                let pool = store.pool().clone();
                group.bench_function(BenchmarkId::new("raw sqlx", writers), |b| {
                    b.to_async(runtime).iter_custom(|iters| {
                        let pool = pool.clone();
                        spread(iters, writers, move |writer| {
                            let pool = pool.clone();
                            async move {
                                let id = format!("bench-{writer}");
                                let mut tx = begin(&pool, $Tx).await;
                                let row = sqlx::query($select)
                                    .bind(Account::TYPE)
                                    .bind(&id)
                                    .fetch_one(&mut *tx)
                                    .await
                                    .expect("select");
                                let version: i64 = row.get("version");
                                let data: String = row.get("data");
                                let mut account: Account =
                                    serde_json::from_str(&data).expect("json");
                                account.balance += 1;
                                let done = sqlx::query($update)
                                    .bind(serde_json::to_string(&account).expect("json"))
                                    .bind(seedwork::messaging::now_millis())
                                    .bind(Account::TYPE)
                                    .bind(&id)
                                    .bind(version)
                                    .execute(&mut *tx)
                                    .await
                                    .expect("update");
                                assert_eq!(done.rows_affected(), 1);
                                let (message_id, envelope, properties) = outbox_columns(&account);
                                sqlx::query($insert)
                                    .bind(message_id)
                                    .bind("contract-accounts")
                                    .bind(&id)
                                    .bind(envelope)
                                    .bind(properties)
                                    .bind(seedwork::messaging::now_millis())
                                    .execute(&mut *tx)
                                    .await
                                    .expect("insert");
                                tx.commit().await.expect("commit");
                            }
                        })
                    })
                });
            }
            group.finish();
        }
    };
}

async fn begin<DB: sqlx::Database>(
    pool: &sqlx::Pool<DB>,
    statement: &'static str,
) -> sqlx::Transaction<'static, DB> {
    if statement.is_empty() {
        pool.begin().await.expect("begin")
    } else {
        pool.begin_with(statement).await.expect("begin")
    }
}

backend_bench!(
    bench_sqlite,
    SqliteStore,
    SqliteJsonRepository<Account>,
    "BEGIN IMMEDIATE",
    "SELECT version, data FROM seedwork_aggregates WHERE aggregate_type = ? AND id = ?",
    "UPDATE seedwork_aggregates SET version = version + 1, data = ?, updated_at = ? \
     WHERE aggregate_type = ? AND id = ? AND version = ?",
    "INSERT INTO seedwork_outbox (message_id, topic, message_key, envelope, properties, created_at) \
     VALUES (?, ?, ?, ?, ?, ?)"
);

backend_bench!(
    bench_postgres,
    PostgresStore,
    PostgresJsonRepository<Account>,
    "",
    "SELECT version, data::text AS data FROM seedwork_aggregates WHERE aggregate_type = $1 AND id = $2",
    "UPDATE seedwork_aggregates SET version = version + 1, data = $1::jsonb, updated_at = $2 \
     WHERE aggregate_type = $3 AND id = $4 AND version = $5",
    "INSERT INTO seedwork_outbox (message_id, topic, message_key, envelope, properties, created_at) \
     VALUES ($1, $2, $3, $4::jsonb, $5::jsonb, $6)"
);

async fn postgres_store() -> Option<PostgresStore> {
    let url = std::env::var("SEEDWORK_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://seedwork:seedwork@127.0.0.1:5432/seedwork".to_string());
    let admin = sqlx::PgPool::connect(&url).await.ok()?;
    let schema = format!("bench_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&admin)
        .await
        .ok()?;
    let options = sqlx::postgres::PgConnectOptions::from_str(&url)
        .ok()?
        .options([("search_path", schema.as_str())]);
    let store = PostgresStore::connect_with(options).await.ok()?;
    store.migrate().await.ok()?;
    Some(store)
}

fn commit(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("bench.db");
    let sqlite = runtime
        .block_on(SqliteStore::open(path.to_str().expect("utf-8")))
        .expect("sqlite");
    bench_sqlite(c, &runtime, sqlite, "sqlite");
    match runtime.block_on(postgres_store()) {
        Some(store) => bench_postgres(c, &runtime, store, "postgres"),
        None => eprintln!("PostgreSQL is not reachable: skipping its benchmarks"),
    }
}

criterion_group!(benches, commit);
criterion_main!(benches);
