//! The event store contract suite: appends checked against the expected version, streams read
//! back in order, global positions a reader follows without skipping an event (one that
//! commits late included), snapshots, rollback, eight writers on one stream; and, through
//! [`EventSourcedRepository`], that loading from a snapshot gives the state a full replay gives.
//!
//! Every function takes a fresh, empty [`EventStoreUnderTest`] and panics with a message when
//! the backend breaks the contract. Backends call them one per test with
//! [`event_store_contract_tests!`](crate::event_store_contract_tests), or with [`run_all`].

use std::future::Future;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::application::Bus;
use crate::domain::{AggregateRoot, AggregateState, EventMetadata, Repository};
use crate::error::Error;
use crate::eventsourcing::{
    EventSourced, EventSourcedRepository, EventStore, NewEvent, Snapshot, StoredEvent,
};
use crate::uow::TransactionalStore;

/// A backend under test: its store (for units of work) and its event store, on one database.
#[derive(Clone)]
pub struct EventStoreUnderTest {
    /// Opens transactions.
    pub store: Arc<dyn TransactionalStore>,
    /// The same store's event streams.
    pub events: Arc<dyn EventStore>,
    /// Whether a unit of work can append and commit while another that has appended is still
    /// open: true for PostgreSQL; false where writers take turns (SQLite's one writer, the
    /// memory store's serialised transactions), where the second would wait for the first.
    pub concurrent_appends: bool,
}

/// What happened to a [`Ledger`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum LedgerChange {
    /// Opened.
    Opened,
    /// An amount added (negative: taken).
    Posted(i64),
}

/// The suite aggregate's event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, crate::DomainEvent)]
#[event(name = "LedgerChanged")]
pub struct LedgerChanged {
    /// What changed.
    pub change: LedgerChange,
    /// Id and time.
    pub metadata: EventMetadata,
}

/// The suite's event-sourced aggregate: a running balance and its history.
#[derive(Debug, Clone, Default, Serialize, Deserialize, crate::AggregateRoot)]
#[aggregate(name = "contract_ledger")]
pub struct Ledger {
    /// The id.
    pub id: String,
    /// The balance.
    pub balance: i64,
    /// Every amount posted, in order.
    pub postings: Vec<i64>,
    /// Version and pending events.
    #[serde(skip)]
    pub state: AggregateState,
}

impl Ledger {
    /// Posts `amount`.
    pub fn post(&mut self, amount: i64) {
        self.raise(LedgerChanged {
            change: LedgerChange::Posted(amount),
            metadata: EventMetadata::now(),
        });
    }
}

impl EventSourced for Ledger {
    type Event = LedgerChanged;

    fn empty(id: &String) -> Self {
        Ledger {
            id: id.clone(),
            ..Ledger::default()
        }
    }

    fn apply(&mut self, event: &LedgerChanged) {
        if let LedgerChange::Posted(amount) = event.change {
            self.balance += amount;
            self.postings.push(amount);
        }
    }
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", Uuid::new_v4())
}

fn event(n: i64) -> NewEvent {
    NewEvent {
        event_type: "Posted".into(),
        event_version: "v1".into(),
        data: serde_json::json!({ "n": n }),
        occurred_at: 1_000 + n,
    }
}

fn bus(s: &EventStoreUnderTest) -> Bus {
    Bus::builder()
        .store(Arc::clone(&s.store))
        .build()
        .expect("bus")
}

async fn append(
    s: &EventStoreUnderTest,
    stream: &str,
    expected: u64,
    events: &[NewEvent],
) -> crate::Result<u64> {
    let mut uow = bus(s).unit_of_work().await.expect("begin");
    match s
        .events
        .append(&mut uow, "t", stream, expected, events)
        .await
    {
        Ok(version) => {
            uow.commit().await?;
            Ok(version)
        }
        Err(error) => {
            uow.rollback().await.expect("rollback");
            Err(error)
        }
    }
}

/// How long [`read_settled`] waits for the events the store holds back.
const SETTLE: std::time::Duration = std::time::Duration::from_secs(10);

/// `read_all`, once the store answers every committed event after `after` (or `limit` of
/// them): a backend may hold committed events back while older transactions run, other tests'
/// included. Waits at most [`SETTLE`], then answers what it reads.
async fn read_settled(s: &EventStoreUnderTest, after: u64, limit: usize) -> Vec<StoredEvent> {
    let deadline = tokio::time::Instant::now() + SETTLE;
    loop {
        let events = s.events.read_all(after, limit).await.expect("read_all");
        let last = s.events.last_position().await.expect("last_position");
        let reached = events.last().map_or(after, |e| e.position);
        if reached >= last || events.len() >= limit || tokio::time::Instant::now() >= deadline {
            return events;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

/// Appended events read back in order, numbered from the expected version, with their data;
/// `load` after a version answers the rest.
pub async fn appended_events_read_back_in_order(s: &EventStoreUnderTest) {
    let stream = unique("s");
    assert_eq!(
        append(s, &stream, 0, &[event(1), event(2)])
            .await
            .expect("append"),
        2
    );
    assert_eq!(append(s, &stream, 2, &[event(3)]).await.expect("append"), 3);
    let all = s.events.load("t", &stream, 0).await.expect("load");
    let seen: Vec<(u64, serde_json::Value, i64)> = all
        .iter()
        .map(|e| (e.version, e.data.clone(), e.occurred_at))
        .collect();
    assert_eq!(
        seen,
        [
            (1, serde_json::json!({"n": 1}), 1_001),
            (2, serde_json::json!({"n": 2}), 1_002),
            (3, serde_json::json!({"n": 3}), 1_003)
        ]
    );
    assert!(all
        .iter()
        .all(|e| e.stream_id == stream && e.stream_type == "t"));
    assert!(all.windows(2).all(|w| w[0].position < w[1].position));
    let rest = s.events.load("t", &stream, 2).await.expect("load");
    assert_eq!(rest.iter().map(|e| e.version).collect::<Vec<_>>(), [3]);
    assert!(s
        .events
        .load("t", "nobody", 0)
        .await
        .expect("load")
        .is_empty());
    assert!(s
        .events
        .load("other", &stream, 0)
        .await
        .expect("load")
        .is_empty());
}

/// An append at a version the stream is no longer at is a conflict and writes nothing; so is
/// creating a stream that exists.
pub async fn a_stale_append_is_a_conflict_and_writes_nothing(s: &EventStoreUnderTest) {
    let stream = unique("s");
    append(s, &stream, 0, &[event(1)]).await.expect("append");
    // Behind and ahead of the stream, one event (a backend may append it in one statement)
    // and several.
    for expected in [0, 2, 5] {
        for events in [&[event(9)][..], &[event(9), event(10)][..]] {
            let error = append(s, &stream, expected, events)
                .await
                .expect_err("stale");
            assert!(
                matches!(error, Error::Conflict { .. }),
                "{expected}, {} events: {error:?}",
                events.len()
            );
        }
    }
    let all = s.events.load("t", &stream, 0).await.expect("load");
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(read_settled(s, 0, 100).await.len(), 1);
}

/// What a rolled-back unit of work appended is not there, and does not use up positions that
/// a reader could wait for.
pub async fn a_rolled_back_append_leaves_nothing(s: &EventStoreUnderTest) {
    let stream = unique("s");
    let mut uow = bus(s).unit_of_work().await.expect("begin");
    s.events
        .append(&mut uow, "t", &stream, 0, &[event(1)])
        .await
        .expect("append");
    let inside = s
        .events
        .load_in(&mut uow, "t", &stream, 0)
        .await
        .expect("load_in");
    assert_eq!(inside.len(), 1, "the unit of work sees its own append");
    uow.rollback().await.expect("rollback");
    assert!(s
        .events
        .load("t", &stream, 0)
        .await
        .expect("load")
        .is_empty());
    assert!(read_settled(s, 0, 10).await.is_empty());
    assert_eq!(s.events.last_position().await.expect("last position"), 0);
    assert_eq!(append(s, &stream, 0, &[event(2)]).await.expect("append"), 1);
}

/// `read_all` answers every stream's events in position order, after a position, up to a
/// limit; `last_position` is the last of them.
pub async fn read_all_follows_positions_across_streams(s: &EventStoreUnderTest) {
    let (a, b) = (unique("a"), unique("b"));
    append(s, &a, 0, &[event(1)]).await.expect("append");
    append(s, &b, 0, &[event(2), event(3)])
        .await
        .expect("append");
    append(s, &a, 1, &[event(4)]).await.expect("append");
    let all = read_settled(s, 0, 100).await;
    let order: Vec<(String, u64)> = all
        .iter()
        .map(|e| (e.stream_id.clone(), e.version))
        .collect();
    assert_eq!(
        order,
        [
            (a.clone(), 1),
            (b.clone(), 1),
            (b.clone(), 2),
            (a.clone(), 2)
        ]
    );
    assert!(all.windows(2).all(|w| w[0].position < w[1].position));
    assert_eq!(
        s.events.last_position().await.expect("last position"),
        all[3].position
    );
    let page = read_settled(s, all[0].position, 2).await;
    assert_eq!(page, all[1..3].to_vec());
    let tail = read_settled(s, all[3].position, 10).await;
    assert!(tail.is_empty());
}

/// A reader following positions never skips an event committed late: while a unit of work
/// that has appended stays open, another appends and commits and a reader passes by; once the
/// first commits, reading on from where the reader got to answers the first's event too. Each
/// event is read once, in increasing positions.
pub async fn a_reader_never_skips_an_event_committed_late(s: &EventStoreUnderTest) {
    let (early, late) = (unique("early"), unique("late"));
    let mut first = bus(s).unit_of_work().await.expect("begin");
    s.events
        .append(&mut first, "t", &early, 0, &[event(1)])
        .await
        .expect("append");
    let mut read = Vec::new();
    if s.concurrent_appends {
        append(s, &late, 0, &[event(2)]).await.expect("append");
        read = s.events.read_all(0, 100).await.expect("read_all");
        first.commit().await.expect("commit");
    } else {
        // Writers take turns: the second append would wait for this commit.
        first.commit().await.expect("commit");
        append(s, &late, 0, &[event(2)]).await.expect("append");
    }
    let after = read.last().map_or(0, |e| e.position);
    read.extend(read_settled(s, after, 100).await);
    let mut streams: Vec<&str> = read.iter().map(|e| e.stream_id.as_str()).collect();
    streams.sort_unstable();
    let mut expected = [early.as_str(), late.as_str()];
    expected.sort_unstable();
    assert_eq!(streams, expected, "each event read once: {read:?}");
    assert!(
        read.windows(2).all(|w| w[0].position < w[1].position),
        "{read:?}"
    );
}

/// Eight writers appending to one stream at once, each retrying on a conflict, get every
/// version appended exactly once: the stream holds each writer's events, numbered 1…n with no
/// gap and no repeat.
pub async fn eight_writers_on_one_stream_append_each_version_once(s: &EventStoreUnderTest) {
    const WRITERS: i64 = 8;
    const EACH: i64 = 5;
    let stream = unique("s");
    let mut tasks = Vec::new();
    for writer in 0..WRITERS {
        let (s, stream) = (s.clone(), stream.clone());
        tasks.push(tokio::spawn(async move {
            let mut conflicts = 0;
            for n in 0..EACH {
                loop {
                    let mut uow = bus(&s).unit_of_work().await.expect("begin");
                    let current = s
                        .events
                        .load_in(&mut uow, "t", &stream, 0)
                        .await
                        .expect("load_in")
                        .len() as u64;
                    let appended = s
                        .events
                        .append(&mut uow, "t", &stream, current, &[event(writer * 100 + n)])
                        .await;
                    match appended {
                        Ok(_) => match uow.commit().await {
                            Ok(_) => break,
                            Err(Error::Conflict { .. }) => conflicts += 1,
                            Err(error) => panic!("commit: {error}"),
                        },
                        Err(Error::Conflict { .. }) => {
                            conflicts += 1;
                            uow.rollback().await.expect("rollback");
                        }
                        Err(error) => panic!("append: {error}"),
                    }
                    assert!(conflicts < 10_000, "a writer never got through");
                }
            }
        }));
    }
    for task in tasks {
        task.await.expect("writer");
    }
    let all = s.events.load("t", &stream, 0).await.expect("load");
    let versions: Vec<u64> = all.iter().map(|e| e.version).collect();
    assert_eq!(versions, (1..=(WRITERS * EACH) as u64).collect::<Vec<_>>());
    let mut written: Vec<i64> = all
        .iter()
        .map(|e| e.data["n"].as_i64().expect("n"))
        .collect();
    written.sort_unstable();
    let mut expected: Vec<i64> = (0..WRITERS)
        .flat_map(|w| (0..EACH).map(move |n| w * 100 + n))
        .collect();
    expected.sort_unstable();
    assert_eq!(written, expected, "each writer's events once");
    let positions: Vec<u64> = read_settled(s, 0, 1_000)
        .await
        .iter()
        .map(|e| e.position)
        .collect();
    assert_eq!(positions.len(), (WRITERS * EACH) as usize);
    assert!(positions.windows(2).all(|w| w[0] < w[1]));
}

/// The latest snapshot of a stream is kept; an older one saved after it is ignored; a
/// rolled-back one is not there.
pub async fn the_latest_snapshot_is_kept(s: &EventStoreUnderTest) {
    let stream = unique("s");
    let snapshot = |version: u64| Snapshot {
        version,
        state: serde_json::json!({ "at": version }),
    };
    for version in [3, 6, 4] {
        let mut uow = bus(s).unit_of_work().await.expect("begin");
        s.events
            .save_snapshot(&mut uow, "t", &stream, &snapshot(version))
            .await
            .expect("save");
        uow.commit().await.expect("commit");
    }
    assert_eq!(
        s.events.load_snapshot("t", &stream).await.expect("load"),
        Some(snapshot(6))
    );
    let mut uow = bus(s).unit_of_work().await.expect("begin");
    s.events
        .save_snapshot(&mut uow, "t", &stream, &snapshot(9))
        .await
        .expect("save");
    uow.rollback().await.expect("rollback");
    assert_eq!(
        s.events.load_snapshot("t", &stream).await.expect("load"),
        Some(snapshot(6))
    );
    assert_eq!(
        s.events.load_snapshot("t", "nobody").await.expect("load"),
        None
    );
}

/// Through the repository: a ledger saved in several units of work loads the same from a
/// snapshot (taken every 3 events) as from a full replay, at the same version; a save from a
/// stale load is a conflict.
pub async fn a_snapshot_loads_the_state_a_replay_gives(s: &EventStoreUnderTest) {
    let bus = bus(s);
    let plain = EventSourcedRepository::<Ledger>::new(Arc::clone(&s.events));
    let snapshotting =
        EventSourcedRepository::<Ledger>::new(Arc::clone(&s.events)).snapshot_every(3);
    let id = unique("ledger");
    let mut ledger = Ledger::empty(&id);
    ledger.raise(LedgerChanged {
        change: LedgerChange::Opened,
        metadata: EventMetadata::now(),
    });
    let mut uow = bus.unit_of_work().await.expect("begin");
    snapshotting.add(&mut uow, &mut ledger).await.expect("add");
    uow.commit().await.expect("commit");
    for amounts in [[5, -2], [7, 1], [3, 3], [-4, 10], [2, 2]] {
        let mut uow = bus.unit_of_work().await.expect("begin");
        let mut ledger = snapshotting
            .get_for_update(&mut uow, &id)
            .await
            .expect("load")
            .expect("exists");
        for amount in amounts {
            ledger.post(amount);
        }
        snapshotting
            .update(&mut uow, &mut ledger)
            .await
            .expect("update");
        uow.commit().await.expect("commit");
    }
    let snapshot = s
        .events
        .load_snapshot(Ledger::TYPE, &id)
        .await
        .expect("load")
        .expect("a snapshot was taken");
    assert_eq!(snapshot.version, 9, "the last multiple of 3 crossed");
    let replayed = plain.get(&id).await.expect("get").expect("exists");
    let from_snapshot = snapshotting.get(&id).await.expect("get").expect("exists");
    assert_eq!(
        (
            &from_snapshot.id,
            from_snapshot.balance,
            &from_snapshot.postings,
            from_snapshot.version()
        ),
        (
            &replayed.id,
            replayed.balance,
            &replayed.postings,
            replayed.version()
        )
    );
    assert_eq!(replayed.version(), 11);
    assert_eq!(replayed.balance, 27);
    assert_eq!(replayed.postings, [5, -2, 7, 1, 3, 3, -4, 10, 2, 2]);

    // Two loads of version 11; the second save is a conflict and loses nothing.
    let mut first = plain.get(&id).await.expect("get").expect("exists");
    let mut second = plain.get(&id).await.expect("get").expect("exists");
    first.post(1);
    second.post(100);
    let mut uow = bus.unit_of_work().await.expect("begin");
    plain.update(&mut uow, &mut first).await.expect("first");
    uow.commit().await.expect("commit");
    let mut uow = bus.unit_of_work().await.expect("begin");
    let error = plain
        .update(&mut uow, &mut second)
        .await
        .expect_err("stale");
    assert!(matches!(error, Error::Conflict { .. }), "{error:?}");
    uow.rollback().await.expect("rollback");
    let now = plain.get(&id).await.expect("get").expect("exists");
    assert_eq!((now.version(), now.balance), (12, 28));
}

/// Runs every check, each on a fresh backend.
pub async fn run_all<F, Fut>(fresh: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = EventStoreUnderTest>,
{
    appended_events_read_back_in_order(&fresh().await).await;
    a_stale_append_is_a_conflict_and_writes_nothing(&fresh().await).await;
    a_rolled_back_append_leaves_nothing(&fresh().await).await;
    read_all_follows_positions_across_streams(&fresh().await).await;
    a_reader_never_skips_an_event_committed_late(&fresh().await).await;
    eight_writers_on_one_stream_append_each_version_once(&fresh().await).await;
    the_latest_snapshot_is_kept(&fresh().await).await;
    a_snapshot_loads_the_state_a_replay_gives(&fresh().await).await;
}
