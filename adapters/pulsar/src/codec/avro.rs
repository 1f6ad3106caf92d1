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
        let value = self.to_avro(&self.schema, json, "")?;
        apache_avro::to_avro_datum(&self.schema, value).map_err(CodecError::AvroWrite)
    }

    /// Writes a wire record whose only field, `data`, is a union, with `data` as its branch
    /// number `branch`: on a topic carrying several message types the branch follows the
    /// message's type, never a guess from the value's shape (two records with nullable fields
    /// would both accept it).
    pub(crate) fn encode_branch(&self, data: &Value, branch: usize) -> Result<Vec<u8>, CodecError> {
        let variant = match &self.schema {
            Schema::Record(record) => record
                .fields
                .iter()
                .find(|field| field.name == "data")
                .and_then(|field| match &field.schema {
                    Schema::Union(union) => union.variants().get(branch),
                    _ => None,
                }),
            _ => None,
        }
        .ok_or_else(|| CodecError::NoUnionBranch {
            path: ".data".into(),
        })?;
        let value = self.to_avro(variant, data, ".data")?;
        let record = Avro::Record(vec![(
            "data".to_string(),
            Avro::Union(branch as u32, Box::new(value)),
        )]);
        apache_avro::to_avro_datum(&self.schema, record).map_err(CodecError::AvroWrite)
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

    fn to_avro(&self, schema: &Schema, json: &Value, path: &str) -> Result<Avro, CodecError> {
        let mismatch = |expected: &str| {
            Err(CodecError::Mismatch {
                path: display_path(path),
                expected: expected.to_string(),
                found: kind_of(json),
            })
        };
        match schema {
            Schema::Null => match json {
                Value::Null => Ok(Avro::Null),
                _ => mismatch("null"),
            },
            Schema::Boolean => match json {
                Value::Bool(b) => Ok(Avro::Boolean(*b)),
                _ => mismatch("a boolean"),
            },
            Schema::Int | Schema::Date | Schema::TimeMillis => {
                match json.as_i64().and_then(|n| i32::try_from(n).ok()) {
                    Some(n) => Ok(match schema {
                        Schema::Date => Avro::Date(n),
                        Schema::TimeMillis => Avro::TimeMillis(n),
                        _ => Avro::Int(n),
                    }),
                    None => mismatch("a 32-bit integer"),
                }
            }
            Schema::Long
            | Schema::TimeMicros
            | Schema::TimestampMillis
            | Schema::TimestampMicros
            | Schema::LocalTimestampMillis
            | Schema::LocalTimestampMicros => match json.as_i64().or_else(|| {
                // A chrono timestamp's serde form is RFC 3339 text.
                let millis = matches!(schema, Schema::TimestampMillis);
                json.as_str()
                    .filter(|_| millis)
                    .and_then(|text| chrono::DateTime::parse_from_rfc3339(text).ok())
                    .map(|time| time.timestamp_millis())
            }) {
                Some(n) => Ok(match schema {
                    Schema::TimeMicros => Avro::TimeMicros(n),
                    Schema::TimestampMillis => Avro::TimestampMillis(n),
                    Schema::TimestampMicros => Avro::TimestampMicros(n),
                    Schema::LocalTimestampMillis => Avro::LocalTimestampMillis(n),
                    Schema::LocalTimestampMicros => Avro::LocalTimestampMicros(n),
                    _ => Avro::Long(n),
                }),
                None if matches!(schema, Schema::TimestampMillis) && json.is_string() => {
                    Err(CodecError::NotATimestamp {
                        path: display_path(path),
                        value: json.as_str().unwrap_or_default().to_string(),
                    })
                }
                None => mismatch("a 64-bit integer"),
            },
            Schema::Float => match json.as_f64() {
                Some(x) => Ok(Avro::Float(x as f32)),
                None => mismatch("a number"),
            },
            Schema::Double => match json.as_f64() {
                Some(x) => Ok(Avro::Double(x)),
                None => mismatch("a number"),
            },
            Schema::String => match json {
                Value::String(s) => Ok(Avro::String(s.clone())),
                _ => mismatch("a string"),
            },
            Schema::Uuid => match json.as_str().map(apache_avro::Uuid::parse_str) {
                Some(Ok(uuid)) => Ok(Avro::Uuid(uuid)),
                _ => mismatch("a UUID string"),
            },
            Schema::Enum(e) => match json.as_str() {
                Some(symbol) => match e.symbols.iter().position(|s| s == symbol) {
                    Some(index) => Ok(Avro::Enum(index as u32, symbol.to_string())),
                    None => mismatch(&format!("one of {:?}", e.symbols)),
                },
                None => mismatch("an enum symbol"),
            },
            Schema::Array(array) => match json {
                Value::Array(items) => items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| self.to_avro(&array.items, item, &format!("{path}[{i}]")))
                    .collect::<Result<Vec<_>, _>>()
                    .map(Avro::Array),
                _ => mismatch("an array"),
            },
            Schema::Map(map) => match json {
                Value::Object(entries) => entries
                    .iter()
                    .map(|(k, v)| {
                        Ok((
                            k.clone(),
                            self.to_avro(&map.types, v, &format!("{path}.{k}"))?,
                        ))
                    })
                    .collect::<Result<HashMap<_, _>, CodecError>>()
                    .map(Avro::Map),
                _ => mismatch("an object"),
            },
            Schema::Union(union) => {
                let variants = union.variants();
                if json.is_null() {
                    return match variants.iter().position(|v| matches!(v, Schema::Null)) {
                        Some(index) => Ok(Avro::Union(index as u32, Box::new(Avro::Null))),
                        None => mismatch("a value (the union has no null)"),
                    };
                }
                let mut first_error = None;
                for (index, variant) in variants.iter().enumerate() {
                    if matches!(variant, Schema::Null) {
                        continue;
                    }
                    match self.to_avro(variant, json, path) {
                        Ok(value) => return Ok(Avro::Union(index as u32, Box::new(value))),
                        Err(error) => {
                            first_error.get_or_insert(error);
                        }
                    }
                }
                Err(first_error.unwrap_or_else(|| CodecError::NoUnionBranch {
                    path: display_path(path),
                }))
            }
            Schema::Record(record) => {
                let Value::Object(object) = json else {
                    return mismatch(&format!("an object (record `{}`)", record.name));
                };
                if let Some(unknown) = object.keys().find(|k| !record.lookup.contains_key(*k)) {
                    return Err(CodecError::UnknownField {
                        path: format!("{path}.{unknown}"),
                        record: record.name.to_string(),
                    });
                }
                record
                    .fields
                    .iter()
                    .map(|field| {
                        let value = object.get(&field.name).unwrap_or(&Value::Null);
                        let field_path = format!("{path}.{}", field.name);
                        Ok((
                            field.name.clone(),
                            self.to_avro(&field.schema, value, &field_path)?,
                        ))
                    })
                    .collect::<Result<Vec<_>, CodecError>>()
                    .map(Avro::Record)
            }
            Schema::Ref { name } => {
                let named = self.named(name)?.clone();
                self.to_avro(&named, json, path)
            }
            other => Err(CodecError::UnsupportedType {
                path: display_path(path),
                kind: format!("{:?}", apache_avro::schema::SchemaKind::from(other)),
            }),
        }
    }
}

/// The path of a value for messages: `.` for the root.
fn display_path(path: &str) -> String {
    if path.is_empty() {
        ".".to_string()
    } else {
        path.to_string()
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
