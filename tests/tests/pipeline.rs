//! The whole write path on the embedded default: command → unit of work → outbox → relay →
//! broker → consumer with inbox, including a broker outage and a poison message.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use seedwork::memory::{MemoryBroker, MemoryRepository, MemoryStore};
use seedwork::messaging::{
    Message, OutboxRelay, OutboxStore, Publisher, RetryPolicy, Subscriber, SubscriptionOptions,
};
use seedwork::prelude::*;
use seedwork::testing::contract::store::{publish_account_events, Account, AccountChanged};
use seedwork_tests::{eventually, SwitchablePublisher};
use tokio::sync::watch;

struct Deposit {
    account: String,
    amount: i64,
}
impl Command for Deposit {
    type Output = ();
    const NAME: &'static str = "Deposit";
}

struct DepositHandler(MemoryRepository<Account>);
#[seedwork::async_trait]
impl CommandHandler<Deposit> for DepositHandler {
    async fn handle(&self, command: Deposit, uow: &mut UnitOfWork) -> Result<()> {
        match self.0.get_in(uow, &command.account).await? {
            Some(mut account) => {
                account.deposit(command.amount);
                self.0.update(uow, &mut account).await
            }
            None => {
                let mut account = Account::open(&command.account);
                account.deposit(command.amount);
                self.0.add(uow, &mut account).await
            }
        }
    }
}

/// The consumer side: records every effect, per account, in arrival order.
#[derive(Clone, Default)]
struct Ledger(Arc<Mutex<BTreeMap<String, Vec<i64>>>>);
impl Ledger {
    fn amounts(&self) -> BTreeMap<String, Vec<i64>> {
        self.0.lock().unwrap().clone()
    }
    fn total(&self) -> usize {
        self.0.lock().unwrap().values().map(Vec::len).sum()
    }
}

#[seedwork::async_trait]
impl MessageHandler<AccountChanged> for Ledger {
    async fn handle(&self, message: Envelope<AccountChanged>, _uow: &mut UnitOfWork) -> Result<()> {
        if message.data.change == "deposited" {
            self.0
                .lock()
                .unwrap()
                .entry(message.data.account_id)
                .or_default()
                .push(message.data.amount);
        }
        Ok(())
    }
}

struct System {
    bus: Bus,
    store: MemoryStore,
    broker: MemoryBroker,
    publisher: SwitchablePublisher<MemoryBroker>,
    ledger: Ledger,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

async fn start(relays: usize, consumers: usize) -> System {
    let store = MemoryStore::new();
    let broker = MemoryBroker::new();
    let ledger = Ledger::default();
    let bus = Bus::builder()
        .store(Arc::new(store.clone()))
        .command(DepositHandler(MemoryRepository::new(store.clone())))
        .on_message(ledger.clone());
    let bus = publish_account_events(bus).build().unwrap();
    let publisher = SwitchablePublisher::new(broker.clone());
    let (stop, stopped) = watch::channel(false);
    let stopping = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let mut tasks = Vec::new();
    for _ in 0..consumers {
        let consumer = broker
            .subscribe(
                SubscriptionOptions::new("contract-accounts", "ledger").retry(RetryPolicy {
                    max_deliveries: 3,
                    initial_backoff: Duration::from_millis(10),
                    max_backoff: Duration::from_millis(50),
                    multiplier: 2,
                }),
            )
            .await
            .unwrap();
        let bus = bus.clone();
        let until = stopping(stopped.clone());
        tasks.push(tokio::spawn(async move {
            bus.consume(consumer, until).await.unwrap();
        }));
    }
    for _ in 0..relays {
        let relay = OutboxRelay::new(Arc::new(store.clone()), Arc::new(publisher.clone()))
            .poll_interval(Duration::from_millis(10))
            .batch_size(8);
        tasks.push(tokio::spawn(relay.run(stopping(stopped.clone()))));
    }
    System {
        bus,
        store,
        broker,
        publisher,
        ledger,
        stop,
        tasks,
    }
}

impl System {
    async fn shutdown(self) {
        self.stop.send(true).unwrap();
        for task in self.tasks {
            task.await.unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_committed_event_reaches_the_consumer_once_in_order_per_aggregate() {
    let system = start(2, 2).await;
    for round in 0..10 {
        for account in ["a", "b", "c"] {
            system
                .bus
                .dispatch(Deposit {
                    account: account.into(),
                    amount: round,
                })
                .await
                .unwrap();
        }
    }
    assert!(
        eventually(Duration::from_secs(10), || system.ledger.total() == 30).await,
        "got {:?}",
        system.ledger.amounts()
    );
    let expected: Vec<i64> = (0..10).collect();
    for (account, amounts) in system.ledger.amounts() {
        assert_eq!(amounts, expected, "order of {account}");
    }
    system.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_keep_succeeding_while_the_broker_is_down_and_nothing_is_lost() {
    let system = start(1, 1).await;
    system.publisher.set_up(false);
    for amount in 1..=5 {
        system
            .bus
            .dispatch(Deposit {
                account: "a".into(),
                amount,
            })
            .await
            .expect("commands do not depend on the broker");
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        system.ledger.total(),
        0,
        "nothing can arrive while the broker is down"
    );
    assert!(
        system.store.pending().await.unwrap() >= 5,
        "events wait in the outbox"
    );

    system.publisher.set_up(true);
    assert!(eventually(Duration::from_secs(10), || system.ledger.total() == 5).await);
    assert_eq!(system.ledger.amounts()["a"], vec![1, 2, 3, 4, 5]);
    system.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_message_is_dead_lettered_and_the_consumer_keeps_going() {
    let system = start(1, 1).await;
    let mut poison = Message::encode(
        &AccountChanged {
            account_id: "p".into(),
            change: "deposited".into(),
            amount: 1,
        },
        "somebody-else",
    )
    .unwrap();
    poison.envelope.data = serde_json::json!("not an object");
    system.broker.publish(&poison).await.unwrap();

    system
        .bus
        .dispatch(Deposit {
            account: "a".into(),
            amount: 7,
        })
        .await
        .unwrap();
    assert!(eventually(Duration::from_secs(10), || system.ledger.total() == 1).await);
    let dead_letters = "contract-accounts-ledger-DLQ";
    assert!(
        eventually(Duration::from_secs(10), || {
            system.broker.published(dead_letters).len() == 1
        })
        .await,
        "the poison message reaches the dead-letter topic"
    );
    assert_eq!(system.broker.published(dead_letters)[0].id(), poison.id());
    system.shutdown().await;
}
