//! The envelope as message properties.

use std::collections::{BTreeMap, HashMap};

use seedwork::messaging::Envelope;
use serde_json::Value;

use super::Codec;
use crate::error::CodecError;

/// The envelope's property names, in the Python `Mensaje` field order.
pub(crate) const ENVELOPE_PROPERTIES: [&str; 7] = [
    "id",
    "time",
    "ingestion",
    "specversion",
    "type",
    "datacontenttype",
    "service_name",
];

/// The message's properties with the envelope's added (the envelope wins a name clash).
pub(crate) fn join(
    envelope: &Envelope<Value>,
    extra: &BTreeMap<String, String>,
) -> HashMap<String, String> {
    let mut properties = HashMap::with_capacity(extra.len() + ENVELOPE_PROPERTIES.len());
    properties.extend(extra.iter().map(|(k, v)| (k.clone(), v.clone())));
    let values = [
        envelope.id.clone(),
        envelope.time.to_string(),
        envelope.ingestion.to_string(),
        envelope.specversion.clone(),
        envelope.message_type.clone(),
        envelope.datacontenttype.clone(),
        envelope.service_name.clone(),
    ];
    for (name, value) in ENVELOPE_PROPERTIES.iter().zip(values) {
        properties.insert((*name).to_string(), value);
    }
    properties
}

/// What to assume for a message that arrives without envelope properties.
pub(crate) struct Defaults<'a> {
    pub(crate) message_type: Option<&'a str>,
    pub(crate) version: &'a str,
    pub(crate) codec: Codec,
    pub(crate) producer_name: &'a str,
    pub(crate) publish_time: u64,
    pub(crate) event_time: Option<u64>,
    pub(crate) pulsar_id: &'a str,
    pub(crate) topic: &'a str,
}

/// Takes the envelope out of the properties, filling gaps from `defaults`; returns it with the
/// remaining properties.
pub(crate) fn split(
    mut properties: BTreeMap<String, String>,
    data: Value,
    defaults: Defaults<'_>,
) -> Result<(Envelope<Value>, BTreeMap<String, String>), CodecError> {
    let mut take = |name: &str| properties.remove(name);
    let millis = |value: Option<String>, property: &'static str| {
        value
            .map(|value| {
                value
                    .parse::<i64>()
                    .map_err(|source| CodecError::Timestamp {
                        property,
                        value,
                        source,
                    })
            })
            .transpose()
    };
    let published = i64::try_from(defaults.publish_time).unwrap_or(i64::MAX);
    let id = take("id").unwrap_or_else(|| {
        // A foreign producer's message: its broker position is stable across redeliveries,
        // so the inbox still recognises a duplicate.
        format!("pulsar:{}:{}", defaults.topic, defaults.pulsar_id)
    });
    let time = millis(take("time"), "time")?
        .or_else(|| defaults.event_time.and_then(|t| i64::try_from(t).ok()))
        .unwrap_or(published);
    let ingestion = millis(take("ingestion"), "ingestion")?.unwrap_or(published);
    let specversion = take("specversion").unwrap_or_else(|| defaults.version.to_string());
    let message_type = match take("type") {
        Some(t) => t,
        None => defaults
            .message_type
            .map(str::to_string)
            .ok_or(CodecError::MissingType)?,
    };
    let datacontenttype = take("datacontenttype").unwrap_or_else(|| match defaults.codec {
        Codec::Avro => "avro/binary".into(),
        Codec::Json => "application/json".into(),
    });
    let service_name = take("service_name").unwrap_or_else(|| defaults.producer_name.to_string());
    let envelope = Envelope {
        id,
        time,
        ingestion,
        specversion,
        message_type,
        datacontenttype,
        service_name,
        data,
    };
    Ok((envelope, properties))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults<'a>() -> Defaults<'a> {
        Defaults {
            message_type: Some("ComandoCrearReserva"),
            version: "v1",
            codec: Codec::Avro,
            producer_name: "standalone-0-7",
            publish_time: 1_700_000_000_000,
            event_time: None,
            pulsar_id: "12:3:-1",
            topic: "comandos-reserva",
        }
    }

    #[test]
    fn the_envelope_round_trips_through_properties() {
        let envelope = Envelope::new("T", "v2", "svc", serde_json::json!({"a": 1}));
        let mut extra = BTreeMap::new();
        extra.insert("correlation_id".to_string(), "c-1".to_string());
        let joined: BTreeMap<String, String> = join(&envelope, &extra).into_iter().collect();
        let (back, rest) = split(joined, envelope.data.clone(), defaults()).unwrap();
        assert_eq!(back, envelope);
        assert_eq!(rest, extra);
    }

    #[test]
    fn a_message_without_envelope_gets_one_from_the_topic_and_the_broker() {
        let (envelope, rest) = split(BTreeMap::new(), Value::Null, defaults()).unwrap();
        assert_eq!(envelope.message_type, "ComandoCrearReserva");
        assert_eq!(envelope.id, "pulsar:comandos-reserva:12:3:-1");
        assert_eq!(envelope.time, 1_700_000_000_000);
        assert_eq!(envelope.service_name, "standalone-0-7");
        assert!(rest.is_empty());
    }

    #[test]
    fn bad_or_missing_envelope_values_are_errors() {
        let mut properties = BTreeMap::new();
        properties.insert("time".to_string(), "noon".to_string());
        assert!(matches!(
            split(properties, Value::Null, defaults()),
            Err(CodecError::Timestamp { property: "time", ref value, .. }) if value == "noon"
        ));
        let no_type = Defaults {
            message_type: None,
            ..defaults()
        };
        assert!(matches!(
            split(BTreeMap::new(), Value::Null, no_type),
            Err(CodecError::MissingType)
        ));
    }
}
