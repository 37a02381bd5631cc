//! Weighing scales on a serial line: the sans-IO [`ScaleParser`], the [`Scale`] trait,
//! the driver and a simulator.
//!
//! The protocol is the common ASCII line that CAS-style and many Chinese counter scales
//! send, either continuously or once per request:
//!
//! ```text
//! ST,GS,+  1.234kg\r\n     stable, gross, 1.234 kg
//! US,NT,-  0.012kg\r\n     unstable (still moving), net, -0.012 kg
//! OL,GS,+  -----kg\r\n     overload: the weight field means nothing
//! ```
//!
//! The unit may also be `g`, and may stand in a fourth field (`ST,GS,  1234,g`).
//! Deadlines are measured on an injected [`Clock`], so a test of a scale that never
//! settles steps through simulated time instead of sleeping.

use std::collections::VecDeque;
use std::io;
use std::time::Duration;

use rust_decimal::Decimal;

use crate::clock::{Clock, StepClock};
use crate::error::{millis, DeviceError, DeviceRole, InputError};
use crate::transport::{MemoryTransport, Transport};

/// Longest line accepted; real frames are under 20 bytes.
pub const SCALE_LINE_BYTES_MAX: usize = 64;

/// Readings looked at by one [`Scale::read_stable`], whatever the clock says: a bound that
/// holds even with a clock that does not move.
pub const SETTLE_READINGS_MAX: usize = 1000;

/// Reads done while waiting for one reading, whatever the clock says.
const READS_PER_READING_MAX: usize = 1000;

const READ_CHUNK_BYTES: usize = 64;

/// Why a line from the scale is not a reading.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    #[error("the scale sent more than {bytes_max} bytes without an end of line")]
    TooLong { bytes_max: usize },
    #[error("the scale sent {line:?}, which is not a weight line (expected e.g. \"ST,GS,+  1.234kg\")")]
    Malformed { line: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stability {
    Stable,
    Unstable,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightMode {
    Gross,
    Net,
}

/// One weight reading, in kilograms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reading {
    pub stability: Stability,
    pub mode: WeightMode,
    pub kg: Decimal,
}

/// What one line says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame {
    Weight(Reading),
    Overload,
}

/// Parses one line without its line ending.
pub fn parse_line(line: &str) -> Result<Frame, FrameError> {
    let malformed = || FrameError::Malformed { line: line.chars().take(SCALE_LINE_BYTES_MAX).collect() };
    let fields: Vec<&str> = line.split(',').map(str::trim).collect();
    let (status, mode, weight, unit) = match fields.as_slice() {
        [status, mode, weight] => (*status, *mode, *weight, None),
        [status, mode, weight, unit] => (*status, *mode, *weight, Some(*unit)),
        _ => return Err(malformed()),
    };
    let stability = match status {
        "ST" => Stability::Stable,
        "US" => Stability::Unstable,
        "OL" => return Ok(Frame::Overload),
        _ => return Err(malformed()),
    };
    let mode = match mode {
        "GS" => WeightMode::Gross,
        "NT" => WeightMode::Net,
        _ => return Err(malformed()),
    };
    let (number, unit) = match unit {
        Some(unit) => (weight, unit),
        None => {
            let at = weight.find(|c: char| c.is_ascii_alphabetic()).ok_or_else(malformed)?;
            (weight[..at].trim_end(), &weight[at..])
        }
    };
    let (negative, digits) = match number.as_bytes().first() {
        Some(b'-') => (true, number[1..].trim_start()),
        Some(b'+') => (false, number[1..].trim_start()),
        _ => (false, number),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(malformed());
    }
    let value: Decimal = digits.parse().map_err(|_| malformed())?;
    let kg = match unit {
        "kg" => value,
        "g" => value / Decimal::ONE_THOUSAND,
        _ => return Err(malformed()),
    };
    Ok(Frame::Weight(Reading { stability, mode, kg: if negative { -kg } else { kg } }))
}

/// Splits the byte stream into lines (LF ends a line, CR is dropped) and parses them.
#[derive(Debug, Clone, Default)]
pub struct ScaleParser {
    line: Vec<u8>,
    skipping: bool,
}

impl ScaleParser {
    pub fn new() -> ScaleParser {
        ScaleParser::default()
    }

    /// Forgets a half-received line, e.g. after input was discarded.
    pub fn reset(&mut self) {
        self.line.clear();
        self.skipping = false;
    }

    pub fn push(&mut self, byte: u8) -> Option<Result<Frame, FrameError>> {
        match byte {
            b'\n' => {
                let skipped = std::mem::replace(&mut self.skipping, false);
                let line = std::mem::take(&mut self.line);
                if skipped || line.is_empty() {
                    return None;
                }
                let text = String::from_utf8_lossy(&line);
                Some(parse_line(&text))
            }
            b'\r' => None,
            _ if self.skipping => None,
            _ if self.line.len() == SCALE_LINE_BYTES_MAX => {
                self.skipping = true;
                self.line.clear();
                Some(Err(FrameError::TooLong { bytes_max: SCALE_LINE_BYTES_MAX }))
            }
            _ => {
                self.line.push(byte);
                None
            }
        }
    }

    pub fn feed(&mut self, bytes: &[u8]) -> Vec<Result<Frame, FrameError>> {
        bytes.iter().filter_map(|&b| self.push(b)).collect()
    }
}

/// A weighing scale.
pub trait Scale: Send {
    /// The next reading, moving or not, within `timeout`.
    fn read(&mut self, timeout: Duration) -> Result<Reading, DeviceError>;

    /// The first stable reading within `timeout`; [`DeviceError::NotSettled`] when the
    /// weight was still moving at the deadline.
    fn read_stable(&mut self, timeout: Duration) -> Result<Reading, DeviceError>;
}

/// A scale on a serial port (or any transport), in continuous mode (`request` empty) or
/// request mode (`request` sent before each reading, e.g. `b"W\r"`).
pub struct SerialScale<T: Transport, C: Clock> {
    transport: T,
    clock: C,
    request: Vec<u8>,
    parser: ScaleParser,
    pending: VecDeque<Result<Frame, FrameError>>,
}

impl<T: Transport, C: Clock> SerialScale<T, C> {
    pub fn new(transport: T, clock: C, request: &[u8]) -> SerialScale<T, C> {
        SerialScale { transport, clock, request: request.to_vec(), parser: ScaleParser::new(), pending: VecDeque::new() }
    }

    pub fn transport(&self) -> &T {
        &self.transport
    }

    fn io_error(&self, timeout_ms: u64, e: io::Error) -> DeviceError {
        DeviceError::from_io(DeviceRole::Scale, self.transport.location(), Duration::from_millis(timeout_ms), e)
    }

    /// Starts a fresh call: readings that arrived before it describe an earlier item.
    fn start(&mut self, timeout: Duration) -> Result<(u64, u64), DeviceError> {
        let timeout_ms = millis(timeout);
        self.pending.clear();
        self.parser.reset();
        self.transport.discard_input().map_err(|e| self.io_error(timeout_ms, e))?;
        Ok((self.clock.now_ms().saturating_add(timeout_ms), timeout_ms))
    }

    /// One reading before `deadline_ms`. Bad lines are skipped (line noise happens);
    /// only when nothing good came is the last bad one reported.
    fn reading_before(&mut self, deadline_ms: u64, timeout_ms: u64) -> Result<Reading, DeviceError> {
        let location = self.transport.location().to_owned();
        if !self.request.is_empty() {
            let request = self.request.clone();
            self.transport.write_all(&request).map_err(|e| self.io_error(timeout_ms, e))?;
        }
        let mut last_bad = None;
        for _ in 0..READS_PER_READING_MAX {
            while let Some(frame) = self.pending.pop_front() {
                match frame {
                    Ok(Frame::Weight(reading)) => return Ok(reading),
                    Ok(Frame::Overload) => return Err(DeviceError::Overload { location }),
                    Err(e) => last_bad = Some(e),
                }
            }
            let now = self.clock.now_ms();
            if now >= deadline_ms {
                break;
            }
            let mut buf = [0u8; READ_CHUNK_BYTES];
            match self.transport.read_timeout(&mut buf, Duration::from_millis(deadline_ms - now)) {
                Ok(0) => return Err(DeviceError::Unplugged { role: DeviceRole::Scale, location }),
                Ok(n) => self.pending.extend(self.parser.feed(&buf[..n])),
                Err(e) if e.kind() == io::ErrorKind::TimedOut => {}
                Err(e) => return Err(self.io_error(timeout_ms, e)),
            }
        }
        Err(match last_bad {
            Some(e) => DeviceError::BadInput { role: DeviceRole::Scale, location, reason: InputError::ScaleFrame(e) },
            None => DeviceError::Timeout { role: DeviceRole::Scale, location, timeout_ms },
        })
    }
}

impl<T: Transport, C: Clock> Scale for SerialScale<T, C> {
    fn read(&mut self, timeout: Duration) -> Result<Reading, DeviceError> {
        let (deadline_ms, timeout_ms) = self.start(timeout)?;
        self.reading_before(deadline_ms, timeout_ms)
    }

    fn read_stable(&mut self, timeout: Duration) -> Result<Reading, DeviceError> {
        let (deadline_ms, timeout_ms) = self.start(timeout)?;
        let not_settled = |location: &str| DeviceError::NotSettled { location: location.to_owned(), timeout_ms };
        let mut seen_moving = false;
        for _ in 0..SETTLE_READINGS_MAX {
            match self.reading_before(deadline_ms, timeout_ms) {
                Ok(r) if r.stability == Stability::Stable => return Ok(r),
                Ok(_) => seen_moving = true,
                // The scale answered with moving readings and then the time ran out; a
                // scale that never answered stays a timeout.
                Err(DeviceError::Timeout { .. }) if seen_moving => return Err(not_settled(self.transport.location())),
                Err(e) => return Err(e),
            }
            if self.clock.now_ms() >= deadline_ms {
                break;
            }
        }
        Err(not_settled(self.transport.location()))
    }
}

impl<T: Transport + std::fmt::Debug, C: Clock> std::fmt::Debug for SerialScale<T, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SerialScale").field("transport", &self.transport).field("request", &self.request).finish()
    }
}

/// Simulated milliseconds one reading of a [`SimulatedScale`] takes.
const SIMULATED_READING_MS: u64 = 100;

/// A scale that answers each request with the next scripted line, then repeats the last
/// one, as a scale with an item left on it would. Runs the real parser and driver on
/// simulated time, so it never sleeps.
pub struct SimulatedScale {
    inner: SerialScale<MemoryTransport, StepClock>,
}

impl SimulatedScale {
    /// `lines` are frames without line endings, e.g. `"US,GS,+  0.498kg"`.
    pub fn new(lines: &[&str]) -> SimulatedScale {
        let mut script: VecDeque<Vec<u8>> = lines.iter().map(|l| format!("{l}\r\n").into_bytes()).collect();
        let mut last: Vec<u8> = Vec::new();
        let mut transport = MemoryTransport::new("simulator");
        transport.respond_with(Box::new(move |_request: &[u8]| {
            if let Some(next) = script.pop_front() {
                last = next;
            }
            last.clone()
        }));
        SimulatedScale { inner: SerialScale::new(transport, StepClock::new(SIMULATED_READING_MS), b"W\r") }
    }
}

impl Scale for SimulatedScale {
    fn read(&mut self, timeout: Duration) -> Result<Reading, DeviceError> {
        self.inner.read(timeout)
    }

    fn read_stable(&mut self, timeout: Duration) -> Result<Reading, DeviceError> {
        self.inner.read_stable(timeout)
    }
}

impl std::fmt::Debug for SimulatedScale {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimulatedScale").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weight(stability: Stability, kg: Decimal) -> Frame {
        Frame::Weight(Reading { stability, mode: WeightMode::Gross, kg })
    }

    #[test]
    fn parses_common_lines() {
        assert_eq!(parse_line("ST,GS,+  1.234kg"), Ok(weight(Stability::Stable, Decimal::new(1234, 3))));
        assert_eq!(parse_line("US,GS,+  0.500kg"), Ok(weight(Stability::Unstable, Decimal::new(500, 3))));
        assert_eq!(
            parse_line("ST,NT,-  0.012kg"),
            Ok(Frame::Weight(Reading { stability: Stability::Stable, mode: WeightMode::Net, kg: Decimal::new(-12, 3) }))
        );
        assert_eq!(parse_line("ST,GS,  1234,g"), Ok(weight(Stability::Stable, Decimal::new(1234, 3))));
        assert_eq!(parse_line("OL,GS,+ -----kg"), Ok(Frame::Overload));
    }

    #[test]
    fn rejects_garbage() {
        for line in ["", "ST,GS", "XX,GS,+1.0kg", "ST,GS,+1.0lb", "ST,GS,+1.x0kg", "ST,GS,+kg", "ST,ZZ,1kg"] {
            assert!(matches!(parse_line(line), Err(FrameError::Malformed { .. })), "{line:?}");
        }
    }

    #[test]
    fn parser_bounds_lines() {
        let mut p = ScaleParser::new();
        let out = p.feed(&[b'9'; 200]);
        assert_eq!(out, vec![Err(FrameError::TooLong { bytes_max: SCALE_LINE_BYTES_MAX })]);
        let out = p.feed(b"\nST,GS,+  1.000kg\r\n");
        assert_eq!(out, vec![Ok(weight(Stability::Stable, Decimal::ONE))]);
    }

    #[test]
    fn stable_after_moving() {
        let mut s = SimulatedScale::new(&["US,GS,+  0.498kg", "US,GS,+  0.501kg", "ST,GS,+  0.500kg"]);
        let r = s.read_stable(Duration::from_secs(3)).expect("settles");
        assert_eq!(r.kg, Decimal::new(500, 3));
    }

    #[test]
    fn never_settles_is_an_error_after_the_deadline() {
        let mut s = SimulatedScale::new(&["US,GS,+  0.498kg", "US,GS,+  0.503kg"]);
        let e = s.read_stable(Duration::from_secs(3)).expect_err("keeps moving");
        assert_eq!(e.to_string(), "scale at simulator never settled within 3 s; weigh again or enter the weight by hand");
    }

    #[test]
    fn continuous_scale_skips_noise() {
        let mut t = MemoryTransport::new("mem");
        t.push_incoming(b"\x00\x00garbage\r\nST,GS,+  2.");
        t.push_incoming(b"250kg\r\n");
        let mut s = SerialScale::new(t, StepClock::new(1), b"");
        assert_eq!(s.read(Duration::from_secs(1)).expect("reading").kg, Decimal::new(2250, 3));
    }

    #[test]
    fn silent_scale_times_out_and_overload_is_reported() {
        let mut s = SerialScale::new(MemoryTransport::new("/dev/ttyS1"), StepClock::new(10), b"");
        let e = s.read(Duration::from_millis(500)).expect_err("silent");
        assert!(matches!(e, DeviceError::Timeout { timeout_ms: 500, .. }), "{e:?}");

        let mut s = SimulatedScale::new(&["OL,GS,+ -----kg"]);
        assert!(matches!(s.read_stable(Duration::from_secs(1)), Err(DeviceError::Overload { .. })));
    }
}
