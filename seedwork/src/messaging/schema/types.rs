//! [`AvroSchema`] for the standard types, following their serde (JSON) representation.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::rc::Rc;
use std::sync::Arc;

use super::{AvroSchema, Schema};

macro_rules! primitive {
    ($schema:ident: $($ty:ty),+) => {
        $(impl AvroSchema for $ty {
            fn avro_schema() -> Schema {
                Schema::$schema
            }
        })+
    };
}

primitive!(Boolean: bool);
primitive!(Int: i8, i16, i32, u8, u16);
primitive!(Long: i64, u32, u64, isize, usize);
primitive!(Float: f32);
primitive!(Double: f64);
primitive!(String: String, str, char, uuid::Uuid);
primitive!(Null: ());

impl AvroSchema for chrono::DateTime<chrono::Utc> {
    fn avro_schema() -> Schema {
        Schema::TimestampMillis
    }
}

impl<T: AvroSchema> AvroSchema for Option<T> {
    fn avro_schema() -> Schema {
        T::avro_schema().nullable()
    }
}

macro_rules! transparent {
    ($($ty:ident),+) => {
        $(impl<T: AvroSchema + ?Sized> AvroSchema for $ty<T> {
            fn avro_schema() -> Schema {
                T::avro_schema()
            }
        })+
    };
}

transparent!(Box, Arc, Rc);

impl<T: AvroSchema + ?Sized> AvroSchema for &T {
    fn avro_schema() -> Schema {
        T::avro_schema()
    }
}

macro_rules! sequence {
    ($($ty:ident),+) => {
        $(impl<T: AvroSchema> AvroSchema for $ty<T> {
            fn avro_schema() -> Schema {
                Schema::Array(Box::new(T::avro_schema()))
            }
        })+
    };
}

sequence!(Vec, VecDeque, BTreeSet);

impl<T: AvroSchema, S> AvroSchema for HashSet<T, S> {
    fn avro_schema() -> Schema {
        Schema::Array(Box::new(T::avro_schema()))
    }
}

impl<T: AvroSchema> AvroSchema for [T] {
    fn avro_schema() -> Schema {
        Schema::Array(Box::new(T::avro_schema()))
    }
}

impl<T: AvroSchema, const N: usize> AvroSchema for [T; N] {
    fn avro_schema() -> Schema {
        Schema::Array(Box::new(T::avro_schema()))
    }
}

impl<T: AvroSchema, S> AvroSchema for HashMap<String, T, S> {
    fn avro_schema() -> Schema {
        Schema::Map(Box::new(T::avro_schema()))
    }
}

impl<T: AvroSchema> AvroSchema for BTreeMap<String, T> {
    fn avro_schema() -> Schema {
        Schema::Map(Box::new(T::avro_schema()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_standard_types_follow_their_json_form() {
        assert_eq!(u16::avro_schema(), Schema::Int);
        assert_eq!(u32::avro_schema(), Schema::Long);
        assert_eq!(uuid::Uuid::avro_schema(), Schema::String);
        assert_eq!(
            Option::<Option<String>>::avro_schema(),
            Schema::Union(vec![Schema::Null, Schema::String])
        );
        assert_eq!(
            HashMap::<String, Vec<f64>>::avro_schema(),
            Schema::Map(Box::new(Schema::Array(Box::new(Schema::Double))))
        );
        assert_eq!(Arc::<str>::avro_schema(), Schema::String);
    }
}
