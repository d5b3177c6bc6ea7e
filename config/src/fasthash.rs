//! A small, fast hash for the maps of evaluation (option paths, node names): the keys
//! are short strings from the user's own host files, so the resistance to crafted
//! collisions that std's SipHash buys is not needed, and SipHash was a visible share of
//! evaluating a large host. The algorithm is FxHash (rustc's): rotate, xor, multiply.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// A `HashMap` with [`FxHasher`].
pub type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;
/// A `HashSet` with [`FxHasher`].
pub type FastSet<K> = HashSet<K, BuildHasherDefault<FxHasher>>;

#[derive(Debug, Default, Clone, Copy)]
pub struct FxHasher {
    hash: u64,
}

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes([
                c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7],
            ]));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word));
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    /// Rotated: the multiply leaves the low bits depending on the low input bits only,
    /// and the hash table picks its bucket from the low bits (its tag from the top 7).
    /// Unrotated, names like `c123` … `c9999` crowded into a few buckets and every
    /// lookup probed long chains (what rustc-hash 2 does too).
    #[inline]
    fn finish(&self) -> u64 {
        self.hash.rotate_left(26)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_work_and_strings_hash_by_content() {
        let mut m: FastMap<String, usize> = FastMap::default();
        for i in 0..1000 {
            m.insert(format!("c{i}"), i);
        }
        assert_eq!(m.len(), 1000);
        assert_eq!(m.get("c517"), Some(&517));
        assert_eq!(m.get("c1000"), None);
        // Prefixes and lengths are told apart (str hashing adds a terminator).
        let s: FastSet<&str> = ["", "a", "a\0", "ab", "abcdefgh", "abcdefghi"]
            .into_iter()
            .collect();
        assert_eq!(s.len(), 6);
    }

    /// Names that differ only in their digits spread over the low bits, where the table
    /// picks buckets: with the product's low bits taken as they are, the 10,000 names
    /// `c0` … `c9999` fell into 64 of 16,384 buckets.
    #[test]
    fn similar_names_spread_over_buckets() {
        use std::hash::BuildHasher;
        let build = BuildHasherDefault::<FxHasher>::default();
        let buckets: HashSet<u64> = (0..10_000)
            .map(|i| build.hash_one(format!("c{i}").as_str()) & 0x3fff)
            .collect();
        assert!(buckets.len() > 5_000, "{} buckets used", buckets.len());
    }
}
