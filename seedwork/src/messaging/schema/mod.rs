//! Schemas derived from Rust types, in the Avro model.
//!
//! An integration message is a wire contract; its schema should come from the type that
//! produces it, not from a JSON string written beside it that can drift. [`AvroSchema`] is
//! implemented for the standard types here and derived for structs and unit enums with
//! `#[derive(AvroSchema)]` (the integration derives derive it for their payload too), and every
//! `#[derive(IntegrationEvent)]`/`#[derive(IntegrationCommand)]` registers its payload's schema
//! under its topic ([`registered`]), so a broker adapter can announce it without a declaration.
//!
//! The model is Avro's because that is what the course's broker registers, but nothing here
//! depends on an Avro library: the memory and SQL transports carry JSON and ignore schemas, and
//! the Pulsar adapter parses [`Schema::to_json`] with its own.
//!
//! How Rust types map:
//!
//! | Rust | Avro |
//! |---|---|
//! | `bool` | `boolean` |
//! | `i8`, `i16`, `i32`, `u8`, `u16` | `int` |
//! | `i64`, `u32`, `isize`, `usize`, `u64` | `long` (a `u64` above `i64::MAX` is refused when encoded) |
//! | `f32`, `f64` | `float`, `double` |
//! | `String`, `char`, `uuid::Uuid` | `string` (a UUID as text: the Python client cannot read the `uuid` logical type) |
//! | `chrono::DateTime<Utc>` | `long` with logical type `timestamp-millis` |
//! | `Option<T>` | `["null", T]`; a field of this type gets `"default": null` |
//! | `Vec<T>`, `VecDeque<T>`, sets | `array` |
//! | `HashMap<String, T>`, `BTreeMap<String, T>` | `map` |
//! | `Box<T>`, `Arc<T>` | `T` |
//! | a struct with `#[derive(AvroSchema)]` | `record` (a second use is a reference by name) |
//! | a unit-only enum with `#[derive(AvroSchema)]` | `enum` |
//!
//! Recursive types are not supported (their schema would be infinite).

mod registry;
mod render;
mod types;

pub use registry::{registered, MessageSchema};

use serde_json::Value;

/// A type whose Avro schema is known at compile time.
///
/// Derive it with `#[derive(AvroSchema)]` (feature `macros`), or implement it by hand for a
/// type with a custom serde representation:
///
/// ```
/// use seedwork::messaging::schema::{AvroSchema, Field, Record, Schema};
///
/// #[derive(serde::Serialize)]
/// struct Aeropuerto { codigo: String, nombre: Option<String> }
///
/// impl AvroSchema for Aeropuerto {
///     fn avro_schema() -> Schema {
///         Record::new("Aeropuerto")
///             .field(Field::new("codigo", String::avro_schema()))
///             .field(Field::new("nombre", Option::<String>::avro_schema()))
///             .into()
///     }
/// }
///
/// assert_eq!(
///     Aeropuerto::avro_schema().to_json(),
///     serde_json::json!({"type": "record", "name": "Aeropuerto", "fields": [
///         {"name": "codigo", "type": "string"},
///         {"name": "nombre", "type": ["null", "string"], "default": null},
///     ]}),
/// );
/// ```
pub trait AvroSchema {
    /// The schema of this type's serde representation.
    fn avro_schema() -> Schema;
}

/// An Avro schema: what the serde (JSON) form of a value looks like, in Avro's terms.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Schema {
    /// `null`.
    Null,
    /// `boolean`.
    Boolean,
    /// `int` (32 bits).
    Int,
    /// `long` (64 bits).
    Long,
    /// `float`.
    Float,
    /// `double`.
    Double,
    /// `bytes`.
    Bytes,
    /// `string`.
    String,
    /// A `long` of epoch milliseconds, logical type `timestamp-millis`.
    TimestampMillis,
    /// An `array` of items.
    Array(Box<Schema>),
    /// A `map` from strings to values.
    Map(Box<Schema>),
    /// A `union` of branches, tried in order.
    Union(Vec<Schema>),
    /// A named `record`.
    Record(Record),
    /// A named `enum` of symbols.
    Enum(Enum),
}

impl Schema {
    /// This schema as `["null", self]` (unchanged when it already admits `null`).
    pub fn nullable(self) -> Schema {
        if self.admits_null() {
            return self;
        }
        match self {
            Schema::Union(mut branches) => {
                branches.insert(0, Schema::Null);
                Schema::Union(branches)
            }
            other => Schema::Union(vec![Schema::Null, other]),
        }
    }

    /// Whether `null` is a value of this schema.
    pub fn admits_null(&self) -> bool {
        match self {
            Schema::Null => true,
            Schema::Union(branches) => branches.iter().any(|b| matches!(b, Schema::Null)),
            _ => false,
        }
    }

    /// The full name (`namespace.name`) of a record or enum.
    pub fn fullname(&self) -> Option<String> {
        match self {
            Schema::Record(record) => Some(record.fullname()),
            Schema::Enum(e) => Some(fullname(&e.name, e.namespace.as_deref())),
            _ => None,
        }
    }

    /// The schema as Avro's JSON form. A named type is defined where it first appears and
    /// referred to by its full name afterwards, as the Avro specification requires.
    pub fn to_json(&self) -> Value {
        render::to_json(self)
    }
}

impl From<Record> for Schema {
    fn from(record: Record) -> Schema {
        Schema::Record(record)
    }
}

impl From<Enum> for Schema {
    fn from(e: Enum) -> Schema {
        Schema::Enum(e)
    }
}

/// An Avro `record`: a name, an optional namespace and ordered fields.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    /// The record's name (Python: the `Record` class name).
    pub name: String,
    /// Its namespace (Python: `_avro_namespace`); `None` for none.
    pub namespace: Option<String>,
    /// Its documentation.
    pub doc: Option<String>,
    /// Its fields, in declaration order (the order the binary encoding follows).
    pub fields: Vec<Field>,
}

impl Record {
    /// A record without fields.
    pub fn new(name: impl Into<String>) -> Record {
        Record {
            name: name.into(),
            namespace: None,
            doc: None,
            fields: Vec::new(),
        }
    }

    /// Sets the namespace.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Record {
        self.namespace = Some(namespace.into());
        self
    }

    /// Sets the documentation.
    pub fn doc(mut self, doc: impl Into<String>) -> Record {
        self.doc = Some(doc.into());
        self
    }

    /// Appends a field.
    pub fn field(mut self, field: Field) -> Record {
        self.fields.push(field);
        self
    }

    /// `namespace.name`, or `name` without a namespace.
    pub fn fullname(&self) -> String {
        fullname(&self.name, self.namespace.as_deref())
    }
}

/// A field of a [`Record`].
#[derive(Clone, Debug, PartialEq)]
pub struct Field {
    /// Its name (the serde name of the Rust field).
    pub name: String,
    /// Its schema.
    pub schema: Schema,
    /// Its default, used by a reader whose writer did not have the field. [`Field::new`] sets
    /// `null` for a schema whose first branch is `null` (an `Option`), which is what lets a
    /// later version add the field compatibly.
    pub default: Option<Value>,
    /// Its documentation.
    pub doc: Option<String>,
}

impl Field {
    /// A field; `default: null` when `schema` is a union that starts with `null`.
    pub fn new(name: impl Into<String>, schema: Schema) -> Field {
        let default = match &schema {
            Schema::Union(branches) if matches!(branches.first(), Some(Schema::Null)) => {
                Some(Value::Null)
            }
            _ => None,
        };
        Field {
            name: name.into(),
            schema,
            default,
            doc: None,
        }
    }

    /// Sets (or with `None`, removes) the default.
    pub fn default_value(mut self, default: Option<Value>) -> Field {
        self.default = default;
        self
    }

    /// Sets the documentation.
    pub fn doc(mut self, doc: impl Into<String>) -> Field {
        self.doc = Some(doc.into());
        self
    }
}

/// An Avro `enum`: a named set of symbols (a Rust enum of unit variants).
#[derive(Clone, Debug, PartialEq)]
pub struct Enum {
    /// Its name.
    pub name: String,
    /// Its namespace.
    pub namespace: Option<String>,
    /// Its symbols, in order.
    pub symbols: Vec<String>,
}

impl Enum {
    /// An enum of `symbols`.
    pub fn new(
        name: impl Into<String>,
        symbols: impl IntoIterator<Item = impl Into<String>>,
    ) -> Enum {
        Enum {
            name: name.into(),
            namespace: None,
            symbols: symbols.into_iter().map(Into::into).collect(),
        }
    }

    /// Sets the namespace.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Enum {
        self.namespace = Some(namespace.into());
        self
    }
}

fn fullname(name: &str, namespace: Option<&str>) -> String {
    match namespace {
        Some(namespace) if !namespace.is_empty() => format!("{namespace}.{name}"),
        _ => name.to_string(),
    }
}
