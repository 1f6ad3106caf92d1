//! [`Choreography`]: the saga log of a process without a coordinator.

use std::any::{Any, TypeId};
use std::sync::Arc;

use async_trait::async_trait;

use super::definition::Listener;
use super::engine::{conversation, ErasedSaga, Inbound};
use super::{SagaLogEntry, SagaLogKind, SagaRecord, SagaStatus, SagaStore};
use crate::error::Result;
use crate::messaging::{now_millis, IntegrationMessage};
use crate::uow::UnitOfWork;

type EndFn = Arc<dyn Fn(&(dyn Any + Send + Sync)) -> bool + Send + Sync>;

/// A saga by choreography: the services react to each other's events with no coordinator,
/// and this records what it sees of each conversation — every message of the types it
/// observes, in the order handled — as a saga log, queryable like an orchestration's
/// ([`Sagas::log`](super::Sagas::log)).
///
/// Nothing here sends anything: the services' own handlers do, and the framework carries the
/// correlation id from each message handled to the messages it causes, so the log of one
/// conversation gathers its messages across services without any `id_correlacion` in a
/// payload. Register it with [`Sagas::choreography`](super::Sagas::choreography); it reads
/// its topics through its own subscription, `saga-<name>`.
///
/// ```
/// use seedwork::saga::Choreography;
/// # use seedwork::messaging::{IntegrationMessage, MessageKind};
/// # #[derive(serde::Serialize, serde::Deserialize)] struct PedidoCreado { id: String }
/// # impl IntegrationMessage for PedidoCreado { const TOPIC: &'static str = "eventos-pedido"; const TYPE: &'static str = "PedidoCreado"; const VERSION: &'static str = "v1"; const KIND: MessageKind = MessageKind::Event; }
/// # #[derive(serde::Serialize, serde::Deserialize)] struct PedidoEnviado { id: String }
/// # impl IntegrationMessage for PedidoEnviado { const TOPIC: &'static str = "eventos-envio"; const TYPE: &'static str = "PedidoEnviado"; const VERSION: &'static str = "v1"; const KIND: MessageKind = MessageKind::Event; }
/// let pedidos = Choreography::new("pedidos")
///     .observe::<PedidoCreado>()
///     .ends_with(|_: &PedidoEnviado| true);
/// assert_eq!(pedidos.name(), "pedidos");
/// ```
pub struct Choreography {
    pub(crate) name: String,
    pub(crate) listeners: Vec<Listener>,
    ends: Vec<(TypeId, EndFn)>,
}

impl Choreography {
    /// A choreography named `name`, observing nothing yet.
    pub fn new(name: impl Into<String>) -> Self {
        Choreography {
            name: name.into(),
            listeners: Vec::new(),
            ends: Vec::new(),
        }
    }

    /// The choreography's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Records every message of type `M` (an event, a command, or an enum of a topic's types).
    pub fn observe<M: IntegrationMessage>(mut self) -> Self {
        if !self
            .listeners
            .iter()
            .any(|l| l.type_id == TypeId::of::<M>())
        {
            self.listeners.push(Listener::of::<M>());
        }
        self
    }

    /// Records messages of type `M` too, and marks the conversation completed at the first one
    /// for which `ends` holds.
    pub fn ends_with<M, F>(mut self, ends: F) -> Self
    where
        M: IntegrationMessage,
        F: Fn(&M) -> bool + Send + Sync + 'static,
    {
        self = self.observe::<M>();
        let ends: EndFn = Arc::new(move |message| message.downcast_ref::<M>().is_some_and(&ends));
        self.ends.push((TypeId::of::<M>(), ends));
        self
    }

    pub(crate) fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.name.trim().is_empty() {
            problems.push("the choreography's name is blank".to_string());
        }
        if self.listeners.is_empty() {
            problems.push("it observes no message type (Choreography::observe)".to_string());
        }
        problems
    }
}

/// A choreography with the store its logs live in.
pub(crate) struct Observer {
    pub(crate) choreography: Choreography,
    pub(crate) store: Arc<dyn SagaStore>,
}

#[async_trait]
impl ErasedSaga for Observer {
    fn name(&self) -> &str {
        &self.choreography.name
    }

    async fn on_message(
        &self,
        type_id: TypeId,
        message: &(dyn Any + Send + Sync),
        inbound: Inbound<'_>,
        uow: &mut UnitOfWork,
    ) -> Result<()> {
        let correlation_id = conversation(uow)?;
        let name = &self.choreography.name;
        let mut record = match self.store.load(uow, name, &correlation_id).await? {
            Some(record) => record,
            None => SagaRecord::new(name.clone(), correlation_id, serde_json::Value::Null),
        };
        let now = now_millis();
        record.log.push(SagaLogEntry {
            at: now,
            step: inbound.message_type.to_string(),
            kind: SagaLogKind::Observed,
            message_type: inbound.message_type.to_string(),
            message_id: Some(inbound.message_id.to_string()),
            detail: None,
        });
        let ends = self
            .choreography
            .ends
            .iter()
            .any(|(id, ends)| *id == type_id && ends(message));
        if ends && record.status == SagaStatus::Running {
            record.status = SagaStatus::Completed;
            record.log.push(SagaLogEntry {
                at: now,
                step: inbound.message_type.to_string(),
                kind: SagaLogKind::Completed,
                message_type: String::new(),
                message_id: None,
                detail: None,
            });
        }
        self.store.save(uow, &mut record).await
    }

    async fn on_deadline(&self, _: &str, _: i64, _: &mut UnitOfWork) -> Result<bool> {
        Ok(false)
    }
}
