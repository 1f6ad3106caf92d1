//! A hasher for maps keyed by `TypeId`.
//!
//! A `TypeId` is already a hash computed by the compiler, so hashing it again with SipHash (the
//! std default, ~20 ns) is wasted work on the dispatch hot path; this hasher folds its bits.

use std::any::TypeId;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Folds the bytes written into it; meant only for `TypeId` keys.
#[derive(Default)]
pub(crate) struct TypeIdHasher(u64);

impl Hasher for TypeIdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_ne_bytes(word));
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = self.0.rotate_left(5) ^ value;
    }
}

/// A `HashMap` keyed by `TypeId` with [`TypeIdHasher`].
pub(crate) type TypeMap<V> = HashMap<TypeId, V, BuildHasherDefault<TypeIdHasher>>;
