//! A client's history on the real backends: concurrent reservations of one client are all
//! recorded, and each is one small entry written once — no per-client document that every
//! reservation reads, locks and rewrites whole.

use std::collections::BTreeSet;
use std::sync::Arc;

use alpespartners::cliente::{EntradaHistorialCliente, ObtenerReservasCliente};
use alpespartners::system::Database;
use alpespartners::vuelos::aplicacion::dto::ReservaEntradaDto;
use alpespartners::vuelos::aplicacion::CrearReserva;
use seedwork::domain::{AggregateRoot, PageRequest, Repository};
use seedwork_sqlx::{PostgresJsonRepository, PostgresStore, SqliteJsonRepository, SqliteStore};
use seedwork_tests::system::{reserva_del_readme, start, Running};

/// Reservations created at once for one client.
const CONCURRENT: usize = 16;

fn solicitud(id: &str, cliente: &str) -> ReservaEntradaDto {
    let mut body = reserva_del_readme(id);
    body["id_cliente"] = serde_json::json!(cliente);
    serde_json::from_value(body).expect("the README body is a ReservaEntradaDto")
}

async fn concurrent_creates_are_all_recorded(
    r: &Running,
    entradas: Arc<dyn Repository<EntradaHistorialCliente>>,
) {
    let cliente = format!("concurrente-{}", uuid::Uuid::new_v4().simple());
    let ids: Vec<String> = (0..CONCURRENT)
        .map(|i| format!("{cliente}-r{i:02}"))
        .collect();
    let creates = ids.iter().map(|id| {
        let bus = r.system.bus.clone();
        let comando = CrearReserva {
            id: id.clone(),
            datos: solicitud(id, &cliente),
        };
        tokio::spawn(async move { bus.dispatch(comando).await })
    });
    for outcome in futures_util::future::join_all(creates).await {
        outcome
            .expect("the task ran")
            .expect("every create commits");
    }

    let page = r
        .system
        .bus
        .query(ObtenerReservasCliente {
            id_cliente: cliente.clone(),
            pagina: PageRequest::first(500).expect("limit"),
        })
        .await
        .expect("the client's reservations");
    assert_eq!(page.next, None);
    assert_eq!(page.items.len(), CONCURRENT, "each reservation once");
    assert_eq!(
        page.items.iter().cloned().collect::<BTreeSet<_>>(),
        ids.iter().cloned().collect::<BTreeSet<_>>(),
    );

    // N creates made N entries, each written once (version 1: never read, changed and written
    // back) and all of one size, whatever the history held when it was written.
    let todas = entradas
        .list(&PageRequest::first(500).expect("limit"))
        .await
        .expect("list the entries");
    let suyas: Vec<&EntradaHistorialCliente> = todas
        .items
        .iter()
        .filter(|e| e.id_cliente() == cliente)
        .collect();
    assert_eq!(suyas.len(), CONCURRENT);
    assert!(suyas.iter().all(|e| e.version() == 1), "{suyas:?}");
    let sizes: BTreeSet<usize> = suyas
        .iter()
        .map(|e| serde_json::to_string(e).expect("encodes").len())
        .collect();
    assert_eq!(sizes.len(), 1, "one size for every entry: {sizes:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_sqlite() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("alpes.db").display().to_string();
    let running = start(Database::Sqlite(path.clone())).await;
    let store = SqliteStore::open(&format!("sqlite://{path}"))
        .await
        .expect("the same file");
    concurrent_creates_are_all_recorded(
        &running,
        Arc::new(SqliteJsonRepository::<EntradaHistorialCliente>::new(&store)),
    )
    .await;
    running.system.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: scripts/services up"]
async fn on_postgres() {
    let url = seedwork_tests::processes::postgres_schema_url().await;
    let running = start(Database::Postgres(url.clone())).await;
    let store = PostgresStore::open(&url).await.expect("the same schema");
    concurrent_creates_are_all_recorded(
        &running,
        Arc::new(PostgresJsonRepository::<EntradaHistorialCliente>::new(
            &store,
        )),
    )
    .await;
    running.system.shutdown().await;
}
