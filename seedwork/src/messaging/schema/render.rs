//! [`Schema`] to Avro's JSON form.

use std::collections::HashSet;

use serde_json::{json, Map, Value};

use super::{Enum, Record, Schema};

pub(super) fn to_json(schema: &Schema) -> Value {
    Renderer::default().render(schema, None)
}

/// Remembers the named types already defined: Avro allows one definition per full name, and
/// every later use must be a reference.
#[derive(Default)]
struct Renderer {
    defined: HashSet<String>,
}

impl Renderer {
    /// `enclosing` is the namespace a nested named type without one of its own inherits.
    fn render(&mut self, schema: &Schema, enclosing: Option<&str>) -> Value {
        match schema {
            Schema::Null => json!("null"),
            Schema::Boolean => json!("boolean"),
            Schema::Int => json!("int"),
            Schema::Long => json!("long"),
            Schema::Float => json!("float"),
            Schema::Double => json!("double"),
            Schema::Bytes => json!("bytes"),
            Schema::String => json!("string"),
            Schema::TimestampMillis => json!({"type": "long", "logicalType": "timestamp-millis"}),
            Schema::Array(items) => {
                json!({"type": "array", "items": self.render(items, enclosing)})
            }
            Schema::Map(values) => json!({"type": "map", "values": self.render(values, enclosing)}),
            Schema::Union(branches) => Value::Array(
                branches
                    .iter()
                    .map(|branch| self.render(branch, enclosing))
                    .collect(),
            ),
            Schema::Record(record) => self.record(record, enclosing),
            Schema::Enum(e) => self.enumeration(e, enclosing),
        }
    }

    /// The reference to an already defined type, or `None` (and now defined) the first time.
    fn reference(
        &mut self,
        name: &str,
        own: Option<&str>,
        enclosing: Option<&str>,
    ) -> Result<Value, Option<String>> {
        let namespace = own.or(enclosing).filter(|n| !n.is_empty());
        let fullname = match namespace {
            Some(namespace) => format!("{namespace}.{name}"),
            None => name.to_string(),
        };
        if self.defined.insert(fullname.clone()) {
            return Err(namespace.map(str::to_string));
        }
        // Relative to the enclosing namespace a bare name resolves to the same type.
        Ok(if namespace == enclosing.filter(|n| !n.is_empty()) {
            Value::String(name.to_string())
        } else {
            Value::String(fullname)
        })
    }

    fn record(&mut self, record: &Record, enclosing: Option<&str>) -> Value {
        let namespace = match self.reference(&record.name, record.namespace.as_deref(), enclosing) {
            Ok(reference) => return reference,
            Err(namespace) => namespace,
        };
        let mut out = Map::new();
        out.insert("type".into(), json!("record"));
        out.insert("name".into(), json!(record.name));
        if let Some(own) = &record.namespace {
            out.insert("namespace".into(), json!(own));
        }
        if let Some(doc) = &record.doc {
            out.insert("doc".into(), json!(doc));
        }
        let fields = record
            .fields
            .iter()
            .map(|field| {
                let mut out = Map::new();
                out.insert("name".into(), json!(field.name));
                out.insert(
                    "type".into(),
                    self.render(&field.schema, namespace.as_deref()),
                );
                if let Some(doc) = &field.doc {
                    out.insert("doc".into(), json!(doc));
                }
                if let Some(default) = &field.default {
                    out.insert("default".into(), default.clone());
                }
                Value::Object(out)
            })
            .collect();
        out.insert("fields".into(), Value::Array(fields));
        Value::Object(out)
    }

    fn enumeration(&mut self, e: &Enum, enclosing: Option<&str>) -> Value {
        if let Ok(reference) = self.reference(&e.name, e.namespace.as_deref(), enclosing) {
            return reference;
        }
        let mut out = Map::new();
        out.insert("type".into(), json!("enum"));
        out.insert("name".into(), json!(e.name));
        if let Some(own) = &e.namespace {
            out.insert("namespace".into(), json!(own));
        }
        out.insert("symbols".into(), json!(e.symbols));
        Value::Object(out)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{AvroSchema, Field};
    use super::*;

    fn aeropuerto() -> Schema {
        Record::new("Aeropuerto")
            .field(Field::new("codigo", Schema::String))
            .into()
    }

    #[test]
    fn a_second_use_of_a_record_is_a_reference_by_name() {
        let leg: Schema = Record::new("Leg")
            .field(Field::new("origen", aeropuerto()))
            .field(Field::new("destino", aeropuerto().nullable()))
            .into();
        assert_eq!(
            leg.to_json(),
            json!({"type": "record", "name": "Leg", "fields": [
                {"name": "origen", "type": {"type": "record", "name": "Aeropuerto", "fields": [
                    {"name": "codigo", "type": "string"}]}},
                {"name": "destino", "type": ["null", "Aeropuerto"], "default": null},
            ]})
        );
    }

    #[test]
    fn a_reference_outside_the_defining_namespace_is_a_full_name() {
        let inner = Record::new("Aeropuerto")
            .namespace("vuelos")
            .field(Field::new("codigo", Schema::String));
        let outer: Schema = Record::new("Leg")
            .namespace("otro")
            .field(Field::new("origen", inner.clone().into()))
            .field(Field::new("destino", inner.into()))
            .into();
        let json = outer.to_json();
        assert_eq!(json["fields"][0]["type"]["namespace"], "vuelos");
        assert_eq!(json["fields"][1]["type"], "vuelos.Aeropuerto");
    }

    #[test]
    fn a_nested_record_inherits_the_enclosing_namespace() {
        let outer: Schema = Record::new("Leg")
            .namespace("vuelos")
            .field(Field::new("origen", aeropuerto()))
            .field(Field::new("destino", aeropuerto()))
            .into();
        let json = outer.to_json();
        assert!(json["fields"][0]["type"].get("namespace").is_none());
        assert_eq!(json["fields"][1]["type"], "Aeropuerto");
    }

    #[test]
    fn options_default_to_null_and_timestamps_are_logical_longs() {
        let record: Schema = Record::new("R")
            .field(Field::new(
                "cuando",
                Option::<chrono::DateTime<chrono::Utc>>::avro_schema(),
            ))
            .field(Field::new("cuantos", Vec::<i64>::avro_schema()))
            .into();
        assert_eq!(
            record.to_json()["fields"],
            json!([
                {"name": "cuando", "type": ["null", {"type": "long", "logicalType": "timestamp-millis"}], "default": null},
                {"name": "cuantos", "type": {"type": "array", "items": "long"}},
            ])
        );
    }

    #[test]
    fn an_enum_renders_its_symbols_once() {
        let estado: Schema = Enum::new("Estado", ["Pendiente", "Aprobada"]).into();
        let record: Schema = Record::new("R")
            .field(Field::new("a", estado.clone()))
            .field(Field::new("b", estado))
            .into();
        let json = record.to_json();
        assert_eq!(
            json["fields"][0]["type"],
            json!({"type": "enum", "name": "Estado", "symbols": ["Pendiente", "Aprobada"]})
        );
        assert_eq!(json["fields"][1]["type"], "Estado");
    }
}
