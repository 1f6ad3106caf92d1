//! Values a backend cannot store are the caller's fault, not the store's: on PostgreSQL a NUL
//! character (SQLSTATE 22021 in `text`, 22P05 in `jsonb`) or a key too large for its index
//! (54000) is `Error::InvalidInput` (a 4xx at an HTTP edge), never `Error::Store` (a 500).
//! SQLite stores the same values, and reads them back intact.

mod support;

use std::sync::Arc;

use seedwork::prelude::*;
use seedwork::testing::contract::store::{Account, StoreUnderTest};
use seedwork::ErrorKind;

/// Ids no PostgreSQL `text` column or index can hold, each with the reason.
fn unstorable() -> Vec<(&'static str, String)> {
    // Pseudo-random letters compress badly, so the key stays over the index limit (~2.7 KB).
    let mut seed = 0x2545_f491_u32;
    let huge: String = (0..20_000)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            char::from(b'a' + u8::try_from(seed % 26).unwrap_or(0))
        })
        .collect();
    vec![
        ("a NUL character", "a\u{0}b".to_string()),
        ("a key over the index limit", huge),
    ]
}

async fn add(under_test: &StoreUnderTest, id: &str) -> Result<()> {
    let bus = Bus::builder()
        .store(Arc::clone(&under_test.store))
        .build()
        .expect("bus");
    let mut uow = bus.unit_of_work().await?;
    under_test
        .accounts
        .add(&mut uow, &mut Account::open(id))
        .await?;
    uow.commit().await?;
    Ok(())
}

#[tokio::test]
#[ignore = "needs PostgreSQL: scripts/services up"]
async fn postgres_refuses_unstorable_values_as_invalid_input() {
    let (under_test, _store) = support::postgres::fresh().await;
    for (what, id) in unstorable() {
        let error = add(&under_test, &id).await.expect_err(what);
        assert!(
            matches!(error, Error::InvalidInput { .. }),
            "{what}: {error:?}"
        );
        assert_eq!(error.kind(), ErrorKind::Invalid, "{what}");
    }
    let error = under_test
        .accounts
        .get(&"a\u{0}b".to_string())
        .await
        .expect_err("a NUL in a looked-up id");
    assert_eq!(error.kind(), ErrorKind::Invalid, "{error:?}");
    // The refusals rolled back and left the store working.
    add(&under_test, "after-the-refusals")
        .await
        .expect("store works");
    let page = under_test
        .accounts
        .list(&PageRequest::first(10).expect("limit"))
        .await
        .expect("list");
    let ids: Vec<&str> = page.items.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids, ["after-the-refusals"]);
}

#[tokio::test]
async fn sqlite_stores_what_postgres_refuses() {
    let (under_test, _dir) = support::sqlite::fresh().await;
    for (what, id) in unstorable() {
        add(&under_test, &id).await.expect(what);
        let stored = under_test.accounts.get(&id).await.expect(what);
        assert_eq!(stored.map(|a| a.id), Some(id), "{what}");
    }
}
