//! Which call keys may be in `call_keys`: a Bloom filter over every key the
//! correlator has written or is about to write.
//!
//! Most records name an id never seen before (every callStart and
//! callLegStart does), and looking each one up in `call_keys`, an index of
//! random keys far larger than the page cache, was the correlator's most
//! expensive step. The filter answers "certainly not there" for nearly all of
//! them from memory. It never answers "not there" for a key that is: every
//! key is added before its row is written, and it is loaded from the table at
//! start. A wrong "maybe" costs only the lookup it would have cost anyway.
#[allow(unused_imports)]
use crate::db::{self, Db, OptionalExt, Result, args};

/// Bits per key the filter is sized for: about 1% false "maybe" with
/// `PROBES` probes.
const BITS_PER_KEY: usize = 10;
const PROBES: u32 = 7;
/// The filter starts with room for this many keys, and for twice the keys
/// already in the table.
const MIN_KEYS: usize = 1 << 20;
/// It never takes more memory than this (32 MiB, about 27 million keys at
/// 1%); past that its false "maybe" answers, and lookups, slowly grow.
const MAX_BITS: usize = 1 << 28;

/// The default filter answers "maybe" to every key: every key is looked up.
#[derive(Default)]
pub(crate) struct KeyFilter {
    bits: Vec<u64>,
    /// Number of bits minus one (a power of two minus one).
    mask: u64,
    /// Keys added since the filter was sized.
    keys: usize,
    /// Keys it was sized for: past them it is rebuilt twice as large.
    capacity: usize,
}

impl KeyFilter {
    /// An empty filter with room for `capacity` keys.
    fn with_capacity(capacity: usize) -> Self {
        let bits = (capacity.max(MIN_KEYS) * BITS_PER_KEY)
            .next_power_of_two()
            .min(MAX_BITS);
        KeyFilter {
            bits: vec![0; bits / 64],
            mask: bits as u64 - 1,
            keys: 0,
            capacity: capacity.max(MIN_KEYS),
        }
    }

    /// The filter of every key in `call_keys`, with room to grow.
    pub(crate) fn load(calls: Db<'_>) -> Result<Self> {
        let count: i64 =
            calls.query_row("SELECT count(*) FROM call_keys", args![], |r| r.get(0))?;
        let mut filter = KeyFilter::with_capacity(2 * count.max(0) as usize);
        calls.query_each("SELECT key FROM call_keys", args![], |row| {
            filter.add(row.get(0)?);
            Ok(())
        })?;
        Ok(filter)
    }

    /// Whether the filter has outgrown its size and should be loaded anew.
    pub(crate) fn is_full(&self) -> bool {
        !self.bits.is_empty() && self.keys > self.capacity && self.bits.len() * 64 < MAX_BITS
    }

    pub(crate) fn add(&mut self, key: i64) {
        if self.bits.is_empty() {
            return;
        }
        self.keys += 1;
        for bit in self.probes(key) {
            self.bits[(bit / 64) as usize] |= 1 << (bit % 64);
        }
    }

    /// False only when the key was never added.
    pub(crate) fn may_contain(&self, key: i64) -> bool {
        self.bits.is_empty()
            || self
                .probes(key)
                .all(|bit| self.bits[(bit / 64) as usize] & (1 << (bit % 64)) != 0)
    }

    /// The bits of a key: double hashing over the two halves of the key,
    /// mixed first because FNV's low bits vary little between similar ids.
    fn probes(&self, key: i64) -> impl Iterator<Item = u64> + use<> {
        let h = mix(key as u64);
        let (a, b) = (h, (h >> 32) | 1);
        let mask = self.mask;
        (0..PROBES).map(move |i| a.wrapping_add(b.wrapping_mul(u64::from(i))) & mask)
    }
}

/// The splitmix64 finalizer: every input bit moves every output bit.
fn mix(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_added_key_is_always_maybe_and_most_others_are_not() {
        let mut filter = KeyFilter::with_capacity(100_000);
        for k in 0..100_000i64 {
            filter.add(k.wrapping_mul(0x1e37_79b9_7f4a_7c15));
        }
        assert!((0..100_000i64).all(|k| filter.may_contain(k.wrapping_mul(0x1e37_79b9_7f4a_7c15))));
        let false_maybe = (0..100_000i64)
            .filter(|k| filter.may_contain(k.wrapping_mul(0x1e37_79b9_7f4a_7c15) ^ 1))
            .count();
        assert!(false_maybe < 2_000, "{false_maybe} false maybes in 100000");
    }

    #[test]
    fn a_filter_past_its_size_is_full_and_loads_every_key_of_the_table() {
        let mut filter = KeyFilter::with_capacity(0);
        for k in 0..=MIN_KEYS as i64 {
            filter.add(k);
        }
        assert!(
            filter.is_full(),
            "{} keys for {}",
            filter.keys,
            filter.capacity
        );

        let mut calls = rusqlite::Connection::open_in_memory().unwrap();
        crate::sqlite::schema::migrate_calls(&mut calls).unwrap();
        for k in [-5_i64, 7, 1 << 40] {
            calls
                .execute("INSERT INTO call_keys (key, call_id) VALUES (?1, 'c')", [k])
                .unwrap();
        }
        let loaded = KeyFilter::load(Db::Sqlite(&calls)).unwrap();
        assert!([-5_i64, 7, 1 << 40].iter().all(|k| loaded.may_contain(*k)));
        assert!(!loaded.is_full());
        assert_eq!(
            loaded.capacity, MIN_KEYS,
            "room for twice the keys, at least MIN_KEYS"
        );
    }

    #[test]
    fn the_filter_of_everything_says_maybe() {
        let mut filter = KeyFilter::default();
        filter.add(1);
        assert!(filter.may_contain(2));
        assert!(!filter.is_full());
    }
}
