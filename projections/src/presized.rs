//! Reading the large maps of a snapshot in one allocation.
//!
//! serde's own `HashMap` reader trusts a length only up to about 1 MiB of entries, then lets the
//! map grow by doubling: for the 320,000 cases of a million-event store that is a dozen rehashes,
//! each one copying every case and touching fresh pages. A snapshot states its lengths and is
//! authenticated before it is decoded, so these readers reserve the stated length at once (up to
//! [`MAX_RESERVED`] entries, past which the map grows as usual).

use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::marker::PhantomData;

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

/// Entries reserved up front at most, whatever length the bytes state.
pub const MAX_RESERVED: usize = 1 << 20;

/// `deserialize_with` for a `HashMap` written by serde: reserves the stated length first.
pub fn hash_map<'de, D, K, V>(d: D) -> Result<HashMap<K, V>, D::Error>
where
    D: Deserializer<'de>,
    K: Deserialize<'de> + Eq + Hash,
    V: Deserialize<'de>,
{
    d.deserialize_map(Presized(PhantomData))
}

struct Presized<K, V>(PhantomData<(K, V)>);

impl<'de, K, V> Visitor<'de> for Presized<K, V>
where
    K: Deserialize<'de> + Eq + Hash,
    V: Deserialize<'de>,
{
    type Value = HashMap<K, V>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a map")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
        let reserve = access.size_hint().unwrap_or(0).min(MAX_RESERVED);
        let mut map = HashMap::with_capacity(reserve);
        while let Some((key, value)) = access.next_entry()? {
            map.insert(key, value);
        }
        Ok(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Serialize;

    #[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
    struct Holder {
        #[serde(deserialize_with = "hash_map")]
        map: HashMap<u32, String>,
    }

    fn round_trip(h: &Holder) -> Holder {
        let cfg = bincode::config::standard();
        let bytes = bincode::serde::encode_to_vec(h, cfg).unwrap();
        bincode::serde::decode_from_slice(&bytes, cfg).unwrap().0
    }

    #[test]
    fn a_map_reads_back_whole_and_sized_for_its_entries() {
        let h = Holder {
            map: (0..50_000).map(|i| (i, format!("case {i}"))).collect(),
        };
        let back = round_trip(&h);
        assert_eq!(back, h);
        // Reserved once: no more room than one allocation for 50,000 entries gives.
        assert!(back.map.capacity() < 2 * 65_536, "{}", back.map.capacity());
        assert_eq!(round_trip(&Holder::default()), Holder::default());
    }

    #[test]
    fn a_stated_length_past_the_bytes_is_an_error_not_a_huge_allocation() {
        // A map claiming u32::MAX entries, followed by nothing.
        let cfg = bincode::config::standard();
        let mut bytes = Vec::new();
        bytes.push(252u8); // bincode varint tag: a u32 follows
        bytes.extend_from_slice(&u32::MAX.to_le_bytes());
        let got: Result<(Holder, usize), _> = bincode::serde::decode_from_slice(&bytes, cfg);
        assert!(got.is_err());
    }
}
