//! The relay dies between publishing and marking: its lease runs out, another relay publishes
//! the same entries again, and the consumer's inbox absorbs the duplicates — every message
//! has its effect exactly once.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use seedwork::application::MessageOutcome;
use seedwork::memory::{MemoryBroker, MemoryRepository, MemoryStore};
use seedwork::messaging::{
    IntegrationMessage, Message, OutboxEntry, OutboxLag, OutboxRelay, OutboxStore, ParkedEntry,
    PublishFailure, Publisher, Subscriber, SubscriptionOptions,
};
use seedwork::prelude::*;
use seedwork::testing::contract::store::{Account, AccountChanged};

/// The memory store's outbox, except that marking fails: the relay published, then "died"
/// before its mark reached the store.
struct DiesBeforeMarking(MemoryStore);

#[async_trait]
impl OutboxStore for DiesBeforeMarking {
    async fn claim(
        &self,
        claimant: &str,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<OutboxEntry>> {
        self.0.claim(claimant, limit, lease).await
    }

    async fn mark_published(&self, _claimant: &str, _sequences: &[u64]) -> Result<()> {
        Err(Error::other("the relay process was killed before marking"))
    }

    async fn release(&self, _claimant: &str, _sequences: &[u64]) -> Result<()> {
        Err(Error::other("the relay process was killed"))
    }

    async fn renew(&self, claimant: &str, sequences: &[u64], lease: Duration) -> Result<u64> {
        self.0.renew(claimant, sequences, lease).await
    }

    async fn record_failures(
        &self,
        claimant: &str,
        failures: &[PublishFailure],
        max_attempts: u32,
    ) -> Result<Vec<u64>> {
        self.0
            .record_failures(claimant, failures, max_attempts)
            .await
    }

    async fn parked(&self, after: Option<u64>, limit: usize) -> Result<Vec<ParkedEntry>> {
        self.0.parked(after, limit).await
    }

    async fn redrive(&self, sequence: u64) -> Result<()> {
        self.0.redrive(sequence).await
    }

    async fn discard(&self, sequence: u64) -> Result<()> {
        self.0.discard(sequence).await
    }

    async fn lag(&self) -> Result<OutboxLag> {
        self.0.lag().await
    }

    async fn purge_published(&self, older_than: Duration) -> Result<u64> {
        self.0.purge_published(older_than).await
    }

    async fn pending(&self) -> Result<u64> {
        self.0.pending().await
    }
}

/// Counts publishes on the way to the broker.
struct Counting {
    broker: MemoryBroker,
    published: AtomicUsize,
}

#[async_trait]
impl Publisher for Counting {
    async fn publish(&self, message: &Message) -> Result<()> {
        self.published.fetch_add(1, Ordering::SeqCst);
        self.broker.publish(message).await
    }
}

struct Mirror(MemoryRepository<Account>);

#[seedwork::async_trait]
impl MessageHandler<AccountChanged> for Mirror {
    async fn handle(&self, message: Envelope<AccountChanged>, uow: &mut UnitOfWork) -> Result<()> {
        let mut mirror = Account::open(format!("mirror-{}", message.data.account_id));
        self.0.add(uow, &mut mirror).await
    }
}

const MESSAGES: usize = 20;

#[tokio::test]
async fn a_relay_killed_between_publish_and_mark_causes_duplicates_the_inbox_absorbs() {
    let producer = MemoryStore::new();
    let consumer_store = MemoryStore::new();
    let broker = MemoryBroker::new();
    let mut consumer = broker
        .subscribe(SubscriptionOptions::new(AccountChanged::TOPIC, "mirror"))
        .await
        .unwrap();
    let mirrors = MemoryRepository::<Account>::new(consumer_store.clone());
    let bus = Bus::builder()
        .store(Arc::new(consumer_store.clone()))
        .on_message(Mirror(mirrors.clone()))
        .build()
        .unwrap();

    // Commit the messages to the producer's outbox.
    let producer_bus = Bus::builder()
        .store(Arc::new(producer.clone()))
        .build()
        .unwrap();
    for n in 0..MESSAGES {
        let mut uow = producer_bus.unit_of_work().await.unwrap();
        uow.enqueue(&AccountChanged {
            account_id: format!("a{n:02}"),
            change: "opened".into(),
            amount: 0,
        })
        .unwrap();
        uow.commit().await.unwrap();
    }

    let publisher = Arc::new(Counting {
        broker: broker.clone(),
        published: AtomicUsize::new(0),
    });
    let lease = Duration::from_millis(50);
    // The first relay publishes everything and dies before marking.
    let doomed = OutboxRelay::new(
        Arc::new(DiesBeforeMarking(producer.clone())),
        publisher.clone(),
    )
    .batch_size(MESSAGES)
    .lease(lease);
    assert!(doomed.run_once().await.is_err(), "the mark failed");
    assert_eq!(publisher.published.load(Ordering::SeqCst), MESSAGES);
    assert_eq!(producer.pending().await.unwrap(), MESSAGES as u64);

    // A second relay finds nothing until the dead relay's lease runs out, then publishes all
    // of it again and marks it.
    let survivor = OutboxRelay::new(Arc::new(producer.clone()), publisher.clone())
        .batch_size(MESSAGES)
        .lease(lease);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut republished = 0;
    while republished < MESSAGES {
        republished += survivor.run_once().await.unwrap().published;
        assert!(
            tokio::time::Instant::now() < deadline,
            "the lease never ran out"
        );
        tokio::task::yield_now().await;
    }
    assert_eq!(republished, MESSAGES);
    assert_eq!(producer.pending().await.unwrap(), 0);
    assert_eq!(publisher.published.load(Ordering::SeqCst), 2 * MESSAGES);

    // The consumer sees every message twice and has each effect once.
    let mut handled = 0;
    let mut duplicates = 0;
    for _ in 0..2 * MESSAGES {
        let delivery = tokio::time::timeout(Duration::from_secs(10), consumer.receive())
            .await
            .expect("a delivery")
            .unwrap();
        match bus
            .handle_message("mirror", &delivery.message)
            .await
            .unwrap()
        {
            MessageOutcome::Handled => handled += 1,
            MessageOutcome::Duplicate => duplicates += 1,
        }
        consumer.ack(&delivery).await.unwrap();
    }
    assert_eq!((handled, duplicates), (MESSAGES, MESSAGES));
    let stored = mirrors.list(&PageRequest::default()).await.unwrap().items;
    assert_eq!(stored.len(), MESSAGES, "each message had its effect once");
}
