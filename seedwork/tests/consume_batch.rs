//! `Bus::consume_with` with a consumer that holds several deliveries at once
//! (`Consumer::ready`): the messages at hand are handled in one unit of work, each under its own
//! correlation id and with its own inbox entry; a batch that fails is handled again one message
//! at a time, so that only the failing message is settled as a failure and nothing the failed
//! batch did survives. When the consumer offers its acknowledgements to the store
//! (`Consumer::transactional_ack`) and the store's transaction carries them, they commit with
//! the handling, and the consumer is told so (`ack_committed`) instead of acknowledging again.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use seedwork::application::{ConsumeOptions, MessageOutcome};
use seedwork::memory::MemoryStore;
use seedwork::messaging::{
    Consumer, Delivery, Message, SubscriptionOptions, TransactionalAck, CORRELATION_ID,
};
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

/// A store that counts the transactions it opens and, with `carried`, carries
/// acknowledgements: those of a committed transaction are recorded there.
#[derive(Clone)]
struct Counting {
    store: MemoryStore,
    begun: Arc<AtomicUsize>,
    carried: Option<Arc<Mutex<Vec<Vec<u64>>>>>,
}

#[seedwork::async_trait]
impl TransactionalStore for Counting {
    async fn begin(&self) -> Result<Box<dyn Transaction>> {
        self.begun.fetch_add(1, Ordering::SeqCst);
        let inner = self.store.begin().await?;
        Ok(match &self.carried {
            Some(carried) => Box::new(Carrying {
                inner,
                pending: Vec::new(),
                carried: Arc::clone(carried),
            }),
            None => inner,
        })
    }
}

/// A memory transaction that carries the tokens `Holding` offers as its acknowledgement.
struct Carrying {
    inner: Box<dyn Transaction>,
    pending: Vec<Vec<u64>>,
    carried: Arc<Mutex<Vec<Vec<u64>>>>,
}

#[seedwork::async_trait]
impl Transaction for Carrying {
    async fn savepoint(&mut self, name: &str) -> Result<()> {
        self.inner.savepoint(name).await
    }
    async fn rollback_to_savepoint(&mut self, name: &str) -> Result<()> {
        self.inner.rollback_to_savepoint(name).await
    }
    async fn append_outbox(&mut self, messages: Vec<Message>) -> Result<()> {
        self.inner.append_outbox(messages).await
    }
    async fn record_inbox(&mut self, consumer: &str, message_id: &str) -> Result<bool> {
        self.inner.record_inbox(consumer, message_id).await
    }
    async fn acknowledge(&mut self, acknowledgements: &TransactionalAck) -> Result<bool> {
        match acknowledgements.downcast_ref::<Vec<u64>>() {
            Some(tokens) => {
                self.pending.push(tokens.clone());
                Ok(true)
            }
            None => Ok(false),
        }
    }
    async fn commit(self: Box<Self>) -> Result<()> {
        let Carrying {
            inner,
            pending,
            carried,
        } = *self;
        inner.commit().await?;
        carried.lock().unwrap().extend(pending);
        Ok(())
    }
    async fn rollback(self: Box<Self>) -> Result<()> {
        self.inner.rollback().await
    }
    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }
}

/// How the loop settled each delivery, by token.
#[derive(Default)]
struct Settled {
    acked: Vec<u64>,
    /// Settled by a committed transaction that carried their acknowledgement.
    committed: Vec<u64>,
    nacked: Vec<u64>,
    rejected: Vec<u64>,
}

/// A consumer that holds every delivery from the start: `receive` hands out the first,
/// `ready` the others.
struct Holding {
    held: VecDeque<Delivery>,
    /// Whether it offers its acknowledgements to the store (as the tokens, a `Vec<u64>`).
    offers: bool,
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

    fn transactional_ack(&self, deliveries: &[&Delivery]) -> Option<TransactionalAck> {
        self.offers.then(|| {
            TransactionalAck::new(deliveries.iter().map(|d| d.token).collect::<Vec<u64>>())
        })
    }

    async fn ack_committed(&mut self, delivery: &Delivery) -> Result<()> {
        self.settled.lock().unwrap().committed.push(delivery.token);
        Ok(())
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
    /// The acknowledgements committed transactions carried, one list per transaction.
    carried: Vec<Vec<u64>>,
}

/// Whether the consumer offers its acknowledgements, and whether the store carries them.
#[derive(Clone, Copy)]
struct Acks {
    offered: bool,
    carried: bool,
}

/// Neither offered nor carried: the consumer acknowledges after each commit.
const AFTER_COMMIT: Acks = Acks {
    offered: false,
    carried: false,
};

/// Runs the loop over deliveries of `accounts` (tokens 1, 2, …) until each is settled.
async fn consume(accounts: &[&str], options: ConsumeOptions) -> Outcome {
    consume_with_acks(accounts, options, AFTER_COMMIT).await
}

async fn consume_with_acks(accounts: &[&str], options: ConsumeOptions, acks: Acks) -> Outcome {
    let store = MemoryStore::new();
    let begun = Arc::new(AtomicUsize::new(0));
    let carried = Arc::new(Mutex::new(Vec::new()));
    let bus = Bus::builder()
        .store(Arc::new(Counting {
            store: store.clone(),
            begun: Arc::clone(&begun),
            carried: acks.carried.then(|| Arc::clone(&carried)),
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
        offers: acks.offered,
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
            s.acked.len() + s.committed.len() + s.nacked.len() + s.rejected.len()
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
    let carried = std::mem::take(&mut *carried.lock().unwrap());
    Outcome {
        settled,
        store,
        transactions: begun.load(Ordering::SeqCst),
        carried,
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

#[tokio::test]
async fn a_batch_s_acknowledgement_commits_with_its_handling() {
    let accounts = ["a", "b", "c"];
    let acks = Acks {
        offered: true,
        carried: true,
    };
    let outcome = consume_with_acks(&accounts, ConsumeOptions::new(), acks).await;
    assert_eq!(outcome.transactions, 1);
    assert_eq!(
        outcome.carried,
        vec![vec![1, 2, 3]],
        "one list, in the batch's transaction"
    );
    assert_eq!(outcome.settled.committed, vec![1, 2, 3]);
    assert!(
        outcome.settled.acked.is_empty(),
        "nothing acknowledged twice"
    );
    assert_eq!(echoes(&outcome.store), expected(&accounts));
}

#[tokio::test]
async fn a_failed_batch_carries_nothing_and_each_good_message_carries_its_own() {
    let accounts = ["a", "poison", "c"];
    let acks = Acks {
        offered: true,
        carried: true,
    };
    let outcome = consume_with_acks(&accounts, ConsumeOptions::new(), acks).await;
    assert_eq!(
        outcome.transactions, 4,
        "the failed batch, then one per message"
    );
    assert_eq!(
        outcome.carried,
        vec![vec![1], vec![3]],
        "the rolled-back batch's list is gone; the refused message carries none"
    );
    assert_eq!(outcome.settled.committed, vec![1, 3]);
    assert_eq!(outcome.settled.rejected, vec![2]);
    assert!(outcome.settled.acked.is_empty() && outcome.settled.nacked.is_empty());
}

#[tokio::test]
async fn acknowledgements_a_store_declines_are_acknowledged_after_the_commit() {
    let accounts = ["a", "b"];
    for batch in [1, 32] {
        let acks = Acks {
            offered: true,
            carried: false,
        };
        let outcome = consume_with_acks(&accounts, ConsumeOptions::new().batch(batch), acks).await;
        assert!(outcome.carried.is_empty());
        assert_eq!(outcome.settled.acked, vec![1, 2], "batch {batch}");
        assert!(outcome.settled.committed.is_empty(), "batch {batch}");
    }
}
