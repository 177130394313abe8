//! A reader of the compiled form of a bundle: postcard's encoding (what [`crate::Policy::bundle`]
//! writes with postcard and the serde derives) read by hand, without serde.
//!
//! The engine module (WebAssembly) loads bundles but never writes them: postcard's serde
//! deserializer with the derived visitors of every compiled type took ~36 KB of the module, this
//! reader a fraction of it. The encoding, as postcard writes it: unsigned integers wider than a
//! byte (and lengths) as LEB128 varints, signed ones zigzag-encoded first; `u8` and `bool` as one
//! byte (`bool` 0 or 1); `f64` as 8 bytes little-endian; strings and sequences as a length and
//! their contents; `Option` as a byte 0 or 1 and the value; enums as a varint variant index and
//! the variant's fields; structs and tuples as their fields in order.
//!
//! Every read returns `None` on malformed input (a length beyond the data, a varint that does
//! not fit its type, a variant index out of range, bad UTF-8): a bundle is never a panic. Each
//! element of a sequence takes at least one byte, so no length can reserve more memory than the
//! input has bytes.

/// A cursor over the bytes of a compiled policy.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, pos: 0 }
    }

    /// The offset of the next byte (for messages).
    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    /// Whether every byte was read.
    pub(crate) fn at_end(&self) -> bool {
        self.pos == self.bytes.len()
    }

    pub(crate) fn byte(&mut self) -> Option<u8> {
        let b = *self.bytes.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.bytes.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(s)
    }

    /// An unsigned LEB128 varint whose value fits in `bits` bits (postcard's limits: at most
    /// `ceil(bits / 7)` bytes, no bit beyond the type).
    fn varint(&mut self, bits: u32) -> Option<u128> {
        let mut v: u128 = 0;
        let mut shift = 0u32;
        loop {
            let b = self.byte()?;
            let low = u128::from(b & 0x7f);
            let room = bits.checked_sub(shift).filter(|r| *r > 0)?;
            if room < 7 && low >> room != 0 {
                return None;
            }
            v |= low << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
            shift += 7;
        }
    }

    pub(crate) fn u16(&mut self) -> Option<u16> {
        self.varint(16).and_then(|v| u16::try_from(v).ok())
    }

    pub(crate) fn u32(&mut self) -> Option<u32> {
        self.varint(32).and_then(|v| u32::try_from(v).ok())
    }

    pub(crate) fn u64(&mut self) -> Option<u64> {
        self.varint(64).and_then(|v| u64::try_from(v).ok())
    }

    pub(crate) fn u128(&mut self) -> Option<u128> {
        self.varint(128)
    }

    fn len(&mut self) -> Option<usize> {
        self.varint(usize::BITS).and_then(|v| usize::try_from(v).ok())
    }

    /// A zigzag-encoded `i64`.
    pub(crate) fn i64(&mut self) -> Option<i64> {
        let v = self.u64()?;
        Some((v >> 1) as i64 ^ -((v & 1) as i64))
    }

    /// A zigzag-encoded `i128`.
    pub(crate) fn i128(&mut self) -> Option<i128> {
        let v = self.u128()?;
        Some((v >> 1) as i128 ^ -((v & 1) as i128))
    }

    pub(crate) fn bool(&mut self) -> Option<bool> {
        match self.byte()? {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        }
    }

    pub(crate) fn f64(&mut self) -> Option<f64> {
        let mut le = [0u8; 8];
        le.copy_from_slice(self.take(8)?);
        Some(f64::from_le_bytes(le))
    }

    pub(crate) fn str(&mut self) -> Option<&'a str> {
        let n = self.len()?;
        std::str::from_utf8(self.take(n)?).ok()
    }

    pub(crate) fn string(&mut self) -> Option<String> {
        self.str().map(str::to_owned)
    }

    /// An enum's variant index, below `variants`.
    pub(crate) fn tag(&mut self, variants: u32) -> Option<u32> {
        self.u32().filter(|t| *t < variants)
    }

    pub(crate) fn opt<T>(&mut self, read: impl FnOnce(&mut Self) -> Option<T>) -> Option<Option<T>> {
        if self.bool()? { read(self).map(Some) } else { Some(None) }
    }

    pub(crate) fn seq<T>(&mut self, mut read: impl FnMut(&mut Self) -> Option<T>) -> Option<Vec<T>> {
        let n = self.len()?;
        // Every element takes at least one byte: a length beyond the input is malformed.
        if n > self.bytes.len().saturating_sub(self.pos) {
            return None;
        }
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(read(self)?);
        }
        Some(out)
    }
}

#[cfg(all(test, feature = "compiler"))]
mod tests {
    use super::Reader;

    #[test]
    fn reads_what_postcard_writes() {
        #[derive(serde::Serialize)]
        struct All<'a> {
            a: u16,
            b: u32,
            c: u64,
            d: u128,
            e: i64,
            f: i128,
            g: bool,
            h: f64,
            i: &'a str,
            j: Option<u8>,
            k: Vec<u32>,
        }
        for (n, m) in [(0u64, 0i64), (1, -1), (127, 63), (128, -64), (u64::MAX, i64::MIN), (300, i64::MAX)] {
            let v = All {
                a: n as u16,
                b: n as u32,
                c: n,
                d: u128::from(n) << 60 | 5,
                e: m,
                f: i128::from(m) * 1_000_000_000,
                g: n % 2 == 1,
                h: m as f64 / 3.0,
                i: "héllo",
                j: (n > 1).then_some(n as u8),
                k: vec![n as u32, 1, 2],
            };
            let bytes = postcard::to_allocvec(&v).unwrap_or_default();
            let mut r = Reader::new(&bytes);
            assert_eq!(r.u16(), Some(v.a));
            assert_eq!(r.u32(), Some(v.b));
            assert_eq!(r.u64(), Some(v.c));
            assert_eq!(r.u128(), Some(v.d));
            assert_eq!(r.i64(), Some(v.e));
            assert_eq!(r.i128(), Some(v.f));
            assert_eq!(r.bool(), Some(v.g));
            assert_eq!(r.f64().map(f64::to_bits), Some(v.h.to_bits()));
            assert_eq!(r.str(), Some(v.i));
            assert_eq!(r.opt(|r| r.byte()), Some(v.j));
            assert_eq!(r.seq(|r| r.u32()), Some(v.k));
            assert!(r.at_end());
        }
    }

    #[test]
    fn refuses_what_does_not_fit() {
        // u16: at most 3 bytes, 16 bits
        assert_eq!(Reader::new(&[0xff, 0xff, 0x03]).u16(), Some(u16::MAX));
        assert_eq!(Reader::new(&[0xff, 0xff, 0x04]).u16(), None);
        assert_eq!(Reader::new(&[0x80, 0x80, 0x80, 0x00]).u16(), None);
        assert_eq!(Reader::new(&[0x80]).u32(), None);
        assert_eq!(Reader::new(&[2]).bool(), None);
        assert_eq!(Reader::new(&[3, b'a', 0xff, b'c']).str(), None);
        assert_eq!(Reader::new(&[5, b'a']).str(), None);
        assert_eq!(Reader::new(&[0xff, 0xff, 0xff, 0x0f, 0]).seq(|r| r.byte()), None);
        assert_eq!(Reader::new(&[3]).tag(3), None);
        assert_eq!(Reader::new(&[2]).tag(3), Some(2));
        assert_eq!(Reader::new(&[1, 2, 3]).f64(), None);
    }
}
