//! Avro datums from and to the JSON values seedwork messages carry.
//!
//! A [`Message`](seedwork::messaging::Message) holds its payload as JSON; on an Avro topic the
//! adapter writes it as a plain Avro datum (no container header, as the Python client does)
//! under the topic's schema, walking the schema and the JSON side by side. Decoding goes the
//! other way, resolving the writer's schema (the version the producer registered) against the
//! reader's, so a field one side added with a `null` default reads as `null` on the other.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};

use apache_avro::schema::{Name, ResolvedSchema, Schema};
use apache_avro::types::Value as Avro;
use serde_json::{Map, Number, Value};

use crate::error::CodecError;

mod write;

use write::Path;

/// The bytes a datum buffer starts with: enough for a typical event, grown when needed.
const DATUM_CAPACITY: usize = 128;

/// A parsed Avro schema, with the named types it defines (for `Ref`s).
#[derive(Debug, Clone)]
pub(crate) struct AvroSchema {
    schema: Schema,
    names: HashMap<Name, Schema>,
    text: String,
    /// A hash of `text`, computed once: schemas are compared and cached per message.
    fingerprint: u64,
}

impl AvroSchema {
    /// Parses the JSON text of a schema.
    pub(crate) fn parse(text: &str) -> Result<AvroSchema, CodecError> {
        let schema = Schema::parse_str(text).map_err(CodecError::SchemaParse)?;
        let names = ResolvedSchema::try_from(&schema)
            .map_err(CodecError::SchemaResolve)?
            .get_names()
            .iter()
            .map(|(name, schema)| (name.clone(), (*schema).clone()))
            .collect();
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        text.hash(&mut hasher);
        Ok(AvroSchema {
            schema,
            names,
            text: text.to_string(),
            fingerprint: hasher.finish(),
        })
    }

    /// The schema's JSON text, as given.
    pub(crate) fn text(&self) -> &str {
        &self.text
    }

    /// A 64-bit hash of the schema's text: equal for the same text.
    pub(crate) fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    /// The parsed schema.
    pub(crate) fn schema(&self) -> &Schema {
        &self.schema
    }

    /// Writes `json` as a datum of this schema.
    pub(crate) fn encode(&self, json: &Value) -> Result<Vec<u8>, CodecError> {
        let mut out = Vec::with_capacity(DATUM_CAPACITY);
        self.write(&self.schema, json, Path::Root(""), &mut out)?;
        Ok(out)
    }

    /// Writes the wire record `{"data": data}` (every other field of the record null), as
    /// [`encode`](Self::encode) would, without building that record first.
    pub(crate) fn encode_data(&self, data: &Value) -> Result<Vec<u8>, CodecError> {
        self.encode_record_with_data(data, |schema, path, out| {
            self.write(schema, data, path, out)
        })
    }

    /// Writes a wire record whose field `data` is a union, with `data` as its branch number
    /// `branch`: on a topic carrying several message types the branch follows the message's
    /// type, never a guess from the value's shape (two records with nullable fields would both
    /// accept it).
    pub(crate) fn encode_branch(&self, data: &Value, branch: usize) -> Result<Vec<u8>, CodecError> {
        self.encode_record_with_data(data, |schema, _, out| {
            let variant = match schema {
                Schema::Union(union) => union.variants().get(branch),
                _ => None,
            }
            .ok_or_else(|| CodecError::NoUnionBranch {
                path: ".data".into(),
            })?;
            write::long(branch as i64, out);
            self.write(variant, data, Path::Root(".data"), out)
        })
    }

    /// Writes this schema's record with its `data` field written by `data_field` (given the
    /// field's schema and path) and its other fields null.
    fn encode_record_with_data(
        &self,
        data: &Value,
        data_field: impl Fn(&Schema, Path<'_>, &mut Vec<u8>) -> Result<(), CodecError>,
    ) -> Result<Vec<u8>, CodecError> {
        let Schema::Record(record) = &self.schema else {
            return self.encode(&serde_json::json!({ "data": data }));
        };
        let mut out = Vec::with_capacity(DATUM_CAPACITY);
        let root = Path::Root("");
        let mut wrote_data = false;
        for field in &record.fields {
            let path = Path::Field(&root, &field.name);
            if field.name == "data" {
                data_field(&field.schema, path, &mut out)?;
                wrote_data = true;
            } else {
                self.write(&field.schema, &Value::Null, path, &mut out)?;
            }
        }
        if !wrote_data {
            return Err(CodecError::UnknownField {
                path: ".data".into(),
                record: record.name.to_string(),
            });
        }
        Ok(out)
    }

    /// Reads a datum written with this schema, resolved into `reader` when given.
    #[cfg(test)]
    pub(crate) fn decode(
        &self,
        bytes: &[u8],
        reader: Option<&AvroSchema>,
    ) -> Result<Value, CodecError> {
        self.decode_with_branch(bytes, reader)
            .map(|(value, _)| value)
    }

    /// [`decode`](Self::decode), with the union branch the record's `data` field took (in the
    /// reader's schema when there is one), from which a union topic knows the message type.
    pub(crate) fn decode_with_branch(
        &self,
        bytes: &[u8],
        reader: Option<&AvroSchema>,
    ) -> Result<(Value, Option<usize>), CodecError> {
        if bytes.is_empty() {
            // apache-avro reads an empty input as a null union; no writer produces that.
            return Err(CodecError::EmptyPayload);
        }
        let mut input = bytes;
        let value =
            apache_avro::from_avro_datum(&self.schema, &mut input, reader.map(AvroSchema::schema))
                .map_err(CodecError::AvroRead)?;
        if !input.is_empty() {
            return Err(CodecError::TrailingBytes(input.len()));
        }
        let branch = match &value {
            Avro::Record(fields) => fields.iter().find_map(|(name, value)| match value {
                Avro::Union(index, _) if name == "data" => Some(*index as usize),
                _ => None,
            }),
            _ => None,
        };
        Ok((from_avro(value)?, branch))
    }

    fn named(&self, name: &Name) -> Result<&Schema, CodecError> {
        self.names
            .get(name)
            .or_else(|| {
                self.names
                    .iter()
                    .find(|(known, _)| known.name == name.name)
                    .map(|(_, schema)| schema)
            })
            .ok_or_else(|| CodecError::UnknownName(name.to_string()))
    }
}

fn kind_of(json: &Value) -> &'static str {
    match json {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// An Avro value as JSON: unions unwrapped, records and maps as objects.
fn from_avro(value: Avro) -> Result<Value, CodecError> {
    Ok(match value {
        Avro::Null => Value::Null,
        Avro::Boolean(b) => Value::Bool(b),
        Avro::Int(n) | Avro::Date(n) | Avro::TimeMillis(n) => Value::from(n),
        // What a chrono timestamp deserializes from (the derive maps it to timestamp-millis).
        Avro::TimestampMillis(n) => match chrono::DateTime::from_timestamp_millis(n) {
            Some(time) => Value::String(time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
            None => Value::from(n),
        },
        Avro::Long(n)
        | Avro::TimeMicros(n)
        | Avro::TimestampMicros(n)
        | Avro::TimestampNanos(n)
        | Avro::LocalTimestampMillis(n)
        | Avro::LocalTimestampMicros(n)
        | Avro::LocalTimestampNanos(n) => Value::from(n),
        Avro::Float(x) => number(f64::from(x))?,
        Avro::Double(x) => number(x)?,
        Avro::String(s) | Avro::Enum(_, s) => Value::String(s),
        Avro::Uuid(uuid) => Value::String(uuid.to_string()),
        Avro::Bytes(bytes) | Avro::Fixed(_, bytes) => {
            Value::Array(bytes.into_iter().map(Value::from).collect())
        }
        Avro::Union(_, inner) => from_avro(*inner)?,
        Avro::Array(items) => {
            Value::Array(items.into_iter().map(from_avro).collect::<Result<_, _>>()?)
        }
        Avro::Map(entries) => Value::Object(
            entries
                .into_iter()
                .map(|(k, v)| Ok((k, from_avro(v)?)))
                .collect::<Result<Map<_, _>, CodecError>>()?,
        ),
        Avro::Record(fields) => Value::Object(
            fields
                .into_iter()
                .map(|(k, v)| Ok((k, from_avro(v)?)))
                .collect::<Result<Map<_, _>, CodecError>>()?,
        ),
        other => return Err(CodecError::UnsupportedValue(format!("{other:?}"))),
    })
}

fn number(x: f64) -> Result<Value, CodecError> {
    Number::from_f64(x)
        .map(Value::Number)
        .ok_or(CodecError::NotANumber(x))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const PYTHON_EVENT: &str = r#"{"type":"record","name":"EventoReservaCreada","fields":[{"name":"data","type":["null",{"type":"record","name":"ReservaCreadaPayload","fields":[{"name":"id_reserva","type":["null","string"]},{"name":"id_cliente","type":["null","string"]},{"name":"estado","type":["null","string"]},{"name":"fecha_creacion","type":["null","long"]}]}]}]}"#;

    fn extended() -> AvroSchema {
        let text = PYTHON_EVENT.replace(
            r#"{"name":"fecha_creacion","type":["null","long"]}"#,
            r#"{"name":"fecha_creacion","type":["null","long"]},{"name":"fecha_actualizacion","type":["null","long"],"default":null}"#,
        );
        AvroSchema::parse(&text).unwrap()
    }

    #[test]
    fn round_trips_a_record_with_nullable_fields() {
        let schema = AvroSchema::parse(PYTHON_EVENT).unwrap();
        let data = json!({"data": {"id_reserva": "r1", "id_cliente": "c1", "estado": "Pendiente", "fecha_creacion": 1_700_000_000_000i64}});
        let bytes = schema.encode(&data).unwrap();
        assert_eq!(schema.decode(&bytes, None).unwrap(), data);
    }

    #[test]
    fn the_datum_is_the_plain_avro_encoding() {
        // Union index 1 (zig-zag 2), then the record: union index 1 + "r" for id_reserva,
        // index 0 (null) for the other three.
        let schema = AvroSchema::parse(PYTHON_EVENT).unwrap();
        let bytes = schema
            .encode(&json!({"data": {"id_reserva": "r"}}))
            .unwrap();
        assert_eq!(bytes, vec![2, 2, 2, b'r', 0, 0, 0]);
    }

    #[test]
    fn absent_nullable_fields_are_null_and_unknown_fields_are_refused() {
        let schema = AvroSchema::parse(PYTHON_EVENT).unwrap();
        let bytes = schema
            .encode(&json!({"data": {"id_reserva": "r"}}))
            .unwrap();
        assert_eq!(
            schema.decode(&bytes, None).unwrap()["data"]["estado"],
            Value::Null
        );
        let error = schema
            .encode(&json!({"data": {"id_reserva": "r", "surprise": 1}}))
            .unwrap_err();
        assert!(
            matches!(&error, CodecError::UnknownField { path, record }
                if path == ".data.surprise" && record == "ReservaCreadaPayload"),
            "{error:?}"
        );
        assert!(error.to_string().contains("surprise"), "{error}");
    }

    #[test]
    fn type_mismatches_name_the_path() {
        let schema = AvroSchema::parse(PYTHON_EVENT).unwrap();
        let error = schema
            .encode(&json!({"data": {"fecha_creacion": "yesterday"}}))
            .unwrap_err();
        assert!(
            matches!(&error, CodecError::Mismatch { path, found, .. }
                if path == ".data.fecha_creacion" && *found == "a string"),
            "{error:?}"
        );
        assert!(
            error.to_string().contains(".data.fecha_creacion"),
            "{error}"
        );
    }

    #[test]
    fn old_and_new_versions_read_each_other() {
        let old = AvroSchema::parse(PYTHON_EVENT).unwrap();
        let new = extended();
        let from_old = old.encode(&json!({"data": {"id_reserva": "r"}})).unwrap();
        let read_new = old.decode(&from_old, Some(&new)).unwrap();
        assert_eq!(read_new["data"]["fecha_actualizacion"], Value::Null);
        let from_new = new
            .encode(&json!({"data": {"id_reserva": "r", "fecha_actualizacion": 5}}))
            .unwrap();
        let read_old = new.decode(&from_new, Some(&old)).unwrap();
        assert_eq!(read_old["data"]["id_reserva"], "r");
        assert!(read_old["data"].get("fecha_actualizacion").is_none());
        // Read with the wrong writer schema, leftovers are reported rather than ignored.
        assert!(old.decode(&from_new, None).is_err());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let schema = AvroSchema::parse(PYTHON_EVENT).unwrap();
        for bytes in [
            &b""[..],
            &b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"[..],
            b"not avro at all",
        ] {
            let decoded = schema.decode(bytes, None);
            assert!(decoded.is_err(), "{bytes:?} decoded as {decoded:?}");
        }
    }

    #[test]
    fn named_types_are_followed_through_refs() {
        let text = r#"{"type":"record","name":"Leg","fields":[
            {"name":"origen","type":["null",{"type":"record","name":"Aeropuerto","fields":[{"name":"codigo","type":["null","string"]}]}]},
            {"name":"destino","type":["null","Aeropuerto"]}]}"#;
        let schema = AvroSchema::parse(text).unwrap();
        let leg = json!({"origen": {"codigo": "BOG"}, "destino": {"codigo": "MDE"}});
        let bytes = schema.encode(&leg).unwrap();
        assert_eq!(schema.decode(&bytes, None).unwrap(), leg);
    }
}
