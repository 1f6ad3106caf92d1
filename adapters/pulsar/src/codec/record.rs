//! Builds Avro record schemas the way the Python `pulsar.schema.Record` classes render them.
//!
//! The Python client declares every field as a `["null", T]` union without a default and
//! inlines a nested record under its class name the first time it appears (later uses refer
//! to it by name). Writing those schemas by hand is error-prone, so a Rust service describes
//! the same classes with [`Record`] and gets the identical JSON.

use std::collections::HashSet;

use serde_json::{json, Value};

/// The type of one field of a [`Record`].
#[derive(Debug, Clone, PartialEq)]
pub enum AvroType {
    /// `string` (Python `String()`).
    String,
    /// `long` (Python `Long()`): epoch milliseconds in the tutorial.
    Long,
    /// `int` (Python `Integer()`).
    Int,
    /// `double` (Python `Double()`).
    Double,
    /// `float` (Python `Float()`).
    Float,
    /// `boolean` (Python `Boolean()`).
    Boolean,
    /// A nested record (Python: a `Record` subclass as a field).
    Record(Record),
    /// An array (Python `Array(T)`); the items are not nullable.
    Array(Box<AvroType>),
}

impl AvroType {
    /// An array of `items`.
    pub fn array(items: AvroType) -> AvroType {
        AvroType::Array(Box::new(items))
    }

    fn render(&self, defined: &mut HashSet<String>) -> Value {
        match self {
            AvroType::String => json!("string"),
            AvroType::Long => json!("long"),
            AvroType::Int => json!("int"),
            AvroType::Double => json!("double"),
            AvroType::Float => json!("float"),
            AvroType::Boolean => json!("boolean"),
            AvroType::Record(record) => record.render(defined),
            AvroType::Array(items) => json!({"type": "array", "items": items.render(defined)}),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
struct Field {
    name: String,
    ty: AvroType,
    null_default: bool,
}

/// An Avro record whose fields are all nullable, as the Python client renders a `Record`.
///
/// ```
/// use seedwork_pulsar::codec::{AvroType, Record};
///
/// let payload = Record::new("ReservaCreadaPayload")
///     .field("id_reserva", AvroType::String)
///     .field("fecha_creacion", AvroType::Long);
/// let wire = Record::new("EventoReservaCreada").field("data", AvroType::Record(payload));
/// assert_eq!(
///     wire.to_json(),
///     serde_json::json!({
///         "type": "record", "name": "EventoReservaCreada",
///         "fields": [{"name": "data", "type": ["null", {
///             "type": "record", "name": "ReservaCreadaPayload",
///             "fields": [
///                 {"name": "id_reserva", "type": ["null", "string"]},
///                 {"name": "fecha_creacion", "type": ["null", "long"]},
///             ],
///         }]}],
///     })
/// );
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    name: String,
    fields: Vec<Field>,
}

impl Record {
    /// An empty record named `name` (the Python class name).
    pub fn new(name: impl Into<String>) -> Self {
        Record {
            name: name.into(),
            fields: Vec::new(),
        }
    }

    /// Appends a field as the Python client declares it: `["null", T]`, no default.
    pub fn field(mut self, name: impl Into<String>, ty: AvroType) -> Self {
        self.fields.push(Field {
            name: name.into(),
            ty,
            null_default: false,
        });
        self
    }

    /// Appends a field `["null", T]` with `"default": null`.
    ///
    /// Use it for fields a Rust service adds to a record the Python side also declares: with
    /// the default, a reader of either version can read the other's data, so the broker's
    /// `FULL` compatibility check accepts both schemas on one topic. Add such fields at the end
    /// of the outermost payload record: a Python reader that decodes with its own schema then
    /// simply stops before them.
    pub fn field_with_null_default(mut self, name: impl Into<String>, ty: AvroType) -> Self {
        self.fields.push(Field {
            name: name.into(),
            ty,
            null_default: true,
        });
        self
    }

    /// The record's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The schema as JSON.
    pub fn to_json(&self) -> Value {
        self.render(&mut HashSet::new())
    }

    fn render(&self, defined: &mut HashSet<String>) -> Value {
        if !defined.insert(self.name.clone()) {
            // Avro names a type once; later uses refer to it.
            return json!(self.name);
        }
        let fields: Vec<Value> = self
            .fields
            .iter()
            .map(|field| {
                let mut rendered = json!({
                    "name": field.name,
                    "type": ["null", field.ty.render(defined)],
                });
                if field.null_default {
                    rendered["default"] = Value::Null;
                }
                rendered
            })
            .collect();
        json!({"type": "record", "name": self.name, "fields": fields})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_used_twice_is_named_the_second_time() {
        let airport = Record::new("Aeropuerto").field("codigo", AvroType::String);
        let leg = Record::new("Leg")
            .field("origen", AvroType::Record(airport.clone()))
            .field("destino", AvroType::Record(airport));
        let schema = leg.to_json();
        assert_eq!(schema["fields"][0]["type"][1]["name"], "Aeropuerto");
        assert_eq!(schema["fields"][1]["type"][1], "Aeropuerto");
        apache_avro::Schema::parse(&schema).expect("a valid Avro schema");
    }

    #[test]
    fn fields_with_a_null_default_say_so_and_others_do_not() {
        let record = Record::new("R")
            .field("a", AvroType::String)
            .field_with_null_default("b", AvroType::array(AvroType::Long));
        let schema = record.to_json();
        assert!(schema["fields"][0].get("default").is_none());
        assert_eq!(schema["fields"][1]["default"], Value::Null);
        assert_eq!(schema["fields"][1]["type"][1]["type"], "array");
    }
}
