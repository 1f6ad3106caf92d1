//! The saga store contract suite on SQLite (a fresh database file per test).

mod support;

seedwork::saga_contract_tests!(fresh = support::sqlite::fresh_sagas());
