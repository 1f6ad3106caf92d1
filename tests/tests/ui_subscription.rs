//! The UI's subscription to `ciclo-reserva`: non-durable, and a store an earlier version used
//! stops collecting the topic for that version's durable one.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use alpespartners::system::{self, BrokerChoice, Config, Database, Services};
use alpespartners::ui;
use seedwork::messaging::{Publisher, Subscriber, SubscriptionOptions};
use seedwork::testing::contract::broker::ping;
use seedwork_sqlx::{SqliteStore, SqliteTransport};
use seedwork_tests::processes::free_port;
use seedwork_tests::system::Buzon;

/// The subscriptions of `ciclo-reserva` in `store`, each with whether it is durable (1) or not
/// (0), by name.
async fn subscriptions(store: &SqliteStore) -> Vec<(String, i64)> {
    sqlx::query_as(
        "SELECT name, durable FROM seedwork_subscriptions WHERE topic = 'ciclo-reserva' \
         ORDER BY name",
    )
    .fetch_all(store.pool())
    .await
    .expect("the subscriptions")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ui_deletes_an_earlier_versions_durable_subscription() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("alpes.db").display().to_string();
    let ui_addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let legacy = ui::suscripcion_durable_anterior(&system::host_name(), ui_addr);

    // What an earlier version left: a durable subscription holding an event nobody will read.
    let store = SqliteStore::open(&format!("sqlite://{path}"))
        .await
        .expect("the store");
    let transport = SqliteTransport::new(store.pool().clone());
    let consumer = transport
        .subscribe(SubscriptionOptions::new("ciclo-reserva", legacy.clone()))
        .await
        .expect("subscribe");
    drop(consumer);
    transport
        .publish(&ping("ciclo-reserva", 1, None))
        .await
        .expect("publish");
    // The dropped consumer detaches in the background: wait, bounded, until it has.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let attached: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM seedwork_consumers")
            .fetch_one(store.pool())
            .await
            .expect("count");
        if attached == 0 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never detached");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(subscriptions(&store).await, vec![(legacy.clone(), 1)]);

    let any_port = SocketAddr::from(([127, 0, 0, 1], 0));
    let running = system::start(Config {
        http: any_port,
        ui: ui_addr,
        database: Database::Sqlite(path.clone()),
        correo: Arc::new(Buzon::default()),
        relay_poll: Duration::from_millis(20),
        broker: BrokerChoice::Database,
        services: Services::ALL,
        sagas: false,
        plazo_saga: Duration::from_secs(30),
        sondeo_plazos: Duration::from_millis(50),
        sondeo_proyecciones: Duration::from_millis(20),
        reconstruir_proyecciones: false,
    })
    .await
    .expect("the system starts");

    let own = ui::suscripcion_de(&system::host_name(), ui_addr);
    let now = subscriptions(&store).await;
    assert!(
        !now.iter().any(|(name, _)| *name == legacy),
        "the earlier version's subscription is gone: {now:?}"
    );
    assert!(
        now.contains(&(own, 0)),
        "the UI's own subscription is non-durable: {now:?}"
    );
    let orphans: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM seedwork_subscription_messages m WHERE NOT EXISTS \
         (SELECT 1 FROM seedwork_subscriptions s WHERE s.id = m.subscription_id)",
    )
    .fetch_one(store.pool())
    .await
    .expect("count");
    assert_eq!(orphans, 0, "its pending event went with it");
    running.shutdown().await;
}
