use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use uuid::Uuid;

use futures_util::stream::{self, StreamExt};
use tracing::Instrument;

use super::{OutboxEntry, OutboxStore, PublishFailure, Publisher};
use crate::error::{Error, Result};
use crate::supervision::HealthPart;

/// What one round of the relay did. Every claimed entry is counted in exactly one field.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RelayRound {
    /// Entries published and marked.
    pub published: usize,
    /// Entries given back without counting a failure: the broker was unavailable
    /// ([`Error::is_transient`]), or an earlier entry of the same key failed.
    pub released: usize,
    /// Entries whose publish failed for a reason of their own: the failure was counted and they
    /// were given back to be tried again.
    pub failed: usize,
    /// Entries whose publish failed for a reason of their own for the
    /// [`max_attempts`](OutboxRelay::max_attempts)th time: parked for an operator.
    pub parked: usize,
}

/// What [`OutboxRelay::run`] does after a round.
enum AfterRound {
    /// Start another round at once.
    Again,
    /// Wait for a commit signal or the poll interval.
    Wait,
    /// Start no round for a poll interval (the round failed or gave entries back).
    Pause,
}

/// What publishing one key's entries did.
#[derive(Default)]
struct ChainOutcome {
    published: Vec<u64>,
    released: Vec<u64>,
    /// The entry whose publish failed, when the failure was its own (not an outage).
    failed: Option<PublishFailure>,
    error: Option<Error>,
}

/// The longest error text kept with a failed entry: enough to diagnose, bounded so that a
/// publisher that echoes a whole payload does not bloat the outbox.
const MAX_ERROR_TEXT: usize = 2000;

fn error_text(error: &Error) -> String {
    let mut text = error.to_string();
    if text.len() > MAX_ERROR_TEXT {
        let mut end = MAX_ERROR_TEXT;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

/// Moves committed messages from an [`OutboxStore`] to a [`Publisher`]: at least once, in order
/// per key.
///
/// Each round claims a batch, publishes it, marks what was published and releases the rest.
/// A key's entries are published one after the other in sequence order; different keys (and
/// entries without a key) are published concurrently, up to [`max_in_flight`](Self::max_in_flight)
/// at a time, so a networked broker's round trips overlap. When a publish fails, later entries
/// with the same key are not attempted in that round, so a key's order survives a broker
/// outage. While publishes are outstanding the relay renews its lease every third of it, so a
/// slow broker does not let another relay claim and publish the same entries again. If the
/// process dies between publishing and marking, the lease expires and the entries are
/// published again: consumers deduplicate with their inbox. Several relays may share one store.
///
/// A failure that [`is_transient`](Error::is_transient) (the broker is unreachable) is never
/// held against the entry. Any other failure is the entry's own — its payload does not fit the
/// topic's schema, the broker refuses it — and is counted; after
/// [`max_attempts`](Self::max_attempts) of them the entry is **parked**: it stays in the outbox
/// with its last error ([`OutboxStore::parked`]), later entries of its key wait behind it, and
/// every other key keeps flowing until an operator re-drives or discards it.
pub struct OutboxRelay {
    store: Arc<dyn OutboxStore>,
    publisher: Arc<dyn Publisher>,
    claimant: String,
    batch_size: usize,
    max_in_flight: usize,
    max_rounds: usize,
    lease: Duration,
    poll_interval: Duration,
    retention: Duration,
    max_attempts: u32,
    health: Option<HealthPart>,
}

impl OutboxRelay {
    /// A relay with defaults: batches of 100, 16 keys in flight, one round at a time, 30 s
    /// lease, 250 ms poll, published rows kept 1 h, an entry parked after 5 failures of its
    /// own.
    pub fn new(store: Arc<dyn OutboxStore>, publisher: Arc<dyn Publisher>) -> Self {
        OutboxRelay {
            store,
            publisher,
            claimant: format!("relay-{}", Uuid::new_v4()),
            batch_size: 100,
            max_in_flight: 16,
            max_rounds: 1,
            lease: Duration::from_secs(30),
            poll_interval: Duration::from_millis(250),
            retention: Duration::from_secs(3600),
            max_attempts: 5,
            health: None,
        }
    }

    /// Entries claimed per round (at least 1).
    pub fn batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    /// How many keys are published concurrently within a batch (at least 1; with 1, one
    /// message at a time, key after key).
    pub fn max_in_flight(mut self, max_in_flight: usize) -> Self {
        self.max_in_flight = max_in_flight.max(1);
        self
    }

    /// How many rounds [`run`](Self::run) keeps going at once (at least 1; default 1).
    ///
    /// A round lasts as long as its longest chain of same-key publishes, each waiting for the
    /// broker's receipt of the one before. With one round at a time, an entry committed
    /// meanwhile waits for the whole round before it is even claimed; with more, a commit
    /// signal starts another round at once, which claims what the running ones do not hold
    /// (each round claims under a name of its own, `{claimant}` for the first and
    /// `{claimant}#N` for the others, so the store holds a key's later entries back behind an
    /// earlier one another round has in hand, and a key's order is kept as between relays).
    ///
    /// The price is more claims, each taking less: under load that is more write
    /// transactions for the store. On SQLite, whose one writer is what limits a loaded
    /// system, two rounds cut the relay's hop by about a tenth one request at a time and cost
    /// a third of the throughput at 64 connections (`docs/performance.md`, round 10); hence
    /// the default.
    pub fn max_rounds(mut self, max_rounds: usize) -> Self {
        self.max_rounds = max_rounds.max(1);
        self
    }

    /// How long a claim holds before another relay may take the entries.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// How long to sleep when the outbox is empty and the store gives no commit signal.
    pub fn poll_interval(mut self, poll_interval: Duration) -> Self {
        self.poll_interval = poll_interval;
        self
    }

    /// After how many failed publishes of its own (outages not counted) an entry is parked
    /// (at least 1).
    pub fn max_attempts(mut self, max_attempts: u32) -> Self {
        self.max_attempts = max_attempts.max(1);
        self
    }

    /// How long published entries are kept before they are purged.
    pub fn retention(mut self, retention: Duration) -> Self {
        self.retention = retention;
        self
    }

    /// Reports each round's outcome to `part`: down while rounds fail (the store or the broker
    /// is unreachable, or a publish was refused), up again after a round that went through.
    pub fn report_to(mut self, part: HealthPart) -> Self {
        self.health = Some(part);
        self
    }

    /// The name this relay claims under (unique per relay by default).
    pub fn claimant(&self) -> &str {
        &self.claimant
    }

    /// Claims, publishes and marks one batch.
    pub async fn run_once(&self) -> Result<RelayRound> {
        self.run_once_as(&self.claimant).await
    }

    /// One round under `claimant`. Debug spans time its steps (`relay › claim`, `› publish`,
    /// `› mark`).
    async fn run_once_as(&self, claimant: &str) -> Result<RelayRound> {
        self.round(claimant)
            .instrument(tracing::debug_span!("relay"))
            .await
    }

    async fn round(&self, claimant: &str) -> Result<RelayRound> {
        let entries = self
            .store
            .claim(claimant, self.batch_size, self.lease)
            .instrument(tracing::debug_span!("claim"))
            .await?;
        // One chain per key, in sequence order; an entry without a key is a chain of its own.
        let mut chains: Vec<Vec<OutboxEntry>> = Vec::new();
        let mut chain_of_key: HashMap<String, usize> = HashMap::new();
        for entry in entries {
            match entry.message.key.clone() {
                Some(key) => match chain_of_key.get(&key) {
                    Some(&index) => chains[index].push(entry),
                    None => {
                        chain_of_key.insert(key, chains.len());
                        chains.push(vec![entry]);
                    }
                },
                None => chains.push(vec![entry]),
            }
        }
        let claimed: Vec<u64> = chains.iter().flatten().map(|e| e.sequence).collect();
        let publishing = stream::iter(chains)
            .map(|chain| self.publish_chain(chain))
            .buffer_unordered(self.max_in_flight)
            .collect::<Vec<ChainOutcome>>();
        let outcomes = self
            .renewing(claimant, &claimed, publishing)
            .instrument(tracing::debug_span!("publish", count = claimed.len()))
            .await;
        let mut published = Vec::new();
        let mut released = Vec::new();
        let mut failures = Vec::new();
        let mut first_error = None;
        for outcome in outcomes {
            published.extend(outcome.published);
            released.extend(outcome.released);
            failures.extend(outcome.failed);
            if let Some(error) = outcome.error {
                first_error.get_or_insert(error);
            }
        }
        if !published.is_empty() {
            self.store
                .mark_published(claimant, &published)
                .instrument(tracing::debug_span!("mark"))
                .await?;
        }
        let mut parked = Vec::new();
        if !failures.is_empty() {
            parked = self
                .store
                .record_failures(claimant, &failures, self.max_attempts)
                .await?;
            for failure in failures.iter().filter(|f| parked.contains(&f.sequence)) {
                tracing::error!(
                    sequence = failure.sequence,
                    attempts = self.max_attempts,
                    error = %failure.error,
                    "outbox entry parked: it failed too often; later entries of its key wait \
                     until it is re-driven or discarded"
                );
            }
        }
        if !released.is_empty() {
            self.store.release(claimant, &released).await?;
        }
        if published.is_empty() && failures.is_empty() {
            // Nothing moved and nothing was the entries' fault: the broker is out.
            if let Some(error) = first_error {
                return Err(error);
            }
        }
        Ok(RelayRound {
            published: published.len(),
            released: released.len(),
            failed: failures.len() - parked.len(),
            parked: parked.len(),
        })
    }

    /// Drives `publishing` to its end, renewing the lease on `claimed` every third of the lease
    /// meanwhile: entries published but not yet marked need it as much as those in flight.
    async fn renewing<T>(
        &self,
        claimant: &str,
        claimed: &[u64],
        publishing: impl Future<Output = T>,
    ) -> T {
        let every = (self.lease / 3).max(Duration::from_millis(1));
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(publishing);
        loop {
            tokio::select! {
                done = &mut publishing => return done,
                _ = ticks.tick() => {}
            }
            let renewing = self.store.renew(claimant, claimed, self.lease);
            // Keep publishing while the renewal runs: a slow store must not hold up the broker.
            let renewed = tokio::select! {
                done = &mut publishing => return done,
                renewed = renewing => renewed,
            };
            match renewed {
                Ok(count) if count < claimed.len() as u64 => tracing::debug!(
                    renewed = count,
                    claimed = claimed.len(),
                    "outbox lease renewal: entries no longer held (published, or their lease lost)"
                ),
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "outbox lease renewal failed"),
            }
        }
    }

    /// Publishes one key's entries in order, stopping at the first failure.
    async fn publish_chain(&self, chain: Vec<OutboxEntry>) -> ChainOutcome {
        let mut outcome = ChainOutcome::default();
        let mut entries = chain.into_iter();
        for entry in entries.by_ref() {
            match self.publisher.publish(&entry.message).await {
                Ok(()) => outcome.published.push(entry.sequence),
                Err(error) => {
                    tracing::warn!(
                        sequence = entry.sequence,
                        topic = %entry.message.topic,
                        transient = error.is_transient(),
                        %error,
                        "outbox publish failed; the entry stays for a later round"
                    );
                    if error.is_transient() {
                        outcome.released.push(entry.sequence);
                    } else {
                        outcome.failed = Some(PublishFailure {
                            sequence: entry.sequence,
                            error: error_text(&error),
                        });
                    }
                    outcome.error = Some(error);
                    break;
                }
            }
        }
        outcome.released.extend(entries.map(|entry| entry.sequence));
        outcome
    }

    /// Runs rounds until `shutdown` completes. Store or broker failures are logged and retried
    /// after the poll interval; the relay itself never gives up.
    ///
    /// Up to [`max_rounds`](Self::max_rounds) rounds run at once: a round that moved entries
    /// is followed by another at once, a commit signal starts one while others are still
    /// publishing, and with nothing to do the relay waits for a signal or the poll interval.
    /// After a failed round no round starts for a poll interval. On shutdown no round starts,
    /// and those under way finish (each publish is bounded by the publisher's own timeout), so
    /// nothing is left leased until its lease runs out.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let signal = self.store.commit_signal();
        tokio::pin!(shutdown);
        let claimants: Vec<String> = (0..self.max_rounds)
            .map(|slot| match slot {
                0 => self.claimant.clone(),
                n => format!("{}#{n}", self.claimant),
            })
            .collect();
        let mut free: Vec<usize> = (0..self.max_rounds).rev().collect();
        let mut running = stream::FuturesUnordered::new();
        let mut rounds_since_purge = 0u32;
        // Whether to start a round as soon as a slot is free, and until when none may start.
        let mut start = true;
        let mut paused_until: Option<tokio::time::Instant> = None;
        let mut stopping = false;
        loop {
            let paused = paused_until.is_some_and(|until| tokio::time::Instant::now() < until);
            if !paused {
                paused_until = None;
            }
            if start && !paused && !stopping {
                if let Some(slot) = free.pop() {
                    start = false;
                    rounds_since_purge += 1;
                    let purge = rounds_since_purge >= 100;
                    if purge {
                        rounds_since_purge = 0;
                    }
                    let (relay, claimant) = (&self, &claimants[slot]);
                    running.push(async move {
                        let outcome = relay.run_once_as(claimant).await;
                        if purge {
                            if let Err(error) = relay.store.purge_published(relay.retention).await {
                                tracing::warn!(%error, "outbox purge failed");
                            }
                        }
                        (slot, outcome)
                    });
                    continue;
                }
            }
            if stopping && running.is_empty() {
                return;
            }
            // With nothing under way, an idle relay looks again after the poll interval; a
            // paused one when its pause ends.
            let wake_at = paused_until.or_else(|| {
                running
                    .is_empty()
                    .then(|| tokio::time::Instant::now() + self.poll_interval)
            });
            let listen = signal
                .as_ref()
                .filter(|_| !stopping && paused_until.is_none());
            tokio::select! {
                _ = &mut shutdown, if !stopping => stopping = true,
                Some((slot, outcome)) = running.next(), if !running.is_empty() => {
                    free.push(slot);
                    match self.after_round(&outcome) {
                        AfterRound::Again => start = true,
                        AfterRound::Wait => {}
                        AfterRound::Pause => {
                            paused_until =
                                Some(tokio::time::Instant::now() + self.poll_interval);
                            start = true;
                        }
                    }
                }
                _ = async { listen.expect("listened only when present").notified().await },
                    if listen.is_some() => start = true,
                _ = async {
                    tokio::time::sleep_until(wake_at.expect("slept only when set")).await
                }, if wake_at.is_some() => start = true,
            }
        }
    }

    /// Reports a finished round to the health part and tells the loop what to do next.
    fn after_round(&self, outcome: &Result<RelayRound>) -> AfterRound {
        match outcome {
            Ok(round) => {
                if let Some(part) = &self.health {
                    if round.released == 0 {
                        part.up();
                    }
                }
                if round.released > 0 || round.failed > 0 {
                    // Something was given back: try again after a poll interval.
                    AfterRound::Pause
                } else if *round == RelayRound::default() {
                    AfterRound::Wait
                } else {
                    // Everything claimed went out (or was parked): straight on.
                    AfterRound::Again
                }
            }
            Err(error) => {
                tracing::warn!(%error, "outbox relay round failed");
                if let Some(part) = &self.health {
                    part.down(format!("relay rounds fail: {error}"));
                }
                AfterRound::Pause
            }
        }
    }
}
