//! The aggregate both sides run: an account whose only event is a deposit.
//!
//! The two frameworks model it the same way: one command (`Deposit`), one event type
//! (`Deposited`: amount, balance after it, a memo), folded into a balance and a count of
//! deposits, stored as JSON. Only the framework plumbing differs: seedwork's event carries its
//! `EventMetadata` (event id and time) in the payload; cqrs-es keeps its metadata map apart.

use std::fmt;

/// The one command: deposit `amount`, noted as `memo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deposit {
    /// The amount; must be positive.
    pub amount: i64,
    /// A note stored with the event.
    pub memo: String,
}

impl Deposit {
    /// The `n`-th deposit of an account (0 opens it).
    pub fn nth(n: u64) -> Self {
        Deposit {
            amount: n as i64 + 1,
            memo: format!("deposit {n}"),
        }
    }
}

/// A refused command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused(pub String);

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "refused: {}", self.0)
    }
}

impl std::error::Error for Refused {}

/// The business rule both sides check before raising the event.
fn check(command: &Deposit) -> Result<(), Refused> {
    if command.amount > 0 {
        Ok(())
    } else {
        Err(Refused(format!(
            "amount {} is not positive",
            command.amount
        )))
    }
}

/// The account as seedwork models it: an [`EventSourced`](seedwork::eventsourcing::EventSourced)
/// aggregate root.
pub mod seedwork_side {
    use serde::{Deserialize, Serialize};

    use seedwork::domain::{AggregateState, EventMetadata};
    use seedwork::eventsourcing::EventSourced;

    use super::{check, Deposit, Refused};

    /// The account's one event.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, seedwork::DomainEvent)]
    #[event(name = "Deposited")]
    pub struct Deposited {
        /// The amount deposited.
        pub amount: i64,
        /// The balance after it.
        pub balance: i64,
        /// The command's note.
        pub memo: String,
        /// Event id and time.
        pub metadata: EventMetadata,
    }

    /// The account.
    #[derive(Debug, Clone, Default, Serialize, Deserialize, seedwork::AggregateRoot)]
    #[aggregate(name = "bench_account")]
    pub struct Account {
        /// The id.
        pub id: String,
        /// The balance.
        pub balance: i64,
        /// How many deposits it has had.
        pub deposits: u64,
        /// Version and pending events.
        #[serde(skip)]
        pub state: AggregateState,
    }

    impl Account {
        /// Handles a deposit: checks it, then raises `Deposited`.
        pub fn deposit(&mut self, command: Deposit) -> Result<(), Refused> {
            check(&command)?;
            self.raise(Deposited {
                amount: command.amount,
                balance: self.balance + command.amount,
                memo: command.memo,
                metadata: EventMetadata::now(),
            });
            Ok(())
        }
    }

    impl EventSourced for Account {
        type Event = Deposited;

        fn empty(id: &String) -> Self {
            Account {
                id: id.clone(),
                ..Account::default()
            }
        }

        fn apply(&mut self, event: &Deposited) {
            self.balance = event.balance;
            self.deposits += 1;
        }
    }
}

/// The account as cqrs-es models it: a `cqrs_es::Aggregate`.
pub mod cqrs_side {
    use cqrs_es::event_sink::EventSink;
    use cqrs_es::Aggregate;
    use serde::{Deserialize, Serialize};

    use super::{check, Deposit, Refused};

    /// The account's one event.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct Deposited {
        /// The amount deposited.
        pub amount: i64,
        /// The balance after it.
        pub balance: i64,
        /// The command's note.
        pub memo: String,
    }

    impl cqrs_es::DomainEvent for Deposited {
        fn event_type(&self) -> String {
            "Deposited".to_string()
        }

        fn event_version(&self) -> String {
            "1.0".to_string()
        }
    }

    /// The account (cqrs-es keeps the id in its aggregate context).
    #[derive(Debug, Clone, Default, Serialize, Deserialize)]
    pub struct Account {
        /// The balance.
        pub balance: i64,
        /// How many deposits it has had.
        pub deposits: u64,
    }

    impl Aggregate for Account {
        const TYPE: &'static str = "bench_account";
        type Command = Deposit;
        type Event = Deposited;
        type Error = Refused;
        type Services = ();

        async fn handle(
            &mut self,
            command: Deposit,
            _services: &(),
            sink: &EventSink<Self>,
        ) -> Result<(), Refused> {
            check(&command)?;
            let event = Deposited {
                amount: command.amount,
                balance: self.balance + command.amount,
                memo: command.memo,
            };
            sink.write(event, self).await;
            Ok(())
        }

        fn apply(&mut self, event: Deposited) {
            self.balance = event.balance;
            self.deposits += 1;
        }
    }
}
