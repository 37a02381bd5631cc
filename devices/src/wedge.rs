//! Keyboard-wedge scanners: USB scanners that type each code as key presses followed by
//! Enter. On Linux their events are read from /dev/input/eventN as `struct input_event`
//! records and turned back into text with a US keyboard map.
//!
//! [`KeyboardDecoder`] is pure (records in, codes out); [`WedgeScanner`] only opens the
//! node, grabs it so the keystrokes do not also land in whatever window has focus, and
//! reads with a deadline.
//!
//! Must not: interpret a code (that is `barcode`).

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::path::Path;
use std::time::Duration;

use crate::error::{DeviceError, DeviceRole, InputError};
use crate::scanner::{ScanDecoder, ScanError, Scanner};

/// Size of `struct input_event` on this target (24 bytes on 64-bit Linux: a timeval,
/// then u16 type, u16 code, i32 value).
pub const INPUT_EVENT_BYTES: usize = std::mem::size_of::<nix::libc::input_event>();

/// Events read at a time.
const READ_EVENTS_MAX: usize = 64;

const EV_KEY: u16 = 0x01;
const KEY_RELEASED: i32 = 0;
const KEY_ENTER: u16 = 28;
const KEY_KPENTER: u16 = 96;
const KEY_TAB: u16 = 15;
const KEY_LEFTSHIFT: u16 = 42;
const KEY_RIGHTSHIFT: u16 = 54;

/// The fields of one `struct input_event` that matter here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputEvent {
    pub kind: u16,
    pub code: u16,
    pub value: i32,
}

impl InputEvent {
    /// Reads one record; the time stamp is skipped. Native byte order, as the kernel
    /// writes it.
    pub fn parse(record: &[u8; INPUT_EVENT_BYTES]) -> InputEvent {
        let tail = INPUT_EVENT_BYTES - 8;
        let u16_at = |i: usize| u16::from_ne_bytes([record[i], record[i + 1]]);
        let value = i32::from_ne_bytes([record[tail + 4], record[tail + 5], record[tail + 6], record[tail + 7]]);
        InputEvent { kind: u16_at(tail), code: u16_at(tail + 2), value }
    }

    /// The record the kernel would write for this event, time stamp zero. For tests and
    /// simulators.
    pub fn to_record(self) -> [u8; INPUT_EVENT_BYTES] {
        let mut record = [0u8; INPUT_EVENT_BYTES];
        let tail = INPUT_EVENT_BYTES - 8;
        record[tail..tail + 2].copy_from_slice(&self.kind.to_ne_bytes());
        record[tail + 2..tail + 4].copy_from_slice(&self.code.to_ne_bytes());
        record[tail + 4..].copy_from_slice(&self.value.to_ne_bytes());
        record
    }
}

/// The character a key types on a US layout, for the keys scanners use.
fn key_char(code: u16, shift: bool) -> Option<u8> {
    const LETTERS_Q: &[u8] = b"qwertyuiop";
    const LETTERS_A: &[u8] = b"asdfghjkl";
    const LETTERS_Z: &[u8] = b"zxcvbnm";
    let letter = |row: &[u8], first: u16| {
        let c = row[usize::from(code - first)];
        if shift {
            c.to_ascii_uppercase()
        } else {
            c
        }
    };
    let pair = |plain: u8, shifted: u8| if shift { shifted } else { plain };
    Some(match code {
        2..=10 => pair(b'1' + u8::try_from(code - 2).ok()?, b"!@#$%^&*("[usize::from(code - 2)]),
        11 => pair(b'0', b')'),
        12 => pair(b'-', b'_'),
        13 => pair(b'=', b'+'),
        16..=25 => letter(LETTERS_Q, 16),
        26 => pair(b'[', b'{'),
        27 => pair(b']', b'}'),
        30..=38 => letter(LETTERS_A, 30),
        39 => pair(b';', b':'),
        40 => pair(b'\'', b'"'),
        41 => pair(b'`', b'~'),
        43 => pair(b'\\', b'|'),
        44..=50 => letter(LETTERS_Z, 44),
        51 => pair(b',', b'<'),
        52 => pair(b'.', b'>'),
        53 => pair(b'/', b'?'),
        55 => b'*',
        57 => b' ',
        // Keypad, which some scanners use for digits.
        71 => b'7',
        72 => b'8',
        73 => b'9',
        74 => b'-',
        75 => b'4',
        76 => b'5',
        77 => b'6',
        78 => b'+',
        79 => b'1',
        80 => b'2',
        81 => b'3',
        82 => b'0',
        83 => b'.',
        98 => b'/',
        _ => return None,
    })
}

/// Turns evdev records into codes: key presses map to characters, Enter (or Tab) ends a
/// code, and the same length bound as serial scanners applies.
#[derive(Debug, Clone, Default)]
pub struct KeyboardDecoder {
    /// Bytes of a record split across reads; always shorter than one record.
    partial: Vec<u8>,
    shift: bool,
    line: ScanDecoder,
}

impl KeyboardDecoder {
    pub fn new() -> KeyboardDecoder {
        KeyboardDecoder::default()
    }

    pub fn push_event(&mut self, event: InputEvent) -> Option<Result<String, ScanError>> {
        if event.kind != EV_KEY {
            return None;
        }
        if event.code == KEY_LEFTSHIFT || event.code == KEY_RIGHTSHIFT {
            self.shift = event.value != KEY_RELEASED;
            return None;
        }
        if event.value == KEY_RELEASED {
            return None;
        }
        match event.code {
            KEY_ENTER | KEY_KPENTER | KEY_TAB => self.line.push(b'\r'),
            // Keys that type nothing (Caps Lock, F-keys) are left out.
            code => key_char(code, self.shift).and_then(|c| self.line.push(c)),
        }
    }

    /// Takes bytes as read from the event node; returns the codes they complete.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<Result<String, ScanError>> {
        let mut out = Vec::new();
        let mut rest = bytes;
        if !self.partial.is_empty() {
            let need = (INPUT_EVENT_BYTES - self.partial.len()).min(rest.len());
            self.partial.extend_from_slice(&rest[..need]);
            rest = &rest[need..];
            if self.partial.len() < INPUT_EVENT_BYTES {
                return out;
            }
            let record: [u8; INPUT_EVENT_BYTES] = self.partial.as_slice().try_into().expect("exactly one record collected");
            self.partial.clear();
            out.extend(self.push_event(InputEvent::parse(&record)));
        }
        let mut records = rest.chunks_exact(INPUT_EVENT_BYTES);
        for chunk in &mut records {
            let record: &[u8; INPUT_EVENT_BYTES] = chunk.try_into().expect("chunks_exact gives whole records");
            out.extend(self.push_event(InputEvent::parse(record)));
        }
        self.partial.extend_from_slice(records.remainder());
        out
    }
}

/// The evdev records a scanner sends for `code` then Enter: press and release of each
/// key, with shift around capitals. For tests and simulators; `None` when `code` holds a
/// character a US keyboard cannot type.
pub fn key_events_for(code: &str) -> Option<Vec<InputEvent>> {
    let key = |code: u16, value: i32| InputEvent { kind: EV_KEY, code, value };
    let mut events = Vec::new();
    for c in code.bytes() {
        let (keycode, shift) = (1..=98u16).flat_map(|k| [(k, false), (k, true)]).find(|&(k, s)| key_char(k, s) == Some(c))?;
        if shift {
            events.push(key(KEY_LEFTSHIFT, 1));
        }
        events.push(key(keycode, 1));
        events.push(key(keycode, 0));
        if shift {
            events.push(key(KEY_LEFTSHIFT, 0));
        }
    }
    events.push(key(KEY_ENTER, 1));
    events.push(key(KEY_ENTER, 0));
    Some(events)
}

#[allow(unsafe_code)]
mod grab {
    // EVIOCGRAB = _IOW('E', 0x90, int): with 1 this reader gets the device's events
    // exclusively, so a scan is not typed into the focused window as well.
    nix::ioctl_write_int!(eviocgrab, b'E', 0x90);

    pub(super) fn grab(file: &std::fs::File) -> std::io::Result<()> {
        use std::os::fd::AsRawFd;
        // SAFETY: the descriptor is open for the whole call (borrowed from `file`), and
        // EVIOCGRAB takes its argument by value, so no memory is shared with the kernel.
        unsafe { eviocgrab(file.as_raw_fd(), 1) }.map(drop).map_err(std::io::Error::from)
    }
}

/// A keyboard-wedge scanner read from its /dev/input/eventN node.
#[derive(Debug)]
pub struct WedgeScanner {
    file: File,
    location: String,
    decoder: KeyboardDecoder,
    pending: VecDeque<Result<String, ScanError>>,
}

impl WedgeScanner {
    /// Opens the event node; with `grab`, takes it for this process alone.
    pub fn open(path: &Path, grab: bool) -> io::Result<WedgeScanner> {
        let file = crate::serial::open_read_only(path)?;
        if grab {
            grab::grab(&file)?;
        }
        Ok(WedgeScanner { file, location: path.display().to_string(), decoder: KeyboardDecoder::new(), pending: VecDeque::new() })
    }
}

impl Scanner for WedgeScanner {
    fn location(&self) -> &str {
        &self.location
    }

    fn next_code(&mut self, timeout: Duration) -> Result<Option<String>, DeviceError> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(result) = self.pending.pop_front() {
                return result.map(Some).map_err(|e| DeviceError::BadInput {
                    role: DeviceRole::Scanner,
                    location: self.location.clone(),
                    reason: InputError::Scan(e),
                });
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let mut buf = [0u8; INPUT_EVENT_BYTES * READ_EVENTS_MAX];
            let n = match crate::serial::read_deadline(&mut self.file, &mut buf, left) {
                Err(e) if e.kind() == io::ErrorKind::TimedOut => return Ok(None),
                Err(e) => return Err(DeviceError::from_io(DeviceRole::Scanner, &self.location, left, e)),
                Ok(0) => return Err(DeviceError::Unplugged { role: DeviceRole::Scanner, location: self.location.clone() }),
                Ok(n) => n,
            };
            self.pending.extend(self.decoder.feed(&buf[..n]));
            if self.pending.is_empty() && left.is_zero() {
                return Ok(None);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(events: &[InputEvent]) -> Vec<u8> {
        events.iter().flat_map(|e| e.to_record()).collect()
    }

    #[test]
    fn record_layout_matches_the_kernel() {
        assert_eq!(INPUT_EVENT_BYTES, if cfg!(target_pointer_width = "64") { 24 } else { 16 });
        let e = InputEvent { kind: EV_KEY, code: 30, value: 1 };
        assert_eq!(InputEvent::parse(&e.to_record()), e);
    }

    #[test]
    fn key_presses_become_a_code() {
        let events = key_events_for("6901234567892").expect("digits");
        let mut d = KeyboardDecoder::new();
        assert_eq!(d.feed(&records(&events)), vec![Ok("6901234567892".to_owned())]);
    }

    #[test]
    fn shift_gives_capitals_and_symbols() {
        let events = key_events_for("DOC-12/A").expect("typable");
        let mut d = KeyboardDecoder::new();
        assert_eq!(d.feed(&records(&events)), vec![Ok("DOC-12/A".to_owned())]);
    }

    #[test]
    fn records_split_across_reads() {
        let bytes = records(&key_events_for("96385074").expect("digits"));
        let mut d = KeyboardDecoder::new();
        let mut out = Vec::new();
        for piece in bytes.chunks(7) {
            out.extend(d.feed(piece));
        }
        assert_eq!(out, vec![Ok("96385074".to_owned())]);
    }

    #[test]
    fn other_event_types_are_ignored() {
        let mut d = KeyboardDecoder::new();
        let syn = InputEvent { kind: 0, code: 0, value: 0 };
        let msc = InputEvent { kind: 4, code: 4, value: 0x70027 };
        let mut events = vec![syn, msc];
        events.extend(key_events_for("42").expect("digits"));
        assert_eq!(d.feed(&records(&events)), vec![Ok("42".to_owned())]);
    }
}
