//! The loaded policy's names table (`rs_names`): kind and action names to the ids the compact
//! request carries instead (`bindings/ABI.md`). Read once per (instance, bundle); a name it
//! does not hold goes to the guest as text, which denies it as the engine does.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Bit 15 of a compact request's kind or action field: an id, not a name length.
pub(super) const ID_FLAG: u16 = 0x8000;

/// FNV-1a: kind and action names are a few bytes long, and come from the bundle.
#[derive(Clone, Copy)]
pub(super) struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

type Map<V> = HashMap<Box<str>, V, BuildHasherDefault<Fnv>>;

/// One kind: its id and its actions' ids.
struct Kind {
    id: u16,
    actions: Map<u16>,
}

/// Kind and action names to ids, as the guest numbers them.
#[derive(Default)]
pub(super) struct Names {
    kinds: Map<Kind>,
}

impl Names {
    /// Parse the table `rs_names` writes: `u16` kind count, then per kind `u16` length + name,
    /// `u16` action count, per action `u16` length + name. `None` when it is malformed.
    pub(super) fn parse(mut buf: &[u8]) -> Option<Self> {
        fn u16le(buf: &mut &[u8]) -> Option<u16> {
            let (head, tail) = buf.split_first_chunk::<2>()?;
            *buf = tail;
            Some(u16::from_le_bytes(*head))
        }
        fn name<'a>(buf: &mut &'a [u8]) -> Option<&'a str> {
            let n = usize::from(u16le(buf)?);
            let (head, tail) = (buf.get(..n)?, buf.get(n..)?);
            *buf = tail;
            std::str::from_utf8(head).ok()
        }
        let mut kinds = Map::default();
        for id in 0..u16le(&mut buf)? {
            let kind = name(&mut buf)?;
            let mut actions = Map::default();
            for a in 0..u16le(&mut buf)? {
                // Ids the request cannot carry (bit 15) are left out: such names go as text.
                if a < ID_FLAG {
                    actions.insert(name(&mut buf)?.into(), a);
                } else {
                    name(&mut buf)?;
                }
            }
            if id < ID_FLAG {
                kinds.insert(kind.into(), Kind { id, actions });
            }
        }
        buf.is_empty().then_some(Self { kinds })
    }

    /// The ids of `kind` and of `action` on it, each when the table has it.
    pub(super) fn ids(&self, kind: &str, action: &str) -> (Option<u16>, Option<u16>) {
        match self.kinds.get(kind) {
            Some(k) => (Some(k.id), k.actions.get(action).copied()),
            None => (None, None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(kinds: &[(&str, &[&str])]) -> Vec<u8> {
        let mut out = Vec::new();
        let put = |out: &mut Vec<u8>, s: &str| {
            out.extend_from_slice(&u16::try_from(s.len()).expect("short").to_le_bytes());
            out.extend_from_slice(s.as_bytes());
        };
        out.extend_from_slice(&u16::try_from(kinds.len()).expect("few").to_le_bytes());
        for (k, actions) in kinds {
            put(&mut out, k);
            out.extend_from_slice(&u16::try_from(actions.len()).expect("few").to_le_bytes());
            for a in *actions {
                put(&mut out, a);
            }
        }
        out
    }

    #[test]
    fn names_map_to_their_positions() {
        let bytes = table(&[("device", &["view", "reboot"]), ("site", &["view"])]);
        let names = Names::parse(&bytes).expect("table");
        assert_eq!(names.ids("device", "reboot"), (Some(0), Some(1)));
        assert_eq!(names.ids("site", "view"), (Some(1), Some(0)));
        assert_eq!(names.ids("site", "reboot"), (Some(1), None));
        assert_eq!(names.ids("nope", "view"), (None, None));
        assert_eq!(names.ids("", ""), (None, None));
    }

    #[test]
    fn a_malformed_table_is_refused() {
        let bytes = table(&[("device", &["view", "reboot"])]);
        for cut in 0..bytes.len() {
            assert!(Names::parse(bytes.get(..cut).expect("prefix")).is_none(), "{cut}");
        }
        let mut long = bytes.clone();
        long.push(0);
        assert!(Names::parse(&long).is_none());
        let mut bad = bytes;
        if let Some(b) = bad.get_mut(4) {
            *b = 0xff; // not UTF-8
        }
        assert!(Names::parse(&bad).is_none());
    }
}
