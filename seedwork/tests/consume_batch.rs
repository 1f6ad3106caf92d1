//! `Bus::consume_with` with a consumer that holds several deliveries at once
//! (`Consumer::ready`): the messages at hand are handled in one unit of work, each under its own
//! correlation id and with its own inbox entry; a batch that fails is handled again one message
//! at a time, so that only the failing message is settled as a failure and nothing the failed
//! batch did survives.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use seedwork::application::{ConsumeOptions, MessageOutcome};
use seedwork::memory::MemoryStore;
use seedwork::messaging::{Consumer, Delivery, Message, SubscriptionOptions, CORRELATION_ID};
use seedwork::prelude::*;
use seedwork::testing::contract::store::AccountChanged;
use seedwork::uow::{Transaction, TransactionalStore};
use tokio::sync::oneshot;

/// Echoes each change back as a new `AccountChanged` (through the outbox), and refuses the
/// account `poison`.
#[derive(Clone)]
struct Echo;

#[seedwork::async_trait]
impl MessageHandler<AccountChanged> for Echo {
    async fn handle(&self, message: Envelope<AccountChanged>, uow: &mut UnitOfWork) -> Result<()> {
        let change = message.data;
        if change.account_id == "poison" {
            return Err(DomainError::BusinessRule {
                rule: "CuentaValida",
                message: "no such account".into(),
            }
            .into());
        }
        uow.enqueue(&AccountChanged {
            change: "echo".into(),
            ..change
        })
    }
}

/// A store that counts the transactions it opens.
#[derive(Clone)]
struct Counting {
    store: MemoryStore,
    begun: Arc<AtomicUsize>,
}

#[seedwork::async_trait]
impl TransactionalStore for Counting {
    async fn begin(&self) -> Result<Box<dyn Transaction>> {
        self.begun.fetch_add(1, Ordering::SeqCst);
        self.store.begin().await
    }
}

/// How the loop settled each delivery, by token.
#[derive(Default)]
struct Settled {
    acked: Vec<u64>,
    nacked: Vec<u64>,
    rejected: Vec<u64>,
}

/// A consumer that holds every delivery from the start: `receive` hands out the first,
/// `ready` the others.
struct Holding {
    held: VecDeque<Delivery>,
    settled: Arc<Mutex<Settled>>,
    options: SubscriptionOptions,
}

#[seedwork::async_trait]
impl Consumer for Holding {
    async fn receive(&mut self) -> Result<Delivery> {
        match self.held.pop_front() {
            Some(delivery) => Ok(delivery),
            None => std::future::pending().await,
        }
    }

    fn ready(&mut self) -> Option<Delivery> {
        self.held.pop_front()
    }

    async fn ack(&mut self, delivery: &Delivery) -> Result<()> {
        self.settled.lock().unwrap().acked.push(delivery.token);
        Ok(())
    }

    async fn nack(&mut self, delivery: &Delivery) -> Result<()> {
        self.settled.lock().unwrap().nacked.push(delivery.token);
        Ok(())
    }

    async fn reject(&mut self, delivery: &Delivery, _reason: &str) -> Result<()> {
        self.settled.lock().unwrap().rejected.push(delivery.token);
        Ok(())
    }

    fn options(&self) -> &SubscriptionOptions {
        &self.options
    }
}

/// Delivery `token` of a change of `account`, under the correlation id `corr-<account>`.
fn delivery(token: u64, account: &str) -> Delivery {
    let mut message = Message::encode(
        &AccountChanged {
            account_id: account.into(),
            change: "deposited".into(),
            amount: 1,
        },
        "tests",
    )
    .unwrap();
    message
        .properties
        .insert(CORRELATION_ID.into(), format!("corr-{account}"));
    Delivery {
        message,
        attempt: 1,
        token,
    }
}

struct Outcome {
    settled: Settled,
    store: MemoryStore,
    transactions: usize,
}

/// Runs the loop over deliveries of `accounts` (tokens 1, 2, …) until each is settled.
async fn consume(accounts: &[&str], options: ConsumeOptions) -> Outcome {
    let store = MemoryStore::new();
    let begun = Arc::new(AtomicUsize::new(0));
    let bus = Bus::builder()
        .store(Arc::new(Counting {
            store: store.clone(),
            begun: Arc::clone(&begun),
        }))
        .on_message(Echo)
        .build()
        .unwrap();
    let settled = Arc::new(Mutex::new(Settled::default()));
    let consumer = Holding {
        held: (1..)
            .zip(accounts)
            .map(|(token, account)| delivery(token, account))
            .collect(),
        settled: Arc::clone(&settled),
        options: SubscriptionOptions::new("contract-accounts", "s"),
    };
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        bus.consume_with(Box::new(consumer), &options, async {
            let _ = stopped.await;
        })
        .await
    });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let done = {
            let s = settled.lock().unwrap();
            s.acked.len() + s.nacked.len() + s.rejected.len()
        };
        if done == accounts.len() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{done} of {} deliveries settled within 10 s",
            accounts.len()
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
    let settled = std::mem::take(&mut *settled.lock().unwrap());
    Outcome {
        settled,
        store,
        transactions: begun.load(Ordering::SeqCst),
    }
}

/// The echoes in the outbox: (account, correlation id).
fn echoes(store: &MemoryStore) -> Vec<(String, Option<String>)> {
    let mut echoes: Vec<_> = store
        .outbox_snapshot()
        .into_iter()
        .map(|entry| {
            let change = entry.message.decode::<AccountChanged>().unwrap();
            (
                change.data.account_id,
                entry.message.correlation_id().map(str::to_string),
            )
        })
        .collect();
    echoes.sort();
    echoes
}

fn expected(accounts: &[&str]) -> Vec<(String, Option<String>)> {
    let mut expected: Vec<_> = accounts
        .iter()
        .map(|a| (a.to_string(), Some(format!("corr-{a}"))))
        .collect();
    expected.sort();
    expected
}

#[tokio::test]
async fn messages_at_hand_are_handled_in_one_unit_of_work() {
    let accounts = ["a", "b", "c", "d", "e"];
    let outcome = consume(&accounts, ConsumeOptions::new()).await;
    assert_eq!(outcome.transactions, 1, "one unit of work for the five");
    assert_eq!(outcome.settled.acked, vec![1, 2, 3, 4, 5]);
    assert!(outcome.settled.nacked.is_empty() && outcome.settled.rejected.is_empty());
    assert_eq!(
        echoes(&outcome.store),
        expected(&accounts),
        "each message's consequence carries that message's correlation id"
    );
}

#[tokio::test]
async fn a_failed_batch_is_handled_one_message_at_a_time() {
    let accounts = ["a", "b", "poison", "d", "e"];
    let outcome = consume(&accounts, ConsumeOptions::new()).await;
    assert_eq!(
        outcome.transactions, 6,
        "the failed batch, then one unit of work per message"
    );
    assert_eq!(outcome.settled.rejected, vec![3], "only the refused one");
    assert_eq!(outcome.settled.acked, vec![1, 2, 4, 5]);
    assert!(outcome.settled.nacked.is_empty());
    assert_eq!(
        echoes(&outcome.store),
        expected(&["a", "b", "d", "e"]),
        "each good message's effect once; nothing of the rolled-back batch"
    );
}

#[tokio::test]
async fn a_batch_of_one_handles_each_message_alone() {
    let accounts = ["a", "b", "c"];
    let outcome = consume(&accounts, ConsumeOptions::new().batch(1)).await;
    assert_eq!(outcome.transactions, 3);
    assert_eq!(outcome.settled.acked, vec![1, 2, 3]);
    assert_eq!(echoes(&outcome.store), expected(&accounts));
}

#[tokio::test]
async fn a_message_delivered_twice_in_one_batch_has_its_effect_once() {
    let store_accounts = ["a", "b"];
    let outcome = {
        // The same message under two tokens, as a relay that published it twice would.
        let store = MemoryStore::new();
        let bus = Bus::builder()
            .store(Arc::new(store.clone()))
            .on_message(Echo)
            .build()
            .unwrap();
        let first = delivery(1, "a");
        let again = Delivery {
            token: 3,
            ..first.clone()
        };
        let messages = [&first.message, &delivery(2, "b").message, &again.message];
        let outcomes = bus.handle_messages("s", &messages).await.unwrap();
        (outcomes, store)
    };
    let (outcomes, store) = outcome;
    assert_eq!(
        outcomes,
        vec![
            MessageOutcome::Handled,
            MessageOutcome::Handled,
            MessageOutcome::Duplicate
        ]
    );
    assert_eq!(echoes(&store), expected(&store_accounts));
}
