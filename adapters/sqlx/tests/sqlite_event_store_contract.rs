//! The event store contract suite on SQLite (a fresh database file per test).

mod support;

seedwork::event_store_contract_tests!(fresh = support::sqlite::fresh_events());
