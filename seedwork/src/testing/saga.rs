//! Given/when/then fixtures for sagas: given these messages, when this one arrives (or the
//! deadline passes), then these commands were sent and the instance is in this state.

use std::fmt::Debug;
use std::sync::Arc;

use serde::de::DeserializeOwned;

use crate::application::Bus;
use crate::error::Result;
use crate::memory::MemoryStore;
use crate::messaging::{IntegrationMessage, Message, CORRELATION_ID};
use crate::saga::{Orchestration, SagaRecord, SagaState, SagaStatus, SagaStore, Sagas};

/// Runs one saga on the memory store, one conversation at a time, through the same bus path a
/// consumer takes (inbox, unit of work, outbox), so what it checks is what runs in production.
///
/// ```
/// use seedwork::saga::{SagaStatus};
/// use seedwork::testing::contract::saga::{order_saga, ContractOrderPlaced, ContractPaymentReply, ContractCharge};
/// use seedwork::testing::saga::SagaFixture;
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let saga = SagaFixture::new(order_saga(std::time::Duration::from_secs(30)))
///     .given(ContractOrderPlaced { order: "o-1".into(), amount: 5 }).await;
/// saga.when(ContractPaymentReply { order: "o-1".into(), outcome: "charged".into() }).await
///     .then_sent_types(&["ContractShip"])
///     .then_status(SagaStatus::Running);
///
/// let saga = SagaFixture::new(order_saga(std::time::Duration::from_secs(30)));
/// saga.when(ContractOrderPlaced { order: "o-2".into(), amount: 5 }).await
///     .then_sent(|charge: &ContractCharge| assert_eq!(charge.amount, 5));
/// # })
/// ```
pub struct SagaFixture {
    bus: Bus,
    store: MemoryStore,
    sagas: Sagas,
    saga: String,
    correlation_id: String,
}

impl SagaFixture {
    /// A fixture for `saga`, on a fresh memory store, following one conversation. Panics if
    /// the saga is invalid: a test setup error.
    #[track_caller]
    pub fn new<S: SagaState>(saga: Orchestration<S>) -> Self {
        let store = MemoryStore::new();
        let name = saga.name().to_string();
        let sagas = Sagas::new(Arc::new(store.clone())).orchestration(saga);
        let bus = match Bus::builder()
            .service_name("saga-fixture")
            .store(Arc::new(store.clone()))
            .sagas(&sagas)
            .build()
        {
            Ok(bus) => bus,
            Err(error) => panic!("the saga does not build: {error}"),
        };
        SagaFixture {
            bus,
            store,
            sagas,
            saga: name,
            correlation_id: format!("fixture-{}", uuid::Uuid::new_v4()),
        }
    }

    /// The conversation's correlation id, which every message given carries.
    pub fn correlation_id(&self) -> &str {
        &self.correlation_id
    }

    /// The store the fixture runs on.
    pub fn store(&self) -> &MemoryStore {
        &self.store
    }

    fn message<M: IntegrationMessage>(&self, payload: &M) -> Message {
        match Message::encode(payload, "saga-fixture") {
            Ok(message) => message.with_property(CORRELATION_ID, self.correlation_id.clone()),
            Err(error) => panic!("{} does not encode: {error}", M::TYPE),
        }
    }

    /// Delivers a message that must be handled (history).
    pub async fn given<M: IntegrationMessage>(self, message: M) -> Self {
        let message = self.message(&message);
        if let Err(error) = self
            .bus
            .handle_message(&Sagas::subscription_name(&self.saga), &message)
            .await
        {
            panic!("a given message failed: {error}");
        }
        self
    }

    /// Lets the current deadline pass (history); panics when there is none.
    pub async fn given_deadline_passed(self) -> Self {
        let outcome = self.when_deadline_passes().await;
        if let Err(error) = &outcome.result {
            panic!("the given deadline failed: {error}");
        }
        self
    }

    /// Delivers the message under test, capturing what it sent and where the instance ended.
    pub async fn when<M: IntegrationMessage>(&self, message: M) -> SagaOutcome {
        let message = self.message(&message);
        let before = self.store.outbox_snapshot().len();
        let result = self
            .bus
            .handle_message(&Sagas::subscription_name(&self.saga), &message)
            .await
            .map(|_| ());
        self.outcome(before, result).await
    }

    /// Lets the instance's deadline pass (the clock moved to it), capturing what that sent.
    /// Panics when the instance has no deadline.
    pub async fn when_deadline_passes(&self) -> SagaOutcome {
        let record = self.record().await;
        let Some(deadline) = record.as_ref().and_then(|r| r.deadline) else {
            panic!("the instance has no deadline: {record:?}");
        };
        let before = self.store.outbox_snapshot().len();
        let result = self
            .sagas
            .deadlines(self.bus.clone())
            .run_once_at(deadline)
            .await
            .map(|_| ());
        self.outcome(before, result).await
    }

    async fn record(&self) -> Option<SagaRecord> {
        match self.store.get(&self.saga, &self.correlation_id).await {
            Ok(record) => record,
            Err(error) => panic!("the memory store failed: {error}"),
        }
    }

    async fn outcome(&self, before: usize, result: Result<()>) -> SagaOutcome {
        let sent = self
            .store
            .outbox_snapshot()
            .into_iter()
            .skip(before)
            .map(|entry| entry.message)
            .collect();
        SagaOutcome {
            result,
            sent,
            record: self.record().await,
        }
    }
}

/// What [`SagaFixture::when`] did, with assertions that panic on a mismatch.
#[derive(Debug)]
pub struct SagaOutcome {
    result: Result<()>,
    sent: Vec<Message>,
    record: Option<SagaRecord>,
}

impl SagaOutcome {
    #[track_caller]
    fn record_or_panic(&self) -> &SagaRecord {
        match &self.record {
            Some(record) => record,
            None => panic!("no instance exists (result: {:?})", self.result),
        }
    }

    /// Asserts the message was handled and the messages sent were exactly these types, in
    /// order.
    #[track_caller]
    pub fn then_sent_types(self, types: &[&str]) -> Self {
        if let Err(error) = &self.result {
            panic!("expected the message to be handled, got {error}");
        }
        let sent: Vec<&str> = self
            .sent
            .iter()
            .map(|m| m.envelope.message_type.as_str())
            .collect();
        assert_eq!(sent, types, "the messages sent");
        self
    }

    /// Asserts nothing was sent.
    #[track_caller]
    pub fn then_nothing_sent(self) -> Self {
        self.then_sent_types(&[])
    }

    /// Asserts exactly one message of type `M` was sent, carrying the conversation's
    /// correlation id, and inspects it.
    #[track_caller]
    pub fn then_sent<M: IntegrationMessage + Debug>(self, inspect: impl FnOnce(&M)) -> Self {
        let of_type: Vec<&Message> = self
            .sent
            .iter()
            .filter(|m| M::TYPES.contains(&m.envelope.message_type.as_str()) && m.topic == M::TOPIC)
            .collect();
        assert_eq!(
            of_type.len(),
            1,
            "expected one {}, sent {:?}",
            M::TYPE,
            self.sent
        );
        let record = self.record_or_panic();
        assert_eq!(
            of_type[0].correlation_id(),
            Some(record.correlation_id.as_str()),
            "a saga's command carries its conversation's correlation id"
        );
        match of_type[0].decode::<M>() {
            Ok(envelope) => inspect(&envelope.data),
            Err(error) => panic!("the sent {} does not decode: {error}", M::TYPE),
        }
        self
    }

    /// Asserts the instance's status.
    #[track_caller]
    pub fn then_status(self, status: SagaStatus) -> Self {
        assert_eq!(self.record_or_panic().status, status, "the saga's status");
        self
    }

    /// Inspects the instance's state as `S`.
    #[track_caller]
    pub fn then_state<S: DeserializeOwned>(self, inspect: impl FnOnce(&S)) -> Self {
        match serde_json::from_value::<S>(self.record_or_panic().state.clone()) {
            Ok(state) => inspect(&state),
            Err(error) => panic!("the saga's state does not decode: {error}"),
        }
        self
    }

    /// Asserts the message failed, and inspects the error.
    #[track_caller]
    pub fn then_error(self, inspect: impl FnOnce(&crate::Error)) -> Self {
        match &self.result {
            Ok(()) => panic!("expected an error, the message was handled"),
            Err(error) => inspect(error),
        }
        self
    }

    /// The instance after the message (`None` when none exists).
    pub fn record(&self) -> Option<&SagaRecord> {
        self.record.as_ref()
    }

    /// The messages sent.
    pub fn sent(&self) -> &[Message] {
        &self.sent
    }
}
