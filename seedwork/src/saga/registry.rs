//! [`Sagas`]: the sagas of an application, their store, their subscriptions and their
//! deadlines.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::Arc;

use super::choreography::{Choreography, Observer};
use super::deadlines::SagaDeadlines;
use super::definition::{Listener, SagaState};
use super::engine::{Engine, Shared};
use super::{Orchestration, SagaRecord, SagaStore};
use crate::application::{BuildProblem, Bus, BusBuilder};
use crate::error::Result;
use crate::messaging::SubscriptionOptions;

struct Registered {
    engine: Shared,
    listeners: Vec<Listener>,
    problems: Vec<String>,
}

/// The sagas of an application and the [`SagaStore`] their instances live in.
///
/// Add each [`Orchestration`] with [`orchestration`](Self::orchestration), then:
/// 1. register their message handlers on the bus with [`BusBuilder::sagas`];
/// 2. consume [`subscriptions`](Self::subscriptions) with
///    [`Bus::consume`](crate::application::Bus::consume) — each saga reads every topic it
///    listens to through a subscription of its own, `saga-<name>`, so the rest of the
///    application keeps its own handlers of the same messages;
/// 3. run [`deadlines`](Self::deadlines) beside the consumers, for the steps with a timeout.
///
/// A definition that cannot run (no starting message, a step without a reply…) is reported by
/// [`BusBuilder::build`] with the bus's other problems.
#[derive(Clone)]
pub struct Sagas {
    store: Arc<dyn SagaStore>,
    sagas: Vec<Arc<Registered>>,
}

impl fmt::Debug for Sagas {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sagas")
            .field(
                "sagas",
                &self
                    .sagas
                    .iter()
                    .map(|s| s.engine.name())
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl Sagas {
    /// No sagas yet, on `store`.
    pub fn new(store: Arc<dyn SagaStore>) -> Self {
        Sagas {
            store,
            sagas: Vec::new(),
        }
    }

    /// Adds a saga.
    pub fn orchestration<S: SagaState>(mut self, saga: Orchestration<S>) -> Self {
        let mut problems = saga.problems();
        let name = saga.name.clone();
        if self.sagas.iter().any(|s| s.engine.name() == name) {
            problems.push("two sagas have this name".to_string());
        }
        let mut listeners: Vec<Listener> = Vec::new();
        let all = saga.start.iter().map(|(listener, _)| *listener).chain(
            saga.steps
                .iter()
                .flat_map(|s| s.replies.iter().map(|(l, _)| *l)),
        );
        for listener in all {
            if !listeners.iter().any(|l| l.type_id == listener.type_id) {
                listeners.push(listener);
            }
        }
        let engine: Shared = Arc::new(Engine {
            definition: saga,
            store: Arc::clone(&self.store),
        });
        self.sagas.push(Arc::new(Registered {
            engine,
            listeners,
            problems,
        }));
        self
    }

    /// Adds a choreography's log (see [`Choreography`]).
    pub fn choreography(mut self, choreography: Choreography) -> Self {
        let mut problems = choreography.problems();
        let name = choreography.name.clone();
        if self.sagas.iter().any(|s| s.engine.name() == name) {
            problems.push("two sagas have this name".to_string());
        }
        let listeners = choreography.listeners.clone();
        let engine: Shared = Arc::new(Observer {
            choreography,
            store: Arc::clone(&self.store),
        });
        self.sagas.push(Arc::new(Registered {
            engine,
            listeners,
            problems,
        }));
        self
    }

    /// The subscription through which saga `saga` reads its messages: `saga-<name>`.
    pub fn subscription_name(saga: &str) -> String {
        format!("saga-{saga}")
    }

    /// Every subscription the sagas read, one per saga and topic it listens to: consume each
    /// with the bus the sagas are registered on.
    pub fn subscriptions(&self) -> Vec<SubscriptionOptions> {
        let mut pairs = BTreeSet::new();
        for saga in &self.sagas {
            for listener in &saga.listeners {
                pairs.insert((
                    listener.topic.to_string(),
                    Self::subscription_name(saga.engine.name()),
                ));
            }
        }
        pairs
            .into_iter()
            .map(|(topic, subscription)| SubscriptionOptions::new(topic, subscription))
            .collect()
    }

    /// The store the instances live in.
    pub fn store(&self) -> &Arc<dyn SagaStore> {
        &self.store
    }

    /// The saga log of a conversation: every instance following `correlation_id`, with its
    /// status, state and every step seen.
    pub async fn log(&self, correlation_id: &str) -> Result<Vec<SagaRecord>> {
        self.store.find(correlation_id).await
    }

    /// The task that takes passed deadlines, for `bus` (the bus the sagas are registered on).
    pub fn deadlines(&self, bus: Bus) -> SagaDeadlines {
        let engines: HashMap<String, Shared> = self
            .sagas
            .iter()
            .map(|s| (s.engine.name().to_string(), Arc::clone(&s.engine)))
            .collect();
        SagaDeadlines::new(bus, Arc::clone(&self.store), engines)
    }
}

impl BusBuilder {
    /// Registers the message handlers of `sagas`, each for its saga's own subscription (see
    /// [`Sagas`]). A saga that cannot run as written is a [`BuildProblem::InvalidSaga`].
    pub fn sagas(mut self, sagas: &Sagas) -> Self {
        for saga in &sagas.sagas {
            let name = saga.engine.name().to_string();
            for problem in &saga.problems {
                self.add_problem(BuildProblem::InvalidSaga {
                    saga: name.clone(),
                    problem: problem.clone(),
                });
            }
            for listener in &saga.listeners {
                (listener.register)(
                    &mut self,
                    Sagas::subscription_name(&name),
                    Arc::clone(&saga.engine),
                );
            }
        }
        self
    }
}
