//! Barcode scanners that send each code as a line of bytes (serial or USB-CDC scanners):
//! the sans-IO [`ScanDecoder`], the [`Scanner`] trait, the driver and a simulator.
//! Keyboard-wedge scanners are in [`crate::wedge`]; both hand out the same raw codes,
//! which [`crate::barcode::interpret`] then checks.
//!
//! Must not: interpret a code (that is `barcode`) or know what the till does with it.

use std::collections::VecDeque;
use std::io;
use std::time::{Duration, Instant};

use crate::error::{DeviceError, DeviceRole, InputError};
use crate::transport::Transport;

/// Longest code accepted. A GS1-128 or a payment QR fits in far less; a scanner that
/// sends more without an end of line is misconfigured or sending noise.
pub const SCAN_CODE_BYTES_MAX: usize = 256;

/// Bytes read at a time. Every code needs an end-of-line byte, so one read yields at most
/// this many results; the driver reads again only when they are used up.
const READ_CHUNK_BYTES: usize = 64;

const CR: u8 = b'\r';
const LF: u8 = b'\n';
/// GS separates GS1 element strings in GS1-128 and GS1 DataMatrix; it is part of the code.
const GS1_SEPARATOR: u8 = 0x1D;

/// Why bytes from a scanner did not make a code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScanError {
    #[error("more than {bytes_max} bytes arrived without an end of line")]
    TooLong { bytes_max: usize },
    #[error("byte 0x{byte:02X} is not part of a barcode")]
    BadByte { byte: u8 },
    #[error("the code is not valid UTF-8 text")]
    NotText,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Collecting,
    /// The current code broke a rule; bytes are dropped until the end of line.
    Skipping,
}

/// Turns a byte stream into codes: a code ends at CR or LF (CRLF counts once), is at most
/// `code_bytes_max` bytes, and holds printable text. Does no I/O.
#[derive(Debug, Clone)]
pub struct ScanDecoder {
    code: Vec<u8>,
    code_bytes_max: usize,
    state: State,
    bad_byte: Option<u8>,
}

impl Default for ScanDecoder {
    fn default() -> Self {
        ScanDecoder::new(SCAN_CODE_BYTES_MAX)
    }
}

impl ScanDecoder {
    pub fn new(code_bytes_max: usize) -> ScanDecoder {
        assert!(code_bytes_max > 0, "a code has at least one byte");
        ScanDecoder { code: Vec::with_capacity(code_bytes_max), code_bytes_max, state: State::Collecting, bad_byte: None }
    }

    /// Takes one byte; returns a code or an error when this byte completes one.
    ///
    /// An over-long code is reported as soon as it passes the limit, not at its end of
    /// line, which a noisy line may never send; the bytes up to that end of line are then
    /// dropped, since nothing marks where the noise stops and a real code starts.
    pub fn push(&mut self, byte: u8) -> Option<Result<String, ScanError>> {
        if byte == CR || byte == LF {
            let state = std::mem::replace(&mut self.state, State::Collecting);
            let code = std::mem::take(&mut self.code);
            if let Some(byte) = self.bad_byte.take() {
                return Some(Err(ScanError::BadByte { byte }));
            }
            if state == State::Skipping || code.is_empty() {
                return None;
            }
            return Some(String::from_utf8(code).map_err(|_| ScanError::NotText));
        }
        if self.state == State::Skipping {
            return None;
        }
        let allowed = (0x20..=0x7E).contains(&byte) || byte >= 0x80 || byte == GS1_SEPARATOR;
        if !allowed {
            // Reported at the end of line, so the rest of the code is not taken for another.
            self.bad_byte.get_or_insert(byte);
            return None;
        }
        if self.code.len() == self.code_bytes_max {
            self.state = State::Skipping;
            self.code.clear();
            self.bad_byte = None;
            return Some(Err(ScanError::TooLong { bytes_max: self.code_bytes_max }));
        }
        self.code.push(byte);
        None
    }

    /// Takes many bytes; returns every code or error they complete, in order.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<Result<String, ScanError>> {
        bytes.iter().filter_map(|&b| self.push(b)).collect()
    }
}

/// A barcode scanner.
pub trait Scanner: Send {
    /// Waits up to `timeout` for the next code: `Ok(None)` when nothing was scanned.
    /// A bad scan is an error, and the scanner keeps working for the next one.
    fn next_code(&mut self, timeout: Duration) -> Result<Option<String>, DeviceError>;

    /// Where the scanner is, for messages.
    fn location(&self) -> &str;
}

fn scan_error(location: &str, e: ScanError) -> DeviceError {
    DeviceError::BadInput { role: DeviceRole::Scanner, location: location.to_owned(), reason: InputError::Scan(e) }
}

/// A scanner that sends lines over a serial port, TCP or a device node.
#[derive(Debug)]
pub struct LineScanner<T: Transport> {
    transport: T,
    decoder: ScanDecoder,
    pending: VecDeque<Result<String, ScanError>>,
}

impl<T: Transport> LineScanner<T> {
    pub fn new(transport: T) -> LineScanner<T> {
        LineScanner { transport, decoder: ScanDecoder::default(), pending: VecDeque::new() }
    }
}

impl<T: Transport> Scanner for LineScanner<T> {
    fn location(&self) -> &str {
        self.transport.location()
    }

    fn next_code(&mut self, timeout: Duration) -> Result<Option<String>, DeviceError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(result) = self.pending.pop_front() {
                return result.map(Some).map_err(|e| scan_error(self.transport.location(), e));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let mut buf = [0u8; READ_CHUNK_BYTES];
            let n = match self.transport.read_timeout(&mut buf, left) {
                Err(e) if e.kind() == io::ErrorKind::TimedOut => return Ok(None),
                Err(e) => {
                    return Err(DeviceError::from_io(DeviceRole::Scanner, self.transport.location(), left, e));
                }
                Ok(0) => return Err(DeviceError::Unplugged { role: DeviceRole::Scanner, location: self.transport.location().to_owned() }),
                Ok(n) => n,
            };
            self.pending.extend(self.decoder.feed(&buf[..n]));
            debug_assert!(self.pending.len() <= READ_CHUNK_BYTES, "one result per byte at most");
            if self.pending.is_empty() && left.is_zero() {
                return Ok(None);
            }
        }
    }
}

/// Byte chunks a [`SimulatedScanner`] holds; older ones are dropped.
pub const SIMULATED_SCAN_CHUNKS_MAX: usize = 256;

/// A scanner fed by a script: bytes go through the same [`ScanDecoder`] as a real one.
#[derive(Debug, Default)]
pub struct SimulatedScanner {
    script: VecDeque<Vec<u8>>,
    decoder: ScanDecoder,
    pending: VecDeque<Result<String, ScanError>>,
}

impl SimulatedScanner {
    pub fn new() -> SimulatedScanner {
        SimulatedScanner::default()
    }

    /// Queues raw bytes as the scanner would send them.
    pub fn push_bytes(&mut self, bytes: &[u8]) {
        if self.script.len() == SIMULATED_SCAN_CHUNKS_MAX {
            self.script.pop_front();
        }
        self.script.push_back(bytes.to_vec());
    }

    /// Queues one code followed by CR, as most scanners are set up.
    pub fn push_code(&mut self, code: &str) {
        let mut bytes = code.as_bytes().to_vec();
        bytes.push(CR);
        self.push_bytes(&bytes);
    }
}

impl Scanner for SimulatedScanner {
    fn location(&self) -> &str {
        "simulator"
    }

    fn next_code(&mut self, _timeout: Duration) -> Result<Option<String>, DeviceError> {
        loop {
            if let Some(result) = self.pending.pop_front() {
                return result.map(Some).map_err(|e| scan_error("simulator", e));
            }
            let Some(chunk) = self.script.pop_front() else {
                return Ok(None);
            };
            self.pending.extend(self.decoder.feed(&chunk));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::MemoryTransport;

    #[test]
    fn codes_end_at_cr_or_lf() {
        let mut d = ScanDecoder::default();
        let out = d.feed(b"6901234567892\r\n4006381333931\n\r96385074\r");
        let codes: Vec<_> = out.into_iter().map(|r| r.expect("valid")).collect();
        assert_eq!(codes, ["6901234567892", "4006381333931", "96385074"]);
    }

    #[test]
    fn codes_split_across_reads() {
        let mut d = ScanDecoder::default();
        assert!(d.feed(b"690123").is_empty());
        assert_eq!(d.feed(b"4567892\r"), vec![Ok("6901234567892".to_owned())]);
    }

    #[test]
    fn over_long_input_is_bounded_and_reported_once() {
        let mut d = ScanDecoder::new(16);
        let noise = vec![b'7'; 1000];
        let out = d.feed(&noise);
        assert_eq!(out, vec![Err(ScanError::TooLong { bytes_max: 16 })]);
        // The end of the noise resets the decoder; the next code is fine.
        assert_eq!(d.feed(b"\r12345\r"), vec![Ok("12345".to_owned())]);
    }

    #[test]
    fn control_byte_spoils_only_its_code() {
        let mut d = ScanDecoder::default();
        let out = d.feed(b"12\x0734\r5678\r");
        assert_eq!(out, vec![Err(ScanError::BadByte { byte: 0x07 }), Ok("5678".to_owned())]);
    }

    #[test]
    fn line_scanner_reads_codes_and_reports_silence() {
        let mut t = MemoryTransport::new("mem");
        t.push_incoming(b"69012345");
        t.push_incoming(b"67892\r4006381333931\r");
        let mut s = LineScanner::new(t);
        let wait = Duration::from_millis(10);
        assert_eq!(s.next_code(wait).expect("code"), Some("6901234567892".into()));
        assert_eq!(s.next_code(wait).expect("code"), Some("4006381333931".into()));
        assert_eq!(s.next_code(wait).expect("silence"), None);
    }

    #[test]
    fn simulated_scanner_reports_over_long_input() {
        let mut s = SimulatedScanner::new();
        s.push_bytes(&[b'1'; SCAN_CODE_BYTES_MAX + 10]);
        let e = s.next_code(Duration::ZERO).expect_err("too long");
        assert_eq!(
            e.to_string(),
            "barcode scanner at simulator: more than 256 bytes arrived without an end of line; \
             scan again or type the code by hand"
        );
        // Bytes up to the next end of line belong to the bad code and are dropped.
        s.push_bytes(b"111\r");
        s.push_code("96385074");
        assert_eq!(s.next_code(Duration::ZERO).expect("next"), Some("96385074".into()));
    }
}
