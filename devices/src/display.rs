//! The customer display: a two-line, 20-column pole display (VFD or LCD) facing the
//! customer, and the [`DisplayState`] that the web second screen renders too.
//!
//! The serial driver speaks the CD5220 command set, which most pole displays sold with
//! POS systems accept (often as their default "CD5220" or "EPSON/CD5220" emulation):
//!
//! | bytes                 | command | meaning                                      |
//! |-----------------------|---------|----------------------------------------------|
//! | `1B 40`               | ESC @   | initialise the display                       |
//! | `0C`                  | CLR     | clear both lines, cursor home                |
//! | `1B 51 41 d1..dn 0D`  | ESC Q A | write the upper line (n ≤ 20), end with CR   |
//! | `1B 51 42 d1..dn 0D`  | ESC Q B | write the lower line (n ≤ 20), end with CR   |
//!
//! Lines are always sent padded to 20 cells, so a shorter text overwrites the old one.
//!
//! Must not: know what a sale is; the till decides what the two lines say.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::error::{DeviceError, DeviceRole};
use crate::receipt::money;
use crate::text::{self, char_columns, pad_right, spread};
use crate::transport::Transport;

/// Cells per line of a pole display.
pub const DISPLAY_COLUMNS: usize = 20;

pub const CD5220_INIT: [u8; 2] = [0x1B, 0x40];
pub const CD5220_CLEAR: u8 = 0x0C;
pub const CD5220_UPPER_LINE: [u8; 3] = [0x1B, 0x51, 0x41];
pub const CD5220_LOWER_LINE: [u8; 3] = [0x1B, 0x51, 0x42];
pub const CD5220_END_LINE: u8 = 0x0D;

/// What the customer sees: two lines of at most [`DISPLAY_COLUMNS`] cells. The pole
/// display and the web second screen render the same value.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DisplayState {
    pub line1: String,
    pub line2: String,
}

impl DisplayState {
    /// Two lines, cleaned of control characters and cut to the display width.
    pub fn new(line1: &str, line2: &str) -> DisplayState {
        DisplayState {
            line1: text::fit(&text::clean(line1), DISPLAY_COLUMNS).to_owned(),
            line2: text::fit(&text::clean(line2), DISPLAY_COLUMNS).to_owned(),
        }
    }

    /// The item just scanned and its price.
    pub fn item(name: &str, price: Decimal) -> DisplayState {
        DisplayState::new(name, &right(&money(price)))
    }

    pub fn total(labels: &DisplayLabels, total: Decimal) -> DisplayState {
        DisplayState::new(&labels.total, &right(&money(total)))
    }

    pub fn change(labels: &DisplayLabels, paid: Decimal, change: Decimal) -> DisplayState {
        DisplayState::new(&spread(&labels.paid, &money(paid), DISPLAY_COLUMNS), &spread(&labels.change, &money(change), DISPLAY_COLUMNS))
    }
}

fn right(s: &str) -> String {
    text::pad_left(s, DISPLAY_COLUMNS)
}

/// The words on the display, in the store's language.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DisplayLabels {
    pub total: String,
    pub paid: String,
    pub change: String,
}

impl Default for DisplayLabels {
    fn default() -> Self {
        DisplayLabels { total: "TOTAL".into(), paid: "PAID".into(), change: "CHANGE".into() }
    }
}

/// Which characters the display can show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DisplayCharset {
    /// ASCII only; anything else shows as '?'.
    #[default]
    Ascii,
    /// A Chinese display with a GB2312/GB18030 font: two-byte characters take two cells.
    Gb18030,
}

/// A display facing the customer.
pub trait CustomerDisplay: Send {
    fn show(&mut self, state: &DisplayState) -> Result<(), DeviceError>;

    fn labels(&self) -> &DisplayLabels;

    fn show_item(&mut self, name: &str, price: Decimal) -> Result<(), DeviceError> {
        self.show(&DisplayState::item(name, price))
    }

    fn show_total(&mut self, total: Decimal) -> Result<(), DeviceError> {
        let state = DisplayState::total(self.labels(), total);
        self.show(&state)
    }

    fn show_change(&mut self, paid: Decimal, change: Decimal) -> Result<(), DeviceError> {
        let state = DisplayState::change(self.labels(), paid, change);
        self.show(&state)
    }

    fn clear(&mut self) -> Result<(), DeviceError> {
        self.show(&DisplayState::default())
    }
}

/// The bytes that put `state` on a CD5220 display.
pub fn cd5220_frame(state: &DisplayState, charset: DisplayCharset) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 * (3 + 2 * DISPLAY_COLUMNS + 1));
    for (select, line) in [(CD5220_UPPER_LINE, &state.line1), (CD5220_LOWER_LINE, &state.line2)] {
        out.extend_from_slice(&select);
        out.extend_from_slice(&encode_line(line, charset));
        out.push(CD5220_END_LINE);
    }
    out
}

/// One line padded to exactly [`DISPLAY_COLUMNS`] bytes. Cells and bytes agree for ASCII
/// and for two-byte GB18030 characters; a character whose GB18030 form is four bytes has
/// no glyph on these displays and shows as '?'.
fn encode_line(line: &str, charset: DisplayCharset) -> Vec<u8> {
    let line = pad_right(line, DISPLAY_COLUMNS);
    let mut out = Vec::with_capacity(DISPLAY_COLUMNS);
    for c in line.chars() {
        let bytes = match charset {
            DisplayCharset::Ascii if c.is_ascii() => vec![c as u8],
            DisplayCharset::Ascii => vec![b'?'; char_columns(c)],
            DisplayCharset::Gb18030 => {
                let mut buf = [0u8; 4];
                let encoded = text::gb18030(c.encode_utf8(&mut buf));
                if encoded.len() == char_columns(c) {
                    encoded
                } else {
                    vec![b'?'; char_columns(c)]
                }
            }
        };
        out.extend_from_slice(&bytes);
    }
    debug_assert_eq!(out.len(), DISPLAY_COLUMNS, "pad_right gives exactly 20 cells");
    out
}

/// A CD5220 pole display on a serial port (or any transport).
#[derive(Debug)]
pub struct PoleDisplay<T: Transport> {
    transport: T,
    charset: DisplayCharset,
    labels: DisplayLabels,
}

impl<T: Transport> PoleDisplay<T> {
    /// Initialises and clears the display.
    pub fn open(transport: T, charset: DisplayCharset, labels: DisplayLabels) -> Result<Self, DeviceError> {
        let mut display = PoleDisplay { transport, charset, labels };
        let mut init = CD5220_INIT.to_vec();
        init.push(CD5220_CLEAR);
        display.send(&init)?;
        Ok(display)
    }

    pub fn transport(&self) -> &T {
        &self.transport
    }

    fn send(&mut self, bytes: &[u8]) -> Result<(), DeviceError> {
        self.transport
            .write_all(bytes)
            .map_err(|e| DeviceError::from_io(DeviceRole::CustomerDisplay, self.transport.location(), self.transport.write_timeout(), e))
    }
}

impl<T: Transport> CustomerDisplay for PoleDisplay<T> {
    fn show(&mut self, state: &DisplayState) -> Result<(), DeviceError> {
        let frame = cd5220_frame(state, self.charset);
        self.send(&frame)
    }

    fn labels(&self) -> &DisplayLabels {
        &self.labels
    }
}

/// A display that keeps what it was asked to show, for demos and tests.
#[derive(Debug, Default)]
pub struct SimulatedDisplay {
    shown: Vec<DisplayState>,
    labels: DisplayLabels,
}

/// States a [`SimulatedDisplay`] keeps; older ones are dropped.
pub const SIMULATED_DISPLAY_STATES_MAX: usize = 64;

impl SimulatedDisplay {
    pub fn new(labels: DisplayLabels) -> SimulatedDisplay {
        SimulatedDisplay { shown: Vec::new(), labels }
    }

    /// What was shown, oldest first (at most [`SIMULATED_DISPLAY_STATES_MAX`]).
    pub fn shown(&self) -> &[DisplayState] {
        &self.shown
    }
}

impl CustomerDisplay for SimulatedDisplay {
    fn show(&mut self, state: &DisplayState) -> Result<(), DeviceError> {
        if self.shown.len() == SIMULATED_DISPLAY_STATES_MAX {
            self.shown.remove(0);
        }
        self.shown.push(state.clone());
        Ok(())
    }

    fn labels(&self) -> &DisplayLabels {
        &self.labels
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_line_layout() {
        let s = DisplayState::item("可口可乐 330ml", Decimal::new(350, 2));
        assert_eq!(s.line1, "可口可乐 330ml");
        assert_eq!(s.line2, "                3.50");
        let s = DisplayState::change(&DisplayLabels::default(), Decimal::new(2000, 2), Decimal::new(460, 2));
        assert_eq!(s.line1, "PAID           20.00");
        assert_eq!(s.line2, "CHANGE          4.60");
    }

    #[test]
    fn frame_bytes_cd5220() {
        let s = DisplayState::new("中文", "OK");
        let frame = cd5220_frame(&s, DisplayCharset::Gb18030);
        let mut expected = vec![0x1B, 0x51, 0x41, 0xD6, 0xD0, 0xCE, 0xC4];
        expected.extend_from_slice(&[b' '; 16]);
        expected.extend_from_slice(&[0x0D, 0x1B, 0x51, 0x42, b'O', b'K']);
        expected.extend_from_slice(&[b' '; 18]);
        expected.push(0x0D);
        assert_eq!(frame, expected);

        let ascii = cd5220_frame(&s, DisplayCharset::Ascii);
        assert_eq!(&ascii[3..7], b"????");
    }

    #[test]
    fn long_names_are_cut_to_twenty_cells() {
        let s = DisplayState::item("康师傅红烧牛肉面五连包家庭装", Decimal::ONE);
        assert_eq!(s.line1, "康师傅红烧牛肉面五连");
    }
}
