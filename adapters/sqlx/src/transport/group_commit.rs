//! Publishes that arrive together commit together.
//!
//! Each publish is a transaction of its own when it comes alone. When publishes overlap — the
//! outbox relay sends up to `max_in_flight` keys at once, several processes' relays share a
//! database — the ones that arrive while a transaction is running wait for it, and the first
//! of them then appends all of them in the next transaction. A writer's time goes to the
//! round trips of opening and committing a transaction at least as much as to its inserts, so
//! under load one transaction carries many messages, and alone a publish costs what it did.
//!
//! A publish returns once its own message committed. Order: the messages of one transaction
//! are appended in arrival order, and a publisher that waits for each publish before the next
//! (as the relay does per key) keeps its order. When a shared transaction fails, each of its
//! publishers appends its message alone, so each gets its own error (a shared failure is an
//! outage and fails them all again; nothing is lost or appended twice, because a failed
//! transaction appended nothing).

use std::collections::BTreeSet;
use std::sync::{Mutex, MutexGuard};

use tokio::sync::oneshot;

use super::{now_millis, Backend, EncodedMessage, Outcome, TransportError, Wakers};

/// How a publish waiting in the queue ended.
enum Settled {
    Committed,
    /// The shared transaction failed: the message comes back, to be appended alone.
    Failed(EncodedMessage),
}

struct Waiting {
    message: EncodedMessage,
    done: oneshot::Sender<Settled>,
}

/// The queue of publishes waiting for the next transaction, and the turn to run one.
#[derive(Default)]
pub(super) struct GroupCommit {
    waiting: Mutex<Vec<Waiting>>,
    turn: tokio::sync::Mutex<()>,
}

impl GroupCommit {
    /// Appends `message` in the next transaction, with every publish waiting for it, and wakes
    /// the topics' consumers once committed.
    pub(super) async fn append(
        &self,
        backend: &dyn Backend,
        wakers: &Wakers,
        message: EncodedMessage,
    ) -> Outcome<()> {
        let (done, mut settled) = oneshot::channel();
        self.queue().push(Waiting { message, done });
        let outcome = {
            let _turn = self.turn.lock().await;
            match settled.try_recv() {
                // An earlier turn carried it.
                Ok(outcome) => Ok(outcome),
                // This turn carries it, with everything queued.
                Err(_) => {
                    self.append_waiting(backend, wakers).await;
                    settled.try_recv()
                }
            }
        };
        match outcome {
            Ok(Settled::Committed) => Ok(()),
            Ok(Settled::Failed(message)) => {
                backend
                    .append(std::slice::from_ref(&message), now_millis())
                    .await?;
                wakers.wake(&message.topic);
                Ok(())
            }
            // The turn that took our message was cancelled before it could say how it ended
            // (a turn settles every publish it takes, and ours was queued before this turn).
            Err(_) => Err(TransportError::Interrupted.into()),
        }
    }

    /// Appends every queued message in one transaction and tells each publisher the outcome.
    async fn append_waiting(&self, backend: &dyn Backend, wakers: &Wakers) {
        let batch = std::mem::take(&mut *self.queue());
        let (messages, senders): (Vec<_>, Vec<_>) =
            batch.into_iter().map(|w| (w.message, w.done)).unzip();
        match backend.append(&messages, now_millis()).await {
            Ok(()) => {
                let topics: BTreeSet<&str> = messages.iter().map(|m| m.topic.as_str()).collect();
                for topic in topics {
                    wakers.wake(topic);
                }
                for done in senders {
                    let _ = done.send(Settled::Committed);
                }
            }
            Err(_) => {
                for (message, done) in messages.into_iter().zip(senders) {
                    let _ = done.send(Settled::Failed(message));
                }
            }
        }
    }

    fn queue(&self) -> MutexGuard<'_, Vec<Waiting>> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use async_trait::async_trait;
    use seedwork::messaging::SubscriptionOptions;
    use tokio::sync::Notify;
    use tokio::task::JoinHandle;

    use super::*;
    use crate::transport::{Claimed, ConsumerRef};

    /// Records each append's batch; the first append waits for `release`, so that the
    /// publishes made meanwhile queue up. Fails every batch of more than one message when
    /// `fail_groups` is set.
    #[derive(Default)]
    struct Scripted {
        batches: Mutex<Vec<Vec<String>>>,
        release: Notify,
        first_started: Notify,
        fail_groups: bool,
    }

    impl Scripted {
        fn batches(&self) -> Vec<Vec<String>> {
            self.batches
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone()
        }
    }

    #[async_trait]
    impl Backend for Scripted {
        async fn check(&self) -> Outcome<()> {
            Ok(())
        }
        async fn append(&self, messages: &[EncodedMessage], _now: i64) -> Outcome<()> {
            let first = {
                let mut batches = self.batches.lock().unwrap_or_else(|e| e.into_inner());
                batches.push(messages.iter().map(|m| m.envelope.clone()).collect());
                batches.len() == 1
            };
            if first {
                self.first_started.notify_one();
                self.release.notified().await;
            }
            if self.fail_groups && messages.len() > 1 {
                return Err(sqlx::Error::PoolTimedOut.into());
            }
            Ok(())
        }
        async fn attach(&self, _: &SubscriptionOptions, _: i64, _: i64) -> Outcome<(i64, i64)> {
            Ok((0, 0))
        }
        async fn claim(
            &self,
            _: &ConsumerRef,
            _: &[(i64, i64)],
            _: i64,
            _: i64,
            _: usize,
        ) -> Outcome<std::result::Result<Vec<Claimed>, Option<i64>>> {
            Ok(Err(None))
        }
        async fn peek(
            &self,
            _: &ConsumerRef,
            _: i64,
            _: i64,
        ) -> Outcome<std::result::Result<(), Option<i64>>> {
            Ok(Err(None))
        }
        async fn retry_later(&self, _: &ConsumerRef, _: i64, _: i64, _: i64) -> Outcome<bool> {
            Ok(false)
        }
        async fn dead_letter(
            &self,
            _: &ConsumerRef,
            _: i64,
            _: i64,
            _: &EncodedMessage,
            _: i64,
        ) -> Outcome<bool> {
            Ok(false)
        }
        async fn heartbeat(&self, _: &ConsumerRef, _: i64, _: i64) -> Outcome<bool> {
            Ok(true)
        }
        async fn detach(&self, _: &ConsumerRef, _: &[(i64, i64)]) -> Outcome<()> {
            Ok(())
        }
        async fn purge(&self, _: i64) -> Outcome<u64> {
            Ok(0)
        }
        async fn unsubscribe(&self, _: &str, _: &str, _: i64) -> Outcome<()> {
            Ok(())
        }
        fn listen(&self, _: Arc<Wakers>) -> Option<JoinHandle<()>> {
            None
        }
    }

    fn message(n: usize) -> EncodedMessage {
        EncodedMessage {
            topic: "t".into(),
            key: None,
            envelope: format!("m{n}"),
            properties: "{}".into(),
        }
    }

    /// Publishes message 0, then 1..=n while 0's transaction runs; returns each outcome.
    async fn publish_while_the_first_runs(backend: Arc<Scripted>, n: usize) -> Vec<bool> {
        let group = Arc::new(GroupCommit::default());
        let wakers = Arc::new(Wakers::default());
        let spawn = |i: usize| {
            let (group, wakers, backend) = (
                Arc::clone(&group),
                Arc::clone(&wakers),
                Arc::clone(&backend),
            );
            tokio::spawn(async move { group.append(&*backend, &wakers, message(i)).await })
        };
        let first = spawn(0);
        backend.first_started.notified().await;
        let rest: Vec<_> = (1..=n).map(spawn).collect();
        // Every later publish is queued once the queue holds them all.
        tokio::time::timeout(Duration::from_secs(5), async {
            while group.queue().len() < n {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the publishes queue up");
        backend.release.notify_one();
        let mut outcomes = Vec::new();
        for task in std::iter::once(first).chain(rest) {
            outcomes.push(task.await.expect("publish task").is_ok());
        }
        outcomes
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn publishes_that_wait_share_the_next_transaction() {
        let backend = Arc::new(Scripted::default());
        let outcomes = publish_while_the_first_runs(Arc::clone(&backend), 5).await;
        assert_eq!(outcomes, vec![true; 6]);
        let batches = backend.batches();
        assert_eq!(
            batches.len(),
            2,
            "one transaction for the first, one for the rest: {batches:?}"
        );
        assert_eq!(batches[0], vec!["m0"]);
        let mut rest = batches[1].clone();
        rest.sort();
        assert_eq!(rest, vec!["m1", "m2", "m3", "m4", "m5"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_shared_transaction_appends_each_message_alone() {
        let backend = Arc::new(Scripted {
            fail_groups: true,
            ..Scripted::default()
        });
        let outcomes = publish_while_the_first_runs(Arc::clone(&backend), 3).await;
        assert_eq!(outcomes, vec![true; 4]);
        let batches = backend.batches();
        assert_eq!(
            batches.len(),
            5,
            "the first, the failed group, three alone: {batches:?}"
        );
        assert_eq!(batches[1].len(), 3);
        let mut alone: Vec<_> = batches[2..].iter().map(|b| b.concat()).collect();
        alone.sort();
        assert_eq!(alone, vec!["m1", "m2", "m3"]);
    }
}
