//! What hyper does not tell the service about a connection's bytes: a request head carrying
//! both `Content-Length` and `Transfer-Encoding` (hyper silently drops the length; the gateway
//! refuses the request with 400), and whether a head was in progress when the header read
//! timeout fired (hyper just closes; the gateway answers 408 first).
//!
//! [`Tracked`] wraps the socket: after each response starts (and at the start) it looks at the
//! next request head as it is read (only the head; at most the configured head size).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// What the head of the request being served showed that hyper does not pass on (a request
/// extension; `frame::check` refuses the request).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HeadFinding {
    /// Both `Content-Length` and `Transfer-Encoding`.
    AmbiguousFraming,
    /// A `#` in the request target (the `http` crate drops the fragment silently).
    Fragment,
}

const AMBIGUOUS: u8 = 1;
const FRAGMENT: u8 = 2;

/// Facts about the connection, shared with the service and the connection task.
#[derive(Debug, Default)]
pub(crate) struct ConnFlags {
    /// What the head being served showed (`AMBIGUOUS`, `FRAGMENT` bits).
    findings: AtomicU8,
    /// Bytes of a request arrived since the last response started.
    mid_request: AtomicBool,
}

impl ConnFlags {
    /// What the head of the request now served showed (and forget it).
    pub(crate) fn take_finding(&self) -> Option<HeadFinding> {
        let bits = self.findings.swap(0, Ordering::Relaxed);
        if bits & AMBIGUOUS != 0 {
            Some(HeadFinding::AmbiguousFraming)
        } else if bits & FRAGMENT != 0 {
            Some(HeadFinding::Fragment)
        } else {
            None
        }
    }

    /// Whether a request was in progress (for the header timeout).
    pub(crate) fn mid_request(&self) -> bool {
        self.mid_request.load(Ordering::Relaxed)
    }
}

/// A connection (a TCP socket, or the plaintext side of a TLS stream) that watches request heads.
pub(crate) struct Tracked<IO> {
    io: IO,
    flags: Arc<ConnFlags>,
    /// Looking for the end of a head.
    scanning: bool,
    /// The head so far, when it came in more than one read.
    carry: Vec<u8>,
    limit: usize,
}

impl<IO> Tracked<IO> {
    pub(crate) fn new(io: IO, flags: Arc<ConnFlags>, limit: usize) -> Self {
        Self { io, flags, scanning: true, carry: Vec::new(), limit }
    }

    fn saw(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        self.flags.mid_request.store(true, Ordering::Relaxed);
        if !self.scanning {
            return;
        }
        if self.carry.is_empty()
            && let Some(end) = head_end(bytes)
        {
            self.finish(bytes.get(..end).unwrap_or_default());
            return;
        }
        let from = self.carry.len().saturating_sub(3);
        self.carry.extend_from_slice(bytes);
        if let Some(end) = self.carry.get(from..).and_then(head_end) {
            let head = std::mem::take(&mut self.carry);
            self.finish(head.get(..from + end).unwrap_or_default());
        } else if self.carry.len() > self.limit {
            // hyper refuses it (431); stop looking.
            self.scanning = false;
            self.carry = Vec::new();
        }
    }

    fn finish(&mut self, head: &[u8]) {
        self.scanning = false;
        self.carry.clear();
        let mut bits = 0;
        if ambiguous(head) {
            bits |= AMBIGUOUS;
        }
        if fragment(head) {
            bits |= FRAGMENT;
        }
        if bits != 0 {
            self.flags.findings.store(bits, Ordering::Relaxed);
        }
    }
}

/// The offset just past the blank line ending a head.
fn head_end(bytes: &[u8]) -> Option<usize> {
    bytes.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

/// Both `Content-Length` and `Transfer-Encoding` among the head's header lines.
fn ambiguous(head: &[u8]) -> bool {
    let (mut cl, mut te) = (false, false);
    for line in head.split(|b| *b == b'\n').skip(1) {
        let name = line.split(|b| *b == b':').next().unwrap_or_default();
        let name = name.trim_ascii();
        cl |= name.eq_ignore_ascii_case(b"content-length");
        te |= name.eq_ignore_ascii_case(b"transfer-encoding");
    }
    cl && te
}

/// A `#` in the request line's target.
fn fragment(head: &[u8]) -> bool {
    let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    line.split(|b| *b == b' ').nth(1).is_some_and(|target| target.contains(&b'#'))
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

impl<IO: AsyncWrite + Unpin> AsyncWrite for Tracked<IO> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        // A response is going out: the next bytes read start the next request.
        self.scanning = true;
        self.carry.clear();
        self.flags.mid_request.store(false, Ordering::Relaxed);
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.scanning = true;
        self.carry.clear();
        self.flags.mid_request.store(false, Ordering::Relaxed);
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_both_framing_headers_in_a_head_only() {
        assert!(ambiguous(b"POST / HTTP/1.1\r\nHost: a\r\ncontent-length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"));
        assert!(ambiguous(b"POST / HTTP/1.1\r\nTransfer-Encoding : chunked\r\nContent-Length: 4\r\n\r\n"));
        assert!(!ambiguous(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\n"));
        assert!(!ambiguous(b"POST /content-length HTTP/1.1\r\nX-Transfer-Encoding: chunked\r\n\r\n"));
        assert!(fragment(b"GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n"));
        assert!(!fragment(b"GET /a HTTP/1.1\r\nX-A: #\r\n\r\n"));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\n\r\nbody"), Some(18));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\n"), None);
    }
}
