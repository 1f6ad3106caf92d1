//! The seedwork store contract suite on SQLite (a fresh database file per test).

mod support;

seedwork::store_contract_tests!(fresh = support::sqlite::fresh());
