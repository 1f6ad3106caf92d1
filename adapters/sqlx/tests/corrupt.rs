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
