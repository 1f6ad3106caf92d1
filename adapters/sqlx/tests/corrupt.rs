//! Stored data that no longer decodes is the system's fault: `Error::Codec` (classified
//! `Internal`), never `InvalidInput`, with the adapter's typed error and the decoder's error
//! reachable through `std::error::Error::source`.

mod support;

use std::error::Error as _;
use std::sync::Arc;

use seedwork::prelude::*;
use seedwork::testing::contract::store::{Account, StoreUnderTest};
use seedwork::ErrorKind;
use seedwork_sqlx::sqlx;

/// Stores an account, overwrites its document with `corrupt` by raw SQL, then loads it.
async fn load_after_corrupting(
    under_test: &StoreUnderTest,
    overwrite: impl std::future::Future<Output = ()>,
) -> Error {
    let bus = Bus::builder()
        .store(Arc::clone(&under_test.store))
        .build()
        .unwrap();
    let mut uow = bus.unit_of_work().await.unwrap();
    under_test
        .accounts
        .add(&mut uow, &mut Account::open("corrupt"))
        .await
        .unwrap();
    uow.commit().await.unwrap();
    overwrite.await;
    under_test
        .accounts
        .get(&"corrupt".to_string())
        .await
        .expect_err("a corrupt document must not load")
}

fn assert_codec_with_sources(err: &Error) {
    assert!(
        matches!(err, Error::Codec { type_name, .. } if type_name == Account::TYPE),
        "Error::Codec named after the aggregate, got {err:?}"
    );
    assert_eq!(err.kind(), ErrorKind::Internal, "a server fault");
    let typed = err.source().expect("the adapter's typed error");
    let message = typed.to_string();
    assert!(
        message.contains(Account::TYPE) && message.contains("seedwork_aggregates"),
        "the typed error says what failed: {message}"
    );
    let cause = typed.source().expect("the decoder's error beneath it");
    assert!(
        cause.is::<serde_json::Error>(),
        "the serde_json error, got {cause:?}"
    );
}

#[tokio::test]
async fn sqlite_corrupt_aggregate_is_a_codec_error() {
    let (store, _dir) = support::sqlite::fresh_store().await;
    let under_test = support::sqlite::under_test(&store);
    let err = load_after_corrupting(&under_test, async {
        sqlx::query("UPDATE seedwork_aggregates SET data = '{not json' WHERE id = 'corrupt'")
            .execute(store.pool())
            .await
            .unwrap();
    })
    .await;
    assert_codec_with_sources(&err);
}

#[tokio::test]
#[ignore = "needs PostgreSQL: scripts/services up"]
async fn postgres_corrupt_aggregate_is_a_codec_error() {
    let (under_test, store) = support::postgres::fresh().await;
    // `data` is jsonb, so the corruption is valid JSON of the wrong shape.
    let err = load_after_corrupting(&under_test, async {
        sqlx::query(
            "UPDATE seedwork_aggregates SET data = '[\"not\", \"an\", \"account\"]'::jsonb \
             WHERE id = 'corrupt'",
        )
        .execute(store.pool())
        .await
        .unwrap();
    })
    .await;
    assert_codec_with_sources(&err);
}

/// Commits three outbox messages, corrupts the first one's stored envelope with `overwrite`,
/// and runs a relay round: the corrupt row is parked at once (a publish can never succeed for
/// it) instead of failing every claim, the other two are published, and the parked row is
/// listed with its topic and no message.
async fn a_corrupt_outbox_row_is_parked_and_the_rest_flows(
    under_test: &StoreUnderTest,
    overwrite: impl std::future::Future<Output = ()>,
) {
    use seedwork::messaging::IntegrationMessage;
    use seedwork::messaging::OutboxRelay;
    use seedwork::testing::contract::store::{
        publish_account_events, AccountChanged, RecordingPublisher,
    };

    let bus = publish_account_events(Bus::builder().store(Arc::clone(&under_test.store)))
        .build()
        .unwrap();
    for id in ["first", "second", "third"] {
        let mut uow = bus.unit_of_work().await.unwrap();
        under_test
            .accounts
            .add(&mut uow, &mut Account::open(id))
            .await
            .unwrap();
        uow.commit().await.unwrap();
    }
    overwrite.await;
    let publisher = Arc::new(RecordingPublisher::new());
    let relay = OutboxRelay::new(Arc::clone(&under_test.outbox), publisher.clone());
    let round = relay.run_once().await.expect("the claim does not fail");
    assert_eq!(round.published, 2, "{round:?}");
    // Keyless messages are published concurrently: compare as a set.
    let mut sent: Vec<String> = publisher
        .sent()
        .iter()
        .map(|m| {
            m.envelope.data["account_id"]
                .as_str()
                .unwrap_or("?")
                .to_string()
        })
        .collect();
    sent.sort();
    assert_eq!(sent, ["second", "third"]);
    let lag = under_test.outbox.lag().await.unwrap();
    assert_eq!((lag.pending, lag.parked), (0, 1));
    let parked = under_test.outbox.parked(None, 10).await.unwrap();
    assert_eq!(parked.len(), 1);
    assert_eq!(
        parked[0].topic,
        <AccountChanged as IntegrationMessage>::TOPIC
    );
    assert!(parked[0].message.is_none(), "{:?}", parked[0]);
    assert!(
        parked[0].last_error.contains("does not read back"),
        "{}",
        parked[0].last_error
    );
    assert_eq!(relay.run_once().await.unwrap().published, 0);
    under_test.outbox.discard(parked[0].sequence).await.unwrap();
    assert_eq!(under_test.outbox.lag().await.unwrap().parked, 0);
}

#[tokio::test]
async fn sqlite_corrupt_outbox_row_is_parked() {
    let (store, _dir) = support::sqlite::fresh_store().await;
    let under_test = support::sqlite::under_test(&store);
    a_corrupt_outbox_row_is_parked_and_the_rest_flows(&under_test, async {
        sqlx::query(
            "UPDATE seedwork_outbox SET envelope = '{not json' \
             WHERE sequence = (SELECT MIN(sequence) FROM seedwork_outbox)",
        )
        .execute(store.pool())
        .await
        .unwrap();
    })
    .await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL: scripts/services up"]
async fn postgres_corrupt_outbox_row_is_parked() {
    let (under_test, store) = support::postgres::fresh().await;
    a_corrupt_outbox_row_is_parked_and_the_rest_flows(&under_test, async {
        sqlx::query(
            "UPDATE seedwork_outbox SET envelope = '[\"not\", \"an\", \"envelope\"]'::jsonb \
             WHERE sequence = (SELECT MIN(sequence) FROM seedwork_outbox)",
        )
        .execute(store.pool())
        .await
        .unwrap();
    })
    .await;
}
