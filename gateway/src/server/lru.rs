//! A cache bounded by bytes: every entry has a weight (about the memory it holds), the total
//! stays within a budget, and the least recently used entries leave first, one at a time (never
//! a whole clear). The verified-token cache (`identity.rs`) and the per-thread prepared
//! principals (`enforce.rs`) use it.

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;

struct Entry<V> {
    value: V,
    weight: usize,
    used: u64,
}

/// Entries by key, within `budget` bytes of weight.
pub(crate) struct ByteLru<K, V> {
    map: HashMap<K, Entry<V>>,
    /// Keys by last use (the smallest is the least recently used).
    order: BTreeMap<u64, K>,
    clock: u64,
    bytes: usize,
    budget: usize,
}

impl<K: Hash + Eq + Clone, V> ByteLru<K, V> {
    pub(crate) fn new(budget: usize) -> Self {
        Self { map: HashMap::new(), order: BTreeMap::new(), clock: 0, bytes: 0, budget }
    }

    /// The entry of `key`, marked as used now.
    pub(crate) fn get<Q>(&mut self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.clock += 1;
        let e = self.map.get_mut(key)?;
        if let Some(k) = self.order.remove(&e.used) {
            self.order.insert(self.clock, k);
        }
        e.used = self.clock;
        Some(&e.value)
    }

    /// Take the entry of `key` out.
    pub(crate) fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let e = self.map.remove(key)?;
        self.order.remove(&e.used);
        self.bytes -= e.weight;
        Some(e.value)
    }

    /// Keep `value` under `key` (replacing an entry of the same key). Returns what left to make
    /// room, least recently used first (the caller releases it); a value heavier than the whole
    /// budget is not kept and comes back too.
    pub(crate) fn insert(&mut self, key: K, value: V, weight: usize) -> Vec<V> {
        let mut out = Vec::new();
        if let Some(old) = self.remove(&key) {
            out.push(old);
        }
        if weight > self.budget {
            out.push(value);
            return out;
        }
        while self.bytes + weight > self.budget {
            let Some((_, oldest)) = self.order.pop_first() else { break };
            if let Some(e) = self.map.remove(&oldest) {
                self.bytes -= e.weight;
                out.push(e.value);
            }
        }
        self.clock += 1;
        self.order.insert(self.clock, key.clone());
        self.map.insert(key, Entry { value, weight, used: self.clock });
        self.bytes += weight;
        out
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// The total weight held.
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_least_recently_used_within_the_budget() {
        let mut c: ByteLru<u32, &str> = ByteLru::new(10);
        assert!(c.insert(1, "a", 4).is_empty());
        assert!(c.insert(2, "b", 4).is_empty());
        assert_eq!(c.get(&1), Some(&"a")); // 2 is now the oldest
        assert_eq!(c.insert(3, "c", 4), vec!["b"]);
        assert_eq!((c.len(), c.bytes()), (2, 8));
        assert_eq!(c.insert(4, "d", 11), vec!["d"], "heavier than the budget: not kept");
        assert_eq!(c.insert(1, "a2", 2), vec!["a"], "replaced");
        assert_eq!((c.len(), c.bytes()), (2, 6));
        assert_eq!(c.remove(&3), Some("c"));
        assert_eq!(c.remove(&1), Some("a2"));
        assert_eq!((c.len(), c.bytes()), (0, 0));
    }
}
