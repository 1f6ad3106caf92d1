//! The unit-of-work / outbox / inbox contract suite.
//!
//! Every function takes a fresh, empty [`StoreUnderTest`] (a backend's store, its outbox view
//! and its repository for the suite's [`Account`] aggregate) and panics with a message when the
//! backend breaks the contract. Backends call them from their own tests, or all at once with
//! [`run_all`].

use std::any::Any;
use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::application::{Bus, BusBuilder, DomainEventHandler};
use crate::domain::{
    AggregateRoot, AggregateState, DomainEvent, EventMetadata, PageRequest, Repository,
};
use crate::error::{Error, Result};
use crate::messaging::{
    InboxStore, IntegrationEvent, IntegrationMessage, Message, MessageKind, OutboxLag, OutboxRelay,
    OutboxStore, Publisher, RelayRound,
};
use crate::uow::{TransactionalStore, UnitOfWork};

/// The suite's aggregate: a bank account with a balance.
#[derive(Debug, Clone, Serialize, Deserialize, crate::AggregateRoot)]
#[aggregate(name = "contract_account")]
pub struct Account {
    /// Account id.
    pub id: String,
    /// Current balance.
    pub balance: i64,
    /// Version and pending events.
    #[serde(skip)]
    pub state: AggregateState,
}

impl Account {
    /// Opens an account (records [`AccountOpened`]).
    pub fn open(id: impl Into<String>) -> Self {
        let id = id.into();
        let mut account = Account {
            id: id.clone(),
            balance: 0,
            state: AggregateState::new(),
        };
        account.record(AccountOpened {
            account_id: id,
            metadata: EventMetadata::now(),
        });
        account
    }

    /// Deposits `amount` (records [`Deposited`]).
    pub fn deposit(&mut self, amount: i64) {
        self.balance += amount;
        let account_id = self.id.clone();
        self.record(Deposited {
            account_id,
            amount,
            metadata: EventMetadata::now(),
        });
    }
}

/// Domain event: an account was opened.
#[derive(Debug, Clone)]
pub struct AccountOpened {
    /// The account.
    pub account_id: String,
    /// Event id and time.
    pub metadata: EventMetadata,
}

/// Domain event: money was deposited.
#[derive(Debug, Clone)]
pub struct Deposited {
    /// The account.
    pub account_id: String,
    /// The amount.
    pub amount: i64,
    /// Event id and time.
    pub metadata: EventMetadata,
}

macro_rules! domain_event {
    ($name:ident) => {
        impl DomainEvent for $name {
            fn event_name(&self) -> &'static str {
                stringify!($name)
            }
            fn metadata(&self) -> &EventMetadata {
                &self.metadata
            }
            fn as_any(&self) -> &dyn Any {
                self
            }
        }
    };
}
domain_event!(AccountOpened);
domain_event!(Deposited);

/// The integration event the suite maps its domain events to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccountChanged {
    /// The account.
    pub account_id: String,
    /// `opened` or `deposited`.
    pub change: String,
    /// The amount (0 for `opened`).
    pub amount: i64,
}

impl IntegrationMessage for AccountChanged {
    const TOPIC: &'static str = "contract-accounts";
    const TYPE: &'static str = "AccountChanged";
    const VERSION: &'static str = "v1";
    const KIND: MessageKind = MessageKind::Event;
}
impl IntegrationEvent for AccountChanged {}

/// Adds the mappers that publish [`AccountOpened`] and [`Deposited`] as [`AccountChanged`].
pub fn publish_account_events(builder: BusBuilder) -> BusBuilder {
    builder
        .publish(|e: &AccountOpened| AccountChanged {
            account_id: e.account_id.clone(),
            change: "opened".into(),
            amount: 0,
        })
        .publish(|e: &Deposited| AccountChanged {
            account_id: e.account_id.clone(),
            change: "deposited".into(),
            amount: e.amount,
        })
}

/// A backend as the suite sees it. Give each suite function a fresh, empty one.
#[derive(Clone)]
pub struct StoreUnderTest {
    /// Opens transactions.
    pub store: Arc<dyn TransactionalStore>,
    /// The same store's outbox, as a relay reads it.
    pub outbox: Arc<dyn OutboxStore>,
    /// The same store's inbox, as its retention task purges it.
    pub inbox: Arc<dyn InboxStore>,
    /// The backend's repository for [`Account`].
    pub accounts: Arc<dyn Repository<Account>>,
}

impl StoreUnderTest {
    /// A bus on this store that publishes both account events.
    fn builder(&self) -> BusBuilder {
        publish_account_events(
            Bus::builder()
                .service_name("contract")
                .store(Arc::clone(&self.store)),
        )
    }

    fn bus(&self) -> Bus {
        self.builder().build().expect("contract bus builds")
    }

    async fn open(&self, bus: &Bus, id: &str) -> Account {
        let mut uow = bus.unit_of_work().await.expect("begin");
        let mut account = Account::open(id);
        self.accounts
            .add(&mut uow, &mut account)
            .await
            .expect("add account");
        uow.commit().await.expect("commit");
        account
    }

    async fn load(&self, id: &str) -> Option<Account> {
        self.accounts.get(&id.to_string()).await.expect("get")
    }
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", Uuid::new_v4())
}

/// Every unpublished outbox message, in order, left for a relay (claimed and released).
pub(crate) async fn drain(outbox: &dyn OutboxStore) -> Vec<Message> {
    let claimant = unique("drain");
    let entries = outbox
        .claim(&claimant, 10_000, Duration::from_secs(60))
        .await
        .expect("claim");
    let sequences: Vec<u64> = entries.iter().map(|e| e.sequence).collect();
    outbox
        .release(&claimant, &sequences)
        .await
        .expect("release");
    entries.into_iter().map(|e| e.message).collect()
}

/// Commit makes the aggregate (at version 1) and its mapped outbox message visible.
pub async fn commit_persists_aggregate_and_outbox(s: &StoreUnderTest) {
    let bus = s.bus();
    let id = unique("acc");
    assert!(s.load(&id).await.is_none(), "fresh store has no {id}");
    s.open(&bus, &id).await;
    let stored = s.load(&id).await.expect("committed account is readable");
    assert_eq!(stored.balance, 0);
    assert_eq!(
        stored.version(),
        1,
        "a new aggregate is stored at version 1"
    );
    assert!(stored.state.pending_events().is_empty());
    assert_eq!(s.outbox.pending().await.expect("pending"), 1);
    let messages = drain(&*s.outbox).await;
    assert_eq!(messages.len(), 1);
    let message = &messages[0];
    assert_eq!(message.topic, AccountChanged::TOPIC);
    assert_eq!(
        message.key.as_deref(),
        Some(id.as_str()),
        "keyed by aggregate id"
    );
    assert_eq!(message.envelope.service_name, "contract");
    let decoded = message.decode::<AccountChanged>().expect("decodes");
    assert_eq!(decoded.data.account_id, id);
    assert_eq!(decoded.data.change, "opened");
}

/// An explicit rollback, and a unit of work dropped uncommitted, leave nothing behind.
pub async fn rollback_discards_aggregate_and_outbox(s: &StoreUnderTest) {
    let bus = s.bus();
    let id = unique("acc");
    let mut uow = bus.unit_of_work().await.expect("begin");
    s.accounts
        .add(&mut uow, &mut Account::open(&id))
        .await
        .expect("add");
    uow.rollback().await.expect("rollback");
    assert!(s.load(&id).await.is_none(), "rolled back account is gone");

    let dropped = unique("acc");
    {
        let mut uow = bus.unit_of_work().await.expect("begin");
        s.accounts
            .add(&mut uow, &mut Account::open(&dropped))
            .await
            .expect("add");
    }
    assert!(
        s.load(&dropped).await.is_none(),
        "dropped unit of work rolled back"
    );
    assert_eq!(s.outbox.pending().await.expect("pending"), 0);
}

struct FailingHandler;
#[async_trait]
impl DomainEventHandler<AccountOpened> for FailingHandler {
    async fn handle(&self, _event: &AccountOpened, _uow: &mut UnitOfWork) -> Result<()> {
        Err(Error::other("the reaction refused"))
    }
}

/// A failing domain-event handler rolls back the aggregate and its outbox rows.
pub async fn failing_domain_handler_rolls_back(s: &StoreUnderTest) {
    let bus = s.builder().on_event(FailingHandler).build().expect("bus");
    let id = unique("acc");
    let mut uow = bus.unit_of_work().await.expect("begin");
    s.accounts
        .add(&mut uow, &mut Account::open(&id))
        .await
        .expect("add");
    let err = uow.commit().await.expect_err("commit must fail");
    assert!(err.to_string().contains("refused"), "{err}");
    assert!(s.load(&id).await.is_none(), "aggregate rolled back");
    assert_eq!(
        s.outbox.pending().await.expect("pending"),
        0,
        "outbox rolled back"
    );
}

struct OpenShadowAccount(Arc<dyn Repository<Account>>);
#[async_trait]
impl DomainEventHandler<AccountOpened> for OpenShadowAccount {
    async fn handle(&self, event: &AccountOpened, uow: &mut UnitOfWork) -> Result<()> {
        if event.account_id.starts_with("shadow-") {
            return Ok(());
        }
        let mut shadow = Account::open(format!("shadow-{}", event.account_id));
        self.0.add(uow, &mut shadow).await
    }
}

/// A domain-event handler continues the business transaction: its writes and events commit
/// with the original change.
pub async fn domain_handler_continues_the_transaction(s: &StoreUnderTest) {
    let bus = s
        .builder()
        .on_event(OpenShadowAccount(Arc::clone(&s.accounts)))
        .build()
        .expect("bus");
    let id = unique("acc");
    s.open(&bus, &id).await;
    assert!(s.load(&id).await.is_some());
    assert!(
        s.load(&format!("shadow-{id}")).await.is_some(),
        "the handler's aggregate committed with the original"
    );
    let messages = drain(&*s.outbox).await;
    let keys: Vec<_> = messages.iter().filter_map(|m| m.key.clone()).collect();
    assert_eq!(
        keys,
        vec![id.clone(), format!("shadow-{id}")],
        "both events mapped, in order"
    );
}

/// Rolling back to a savepoint undoes later work and keeps earlier work.
pub async fn savepoint_rollback_keeps_earlier_work(s: &StoreUnderTest) {
    let bus = s.bus();
    let kept = unique("kept");
    let undone = unique("undone");
    let mut uow = bus.unit_of_work().await.expect("begin");
    s.accounts
        .add(&mut uow, &mut Account::open(&kept))
        .await
        .expect("add kept");
    let savepoint = uow.savepoint().await.expect("savepoint");
    s.accounts
        .add(&mut uow, &mut Account::open(&undone))
        .await
        .expect("add undone");
    uow.rollback_to(&savepoint)
        .await
        .expect("rollback to savepoint");
    assert_eq!(
        uow.pending_events().len(),
        1,
        "events after the savepoint forgotten"
    );
    uow.commit().await.expect("commit");
    assert!(
        s.load(&kept).await.is_some(),
        "work before the savepoint kept"
    );
    assert!(
        s.load(&undone).await.is_none(),
        "work after the savepoint undone"
    );
    let messages = drain(&*s.outbox).await;
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].key.as_deref(), Some(kept.as_str()));
}

/// Updating from a stale version is a typed conflict; the stored state is untouched.
pub async fn stale_update_is_a_conflict(s: &StoreUnderTest) {
    let bus = s.bus();
    let id = unique("acc");
    s.open(&bus, &id).await;
    let mut first = s.load(&id).await.expect("exists");
    let mut second = s.load(&id).await.expect("exists");

    let mut uow = bus.unit_of_work().await.expect("begin");
    first.deposit(10);
    s.accounts
        .update(&mut uow, &mut first)
        .await
        .expect("first update");
    uow.commit().await.expect("commit");
    assert_eq!(first.version(), 2, "a successful update bumps the version");

    let mut uow = bus.unit_of_work().await.expect("begin");
    second.deposit(5);
    let err = s
        .accounts
        .update(&mut uow, &mut second)
        .await
        .expect_err("stale update must fail");
    assert!(
        matches!(err, Error::Conflict { expected: 1, .. }),
        "expected a conflict at version 1, got {err:?}"
    );
    drop(uow);
    let stored = s.load(&id).await.expect("exists");
    assert_eq!((stored.balance, stored.version()), (10, 2));

    let mut missing = Account::open(unique("missing"));
    missing.state.set_version(1);
    let mut uow = bus.unit_of_work().await.expect("begin");
    let err = s
        .accounts
        .update(&mut uow, &mut missing)
        .await
        .expect_err("updating a missing aggregate fails");
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
}

/// Eight tasks update one aggregate from the same version: exactly one wins, the rest get a
/// conflict. Retrying until success, every deposit lands exactly once.
pub async fn concurrent_updates_win_each_version_once(s: &StoreUnderTest) {
    const TASKS: usize = 8;
    let bus = s.bus();
    let id = unique("acc");
    s.open(&bus, &id).await;

    let loaded: Vec<Account> = futures_join((0..TASKS).map(|_| {
        let s = s.clone();
        let id = id.clone();
        async move { s.load(&id).await.expect("exists") }
    }))
    .await;
    let outcomes = futures_join(loaded.into_iter().map(|mut account| {
        let s = s.clone();
        let bus = bus.clone();
        async move {
            let mut uow = bus.unit_of_work().await?;
            account.deposit(1);
            s.accounts.update(&mut uow, &mut account).await?;
            uow.commit().await.map(|_| ())
        }
    }))
    .await;
    let wins = outcomes.iter().filter(|o| o.is_ok()).count();
    let conflicts = outcomes
        .iter()
        .filter(|o| matches!(o, Err(Error::Conflict { .. })))
        .count();
    assert_eq!((wins, conflicts), (1, TASKS - 1), "{outcomes:?}");
    let stored = s.load(&id).await.expect("exists");
    assert_eq!((stored.balance, stored.version()), (1, 2));

    let outcomes = futures_join((0..TASKS).map(|_| {
        let s = s.clone();
        let bus = bus.clone();
        let id = id.clone();
        async move {
            let mut conflicts = 0u32;
            loop {
                let mut account = s.load(&id).await.expect("exists");
                let mut uow = bus.unit_of_work().await.expect("begin");
                account.deposit(1);
                match s.accounts.update(&mut uow, &mut account).await {
                    Ok(()) => {
                        uow.commit().await.expect("commit");
                        return conflicts;
                    }
                    Err(Error::Conflict { .. }) => conflicts += 1,
                    Err(other) => panic!("unexpected error {other:?}"),
                }
            }
        }
    }))
    .await;
    assert_eq!(outcomes.len(), TASKS);
    let stored = s.load(&id).await.expect("exists");
    assert_eq!(
        (stored.balance, stored.version()),
        (1 + TASKS as i64, 2 + TASKS as u64),
        "every retried deposit landed exactly once"
    );
    let deposits = drain(&*s.outbox)
        .await
        .into_iter()
        .filter(|m| m.key.as_deref() == Some(id.as_str()))
        .filter(|m| m.envelope.data["change"] == "deposited")
        .count();
    assert_eq!(
        deposits,
        1 + TASKS,
        "one outbox message per committed deposit"
    );
}

/// The inbox: a message id is accepted once per consumer; a rolled-back acceptance does not
/// count.
pub async fn inbox_accepts_each_message_once(s: &StoreUnderTest) {
    let bus = s.bus();
    let message_id = Uuid::new_v4().to_string();

    let mut uow = bus.unit_of_work().await.expect("begin");
    assert!(uow.record_inbox("c1", &message_id).await.expect("inbox"));
    uow.rollback().await.expect("rollback");

    let mut uow = bus.unit_of_work().await.expect("begin");
    assert!(
        uow.record_inbox("c1", &message_id).await.expect("inbox"),
        "a rolled-back inbox entry does not count"
    );
    assert!(
        !uow.record_inbox("c1", &message_id).await.expect("inbox"),
        "the same transaction sees its own entry"
    );
    uow.commit().await.expect("commit");

    let mut uow = bus.unit_of_work().await.expect("begin");
    assert!(!uow.record_inbox("c1", &message_id).await.expect("inbox"));
    assert!(
        uow.record_inbox("c2", &message_id).await.expect("inbox"),
        "each consumer has its own inbox"
    );
    uow.commit().await.expect("commit");
}

/// The inbox takes a list as it takes ids one by one: one answer per id, in list order;
/// `false` for an id known before, listed earlier, or recorded earlier in the same
/// transaction; a rolled-back list does not count; each consumer has its own inbox.
pub async fn inbox_accepts_a_list_as_one_by_one(s: &StoreUnderTest) {
    let bus = s.bus();
    let ids: Vec<String> = (0..5).map(|_| Uuid::new_v4().to_string()).collect();
    let id = |n: usize| ids[n].as_str();

    let mut uow = bus.unit_of_work().await.expect("begin");
    assert_eq!(
        uow.record_inbox_many("c1", &[id(0), id(1)])
            .await
            .expect("inbox"),
        [true, true]
    );
    uow.rollback().await.expect("rollback");

    let mut uow = bus.unit_of_work().await.expect("begin");
    assert!(uow.record_inbox("c1", id(2)).await.expect("inbox"));
    assert_eq!(
        uow.record_inbox_many("c1", &[id(0), id(2), id(1), id(0), id(3)])
            .await
            .expect("inbox"),
        [true, false, true, false, true],
        "new, recorded earlier in this transaction, new, listed earlier, new"
    );
    assert_eq!(
        uow.record_inbox_many("c1", &[]).await.expect("inbox"),
        Vec::<bool>::new()
    );
    uow.commit().await.expect("commit");

    let mut uow = bus.unit_of_work().await.expect("begin");
    assert_eq!(
        uow.record_inbox_many("c1", &[id(4), id(3), id(0)])
            .await
            .expect("inbox"),
        [true, false, false],
        "ids committed before are known"
    );
    assert!(!uow.record_inbox("c1", id(4)).await.expect("inbox"));
    assert_eq!(
        uow.record_inbox_many("c2", &[id(0), id(1)])
            .await
            .expect("inbox"),
        [true, true],
        "each consumer has its own inbox"
    );
    uow.commit().await.expect("commit");
}

async fn commit_messages(s: &StoreUnderTest, bus: &Bus, keys: &[&str]) -> Vec<String> {
    let mut uow = bus.unit_of_work().await.expect("begin");
    let mut ids = Vec::new();
    for (n, key) in keys.iter().enumerate() {
        let event = Deposited {
            account_id: key.to_string(),
            amount: n as i64,
            metadata: EventMetadata::now(),
        };
        uow.record_event(Account::TYPE, key.to_string(), event);
        ids.push(key.to_string());
    }
    uow.commit().await.expect("commit");
    let _ = s;
    ids
}

/// Claims come in sequence order, never overlap between claimants, respect order per key, and
/// expire.
pub async fn outbox_claims_respect_leases_and_key_order(s: &StoreUnderTest) {
    let bus = s.bus();
    let (k1, k2) = (unique("k1"), unique("k2"));
    commit_messages(s, &bus, &[&k1, &k2, &k1, &k2, &k1]).await;
    let lease = Duration::from_secs(60);

    let a = s.outbox.claim("relay-a", 2, lease).await.expect("claim a");
    let a_keys: Vec<_> = a
        .iter()
        .map(|e| e.message.key.clone().unwrap_or_default())
        .collect();
    assert_eq!(
        a_keys,
        vec![k1.clone(), k2.clone()],
        "first two in sequence order"
    );
    assert!(a[0].sequence < a[1].sequence);

    let b = s.outbox.claim("relay-b", 10, lease).await.expect("claim b");
    assert!(
        b.is_empty(),
        "every remaining entry waits behind a leased entry of its key, got {b:?}"
    );

    s.outbox
        .mark_published("relay-a", &[a[0].sequence])
        .await
        .expect("mark");
    s.outbox
        .release("relay-a", &[a[1].sequence])
        .await
        .expect("release");
    let b = s.outbox.claim("relay-b", 10, lease).await.expect("claim b");
    let b_seqs: Vec<u64> = b.iter().map(|e| e.sequence).collect();
    assert_eq!(
        b.len(),
        4,
        "everything unpublished is claimable again: {b:?}"
    );
    assert!(b_seqs.windows(2).all(|w| w[0] < w[1]), "sequence order");
    assert!(
        !b_seqs.contains(&a[0].sequence),
        "published entries are not claimed"
    );

    s.outbox
        .mark_published("relay-a", &b_seqs)
        .await
        .expect("mark by non-holder");
    assert_eq!(
        s.outbox.pending().await.expect("pending"),
        4,
        "a claimant cannot mark entries it does not hold"
    );

    let short = s
        .outbox
        .claim("relay-c", 10, Duration::from_millis(1))
        .await
        .expect("claim c");
    assert!(short.is_empty(), "relay-b still holds everything");
    s.outbox.release("relay-b", &b_seqs).await.expect("release");
    let c = s
        .outbox
        .claim("relay-c", 10, Duration::from_millis(50))
        .await
        .expect("claim c");
    assert_eq!(c.len(), 4);
    tokio::time::sleep(Duration::from_millis(150)).await;
    let d = s.outbox.claim("relay-d", 10, lease).await.expect("claim d");
    assert_eq!(d.len(), 4, "an expired lease is claimable by another relay");

    s.outbox
        .mark_published("relay-d", &d.iter().map(|e| e.sequence).collect::<Vec<_>>())
        .await
        .expect("mark");
    assert_eq!(s.outbox.pending().await.expect("pending"), 0);
    let purged = s
        .outbox
        .purge_published(Duration::ZERO)
        .await
        .expect("purge");
    assert_eq!(purged, 5, "purge removes the published entries");
}

/// A publisher that records what it sent and can be told to fail for some keys: as an outage
/// ([`Error::Unavailable`], transient) or as a refusal of the message itself
/// ([`Error::Broker`], counted against the entry).
#[derive(Default, Clone)]
pub struct RecordingPublisher {
    sent: Arc<Mutex<Vec<Message>>>,
    attempts: Arc<Mutex<Vec<Message>>>,
    failing_keys: Arc<Mutex<HashSet<String>>>,
    refused: Arc<Mutex<HashSet<Refusal>>>,
}

/// A refused `(key, amount)`; amount `None` refuses every message of the key.
type Refusal = (String, Option<i64>);

fn locked<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl RecordingPublisher {
    /// A publisher that accepts everything.
    pub fn new() -> Self {
        RecordingPublisher::default()
    }

    /// Makes publishes of messages keyed `key` fail as an outage (`true`: the broker is
    /// unavailable for them) or succeed again (`false`).
    pub fn fail_key(&self, key: &str, fail: bool) {
        let mut keys = locked(&self.failing_keys);
        if fail {
            keys.insert(key.to_string());
        } else {
            keys.remove(key);
        }
    }

    /// Makes the broker refuse (`true`) or accept again (`false`) the messages keyed `key` —
    /// only the one with `amount` (the suite's [`AccountChanged::amount`]) when given.
    pub fn refuse(&self, key: &str, amount: Option<i64>, refuse: bool) {
        let mut refused = locked(&self.refused);
        if refuse {
            refused.insert((key.to_string(), amount));
        } else {
            refused.remove(&(key.to_string(), amount));
        }
    }

    /// Everything sent so far, in order.
    pub fn sent(&self) -> Vec<Message> {
        locked(&self.sent).clone()
    }

    /// How many publishes of messages keyed `key` were attempted, successful or not.
    pub fn attempts_for(&self, key: &str) -> usize {
        locked(&self.attempts)
            .iter()
            .filter(|m| m.key.as_deref() == Some(key))
            .count()
    }
}

#[async_trait]
impl Publisher for RecordingPublisher {
    async fn publish(&self, message: &Message) -> Result<()> {
        // Yield like a network call would, so concurrent relays interleave.
        tokio::task::yield_now().await;
        locked(&self.attempts).push(message.clone());
        let key = message.key.clone().unwrap_or_default();
        if locked(&self.failing_keys).contains(&key) {
            return Err(Error::unavailable("broker unavailable for this key"));
        }
        let amount = message.envelope.data["amount"].as_i64();
        let refused = locked(&self.refused);
        if refused.contains(&(key.clone(), None)) || refused.contains(&(key, amount)) {
            return Err(Error::broker("the broker refuses this message"));
        }
        drop(refused);
        locked(&self.sent).push(message.clone());
        Ok(())
    }
}

fn amounts_for(sent: &[Message], key: &str) -> Vec<i64> {
    sent.iter()
        .filter(|m| m.key.as_deref() == Some(key))
        .filter_map(|m| m.envelope.data["amount"].as_i64())
        .collect()
}

/// The relay publishes in order per key; a failing key waits (in order) while others flow.
pub async fn relay_keeps_key_order_through_failures(s: &StoreUnderTest) {
    let bus = s.bus();
    let (ok, down) = (unique("ok"), unique("down"));
    commit_messages(s, &bus, &[&ok, &down, &ok, &down, &ok, &down]).await;
    let publisher = RecordingPublisher::new();
    publisher.fail_key(&down, true);
    let relay = OutboxRelay::new(Arc::clone(&s.outbox), Arc::new(publisher.clone()));

    let round = relay.run_once().await.expect("round");
    assert_eq!(round.published, 3);
    assert_eq!(amounts_for(&publisher.sent(), &ok), vec![0, 2, 4]);
    assert!(amounts_for(&publisher.sent(), &down).is_empty());
    assert_eq!(
        s.outbox.pending().await.expect("pending"),
        3,
        "failed key stays pending"
    );

    publisher.fail_key(&down, false);
    let round = relay.run_once().await.expect("round");
    assert_eq!(round.published, 3);
    assert_eq!(
        amounts_for(&publisher.sent(), &down),
        vec![1, 3, 5],
        "in order after outage"
    );
    assert_eq!(s.outbox.pending().await.expect("pending"), 0);
    let round = relay.run_once().await.expect("round");
    assert_eq!(round.published, 0, "nothing is published twice");
}

/// A relay that dies after publishing but before marking: the entries are published again once
/// the lease expires, and the consumer's inbox absorbs the duplicates.
pub async fn relay_crash_resends_and_inbox_absorbs(s: &StoreUnderTest) {
    let bus = s.bus();
    let key = unique("k");
    commit_messages(s, &bus, &[&key, &key]).await;
    let publisher = RecordingPublisher::new();

    let claimed = s
        .outbox
        .claim("dying-relay", 10, Duration::from_millis(50))
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 2);
    for entry in &claimed {
        publisher.publish(&entry.message).await.expect("publish");
    }
    tokio::time::sleep(Duration::from_millis(150)).await;

    let relay = OutboxRelay::new(Arc::clone(&s.outbox), Arc::new(publisher.clone()));
    assert_eq!(relay.run_once().await.expect("round").published, 2);
    let sent = publisher.sent();
    assert_eq!(sent.len(), 4, "at least once: both entries went out twice");

    let mut effects = 0;
    for message in &sent {
        let mut uow = bus.unit_of_work().await.expect("begin");
        if uow
            .record_inbox("consumer", message.id())
            .await
            .expect("inbox")
        {
            effects += 1;
        }
        uow.commit().await.expect("commit");
    }
    assert_eq!(
        effects, 2,
        "the inbox lets each message have its effect once"
    );
}

/// Several relays on one store publish every entry exactly once (the normal case).
pub async fn concurrent_relays_send_each_entry_once(s: &StoreUnderTest) {
    let bus = s.bus();
    let keys: Vec<String> = (0..5).map(|n| unique(&format!("k{n}"))).collect();
    for _ in 0..10 {
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        commit_messages(s, &bus, &refs).await;
    }
    let publisher = RecordingPublisher::new();
    let relays: Vec<OutboxRelay> = (0..3)
        .map(|_| OutboxRelay::new(Arc::clone(&s.outbox), Arc::new(publisher.clone())).batch_size(7))
        .collect();
    for _ in 0..50 {
        let rounds = futures_join(relays.iter().map(|relay| relay.run_once())).await;
        for round in rounds {
            round.expect("round");
        }
        if s.outbox.pending().await.expect("pending") == 0 {
            break;
        }
    }
    assert_eq!(s.outbox.pending().await.expect("pending"), 0);
    let sent = publisher.sent();
    let ids: HashSet<&str> = sent.iter().map(|m| m.id()).collect();
    assert_eq!(sent.len(), 50, "every entry sent");
    assert_eq!(ids.len(), 50, "no entry sent twice");
    let mut per_key: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    for message in &sent {
        let key = message.key.as_deref().unwrap_or_default();
        per_key
            .entry(key)
            .or_default()
            .push(message.envelope.data["amount"].as_i64().unwrap_or(-1));
    }
    for (key, amounts) in per_key {
        assert_eq!(amounts.len(), 10, "{key}");
    }
}

/// Runs `futures` concurrently on the current task and collects their outputs in order.
async fn futures_join<F: Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let handles: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = handles.iter().map(|_| None).collect();
    let mut handles: Vec<Option<_>> = handles.into_iter().map(Some).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (slot, output) in handles.iter_mut().zip(outputs.iter_mut()) {
            if let Some(future) = slot {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(value) => {
                        *output = Some(value);
                        *slot = None;
                    }
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}

/// `Repository::list` pages in id order: following the cursor visits every aggregate once, the
/// last page says it is the last, and a page exactly as long as what is left is not followed by
/// an empty one.
pub async fn list_pages_in_id_order(s: &StoreUnderTest) {
    let bus = s.bus();
    let ids = [
        "page-5", "page-2", "page-7", "page-1", "page-4", "page-6", "page-3",
    ];
    for id in ids {
        s.open(&bus, id).await;
    }
    let mut sorted: Vec<String> = ids.iter().map(|id| id.to_string()).collect();
    sorted.sort();

    let mut request = PageRequest::first(3).expect("valid limit");
    let mut seen = Vec::new();
    let mut sizes = Vec::new();
    loop {
        let page = s.accounts.list(&request).await.expect("list");
        sizes.push(page.items.len());
        seen.extend(page.items.iter().map(|a| a.id.clone()));
        match page.next {
            Some(cursor) => {
                assert_eq!(
                    Some(&cursor),
                    seen.last(),
                    "the cursor is the page's last id"
                );
                request = request.after(cursor);
            }
            None => break,
        }
        assert!(sizes.len() <= ids.len(), "the listing does not end");
    }
    assert_eq!(seen, sorted, "every aggregate once, in id order");
    assert_eq!(sizes, vec![3, 3, 1]);

    let whole = s
        .accounts
        .list(&PageRequest::first(7).expect("valid limit"))
        .await
        .expect("list");
    assert_eq!((whole.items.len(), whole.next), (7, None));

    let tail = s
        .accounts
        .list(&PageRequest::first(10).expect("valid limit").after("page-5"))
        .await
        .expect("list");
    assert!(
        tail.items.iter().all(|a| a.version() == 1),
        "listed aggregates carry their stored version"
    );
    let tail: Vec<&str> = tail.items.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(tail, ["page-6", "page-7"]);
}

/// Adds one round's counts to a running total.
fn add_round(total: &mut RelayRound, round: RelayRound) {
    total.published += round.published;
    total.released += round.released;
    total.failed += round.failed;
    total.parked += round.parked;
}

async fn lag_of(outbox: &dyn OutboxStore) -> OutboxLag {
    outbox.lag().await.expect("lag")
}

/// Entries the broker refuses for good are parked after `max_attempts` failures; a claim skips
/// them and the entries they hold back — more of them than a batch, and more than a backend's
/// scan window — so every other key keeps flowing.
pub async fn poison_entries_are_parked_and_other_keys_keep_flowing(s: &StoreUnderTest) {
    const MAX_ATTEMPTS: u32 = 3;
    const BATCH: usize = 2;
    const HELD_BACK: usize = 80;
    let bus = s.bus();
    let poison: Vec<String> = (0..3).map(|n| unique(&format!("poison{n}"))).collect();
    let good: Vec<String> = (0..3).map(|n| unique(&format!("good{n}"))).collect();
    let mut keys: Vec<&str> = poison.iter().map(String::as_str).collect();
    keys.extend(std::iter::repeat_n(poison[0].as_str(), HELD_BACK));
    keys.extend(good.iter().map(String::as_str));
    commit_messages(s, &bus, &keys).await;
    let publisher = RecordingPublisher::new();
    for key in &poison {
        publisher.refuse(key, None, true);
    }
    let relay = OutboxRelay::new(Arc::clone(&s.outbox), Arc::new(publisher.clone()))
        .batch_size(BATCH)
        .max_attempts(MAX_ATTEMPTS);

    let mut total = RelayRound::default();
    for _ in 0..100 {
        add_round(&mut total, relay.run_once().await.expect("round"));
        if total.parked == poison.len() && total.published == good.len() {
            break;
        }
    }
    assert_eq!(total.parked, 3, "every poison entry is parked: {total:?}");
    assert_eq!(total.published, 3, "every good entry went out: {total:?}");
    assert_eq!(
        total.failed,
        3 * (MAX_ATTEMPTS as usize - 1),
        "each poison entry failed max_attempts - 1 times before the failure that parked it"
    );
    for key in &poison {
        assert_eq!(
            publisher.attempts_for(key),
            MAX_ATTEMPTS as usize,
            "a parked entry is not tried again, and the entries behind it are never tried"
        );
    }
    let sent = publisher.sent();
    assert_eq!(sent.len(), 3);
    for key in &good {
        assert_eq!(amounts_for(&sent, key).len(), 1, "{key} sent once");
    }
    let lag = lag_of(&*s.outbox).await;
    assert_eq!(
        (lag.pending, lag.parked),
        (HELD_BACK as u64, 3),
        "the held-back entries are pending, the poison ones parked"
    );

    let parked = s.outbox.parked(None, 10).await.expect("parked");
    let parked_keys: Vec<_> = parked.iter().filter_map(|p| p.key.clone()).collect();
    assert_eq!(
        parked_keys, poison,
        "parked entries listed in sequence order"
    );
    for entry in &parked {
        assert_eq!(entry.attempts, MAX_ATTEMPTS);
        assert!(
            entry.last_error.contains("refuses"),
            "the last error is kept: {:?}",
            entry.last_error
        );
    }
    let page = s
        .outbox
        .parked(Some(parked[0].sequence), 1)
        .await
        .expect("parked page");
    assert_eq!(page.len(), 1);
    assert_eq!(
        page[0].sequence, parked[1].sequence,
        "listing pages by sequence"
    );

    let late = unique("late");
    commit_messages(s, &bus, &[&late]).await;
    let round = relay.run_once().await.expect("round");
    assert_eq!(
        (round.published, round.failed, round.parked),
        (1, 0, 0),
        "a new entry goes out at once, past every parked and held-back entry"
    );
    assert_eq!(amounts_for(&publisher.sent(), &late).len(), 1);
}

/// The later entries of a parked entry's key wait behind it (order per key) while other keys
/// flow; discarding it releases them, in order.
pub async fn a_parked_entry_holds_back_its_key_until_discarded(s: &StoreUnderTest) {
    let bus = s.bus();
    let (held, free) = (unique("held"), unique("free"));
    commit_messages(s, &bus, &[&held, &free, &held, &free, &held]).await;
    let publisher = RecordingPublisher::new();
    publisher.refuse(&held, Some(0), true);
    let relay =
        OutboxRelay::new(Arc::clone(&s.outbox), Arc::new(publisher.clone())).max_attempts(1);

    let round = relay.run_once().await.expect("round");
    assert_eq!(
        round,
        RelayRound {
            published: 2,
            released: 2,
            failed: 0,
            parked: 1
        }
    );
    assert_eq!(amounts_for(&publisher.sent(), &free), vec![1, 3]);
    let probe = s
        .outbox
        .claim("probe", 10, Duration::from_secs(60))
        .await
        .expect("claim");
    assert!(
        probe.is_empty(),
        "entries behind a parked one are not claimed: {probe:?}"
    );
    assert_eq!(
        relay.run_once().await.expect("round"),
        RelayRound::default()
    );
    let lag = lag_of(&*s.outbox).await;
    assert_eq!((lag.pending, lag.parked), (2, 1));

    commit_messages(s, &bus, &[&free]).await;
    assert_eq!(
        relay.run_once().await.expect("round").published,
        1,
        "other keys keep flowing"
    );

    let parked = s.outbox.parked(None, 10).await.expect("parked");
    assert_eq!(parked.len(), 1);
    let message = parked[0]
        .message
        .as_ref()
        .expect("the parked message reads back");
    assert_eq!(message.envelope.data["amount"], 0);
    assert_eq!(parked[0].topic, message.topic);
    assert_eq!(parked[0].key, message.key);
    s.outbox.discard(parked[0].sequence).await.expect("discard");
    let again = s.outbox.discard(parked[0].sequence).await;
    assert!(
        matches!(again, Err(Error::NotFound { .. })),
        "a discarded entry is gone: {again:?}"
    );
    let round = relay.run_once().await.expect("round");
    assert_eq!(round.published, 2);
    assert_eq!(
        amounts_for(&publisher.sent(), &held),
        vec![2, 4],
        "the held-back entries follow, in order"
    );
    assert_eq!(lag_of(&*s.outbox).await, OutboxLag::default());
}

/// Re-driving a parked entry puts it back with its attempt count reset; once its cause is
/// fixed it is published, and its key's held-back entries follow in order.
pub async fn redrive_publishes_a_parked_entry_and_its_key_follows(s: &StoreUnderTest) {
    let bus = s.bus();
    let key = unique("k");
    commit_messages(s, &bus, &[&key, &key]).await;
    let publisher = RecordingPublisher::new();
    publisher.refuse(&key, Some(0), true);
    let relay =
        OutboxRelay::new(Arc::clone(&s.outbox), Arc::new(publisher.clone())).max_attempts(2);

    let first = relay.run_once().await.expect("round");
    assert_eq!((first.failed, first.parked, first.released), (1, 0, 1));
    let second = relay.run_once().await.expect("round");
    assert_eq!((second.failed, second.parked, second.released), (0, 1, 1));
    let parked = s.outbox.parked(None, 10).await.expect("parked");
    assert_eq!(parked.len(), 1);
    assert_eq!(parked[0].attempts, 2);

    let not_parked = s.outbox.redrive(parked[0].sequence + 1).await;
    assert!(
        matches!(not_parked, Err(Error::NotFound { .. })),
        "only a parked entry can be re-driven: {not_parked:?}"
    );
    s.outbox.redrive(parked[0].sequence).await.expect("redrive");
    assert!(s.outbox.parked(None, 10).await.expect("parked").is_empty());
    let retried = relay.run_once().await.expect("round");
    assert_eq!(
        (retried.failed, retried.parked),
        (1, 0),
        "the attempt count starts again from zero after a re-drive"
    );

    publisher.refuse(&key, Some(0), false);
    let round = relay.run_once().await.expect("round");
    assert_eq!(round.published, 2);
    assert_eq!(amounts_for(&publisher.sent(), &key), vec![0, 1]);
    assert_eq!(lag_of(&*s.outbox).await, OutboxLag::default());
}

/// A broker outage ([`Error::is_transient`]) is never counted against an entry: however many
/// rounds fail, nothing is parked, and everything goes out in order when the broker is back.
pub async fn transient_failures_never_park(s: &StoreUnderTest) {
    let bus = s.bus();
    let (down, up) = (unique("down"), unique("up"));
    commit_messages(s, &bus, &[&down, &down, &up]).await;
    let publisher = RecordingPublisher::new();
    publisher.fail_key(&down, true);
    let relay =
        OutboxRelay::new(Arc::clone(&s.outbox), Arc::new(publisher.clone())).max_attempts(1);

    let round = relay.run_once().await.expect("round");
    assert_eq!(
        round,
        RelayRound {
            published: 1,
            released: 2,
            failed: 0,
            parked: 0
        }
    );
    for _ in 0..9 {
        match relay.run_once().await {
            Err(error) => assert!(error.is_transient(), "the outage surfaces: {error}"),
            Ok(round) => panic!("a round with only an outage reports it, got {round:?}"),
        }
    }
    assert_eq!(publisher.attempts_for(&down), 10);
    let lag = lag_of(&*s.outbox).await;
    assert_eq!((lag.pending, lag.parked), (2, 0), "an outage parks nothing");
    assert!(s.outbox.parked(None, 10).await.expect("parked").is_empty());

    publisher.fail_key(&down, false);
    assert_eq!(relay.run_once().await.expect("round").published, 2);
    assert_eq!(amounts_for(&publisher.sent(), &down), vec![0, 1]);
}

/// `lag` reports the age of the oldest pending entry and the pending and parked counts; entries
/// held back by a parked entry count as pending.
pub async fn lag_reports_age_pending_and_parked(s: &StoreUnderTest) {
    assert_eq!(lag_of(&*s.outbox).await, OutboxLag::default(), "empty");
    let bus = s.bus();
    let (a, b) = (unique("a"), unique("b"));
    let before = std::time::Instant::now();
    commit_messages(s, &bus, &[&a, &b, &a]).await;
    let deadline = before + Duration::from_secs(5);
    let lag = loop {
        let lag = lag_of(&*s.outbox).await;
        if lag.oldest_pending_age >= Some(Duration::from_millis(20)) {
            break lag;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the oldest entry ages: {lag:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    assert_eq!((lag.pending, lag.parked), (3, 0));
    let age = lag.oldest_pending_age.unwrap_or_default();
    assert!(
        age <= before.elapsed() + Duration::from_millis(50),
        "the age is measured from the commit: {age:?}"
    );

    let publisher = RecordingPublisher::new();
    publisher.refuse(&b, None, true);
    let relay =
        OutboxRelay::new(Arc::clone(&s.outbox), Arc::new(publisher.clone())).max_attempts(1);
    let round = relay.run_once().await.expect("round");
    assert_eq!((round.published, round.parked), (2, 1));
    assert_eq!(
        lag_of(&*s.outbox).await,
        OutboxLag {
            oldest_pending_age: None,
            pending: 0,
            parked: 1
        },
        "a parked entry is not pending"
    );

    commit_messages(s, &bus, &[&b]).await;
    let lag = lag_of(&*s.outbox).await;
    assert_eq!((lag.pending, lag.parked), (1, 1), "held back is pending");
    assert!(lag.oldest_pending_age.is_some());
}

/// A claimant that renews its lease keeps its entries past the original lease; another
/// claimant gets them only once the renewals stop and the lease runs out.
pub async fn renewal_keeps_a_slow_claim(s: &StoreUnderTest) {
    let bus = s.bus();
    let key = unique("slow");
    commit_messages(s, &bus, &[&key, &key]).await;
    let lease = Duration::from_millis(600);
    let claimed = s.outbox.claim("slow", 10, lease).await.expect("claim");
    let sequences: Vec<u64> = claimed.iter().map(|e| e.sequence).collect();
    assert_eq!(sequences.len(), 2);

    let start = std::time::Instant::now();
    while start.elapsed() < lease * 5 / 2 {
        tokio::time::sleep(lease / 6).await;
        let renewed = s
            .outbox
            .renew("slow", &sequences, lease)
            .await
            .expect("renew");
        assert_eq!(renewed, 2, "the holder renews both entries");
        let other = s.outbox.claim("other", 10, lease).await.expect("claim");
        assert!(
            other.is_empty(),
            "a renewed lease holds past its original end ({:?} in): {other:?}",
            start.elapsed()
        );
    }
    assert_eq!(
        s.outbox
            .renew("other", &sequences, lease)
            .await
            .expect("renew"),
        0,
        "only the holder renews"
    );

    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let taken = loop {
        let taken = s.outbox.claim("other", 10, lease).await.expect("claim");
        if !taken.is_empty() {
            break taken;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the lease runs out once renewals stop"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(taken.len(), 2);
    assert_eq!(
        s.outbox
            .renew("slow", &sequences, lease)
            .await
            .expect("renew"),
        0,
        "a lost lease is not renewed"
    );
    s.outbox
        .mark_published("other", &sequences)
        .await
        .expect("mark");
    assert_eq!(
        s.outbox
            .renew("other", &sequences, lease)
            .await
            .expect("renew"),
        0,
        "published entries are not renewed"
    );
}

/// The inbox keeps entries for the retention window: within it a duplicate is recognised,
/// after a purge of older entries the same message is accepted (handled) again.
pub async fn inbox_purge_forgets_entries_past_the_window(s: &StoreUnderTest) {
    let bus = s.bus();
    let (old, new) = (Uuid::new_v4().to_string(), Uuid::new_v4().to_string());
    let record = |id: String| {
        let bus = bus.clone();
        async move {
            let mut uow = bus.unit_of_work().await.expect("begin");
            let fresh = uow.record_inbox("janitor", &id).await.expect("inbox");
            uow.commit().await.expect("commit");
            fresh
        }
    };
    assert!(record(old.clone()).await);
    let recorded_old = std::time::Instant::now();
    // The two entries must be told apart by their recording time.
    while recorded_old.elapsed() < Duration::from_millis(200) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(record(new.clone()).await);

    assert_eq!(
        s.inbox
            .purge_inbox(Duration::from_secs(3600))
            .await
            .expect("purge"),
        0,
        "nothing is older than an hour"
    );
    assert!(!record(old.clone()).await, "still a duplicate");
    // Old is older than this window; new is 200 ms younger than old, so within it.
    let window = recorded_old
        .elapsed()
        .saturating_sub(Duration::from_millis(100));
    assert_eq!(
        s.inbox.purge_inbox(window).await.expect("purge"),
        1,
        "only the entry older than the window is purged"
    );
    assert!(
        record(old.clone()).await,
        "a duplicate arriving after the window is handled again"
    );
    assert!(
        !record(new.clone()).await,
        "within the window, still a duplicate"
    );
    assert_eq!(
        s.inbox.purge_inbox(Duration::ZERO).await.expect("purge"),
        2,
        "a zero window forgets everything"
    );
}

/// Runs every check, each on a fresh store from `fresh`.
pub async fn run_all<F, Fut>(fresh: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = StoreUnderTest>,
{
    commit_persists_aggregate_and_outbox(&fresh().await).await;
    rollback_discards_aggregate_and_outbox(&fresh().await).await;
    failing_domain_handler_rolls_back(&fresh().await).await;
    domain_handler_continues_the_transaction(&fresh().await).await;
    savepoint_rollback_keeps_earlier_work(&fresh().await).await;
    stale_update_is_a_conflict(&fresh().await).await;
    concurrent_updates_win_each_version_once(&fresh().await).await;
    inbox_accepts_each_message_once(&fresh().await).await;
    inbox_accepts_a_list_as_one_by_one(&fresh().await).await;
    outbox_claims_respect_leases_and_key_order(&fresh().await).await;
    relay_keeps_key_order_through_failures(&fresh().await).await;
    relay_crash_resends_and_inbox_absorbs(&fresh().await).await;
    concurrent_relays_send_each_entry_once(&fresh().await).await;
    list_pages_in_id_order(&fresh().await).await;
    poison_entries_are_parked_and_other_keys_keep_flowing(&fresh().await).await;
    a_parked_entry_holds_back_its_key_until_discarded(&fresh().await).await;
    redrive_publishes_a_parked_entry_and_its_key_follows(&fresh().await).await;
    transient_failures_never_park(&fresh().await).await;
    lag_reports_age_pending_and_parked(&fresh().await).await;
    renewal_keeps_a_slow_claim(&fresh().await).await;
    inbox_purge_forgets_entries_past_the_window(&fresh().await).await;
}
