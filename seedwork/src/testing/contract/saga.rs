//! The saga store contract suite: what a [`SagaStore`] must do on its own (versions, deadlines,
//! lookups) and under the saga engine (each step once, compensations in reverse, deadlines,
//! concurrent messages for one instance).
//!
//! Every function takes a fresh, empty [`SagaUnderTest`] and panics with a message when the
//! backend breaks the contract. Backends call them one per test with
//! [`saga_contract_tests!`](crate::saga_contract_tests), or all at once with [`run_all`].

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::application::{Bus, MessageOutcome};
use crate::error::Error;
use crate::messaging::{
    IntegrationCommand, IntegrationEvent, IntegrationMessage, Message, MessageKind, OutboxStore,
    CORRELATION_ID,
};
use crate::saga::{
    Orchestration, Reply, SagaKey, SagaLogKind, SagaRecord, SagaStatus, SagaStore, Sagas, Step,
};
use crate::uow::TransactionalStore;

/// A backend under test: its store (for units of work), its outbox and its saga store, all on
/// one database.
#[derive(Clone)]
pub struct SagaUnderTest {
    /// Opens transactions.
    pub store: Arc<dyn TransactionalStore>,
    /// The same store's outbox.
    pub outbox: Arc<dyn OutboxStore>,
    /// The same store's saga instances.
    pub sagas: Arc<dyn SagaStore>,
}

macro_rules! contract_message {
    ($(#[$doc:meta])* $name:ident, $topic:literal, $kind:ident, $marker:ident { $($(#[$fdoc:meta])* $field:ident: $ty:ty),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        pub struct $name {
            $($(#[$fdoc])* pub $field: $ty,)*
        }
        impl IntegrationMessage for $name {
            const TOPIC: &'static str = $topic;
            const TYPE: &'static str = stringify!($name);
            const VERSION: &'static str = "v1";
            const KIND: MessageKind = MessageKind::$kind;
        }
        impl $marker for $name {}
    };
}

contract_message!(
    /// Starts the suite's saga.
    ContractOrderPlaced, "contract-saga-orders", Event, IntegrationEvent {
    /// The order.
    order: String,
    /// Its amount.
    amount: i64,
});
contract_message!(
    /// Step `payment`'s command.
    ContractCharge, "contract-saga-payment-commands", Command, IntegrationCommand {
    /// The order.
    order: String,
    /// The amount to charge.
    amount: i64,
});
contract_message!(
    /// Step `payment`'s compensation.
    ContractRefund, "contract-saga-payment-commands", Command, IntegrationCommand {
    /// The order.
    order: String,
});
contract_message!(
    /// The replies of step `payment`: `charged`, `refused` or `refunded`.
    ContractPaymentReply, "contract-saga-payments", Event, IntegrationEvent {
    /// The order.
    order: String,
    /// `charged`, `refused` or `refunded`.
    outcome: String,
});
contract_message!(
    /// Step `shipping`'s command.
    ContractShip, "contract-saga-shipping-commands", Command, IntegrationCommand {
    /// The order.
    order: String,
});
contract_message!(
    /// The replies of step `shipping`: `shipped` or `refused`.
    ContractShippingReply, "contract-saga-shipping", Event, IntegrationEvent {
    /// The order.
    order: String,
    /// `shipped` or `refused`.
    outcome: String,
});
contract_message!(
    /// Step `order`'s compensation.
    ContractCancelOrder, "contract-saga-order-commands", Command, IntegrationCommand {
    /// The order.
    order: String,
});

/// The suite saga's state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContractOrder {
    /// The order.
    pub order: String,
    /// Its amount.
    pub amount: i64,
    /// Replies the saga took, in order.
    pub replies: Vec<String>,
}

/// The suite's saga's name.
pub const SAGA: &str = "contract-order";

/// The suite's saga: `order` (started by [`ContractOrderPlaced`], compensated by
/// [`ContractCancelOrder`]), `payment` ([`ContractCharge`], awaiting its [`ContractRefund`]'s
/// confirmation; times out after `payment_timeout`), `shipping` ([`ContractShip`]).
pub fn order_saga(payment_timeout: Duration) -> Orchestration<ContractOrder> {
    Orchestration::new(SAGA)
        .start_on(|placed: &ContractOrderPlaced| {
            Some(ContractOrder {
                order: placed.order.clone(),
                amount: placed.amount,
                replies: Vec::new(),
            })
        })
        .step(
            Step::new("order").compensation(|o: &ContractOrder| ContractCancelOrder {
                order: o.order.clone(),
            }),
        )
        .step(
            Step::new("payment")
                .command(|o: &ContractOrder| ContractCharge {
                    order: o.order.clone(),
                    amount: o.amount,
                })
                .on_reply(|reply: &ContractPaymentReply, o: &mut ContractOrder| {
                    o.replies.push(reply.outcome.clone());
                    match reply.outcome.as_str() {
                        "charged" => Some(Reply::Succeeded),
                        "refused" => Some(Reply::Failed("card refused".into())),
                        "refunded" => Some(Reply::Compensated),
                        _ => None,
                    }
                })
                .compensation(|o: &ContractOrder| ContractRefund {
                    order: o.order.clone(),
                })
                .await_compensation()
                .timeout(payment_timeout),
        )
        .step(
            Step::new("shipping")
                .command(|o: &ContractOrder| ContractShip {
                    order: o.order.clone(),
                })
                .on_reply(|reply: &ContractShippingReply, o: &mut ContractOrder| {
                    o.replies.push(reply.outcome.clone());
                    match reply.outcome.as_str() {
                        "shipped" => Some(Reply::Succeeded),
                        "refused" => Some(Reply::Failed("no stock".into())),
                        _ => None,
                    }
                }),
        )
}

/// The suite's saga registered on a bus over the backend.
struct Harness {
    bus: Bus,
    sagas: Sagas,
    outbox: Arc<dyn OutboxStore>,
    correlation_id: String,
    order: String,
}

impl Harness {
    fn new(s: &SagaUnderTest) -> Self {
        let sagas =
            Sagas::new(Arc::clone(&s.sagas)).orchestration(order_saga(Duration::from_secs(3600)));
        let bus = Bus::builder()
            .service_name("contract")
            .store(Arc::clone(&s.store))
            .sagas(&sagas)
            .build()
            .expect("the suite's saga is valid");
        Harness {
            bus,
            sagas,
            outbox: Arc::clone(&s.outbox),
            correlation_id: unique("conversation"),
            order: unique("order"),
        }
    }

    fn message<M: IntegrationMessage>(&self, payload: &M) -> Message {
        Message::encode(payload, "contract")
            .expect("encodes")
            .with_property(CORRELATION_ID, self.correlation_id.clone())
    }

    async fn deliver(&self, message: &Message) -> crate::Result<MessageOutcome> {
        self.bus
            .handle_message(&Sagas::subscription_name(SAGA), message)
            .await
    }

    async fn send<M: IntegrationMessage>(&self, payload: &M) {
        let message = self.message(payload);
        let outcome = self.deliver(&message).await.expect("the saga handles it");
        assert_eq!(outcome, MessageOutcome::Handled);
    }

    async fn place(&self) {
        self.send(&ContractOrderPlaced {
            order: self.order.clone(),
            amount: 42,
        })
        .await;
    }

    fn payment(&self, outcome: &str) -> ContractPaymentReply {
        ContractPaymentReply {
            order: self.order.clone(),
            outcome: outcome.into(),
        }
    }

    fn shipping(&self, outcome: &str) -> ContractShippingReply {
        ContractShippingReply {
            order: self.order.clone(),
            outcome: outcome.into(),
        }
    }

    async fn record(&self) -> SagaRecord {
        self.sagas
            .store()
            .get(SAGA, &self.correlation_id)
            .await
            .expect("get")
            .expect("the instance exists")
    }

    /// The types of the messages this conversation wrote to the outbox, in order.
    async fn sent(&self) -> Vec<String> {
        super::store::drain(&*self.outbox)
            .await
            .into_iter()
            .filter(|m| m.correlation_id() == Some(self.correlation_id.as_str()))
            .map(|m| m.envelope.message_type)
            .collect()
    }
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", Uuid::new_v4())
}

fn kinds(record: &SagaRecord) -> Vec<(String, SagaLogKind)> {
    record
        .log
        .iter()
        .map(|e| (e.step.clone(), e.kind))
        .collect()
}

fn entry(step: &str, kind: SagaLogKind) -> (String, SagaLogKind) {
    (step.to_string(), kind)
}

fn record(saga: &str, correlation_id: &str, deadline: Option<i64>) -> SagaRecord {
    let mut record = SagaRecord::new(saga, correlation_id, serde_json::json!({"count": 0}));
    record.deadline = deadline;
    record
}

async fn insert(s: &SagaUnderTest, record: &mut SagaRecord) {
    let bus = Bus::builder()
        .store(Arc::clone(&s.store))
        .build()
        .expect("bus");
    let mut uow = bus.unit_of_work().await.expect("begin");
    s.sagas.save(&mut uow, record).await.expect("save");
    uow.commit().await.expect("commit");
}

/// A saved instance reads back equal, at version 1, inside and outside a unit of work; saved
/// again, it is at version 2.
pub async fn saved_instance_reads_back(s: &SagaUnderTest) {
    let correlation_id = unique("c");
    let mut saved = record("s", &correlation_id, Some(1_000));
    saved.log.push(crate::saga::SagaLogEntry {
        at: 7,
        step: "one".into(),
        kind: SagaLogKind::Started,
        message_type: "Placed".into(),
        message_id: Some("m-1".into()),
        detail: None,
    });
    insert(s, &mut saved).await;
    assert_eq!(saved.version, 1);
    let read = s.sagas.get("s", &correlation_id).await.expect("get");
    assert_eq!(
        read.as_ref(),
        Some(&saved),
        "the committed instance reads back"
    );
    let bus = Bus::builder()
        .store(Arc::clone(&s.store))
        .build()
        .expect("bus");
    let mut uow = bus.unit_of_work().await.expect("begin");
    let mut loaded = s
        .sagas
        .load(&mut uow, "s", &correlation_id)
        .await
        .expect("load")
        .expect("exists");
    assert_eq!(loaded, saved);
    loaded.status = SagaStatus::Completed;
    loaded.deadline = None;
    s.sagas.save(&mut uow, &mut loaded).await.expect("update");
    uow.commit().await.expect("commit");
    assert_eq!(loaded.version, 2);
    let read = s
        .sagas
        .get("s", &correlation_id)
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(
        (read.version, read.status, read.deadline),
        (2, SagaStatus::Completed, None)
    );
    assert_eq!(
        s.sagas.get("other", &correlation_id).await.expect("get"),
        None
    );
}

/// Inserting an instance that exists, or saving a stale version, is a conflict; the unit of
/// work's rollback leaves the stored instance as it was.
pub async fn stale_or_second_insert_is_a_conflict(s: &SagaUnderTest) {
    let correlation_id = unique("c");
    let mut first = record("s", &correlation_id, None);
    insert(s, &mut first).await;
    let bus = Bus::builder()
        .store(Arc::clone(&s.store))
        .build()
        .expect("bus");

    let mut uow = bus.unit_of_work().await.expect("begin");
    let mut again = record("s", &correlation_id, None);
    let error = s
        .sagas
        .save(&mut uow, &mut again)
        .await
        .expect_err("a second insert");
    assert!(
        matches!(error, Error::Conflict { .. }),
        "a conflict, got {error:?}"
    );
    uow.rollback().await.expect("rollback");

    let mut uow = bus.unit_of_work().await.expect("begin");
    let mut stale = first.clone();
    stale.version = 0;
    stale.step = 5;
    let mut current = first.clone();
    current.step = 1;
    s.sagas
        .save(&mut uow, &mut current)
        .await
        .expect("current version");
    uow.commit().await.expect("commit");
    let mut uow = bus.unit_of_work().await.expect("begin");
    let mut stale_v1 = first.clone();
    stale_v1.step = 9;
    let error = s
        .sagas
        .save(&mut uow, &mut stale_v1)
        .await
        .expect_err("stale");
    assert!(
        matches!(error, Error::Conflict { .. }),
        "a conflict, got {error:?}"
    );
    uow.rollback().await.expect("rollback");
    let read = s
        .sagas
        .get("s", &correlation_id)
        .await
        .expect("get")
        .expect("exists");
    assert_eq!((read.version, read.step), (2, 1));
}

/// What a rolled-back unit of work saved is not there.
pub async fn rollback_discards_the_instance(s: &SagaUnderTest) {
    let correlation_id = unique("c");
    let bus = Bus::builder()
        .store(Arc::clone(&s.store))
        .build()
        .expect("bus");
    let mut uow = bus.unit_of_work().await.expect("begin");
    let mut saved = record("s", &correlation_id, Some(1));
    s.sagas.save(&mut uow, &mut saved).await.expect("save");
    uow.rollback().await.expect("rollback");
    assert_eq!(s.sagas.get("s", &correlation_id).await.expect("get"), None);
    assert!(s.sagas.due(i64::MAX, 10).await.expect("due").is_empty());
}

/// `due` answers the instances whose deadline passed, earliest first, up to the limit; not
/// those without a deadline or with one still ahead.
pub async fn due_lists_passed_deadlines_earliest_first(s: &SagaUnderTest) {
    let tag = unique("d");
    for (name, deadline) in [
        ("late", Some(300)),
        ("early", Some(100)),
        ("none", None),
        ("ahead", Some(10_000)),
        ("middle", Some(200)),
    ] {
        let mut r = record("s", &format!("{tag}-{name}"), deadline);
        insert(s, &mut r).await;
    }
    let key = |name: &str| SagaKey {
        saga: "s".into(),
        correlation_id: format!("{tag}-{name}"),
    };
    assert_eq!(
        s.sagas.due(5_000, 10).await.expect("due"),
        vec![key("early"), key("middle"), key("late")]
    );
    assert_eq!(
        s.sagas.due(5_000, 2).await.expect("due"),
        vec![key("early"), key("middle")]
    );
    assert_eq!(s.sagas.due(150, 10).await.expect("due"), vec![key("early")]);
    assert!(s.sagas.due(99, 10).await.expect("due").is_empty());
}

/// `find` answers every saga's instance of one conversation, by saga name, and nothing of
/// another conversation.
pub async fn find_lists_every_saga_of_a_conversation(s: &SagaUnderTest) {
    let correlation_id = unique("c");
    for saga in ["b-saga", "a-saga"] {
        insert(s, &mut record(saga, &correlation_id, None)).await;
    }
    insert(s, &mut record("a-saga", &unique("other"), None)).await;
    let found = s.sagas.find(&correlation_id).await.expect("find");
    let names: Vec<&str> = found.iter().map(|r| r.saga.as_str()).collect();
    assert_eq!(names, ["a-saga", "b-saga"]);
    assert!(s.sagas.find("nobody").await.expect("find").is_empty());
}

/// Concurrent read-modify-writes of one instance, each retried on a conflict, all take
/// effect: the count is exact and the version counts every write.
pub async fn concurrent_saves_all_take_effect(s: &SagaUnderTest) {
    const WRITERS: i64 = 4;
    const EACH: i64 = 5;
    let correlation_id = unique("c");
    insert(s, &mut record("s", &correlation_id, None)).await;
    let bus = Bus::builder()
        .store(Arc::clone(&s.store))
        .build()
        .expect("bus");
    let mut tasks = Vec::new();
    for _ in 0..WRITERS {
        let (bus, sagas, correlation_id) =
            (bus.clone(), Arc::clone(&s.sagas), correlation_id.clone());
        tasks.push(tokio::spawn(async move {
            let mut conflicts = 0u32;
            let mut done = 0;
            while done < EACH {
                let mut uow = bus.unit_of_work().await.expect("begin");
                let mut r = sagas
                    .load(&mut uow, "s", &correlation_id)
                    .await
                    .expect("load")
                    .expect("exists");
                let count = r.state["count"].as_i64().expect("a count");
                r.state = serde_json::json!({ "count": count + 1 });
                match sagas.save(&mut uow, &mut r).await {
                    Ok(()) => match uow.commit().await {
                        Ok(_) => done += 1,
                        Err(Error::Conflict { .. }) => conflicts += 1,
                        Err(error) => panic!("commit failed: {error}"),
                    },
                    Err(Error::Conflict { .. }) => {
                        conflicts += 1;
                        uow.rollback().await.expect("rollback");
                    }
                    Err(error) => panic!("save failed: {error}"),
                }
                assert!(conflicts < 1_000, "a writer never got through");
            }
        }));
    }
    for task in tasks {
        task.await.expect("writer");
    }
    let read = s
        .sagas
        .get("s", &correlation_id)
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(read.state["count"], WRITERS * EACH);
    assert_eq!(read.version, 1 + (WRITERS * EACH) as u64);
}

/// The happy path: each command is sent once, in step order, and the saga completes; the log
/// names every step.
pub async fn happy_path_sends_each_command_once(s: &SagaUnderTest) {
    let h = Harness::new(s);
    h.place().await;
    assert_eq!(h.sent().await, ["ContractCharge"]);
    let running = h.record().await;
    assert_eq!((running.status, running.step), (SagaStatus::Running, 1));
    assert!(
        running.deadline.is_some(),
        "the payment step has a deadline"
    );
    h.send(&h.payment("charged")).await;
    h.send(&h.shipping("shipped")).await;
    assert_eq!(h.sent().await, ["ContractCharge", "ContractShip"]);
    let done = h.record().await;
    assert_eq!(done.status, SagaStatus::Completed);
    assert_eq!(done.deadline, None);
    assert_eq!(
        done.state["replies"],
        serde_json::json!(["charged", "shipped"])
    );
    assert_eq!(
        kinds(&done),
        [
            entry("order", SagaLogKind::Started),
            entry("order", SagaLogKind::Succeeded),
            entry("payment", SagaLogKind::CommandSent),
            entry("payment", SagaLogKind::Succeeded),
            entry("shipping", SagaLogKind::CommandSent),
            entry("shipping", SagaLogKind::Succeeded),
            entry("shipping", SagaLogKind::Completed),
        ]
    );
    // A reply after the end is recorded and does nothing.
    h.send(&h.shipping("shipped")).await;
    assert_eq!(h.sent().await, ["ContractCharge", "ContractShip"]);
    assert_eq!(h.record().await.entries(SagaLogKind::Ignored).count(), 1);
}

/// A failure at the last step compensates the earlier steps in reverse, each once, waiting
/// for the confirmation of the one that asks for it; a failure at the first awaited step
/// compensates only the step before it.
pub async fn failure_compensates_earlier_steps_in_reverse(s: &SagaUnderTest) {
    let h = Harness::new(s);
    h.place().await;
    h.send(&h.payment("charged")).await;
    h.send(&h.shipping("refused")).await;
    assert_eq!(
        h.sent().await,
        ["ContractCharge", "ContractShip", "ContractRefund"]
    );
    let waiting = h.record().await;
    assert_eq!(
        (waiting.status, waiting.step),
        (SagaStatus::Compensating, 1)
    );
    assert_eq!(
        waiting.failure.as_deref(),
        Some("step `shipping` failed: no stock")
    );
    h.send(&h.payment("refunded")).await;
    assert_eq!(
        h.sent().await,
        [
            "ContractCharge",
            "ContractShip",
            "ContractRefund",
            "ContractCancelOrder"
        ]
    );
    let ended = h.record().await;
    assert_eq!(ended.status, SagaStatus::Compensated);
    assert_eq!(
        kinds(&ended)[5..],
        [
            entry("shipping", SagaLogKind::Failed),
            entry("payment", SagaLogKind::CompensationSent),
            entry("payment", SagaLogKind::Compensated),
            entry("order", SagaLogKind::CompensationSent),
            entry("order", SagaLogKind::Aborted),
        ]
    );
    // A second confirmation changes nothing.
    h.send(&h.payment("refunded")).await;
    assert_eq!(h.sent().await.len(), 4);

    let h = Harness::new(s);
    h.place().await;
    h.send(&h.payment("refused")).await;
    assert_eq!(h.sent().await, ["ContractCharge", "ContractCancelOrder"]);
    let ended = h.record().await;
    assert_eq!(ended.status, SagaStatus::Compensated);
    assert_eq!(
        ended.failure.as_deref(),
        Some("step `payment` failed: card refused")
    );
}

/// A step whose deadline passes takes the failure path: its own compensation (its command may
/// still take effect) and the earlier steps'. A reply after that is recorded and ignored, and
/// the deadline is taken once.
pub async fn deadline_takes_the_failure_path(s: &SagaUnderTest) {
    let h = Harness::new(s);
    h.place().await;
    let deadline = h.record().await.deadline.expect("a deadline");
    let deadlines = h.sagas.deadlines(h.bus.clone());
    assert_eq!(
        deadlines.run_once_at(deadline - 1).await.expect("round"),
        0,
        "not yet due"
    );
    assert_eq!(h.sent().await, ["ContractCharge"]);
    assert_eq!(deadlines.run_once_at(deadline).await.expect("round"), 1);
    assert_eq!(h.sent().await, ["ContractCharge", "ContractRefund"]);
    let waiting = h.record().await;
    assert_eq!(
        (waiting.status, waiting.deadline),
        (SagaStatus::Compensating, None)
    );
    assert_eq!(waiting.failure.as_deref(), Some("step `payment` timed out"));
    assert_eq!(
        deadlines.run_once_at(i64::MAX).await.expect("round"),
        0,
        "taken once"
    );
    h.send(&h.payment("charged")).await;
    h.send(&h.payment("refunded")).await;
    assert_eq!(
        h.sent().await,
        ["ContractCharge", "ContractRefund", "ContractCancelOrder"]
    );
    let ended = h.record().await;
    assert_eq!(ended.status, SagaStatus::Compensated);
    assert_eq!(ended.entries(SagaLogKind::TimedOut).count(), 1);
    assert_eq!(
        ended.entries(SagaLogKind::Ignored).count(),
        1,
        "the late success"
    );
}

/// A redelivered reply (same message id) is absorbed by the inbox: no second step.
pub async fn redelivered_reply_has_no_second_effect(s: &SagaUnderTest) {
    let h = Harness::new(s);
    h.place().await;
    let charged = h.message(&h.payment("charged"));
    assert_eq!(
        h.deliver(&charged).await.expect("first"),
        MessageOutcome::Handled
    );
    assert_eq!(
        h.deliver(&charged).await.expect("again"),
        MessageOutcome::Duplicate
    );
    assert_eq!(h.sent().await, ["ContractCharge", "ContractShip"]);
    assert_eq!(h.record().await.entries(SagaLogKind::Succeeded).count(), 2);
}

/// Two messages for one instance handled at the same moment both take effect, one after the
/// other: the log holds each once, and the outcome is that of one of the two serial orders.
pub async fn concurrent_messages_for_one_instance_both_take_effect(s: &SagaUnderTest) {
    let h = Arc::new(Harness::new(s));
    h.place().await;
    let charged = h.message(&h.payment("charged"));
    let shipped = h.message(&h.shipping("shipped"));
    let (a, b) = {
        let (h1, h2) = (Arc::clone(&h), Arc::clone(&h));
        let (m1, m2) = (charged.clone(), shipped.clone());
        tokio::join!(
            tokio::spawn(async move { deliver_until_taken(&h1, &m1).await }),
            tokio::spawn(async move { deliver_until_taken(&h2, &m2).await })
        )
    };
    a.expect("task");
    b.expect("task");
    let r = h.record().await;
    let ids: Vec<&str> = r
        .log
        .iter()
        .filter_map(|e| e.message_id.as_deref())
        .collect();
    assert_eq!(ids.iter().filter(|id| **id == charged.id()).count(), 1);
    assert_eq!(ids.iter().filter(|id| **id == shipped.id()).count(), 1);
    let shipped_first = r.entries(SagaLogKind::Ignored).count() == 1;
    if shipped_first {
        // Shipping's reply came before its step: ignored; the payment moved the saga on.
        assert_eq!((r.status, r.step), (SagaStatus::Running, 2));
        assert_eq!(h.sent().await, ["ContractCharge", "ContractShip"]);
    } else {
        assert_eq!(r.status, SagaStatus::Completed);
        assert_eq!(h.sent().await, ["ContractCharge", "ContractShip"]);
    }
    // Versions count every change: the start, then one per message.
    assert_eq!(r.version, 3);
}

/// Handles `message`, retrying it after a conflict as a consumer's redelivery would.
async fn deliver_until_taken(h: &Harness, message: &Message) {
    for _ in 0..100 {
        match h.deliver(message).await {
            Ok(_) => return,
            Err(Error::Conflict { .. }) => tokio::task::yield_now().await,
            Err(error) => panic!("the saga failed: {error}"),
        }
    }
    panic!("a message was never taken");
}

/// Runs every check, each on a fresh backend.
pub async fn run_all<F, Fut>(fresh: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = SagaUnderTest>,
{
    saved_instance_reads_back(&fresh().await).await;
    stale_or_second_insert_is_a_conflict(&fresh().await).await;
    rollback_discards_the_instance(&fresh().await).await;
    due_lists_passed_deadlines_earliest_first(&fresh().await).await;
    find_lists_every_saga_of_a_conversation(&fresh().await).await;
    concurrent_saves_all_take_effect(&fresh().await).await;
    happy_path_sends_each_command_once(&fresh().await).await;
    failure_compensates_earlier_steps_in_reverse(&fresh().await).await;
    deadline_takes_the_failure_path(&fresh().await).await;
    redelivered_reply_has_no_second_effect(&fresh().await).await;
    concurrent_messages_for_one_instance_both_take_effect(&fresh().await).await;
}
