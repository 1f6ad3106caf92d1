use std::collections::VecDeque;
use std::future::Future;
use std::time::Duration;

use tracing::Instrument;

use super::Bus;
use crate::error::{Error, Result};
use crate::messaging::{Consumer, Delivery, Message, TransactionalAck};
use crate::supervision::HealthPart;
use crate::uow::{Trace, UnitOfWork};

/// What happened to a received message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageOutcome {
    /// Its handler ran and its effects committed with the inbox entry.
    Handled,
    /// The inbox had already seen it: nothing was done.
    Duplicate,
}

impl Bus {
    /// Handles one received message for the subscription `consumer`: in one unit of work,
    /// records its id in the inbox, runs the registered [`MessageHandler`](super::MessageHandler)
    /// for its type, and commits. A message already in the inbox is skipped.
    pub async fn handle_message(
        &self,
        consumer: &str,
        message: &Message,
    ) -> Result<MessageOutcome> {
        let (outcome, _) = self.handle_carrying(consumer, message, None).await?;
        Ok(outcome)
    }

    /// [`handle_message`](Self::handle_message), writing `ack` in the same transaction when
    /// the store can carry it ([`UnitOfWork::acknowledge`](crate::uow::UnitOfWork::acknowledge));
    /// the second value says whether it did (and committed). A duplicate rolls back and
    /// carries nothing.
    async fn handle_carrying(
        &self,
        consumer: &str,
        message: &Message,
        ack: Option<&TransactionalAck>,
    ) -> Result<(MessageOutcome, bool)> {
        let span = tracing::debug_span!(
            "message",
            consumer,
            message_type = %message.envelope.message_type,
            message_id = %message.envelope.id,
            correlation_id = message.correlation_id(),
        );
        async {
            let handler = self.message_handler(consumer, message)?;
            let mut uow = self.begin_timed().await?;
            uow.replace_trace(Trace::caused_by(message));
            if !uow.record_inbox(consumer, message.id()).await? {
                uow.rollback().await?;
                return Ok((MessageOutcome::Duplicate, false));
            }
            let handled = async {
                handler.handle(message, &mut uow).await?;
                carry(&mut uow, ack).await
            }
            .await;
            match handled {
                Ok(carried) => {
                    uow.commit().await?;
                    Ok((MessageOutcome::Handled, carried))
                }
                Err(error) => Err(uow.rollback_after(error, "a failed message").await),
            }
        }
        .instrument(span)
        .await
    }

    /// Handles `messages` in one unit of work, each with its inbox entry and under its own
    /// correlation id: all of them commit, or none does. One transaction for many messages is
    /// what lets a consumer keep up with a busy store; their inbox entries are recorded
    /// together first ([`UnitOfWork::record_inbox_many`](crate::uow::UnitOfWork::record_inbox_many)),
    /// then each new message is handled in turn. An error means nothing was committed;
    /// handle the messages one by one ([`handle_message`](Self::handle_message)) to learn
    /// which failed and why.
    pub async fn handle_messages(
        &self,
        consumer: &str,
        messages: &[&Message],
    ) -> Result<Vec<MessageOutcome>> {
        let (outcomes, _) = self.handle_many_carrying(consumer, messages, None).await?;
        Ok(outcomes)
    }

    /// [`handle_messages`](Self::handle_messages), writing `ack` in the same transaction when
    /// the store can carry it; the second value says whether it did (and committed).
    async fn handle_many_carrying(
        &self,
        consumer: &str,
        messages: &[&Message],
        ack: Option<&TransactionalAck>,
    ) -> Result<(Vec<MessageOutcome>, bool)> {
        let span = tracing::debug_span!("messages", consumer, count = messages.len());
        async {
            let handlers = messages
                .iter()
                .map(|message| self.message_handler(consumer, message))
                .collect::<Result<Vec<_>>>()?;
            let mut uow = self.begin_timed().await?;
            let handled = async {
                let ids: Vec<&str> = messages.iter().map(|message| message.id()).collect();
                let new = uow.record_inbox_many(consumer, &ids).await?;
                let mut outcomes = Vec::with_capacity(messages.len());
                for ((message, handler), new) in messages.iter().zip(&handlers).zip(new) {
                    if !new {
                        outcomes.push(MessageOutcome::Duplicate);
                        continue;
                    }
                    uow.replace_trace(Trace::caused_by(message));
                    handler.handle(message, &mut uow).await?;
                    outcomes.push(MessageOutcome::Handled);
                }
                let carried = carry(&mut uow, ack).await?;
                Ok::<_, Error>((outcomes, carried))
            }
            .await;
            match handled {
                Ok(handled) => {
                    uow.commit().await?;
                    Ok(handled)
                }
                Err(error) => Err(uow.rollback_after(error, "a failed batch").await),
            }
        }
        .instrument(span)
        .await
    }

    /// Receives from `consumer` until `shutdown` completes, handling each message with
    /// [`handle_message`](Self::handle_message), with the default [`ConsumeOptions`]. See
    /// [`consume_with`](Self::consume_with).
    pub async fn consume(
        &self,
        consumer: Box<dyn Consumer>,
        shutdown: impl Future<Output = ()>,
    ) -> Result<()> {
        self.consume_with(consumer, &ConsumeOptions::default(), shutdown)
            .await
    }

    /// Receives from `consumer` until `shutdown` completes, handling each message with
    /// [`handle_message`](Self::handle_message) and settling it by what happened:
    ///
    /// - **handled, or a duplicate** — acknowledged. When the consumer offers a
    ///   [`TransactionalAck`] ([`Consumer::transactional_ack`]) and the store can carry it
    ///   (`seedwork-sqlx`'s transport fed by the store's own outbox), the acknowledgement is
    ///   written in the handler's transaction and commits with its effects: no write of its
    ///   own, and no window between the commit and the acknowledgement;
    /// - **refused** ([`Error::is_refusal`]: the domain refused it, it does not decode) —
    ///   rejected to the dead-letter topic at once, with the error as the reason: it would be
    ///   refused however often it came back;
    /// - **an outage** ([`Error::is_transient`]: the store or broker is unreachable, busy or
    ///   restarting) — not settled and not counted: the same delivery is handled again after a
    ///   backoff that grows up to the [`OutagePolicy`]'s `max_backoff`, for as long as the
    ///   outage lasts, so a database restart dead-letters nothing;
    /// - **any other failure** — negatively acknowledged: redelivered after the subscription's
    ///   backoff and, after its `max_deliveries`, dead-lettered.
    ///
    /// A failed settlement is logged and the loop goes on: the broker delivers the message
    /// again and the inbox recognises it. A transient `receive` failure is waited out the same
    /// way; any other returns `Err` (the consumer itself is broken): run it under
    /// [`supervise`](crate::supervision::supervise), which subscribes again.
    ///
    /// With [`ConsumeOptions::report_to`], the loop reports its part down while it waits out
    /// an outage and up again once a message goes through.
    ///
    /// When the consumer already holds more deliveries ([`Consumer::ready`]: the durable
    /// transport claims several at a time), up to [`ConsumeOptions::batch`] of them are
    /// handled together in one unit of work ([`handle_messages`](Self::handle_messages)) and
    /// acknowledged; if that batch fails, its messages are handled one by one as above.
    pub async fn consume_with(
        &self,
        mut consumer: Box<dyn Consumer>,
        options: &ConsumeOptions,
        shutdown: impl Future<Output = ()>,
    ) -> Result<()> {
        let outage = &options.outage;
        let health = Reporter::new(options.health.clone());
        let subscription = consumer.options().subscription.clone();
        tokio::pin!(shutdown);
        let mut receive_outages = 0u32;
        // Deliveries to handle one by one: one received alone, or those of a batch that
        // failed as a whole.
        let mut singles: VecDeque<Delivery> = VecDeque::new();
        loop {
            if let Some(delivery) = singles.pop_front() {
                if !self
                    .handle_single(
                        &mut *consumer,
                        delivery,
                        &subscription,
                        outage,
                        &health,
                        &mut shutdown,
                    )
                    .await
                {
                    return Ok(());
                }
                continue;
            }
            let received = {
                let receive = consumer.receive();
                tokio::pin!(receive);
                loop {
                    tokio::select! {
                        _ = &mut shutdown => return Ok(()),
                        received = &mut receive => break received,
                        // A consumer with nothing to receive after an outage would otherwise
                        // stay down until its next message: a receive that waits without
                        // failing means the broker answers again.
                        _ = tokio::time::sleep(RECOVERED_AFTER), if health.is_down() => health.up(),
                    }
                }
            };
            let delivery = match received {
                Ok(delivery) => {
                    receive_outages = 0;
                    delivery
                }
                Err(error) if error.is_transient() => {
                    receive_outages += 1;
                    health.down(&error);
                    let wait = outage.backoff(receive_outages);
                    tracing::warn!(%error, subscription = %subscription, ?wait, "receive failed; waiting for the broker");
                    tokio::select! {
                        _ = &mut shutdown => return Ok(()),
                        _ = tokio::time::sleep(wait) => continue,
                    }
                }
                Err(error) => return Err(error),
            };
            let mut batch = vec![delivery];
            while batch.len() < options.batch.max(1) {
                match consumer.ready() {
                    Some(delivery) => batch.push(delivery),
                    None => break,
                }
            }
            if batch.len() == 1 {
                singles.extend(batch);
                continue;
            }
            let messages: Vec<&Message> = batch.iter().map(|d| &d.message).collect();
            let ack = consumer.transactional_ack(&batch.iter().collect::<Vec<_>>());
            match self
                .handle_many_carrying(&subscription, &messages, ack.as_ref())
                .await
            {
                Ok((_, carried)) => {
                    health.up();
                    for delivery in &batch {
                        if let Err(error) = settle_handled(&mut *consumer, delivery, carried).await
                        {
                            tracing::warn!(
                                %error,
                                subscription = %subscription,
                                message_id = %delivery.message.envelope.id,
                                "settling the message failed; it will come back"
                            );
                        }
                    }
                }
                Err(error) => {
                    tracing::debug!(%error, subscription = %subscription, count = batch.len(), "a batch failed; handling its messages one by one");
                    singles.extend(batch);
                }
            }
        }
    }

    /// Handles one delivery as [`consume_with`](Self::consume_with) promises: waits out
    /// outages, rejects refusals, nacks other failures, acks success. `false`: shut down.
    async fn handle_single(
        &self,
        consumer: &mut dyn Consumer,
        delivery: Delivery,
        subscription: &str,
        outage: &OutagePolicy,
        health: &Reporter,
        shutdown: &mut (impl Future<Output = ()> + Unpin),
    ) -> bool {
        let mut outages = 0u32;
        let ack = consumer.transactional_ack(&[&delivery]);
        let handled = loop {
            match self
                .handle_carrying(subscription, &delivery.message, ack.as_ref())
                .await
            {
                Err(error) if error.is_transient() => {
                    outages += 1;
                    health.down(&error);
                    let wait = outage.backoff(outages);
                    tracing::warn!(
                        %error,
                        subscription = %subscription,
                        message_id = %delivery.message.envelope.id,
                        outages,
                        ?wait,
                        "a backend is unavailable; the message is held and handled again"
                    );
                    tokio::select! {
                        // Unsettled: the broker hands it out again after the restart.
                        _ = &mut *shutdown => return false,
                        _ = tokio::time::sleep(wait) => {}
                    }
                }
                other => break other,
            }
        };
        health.up();
        let settled = match handled {
            Ok((_, carried)) => settle_handled(consumer, &delivery, carried).await,
            Err(error) if error.is_refusal() => {
                tracing::warn!(
                    %error,
                    subscription = %subscription,
                    message_id = %delivery.message.envelope.id,
                    "message refused; rejected to the dead-letter topic"
                );
                consumer.reject(&delivery, &error.to_string()).await
            }
            Err(error) => {
                tracing::warn!(
                    %error,
                    subscription = %subscription,
                    message_id = %delivery.message.envelope.id,
                    attempt = delivery.attempt,
                    "message handling failed; it will be redelivered or dead-lettered"
                );
                consumer.nack(&delivery).await
            }
        };
        if let Err(error) = settled {
            // The broker will deliver the message again (a reconnected consumer cannot
            // settle what the old connection received); the inbox absorbs the repeat.
            tracing::warn!(
                %error,
                subscription = %subscription,
                message_id = %delivery.message.envelope.id,
                "settling the message failed; it will come back"
            );
        }
        true
    }
}

/// Writes `ack`, if any, in `uow`'s transaction; whether the store carried it.
async fn carry(uow: &mut UnitOfWork, ack: Option<&TransactionalAck>) -> Result<bool> {
    match ack {
        Some(ack) => uow.acknowledge(ack).await,
        None => Ok(false),
    }
}

/// Settles a delivery whose handling committed: its acknowledgement went with the commit
/// (`carried`), or it is acknowledged now.
async fn settle_handled(
    consumer: &mut dyn Consumer,
    delivery: &Delivery,
    carried: bool,
) -> Result<()> {
    if carried {
        consumer.ack_committed(delivery).await
    } else {
        consumer.ack(delivery).await
    }
}

/// How long a receive must wait without failing, after an outage, for the consumer to report
/// itself up again with no message to handle.
const RECOVERED_AFTER: Duration = Duration::from_secs(1);

/// How [`Bus::consume_with`] runs: how it waits out outages, where it reports its health, how
/// many messages at hand it handles in one unit of work.
#[derive(Debug, Clone)]
pub struct ConsumeOptions {
    outage: OutagePolicy,
    health: Option<HealthPart>,
    batch: usize,
}

impl Default for ConsumeOptions {
    fn default() -> Self {
        ConsumeOptions {
            outage: OutagePolicy::default(),
            health: None,
            batch: 32,
        }
    }
}

impl ConsumeOptions {
    /// The defaults: [`OutagePolicy::default`], no health reporting, batches of up to 32.
    pub fn new() -> Self {
        ConsumeOptions::default()
    }

    /// At most how many deliveries the consumer already holds ([`Consumer::ready`]) are
    /// handled together in one unit of work ([`Bus::handle_messages`]); 1 handles each alone.
    /// A batch that fails is handled again one message at a time, so a failure is still
    /// waited out, rejected or nacked per message. Default 32.
    pub fn batch(mut self, batch: usize) -> Self {
        self.batch = batch.max(1);
        self
    }

    /// How to wait out an unavailable store or broker.
    pub fn outage(mut self, policy: OutagePolicy) -> Self {
        self.outage = policy;
        self
    }

    /// Reports the loop's state to `part`: down while it waits out an outage (with the error),
    /// up once a message goes through again — or, with none to handle, once a receive has
    /// waited a second without failing.
    pub fn report_to(mut self, part: HealthPart) -> Self {
        self.health = Some(part);
        self
    }
}

/// Reports to an optional part, only on changes (the register is shared by the process).
struct Reporter {
    part: Option<HealthPart>,
    down: std::sync::atomic::AtomicBool,
}

impl Reporter {
    fn new(part: Option<HealthPart>) -> Self {
        Reporter {
            part,
            down: std::sync::atomic::AtomicBool::new(false),
        }
    }

    fn down(&self, error: &Error) {
        if let Some(part) = &self.part {
            part.down(format!("waiting out an outage: {error}"));
            self.down.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }

    fn is_down(&self) -> bool {
        self.down.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn up(&self) {
        if let (Some(part), true) = (
            &self.part,
            self.down.load(std::sync::atomic::Ordering::Relaxed),
        ) {
            part.up();
            self.down.store(false, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

/// How long [`Bus::consume_with`] waits before handling a message again while the store or
/// broker is unavailable: `initial_backoff`, doubled after each failed try, up to
/// `max_backoff`. There is no limit on the number of tries: an outage is waited out, never
/// counted against the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutagePolicy {
    /// The wait after the first failed try.
    pub initial_backoff: Duration,
    /// The longest wait between two tries.
    pub max_backoff: Duration,
}

impl Default for OutagePolicy {
    /// 50 ms, doubling up to 5 s.
    fn default() -> Self {
        OutagePolicy {
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(5),
        }
    }
}

impl OutagePolicy {
    /// The wait after `tries` failed tries (≥ 1).
    ///
    /// ```
    /// # use std::time::Duration;
    /// use seedwork::application::OutagePolicy;
    /// let policy = OutagePolicy::default();
    /// assert_eq!(policy.backoff(1), Duration::from_millis(50));
    /// assert_eq!(policy.backoff(3), Duration::from_millis(200));
    /// assert_eq!(policy.backoff(1000), Duration::from_secs(5));
    /// ```
    pub fn backoff(&self, tries: u32) -> Duration {
        crate::backoff::exponential(self.initial_backoff, 2, tries, self.max_backoff)
    }
}
