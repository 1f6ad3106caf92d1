//! The event store contract suite on PostgreSQL (a fresh schema per test). Needs a server:
//! `scripts/services up`, or `SEEDWORK_POSTGRES_URL`.

mod support;

seedwork::event_store_contract_tests!(
    #[ignore = "needs PostgreSQL: scripts/services up"]
    fresh = support::postgres::fresh_events()
);
