//! seedwork's publisher/consumer contract against a real Pulsar broker.
//!
//! Start one with `scripts/services up pulsar`; `SEEDWORK_PULSAR_URL` overrides the default
//! `pulsar://127.0.0.1:6650`. Every check uses fresh topics, so the broker can be shared.

mod support;

/// Payloads as schemaless JSON (the default for undeclared topics).
mod json {
    seedwork::broker_contract_tests!(
        #[ignore = "needs Pulsar: scripts/services up pulsar"]
        broker = crate::support::broker_json()
    );
}

/// Payloads as Avro datums, the schema registered by each producer.
mod avro {
    seedwork::broker_contract_tests!(
        #[ignore = "needs Pulsar: scripts/services up pulsar"]
        broker = crate::support::broker_avro()
    );
}
