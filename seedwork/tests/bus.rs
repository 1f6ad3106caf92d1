//! The bus: routing, typed errors, build-time checks, transactions around commands, message
//! handling with the inbox.

use std::sync::Arc;

use seedwork::application::BuildProblem;
use seedwork::application::MessageOutcome;
use seedwork::memory::{MemoryRepository, MemoryStore};
use seedwork::messaging::{Message, CORRELATION_ID};
use seedwork::prelude::*;
use seedwork::testing::contract::store::{Account, AccountChanged, AccountOpened};
use seedwork::HandlerKind;

struct Open(String);
impl Command for Open {
    type Output = String;
    const NAME: &'static str = "Open";
}

struct Balance(String);
impl Query for Balance {
    type Output = Option<i64>;
    const NAME: &'static str = "Balance";
}

struct OpenHandler {
    accounts: MemoryRepository<Account>,
    fail_after_write: bool,
}
#[seedwork::async_trait]
impl CommandHandler<Open> for OpenHandler {
    async fn handle(&self, command: Open, uow: &mut UnitOfWork) -> Result<String> {
        let mut account = Account::open(&command.0);
        self.accounts.add(uow, &mut account).await?;
        if self.fail_after_write {
            return Err(Error::Domain(DomainError::invalid_value("id", "refused")));
        }
        Ok(account.id)
    }
}

struct AnotherOpenHandler;
#[seedwork::async_trait]
impl CommandHandler<Open> for AnotherOpenHandler {
    async fn handle(&self, command: Open, _uow: &mut UnitOfWork) -> Result<String> {
        Ok(command.0)
    }
}

struct BalanceHandler(MemoryRepository<Account>);
#[seedwork::async_trait]
impl QueryHandler<Balance> for BalanceHandler {
    async fn handle(&self, query: Balance) -> Result<Option<i64>> {
        Ok(self.0.get(&query.0).await?.map(|a| a.balance))
    }
}

fn bus(store: &MemoryStore, fail_after_write: bool) -> Bus {
    let accounts = MemoryRepository::<Account>::new(store.clone());
    Bus::builder()
        .service_name("tests")
        .store(Arc::new(store.clone()))
        .command(OpenHandler {
            accounts: accounts.clone(),
            fail_after_write,
        })
        .query(BalanceHandler(accounts))
        .publish(|e: &AccountOpened| AccountChanged {
            account_id: e.account_id.clone(),
            change: "opened".into(),
            amount: 0,
        })
        .build()
        .expect("bus builds")
}

#[tokio::test]
async fn a_command_commits_and_its_query_reads_it() {
    let store = MemoryStore::new();
    let bus = bus(&store, false);
    assert_eq!(bus.dispatch(Open("a".into())).await.unwrap(), "a");
    assert_eq!(bus.query(Balance("a".into())).await.unwrap(), Some(0));
    assert_eq!(bus.query(Balance("zz".into())).await.unwrap(), None);
    let outbox = store.outbox_snapshot();
    assert_eq!(outbox.len(), 1);
    assert_eq!(outbox[0].message.envelope.service_name, "tests");
}

#[tokio::test]
async fn a_failing_handler_rolls_back_its_writes_and_messages() {
    let store = MemoryStore::new();
    let bus = bus(&store, true);
    let err = bus.dispatch(Open("a".into())).await.unwrap_err();
    assert!(matches!(
        err,
        Error::Domain(DomainError::InvalidValue { .. })
    ));
    assert_eq!(bus.query(Balance("a".into())).await.unwrap(), None);
    assert!(store.outbox_snapshot().is_empty());
}

#[tokio::test]
async fn unknown_command_and_query_are_typed_errors_naming_the_type() {
    let bus = Bus::builder()
        .store(Arc::new(MemoryStore::new()))
        .build()
        .unwrap();
    let err = bus.dispatch(Open("a".into())).await.unwrap_err();
    assert!(
        matches!(&err, Error::NoHandler { kind: HandlerKind::Command, type_name } if type_name == "Open"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "no command handler is registered for `Open`"
    );
    let err = bus.query(Balance("a".into())).await.unwrap_err();
    assert!(
        matches!(&err, Error::NoHandler { kind: HandlerKind::Query, type_name } if type_name == "Balance")
    );
    assert!(!bus.handles_command::<Open>());
}

#[test]
fn two_handlers_for_one_command_fail_the_build_naming_both() {
    let store = MemoryStore::new();
    let err = Bus::builder()
        .store(Arc::new(store.clone()))
        .command(OpenHandler {
            accounts: MemoryRepository::new(store),
            fail_after_write: false,
        })
        .command(AnotherOpenHandler)
        .build()
        .unwrap_err();
    match err.problems() {
        [BuildProblem::DuplicateHandler {
            kind,
            type_name,
            first,
            second,
        }] => {
            assert_eq!(*kind, HandlerKind::Command);
            assert_eq!(type_name, "Open");
            assert!(first.ends_with("OpenHandler"), "{first}");
            assert!(second.ends_with("AnotherOpenHandler"), "{second}");
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn a_bus_without_a_store_is_a_build_error_naming_the_store() {
    let err = Bus::builder().build().unwrap_err();
    assert_eq!(err.problems(), &[BuildProblem::MissingStore]);
    assert!(err.to_string().contains("BusBuilder::store"), "{err}");
}

#[test]
fn every_build_problem_is_reported_at_once() {
    let store = MemoryStore::new();
    let err = Bus::builder()
        .command(OpenHandler {
            accounts: MemoryRepository::new(store.clone()),
            fail_after_write: false,
        })
        .command(AnotherOpenHandler)
        .on_message(CountOpened(MemoryRepository::new(store.clone())))
        .on_message(CountOpened(MemoryRepository::new(store)))
        .build()
        .unwrap_err();
    let problems = err.problems();
    assert_eq!(problems.len(), 3, "{err}");
    assert_eq!(problems[0], BuildProblem::MissingStore);
    assert!(matches!(
        &problems[1],
        BuildProblem::DuplicateHandler { kind: HandlerKind::Command, type_name, .. } if type_name == "Open"
    ));
    assert!(matches!(
        &problems[2],
        BuildProblem::DuplicateHandler {
            kind: HandlerKind::Message,
            ..
        }
    ));
    let text = err.to_string();
    assert!(
        text.contains("3 problems") && text.contains("\n  3. "),
        "{text}"
    );
}

#[tokio::test]
async fn the_correlation_id_reaches_the_outbox() {
    let store = MemoryStore::new();
    let bus = bus(&store, false);
    bus.dispatch_correlated(Open("a".into()), "req-42")
        .await
        .unwrap();
    let outbox = store.outbox_snapshot();
    assert_eq!(
        outbox[0]
            .message
            .properties
            .get(CORRELATION_ID)
            .map(String::as_str),
        Some("req-42")
    );
}

struct CountOpened(MemoryRepository<Account>);
#[seedwork::async_trait]
impl MessageHandler<AccountChanged> for CountOpened {
    async fn handle(&self, message: Envelope<AccountChanged>, uow: &mut UnitOfWork) -> Result<()> {
        if message.data.amount < 0 {
            return Err(Error::Domain(DomainError::invalid_value(
                "amount", "negative",
            )));
        }
        let mut mirror = Account::open(format!("mirror-{}", message.data.account_id));
        self.0.add(uow, &mut mirror).await
    }
}

#[tokio::test]
async fn messages_are_handled_once_thanks_to_the_inbox() {
    let store = MemoryStore::new();
    let accounts = MemoryRepository::<Account>::new(store.clone());
    let bus = Bus::builder()
        .store(Arc::new(store.clone()))
        .on_message(CountOpened(accounts.clone()))
        .build()
        .unwrap();
    let message = Message::encode(
        &AccountChanged {
            account_id: "a".into(),
            change: "opened".into(),
            amount: 0,
        },
        "elsewhere",
    )
    .unwrap();
    assert_eq!(
        bus.handle_message("sub", &message).await.unwrap(),
        MessageOutcome::Handled
    );
    assert_eq!(
        bus.handle_message("sub", &message).await.unwrap(),
        MessageOutcome::Duplicate
    );
    assert_eq!(
        accounts
            .list(&PageRequest::default())
            .await
            .unwrap()
            .items
            .len(),
        1,
        "the effect happened once"
    );
    assert!(store.inbox_contains("sub", message.id()));
}

#[tokio::test]
async fn a_failed_message_leaves_no_inbox_entry_so_a_retry_runs_again() {
    let store = MemoryStore::new();
    let accounts = MemoryRepository::<Account>::new(store.clone());
    let bus = Bus::builder()
        .store(Arc::new(store.clone()))
        .on_message(CountOpened(accounts))
        .build()
        .unwrap();
    let message = Message::encode(
        &AccountChanged {
            account_id: "a".into(),
            change: "opened".into(),
            amount: -1,
        },
        "elsewhere",
    )
    .unwrap();
    assert!(bus.handle_message("sub", &message).await.is_err());
    assert!(!store.inbox_contains("sub", message.id()));
}

#[tokio::test]
async fn unknown_and_undecodable_messages_are_errors_not_panics() {
    let store = MemoryStore::new();
    let bus = Bus::builder()
        .store(Arc::new(store.clone()))
        .on_message(CountOpened(MemoryRepository::new(store)))
        .build()
        .unwrap();
    let mut message = Message::encode(
        &AccountChanged {
            account_id: "a".into(),
            change: "opened".into(),
            amount: 0,
        },
        "x",
    )
    .unwrap();
    message.envelope.data = serde_json::json!({"garbage": true});
    assert!(matches!(
        bus.handle_message("sub", &message).await,
        Err(Error::InvalidInput { .. })
    ));
    message.envelope.message_type = "Unknown".into();
    assert!(matches!(
        bus.handle_message("sub", &message).await,
        Err(Error::NoHandler {
            kind: HandlerKind::Message,
            ..
        })
    ));
}

struct Loop;
#[seedwork::async_trait]
impl DomainEventHandler<AccountOpened> for Loop {
    async fn handle(&self, event: &AccountOpened, uow: &mut UnitOfWork) -> Result<()> {
        uow.record_event(
            "loop",
            "x",
            AccountOpened {
                account_id: event.account_id.clone(),
                metadata: EventMetadata::now(),
            },
        );
        Ok(())
    }
}

#[tokio::test]
async fn handlers_raising_events_forever_fail_the_commit_instead_of_hanging() {
    let bus = Bus::builder()
        .store(Arc::new(MemoryStore::new()))
        .on_event(Loop)
        .build()
        .unwrap();
    let mut uow = bus.unit_of_work().await.unwrap();
    uow.record_event(
        "loop",
        "x",
        AccountOpened {
            account_id: "a".into(),
            metadata: EventMetadata::now(),
        },
    );
    let err = uow.commit().await.unwrap_err();
    assert!(matches!(err, Error::UnitOfWork(_)), "{err:?}");
}

#[tokio::test]
async fn an_unknown_savepoint_is_an_error() {
    let bus = Bus::builder()
        .store(Arc::new(MemoryStore::new()))
        .build()
        .unwrap();
    let mut uow = bus.unit_of_work().await.unwrap();
    let first = uow.savepoint().await.unwrap();
    let second = uow.savepoint().await.unwrap();
    uow.rollback_to(&first).await.unwrap();
    assert!(matches!(
        uow.rollback_to(&second).await,
        Err(Error::UnitOfWork(_))
    ));
    uow.rollback_to(&first).await.unwrap();
}
