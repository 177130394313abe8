//! What hyper does not tell the service about a connection's bytes, for EVERY request on the
//! connection: [`Tracked`] wraps the socket and follows the request stream itself, head by
//! head and body by body (`httparse`, the parser hyper uses, for heads; `Content-Length` and
//! chunked framing for bodies), whether the requests come one per write, pipelined in one
//! write, or split at any byte. Each head's findings are queued in order and handed to the
//! request hyper dispatches next (`frame::check` refuses it):
//!
//! - both `Content-Length` and `Transfer-Encoding` (hyper silently drops the length);
//! - a `#` in the target (the `http` crate drops the fragment);
//! - a line ending in a bare `\n` (hyper accepts it; proxies in front may not: refused);
//! - bytes the tracker cannot frame (a head or chunk line it cannot parse, a head over the
//!   limit): from there on nothing on the connection is forwarded.
//!
//! It also knows whether a head was in progress when the header read timeout fired (hyper just
//! closes; the gateway answers 408 first), and closes a connection whose writes make no
//! progress for `limits.write_timeout` (a client that does not read its response).

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// What the head of the request being served showed that hyper does not pass on (a request
/// extension; `frame::check` refuses the request).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HeadFinding {
    /// Both `Content-Length` and `Transfer-Encoding`.
    AmbiguousFraming,
    /// A `#` in the request target (the `http` crate drops the fragment silently).
    Fragment,
    /// A line of the head ends in `\n` without `\r`.
    BareLineFeed,
    /// The connection's bytes could not be framed up to this request.
    Unframed,
}

const AMBIGUOUS: u8 = 1;
const FRAGMENT: u8 = 2;
const BARE_LF: u8 = 4;

/// Facts about the connection, shared with the service and the connection task.
#[derive(Debug, Default)]
pub(crate) struct ConnFlags {
    /// The findings of every head seen and not yet served, in order (bits).
    heads: Mutex<VecDeque<u8>>,
    /// An HTTP/2 connection: no heads to follow.
    http2: AtomicBool,
    /// Bytes of a request arrived since the last response started.
    mid_request: AtomicBool,
    /// Any byte arrived on the connection.
    read_any: AtomicBool,
}

impl ConnFlags {
    /// What the head of the request now dispatched showed. A request whose head the tracker
    /// did not see (it could not frame the stream) is [`HeadFinding::Unframed`].
    pub(crate) fn take_finding(&self) -> Option<HeadFinding> {
        if self.http2.load(Ordering::Relaxed) {
            return None;
        }
        let next = self.heads.lock().ok().and_then(|mut q| q.pop_front());
        let Some(bits) = next else { return Some(HeadFinding::Unframed) };
        if bits & AMBIGUOUS != 0 {
            Some(HeadFinding::AmbiguousFraming)
        } else if bits & BARE_LF != 0 {
            Some(HeadFinding::BareLineFeed)
        } else if bits & FRAGMENT != 0 {
            Some(HeadFinding::Fragment)
        } else {
            None
        }
    }

    /// Whether any byte arrived yet (a connection that sends nothing is closed).
    pub(crate) fn read_any(&self) -> bool {
        self.read_any.load(Ordering::Relaxed)
    }

    /// Whether a request was in progress (for the header timeout).
    pub(crate) fn mid_request(&self) -> bool {
        self.mid_request.load(Ordering::Relaxed)
    }

    fn push(&self, bits: u8) {
        if let Ok(mut q) = self.heads.lock() {
            q.push_back(bits);
        }
    }
}

/// Where the tracker is in the request stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Reading a head (kept in `carry` until complete).
    Head,
    /// `n` more bytes of a `Content-Length` body.
    Length(u64),
    /// Inside a chunked body.
    Chunked(Chunk),
    /// The stream cannot be framed; nothing more is looked at.
    Lost,
    /// An HTTP/2 connection (hyper frames it).
    Http2,
}

/// The client preface of HTTP/2 with prior knowledge.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The chunked decoder's state (RFC 9112 7.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Chunk {
    /// The chunk size (hex digits so far, their value).
    Size {
        digits: u8,
        n: u64,
    },
    /// After the size: whitespace or an extension, up to `\r`.
    SizeRest {
        n: u64,
    },
    /// `\r` seen, `\n` expected.
    SizeLf {
        n: u64,
    },
    /// Chunk data left.
    Data(u64),
    DataCr,
    DataLf,
    /// A trailer line (or the final empty line when `start`).
    Trailer {
        start: bool,
    },
    TrailerLf {
        last: bool,
    },
}

/// The request framing of a connection's byte stream, and its findings.
#[derive(Debug)]
struct Framer {
    phase: Phase,
    /// The head so far.
    carry: Vec<u8>,
    limit: usize,
    /// Nothing read yet.
    fresh: bool,
}

impl Framer {
    fn new(limit: usize) -> Self {
        Self { phase: Phase::Head, carry: Vec::new(), limit, fresh: true }
    }

    /// Follow `bytes`; `found` gets each complete head's findings, in order.
    fn feed(&mut self, mut bytes: &[u8], found: &mut impl FnMut(u8)) {
        while !bytes.is_empty() {
            match self.phase {
                Phase::Lost | Phase::Http2 => return,
                Phase::Head => {
                    let from = self.carry.len();
                    if from == 0 && self.fresh && bytes.starts_with(H2_PREFACE) {
                        // HTTP/2 (prior knowledge): hyper frames it; there are no heads to follow.
                        self.phase = Phase::Http2;
                        return;
                    }
                    self.fresh = false;
                    self.carry.extend_from_slice(bytes);
                    if !bytes.contains(&b'\n') {
                        if self.carry.len() > self.limit {
                            self.lose();
                        }
                        return;
                    }
                    match parse_head(&self.carry) {
                        HeadParse::Partial if self.carry.len() > self.limit => self.lose(),
                        HeadParse::Partial => return,
                        HeadParse::Invalid => self.lose(),
                        HeadParse::Complete { len, .. } if len > self.limit => self.lose(),
                        HeadParse::Complete { len, bits, body } => {
                            found(bits);
                            self.carry.clear();
                            self.phase = body;
                            // the rest of this read: the body and whatever follows it
                            bytes = bytes.get(len - from..).unwrap_or_default();
                        }
                    }
                }
                Phase::Length(n) => {
                    let take = usize::try_from(n).unwrap_or(usize::MAX).min(bytes.len());
                    bytes = bytes.get(take..).unwrap_or_default();
                    let left = n - take as u64;
                    self.phase = if left == 0 { Phase::Head } else { Phase::Length(left) };
                }
                Phase::Chunked(Chunk::Data(n)) => {
                    let take = usize::try_from(n).unwrap_or(usize::MAX).min(bytes.len());
                    bytes = bytes.get(take..).unwrap_or_default();
                    let left = n - take as u64;
                    self.phase = Phase::Chunked(if left == 0 { Chunk::DataCr } else { Chunk::Data(left) });
                }
                Phase::Chunked(c) => {
                    let (&b, rest) = bytes.split_first().unwrap_or((&0, &[]));
                    bytes = rest;
                    self.phase = match chunk_step(c, b) {
                        Some(Some(next)) => Phase::Chunked(next),
                        Some(None) => Phase::Head,
                        None => Phase::Lost,
                    };
                }
            }
        }
    }

    fn lose(&mut self) {
        self.phase = Phase::Lost;
        self.carry = Vec::new();
    }
}

/// One byte of a chunked body: `Some(Some(next))`, `Some(None)` at the end of the body,
/// `None` when the bytes are not chunked framing.
fn chunk_step(c: Chunk, b: u8) -> Option<Option<Chunk>> {
    let hex = (b as char).to_digit(16).map(u64::from);
    let next = match (c, b) {
        (Chunk::Size { digits, n }, _) if hex.is_some() => {
            if digits >= 15 {
                return None;
            }
            Chunk::Size { digits: digits + 1, n: n * 16 + hex.unwrap_or(0) }
        }
        (Chunk::Size { digits: 0, .. }, _) => return None,
        (Chunk::Size { n, .. } | Chunk::SizeRest { n }, b'\r') => Chunk::SizeLf { n },
        (Chunk::Size { n, .. }, b' ' | b'\t' | b';') => Chunk::SizeRest { n },
        (Chunk::SizeRest { n }, b) if b != b'\n' && (b == b'\t' || b >= b' ') && b != 0x7f => Chunk::SizeRest { n },
        (Chunk::SizeLf { n: 0 }, b'\n') => Chunk::Trailer { start: true },
        (Chunk::SizeLf { n }, b'\n') => Chunk::Data(n),
        (Chunk::DataCr, b'\r') => Chunk::DataLf,
        (Chunk::DataLf, b'\n') => Chunk::Size { digits: 0, n: 0 },
        (Chunk::Trailer { start }, b'\r') => Chunk::TrailerLf { last: start },
        (Chunk::Trailer { .. }, b'\n') => return None,
        (Chunk::Trailer { .. }, _) => Chunk::Trailer { start: false },
        (Chunk::TrailerLf { last: true }, b'\n') => return Some(None),
        (Chunk::TrailerLf { last: false }, b'\n') => Chunk::Trailer { start: true },
        _ => return None,
    };
    Some(Some(next))
}

/// A head parsed (or not yet).
#[derive(Debug, PartialEq, Eq)]
enum HeadParse {
    Partial,
    Invalid,
    /// The head is `len` bytes; what it showed; how its body is framed.
    Complete {
        len: usize,
        bits: u8,
        body: Phase,
    },
}

/// Parse the head at the start of `buf` as hyper does (httparse, leading empty lines skipped).
fn parse_head(buf: &[u8]) -> HeadParse {
    let mut headers = [httparse::EMPTY_HEADER; 128];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return HeadParse::Partial,
        Err(_) => return HeadParse::Invalid,
    };
    let head = buf.get(..len).unwrap_or_default();
    let mut bits = 0;
    let bare_lf = head.iter().enumerate().any(|(i, b)| *b == b'\n' && (i == 0 || head.get(i - 1) != Some(&b'\r')));
    if bare_lf {
        bits |= BARE_LF;
    }
    if req.path.is_some_and(|p| p.contains('#')) {
        bits |= FRAGMENT;
    }
    let mut lengths = Vec::new();
    let mut chunked = None;
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            lengths.push(h.value);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            // the last coding of the last field decides (RFC 9112 6.3)
            let last = h.value.rsplit(|b| *b == b',').next().unwrap_or_default().trim_ascii();
            chunked = Some(last.eq_ignore_ascii_case(b"chunked"));
        }
    }
    let body = match chunked {
        Some(true) => {
            if !lengths.is_empty() {
                bits |= AMBIGUOUS;
            }
            Phase::Chunked(Chunk::Size { digits: 0, n: 0 })
        }
        // hyper refuses a request body that is neither chunked nor of a given length
        Some(false) => return HeadParse::Invalid,
        None => {
            let mut n = None;
            for v in lengths {
                let v = std::str::from_utf8(v).ok().map(str::trim).and_then(|v| {
                    (v.bytes().all(|b| b.is_ascii_digit()) && !v.is_empty()).then(|| v.parse::<u64>().ok()).flatten()
                });
                match (v, n) {
                    (None, _) => return HeadParse::Invalid,
                    (Some(v), Some(prev)) if v != prev => return HeadParse::Invalid,
                    (v, _) => n = v,
                }
            }
            match n {
                None | Some(0) => Phase::Head,
                Some(n) => Phase::Length(n),
            }
        }
    };
    HeadParse::Complete { len, bits, body }
}

/// A connection (a TCP socket, or the plaintext side of a TLS stream) that follows the request
/// stream and bounds how long a write may stall.
pub(crate) struct Tracked<IO> {
    io: IO,
    flags: Arc<ConnFlags>,
    framer: Framer,
    write_timeout: Duration,
    /// Running while a write is pending.
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<IO> Tracked<IO> {
    pub(crate) fn new(io: IO, flags: Arc<ConnFlags>, limit: usize, write_timeout: Duration) -> Self {
        Self { io, flags, framer: Framer::new(limit), write_timeout, stalled: None }
    }

    fn saw(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        self.flags.mid_request.store(true, Ordering::Relaxed);
        self.flags.read_any.store(true, Ordering::Relaxed);
        let flags = Arc::clone(&self.flags);
        self.framer.feed(bytes, &mut |bits| flags.push(bits));
        if self.framer.phase == Phase::Http2 {
            self.flags.http2.store(true, Ordering::Relaxed);
        }
    }

    /// A write that is not making progress: `Err` once it has stalled for the write timeout.
    fn check_stall(&mut self, cx: &mut Context<'_>, progress: bool) -> io::Result<()> {
        if progress {
            self.stalled = None;
            return Ok(());
        }
        let timeout = self.write_timeout;
        let sleep = self.stalled.get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        if sleep.as_mut().poll(cx).is_ready() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "the client read nothing for the write timeout"));
        }
        Ok(())
    }

    fn response_starts(&mut self) {
        self.flags.mid_request.store(false, Ordering::Relaxed);
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Tracked<IO> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let out = Pin::new(&mut self.io).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = out {
            let this = &mut *self;
            this.saw(buf.filled().get(before..).unwrap_or_default());
        }
        out
    }
}

impl<IO: AsyncWrite + Unpin> Tracked<IO> {
    fn stall_aware<T>(&mut self, cx: &mut Context<'_>, out: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        match self.check_stall(cx, out.is_ready()) {
            Err(e) => Poll::Ready(Err(e)),
            Ok(()) => out,
        }
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Tracked<IO> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.response_starts();
        let out = Pin::new(&mut self.io).poll_write(cx, buf);
        self.stall_aware(cx, out)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.response_starts();
        let out = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.stall_aware(cx, out)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let out = Pin::new(&mut self.io).poll_flush(cx);
        self.stall_aware(cx, out)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// The heads the tracker finds in `bytes` (each head's findings), and whether it lost the
/// framing. For the differential test against an independent parser.
#[cfg(test)]
pub(crate) fn frame_all(bytes: &[u8], split_at: &[usize]) -> (Vec<u8>, bool) {
    let mut framer = Framer::new(1 << 20);
    let mut found = Vec::new();
    let mut from = 0;
    for &at in split_at.iter().chain(std::iter::once(&bytes.len())) {
        let at = at.clamp(from, bytes.len());
        framer.feed(bytes.get(from..at).unwrap_or_default(), &mut |b| found.push(b));
        from = at;
    }
    (found, framer.phase == Phase::Lost)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn heads(bytes: &[u8]) -> Vec<u8> {
        let (found, lost) = frame_all(bytes, &[]);
        assert!(!lost, "{:?}", String::from_utf8_lossy(bytes));
        found
    }

    #[test]
    fn every_head_of_a_pipelined_stream() {
        let stream = b"POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello\
GET /b HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n\
GET /c#x HTTP/1.1\nHost: a\n\n\
POST /d HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\nT: 1\r\n\r\n\
GET /e HTTP/1.1\r\nHost: a\r\n\r\n";
        assert_eq!(heads(stream), vec![0, AMBIGUOUS, FRAGMENT | BARE_LF, 0, 0]);
        // the same, split at every byte
        for at in 0..stream.len() {
            assert_eq!(frame_all(stream, &[at]).0, vec![0, AMBIGUOUS, FRAGMENT | BARE_LF, 0, 0], "split at {at}");
        }
        let every: Vec<usize> = (1..stream.len()).collect();
        assert_eq!(frame_all(stream, &every).0.len(), 5);
    }

    #[test]
    fn what_cannot_be_framed_is_lost() {
        for bad in [
            &b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n"[..],
            b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: +1\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\r\n",
            b"GET / HTTP/1.1\r\nA: 1\r\n folded\r\n\r\n",
            b"GET / HTTP/1.1\r\nA : 1\r\n\r\n",
        ] {
            assert!(frame_all(bad, &[]).1, "{:?}", String::from_utf8_lossy(bad));
        }
        let mut long = b"GET / HTTP/1.1\r\nX: ".to_vec();
        long.extend(std::iter::repeat_n(b'a', 2000));
        let mut f = Framer::new(1000);
        f.feed(&long, &mut |_| {});
        assert_eq!(f.phase, Phase::Lost);
    }
}
