//! The ESC/POS command set, as a builder that produces bytes.
//!
//! Only commands that Epson documents in the "ESC/POS Command Reference" and that the
//! common Chinese 58/80 mm printers copy are used, so one byte stream works on both. Each
//! method names its command; the byte values are the reference's. This module does no I/O
//! and knows nothing about receipts: [`crate::receipt`] lays a sale out with it.

use serde::{Deserialize, Serialize};

use crate::barcode::{Gtin, Symbology};
use crate::text;

pub const LF: u8 = 0x0A;
pub const ESC: u8 = 0x1B;
pub const GS: u8 = 0x1D;
pub const FS: u8 = 0x1C;
pub const DLE: u8 = 0x10;
pub const EOT: u8 = 0x04;

/// DLE EOT 2: "transmit offline cause status" in real time. The printer answers one byte
/// even while its buffer is full, which makes it a liveness check after a job.
pub const STATUS_QUERY: [u8; 3] = [DLE, EOT, 2];

/// Longest Code128 payload accepted; GS k function B counts the length in one byte and the
/// two code-set bytes ("{B") come out of it.
pub const CODE128_BYTES_MAX: usize = 253;

/// Longest QR payload accepted. A version-40 model-2 symbol holds 2331 bytes at level M;
/// a receipt needs far less, and a bounded symbol keeps the print time bounded.
pub const QR_BYTES_MAX: usize = 1024;

/// Bad data for a barcode or QR command. Nothing is emitted when this is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EscPosError {
    #[error("barcode data: {0}")]
    Barcode(#[from] crate::barcode::BarcodeError),
    #[error("Code128 data may only hold printable ASCII, found {ch:?}")]
    Code128Char { ch: char },
    #[error("Code128 data is {bytes} bytes; at most {bytes_max} fit")]
    Code128TooLong { bytes: usize, bytes_max: usize },
    #[error("QR data is {bytes} bytes; at most {bytes_max} are printed")]
    QrTooLong { bytes: usize, bytes_max: usize },
    #[error("barcode or QR data is empty")]
    Empty,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Align {
    #[default]
    Left,
    Center,
    Right,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    Full,
    Partial,
}

/// Where the human-readable digits go around a 1-D barcode (GS H n).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Hri {
    None,
    Above,
    #[default]
    Below,
    Both,
}

/// Size of a 1-D barcode. Values outside the printer's range are clamped, because a
/// printer ignores the whole command when one parameter is out of range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BarcodeStyle {
    /// GS h n: bar height in dots, 1..=255.
    pub height_dots: u8,
    /// GS w n: width of the narrowest bar in dots, 2..=6.
    pub module_dots: u8,
    pub hri: Hri,
}

impl Default for BarcodeStyle {
    fn default() -> Self {
        // 80 dots is 10 mm at 203 dpi: tall enough for a hand scanner at the counter.
        BarcodeStyle { height_dots: 80, module_dots: 2, hri: Hri::Below }
    }
}

/// QR error correction level (GS ( k function 169).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QrEcc {
    L,
    #[default]
    M,
    Q,
    H,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QrStyle {
    /// GS ( k function 167: dots per module, 1..=16.
    pub module_dots: u8,
    pub ecc: QrEcc,
}

impl Default for QrStyle {
    fn default() -> Self {
        QrStyle { module_dots: 6, ecc: QrEcc::M }
    }
}

/// Which connector pin drives the drawer solenoid (ESC p m).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub enum DrawerPin {
    /// Connector pin 2, the one almost every drawer is wired to.
    #[default]
    Pin2,
    Pin5,
}

impl TryFrom<u8> for DrawerPin {
    type Error = String;
    fn try_from(pin: u8) -> Result<Self, String> {
        match pin {
            2 => Ok(DrawerPin::Pin2),
            5 => Ok(DrawerPin::Pin5),
            other => Err(format!("drawer pin must be 2 or 5, not {other}")),
        }
    }
}

impl From<DrawerPin> for u8 {
    fn from(pin: DrawerPin) -> u8 {
        match pin {
            DrawerPin::Pin2 => 2,
            DrawerPin::Pin5 => 5,
        }
    }
}

/// The pulse that opens a cash drawer (ESC p m t1 t2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DrawerPulse {
    pub pin: DrawerPin,
    /// Solenoid on-time; sent in 2 ms units, 2..=510 ms.
    pub on_ms: u16,
    /// Off-time after the pulse; sent in 2 ms units, 2..=510 ms.
    pub off_ms: u16,
}

impl Default for DrawerPulse {
    fn default() -> Self {
        // 50 ms on / 500 ms off: the values drawer makers print on the label.
        DrawerPulse { pin: DrawerPin::Pin2, on_ms: 50, off_ms: 500 }
    }
}

impl DrawerPulse {
    /// ESC p m t1 t2, with the times in the 2 ms units the command takes.
    pub fn command(&self) -> [u8; 5] {
        let units = |ms: u16| u8::try_from((ms / 2).clamp(1, 255)).expect("clamped to 1..=255");
        let m = match self.pin {
            DrawerPin::Pin2 => 0,
            DrawerPin::Pin5 => 1,
        };
        [ESC, b'p', m, units(self.on_ms), units(self.off_ms)]
    }
}

/// Builds an ESC/POS job. Methods append one command each and return `&mut Self`; the
/// ones that check data return a `Result` and append nothing on error.
#[derive(Debug, Clone, Default)]
pub struct EscPos {
    bytes: Vec<u8>,
}

impl EscPos {
    pub fn new() -> EscPos {
        EscPos::default()
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// ESC @: clears the print buffer and resets modes to the power-on state.
    pub fn init(&mut self) -> &mut Self {
        self.bytes.extend_from_slice(&[ESC, b'@']);
        self
    }

    /// ESC a n: justification of the lines that follow.
    pub fn align(&mut self, align: Align) -> &mut Self {
        let n = match align {
            Align::Left => 0,
            Align::Center => 1,
            Align::Right => 2,
        };
        self.bytes.extend_from_slice(&[ESC, b'a', n]);
        self
    }

    /// ESC E n: emphasized (bold) on or off.
    pub fn bold(&mut self, on: bool) -> &mut Self {
        self.bytes.extend_from_slice(&[ESC, b'E', u8::from(on)]);
        self
    }

    /// GS ! n: character size, 1..=8 times in each direction (clamped). Wider characters
    /// mean fewer columns per line; the caller's layout must account for that.
    pub fn size(&mut self, width: u8, height: u8) -> &mut Self {
        let w = width.clamp(1, 8) - 1;
        let h = height.clamp(1, 8) - 1;
        self.bytes.extend_from_slice(&[GS, b'!', (w << 4) | h]);
        self
    }

    /// Text without a line feed. Control characters are removed (see [`text::clean`]).
    /// Text with any non-ASCII character is sent as GB18030 inside FS & (enter Chinese
    /// character mode) … FS . (leave it). Outside that mode a byte of 0x80 or more would
    /// be read through the ESC t code page instead, so ASCII-only text is sent as is and
    /// no code page needs selecting.
    pub fn text(&mut self, s: &str) -> &mut Self {
        let s = text::clean(s);
        if s.is_ascii() {
            self.bytes.extend_from_slice(s.as_bytes());
        } else {
            self.bytes.extend_from_slice(&[FS, b'&']);
            self.bytes.extend_from_slice(&text::gb18030(&s));
            self.bytes.extend_from_slice(&[FS, b'.']);
        }
        self
    }

    /// Text, then LF (print and feed one line).
    pub fn line(&mut self, s: &str) -> &mut Self {
        self.text(s);
        self.bytes.push(LF);
        self
    }

    /// ESC d n: print and feed `lines` lines.
    pub fn feed(&mut self, lines: u8) -> &mut Self {
        self.bytes.extend_from_slice(&[ESC, b'd', lines]);
        self
    }

    /// An EAN-13, EAN-8 or UPC-A barcode. The code is checked first (length, digits,
    /// check digit); the command carries the digits without the check digit so the
    /// printer computes it, which every model accepts.
    pub fn barcode_gtin(&mut self, code: &str, style: BarcodeStyle) -> Result<&mut Self, EscPosError> {
        let gtin = Gtin::parse(code)?;
        let m = match gtin.symbology() {
            Symbology::UpcA => 65,
            Symbology::Ean13 => 67,
            Symbology::Ean8 => 68,
        };
        let digits = gtin.as_str();
        let payload = &digits.as_bytes()[..digits.len() - 1];
        self.barcode_style(style);
        self.gs_k(m, payload);
        Ok(self)
    }

    /// A Code128 barcode in code set B (printable ASCII), e.g. a document number.
    pub fn barcode_code128(&mut self, data: &str, style: BarcodeStyle) -> Result<&mut Self, EscPosError> {
        if data.is_empty() {
            return Err(EscPosError::Empty);
        }
        if let Some(ch) = data.chars().find(|c| !(' '..='~').contains(c)) {
            return Err(EscPosError::Code128Char { ch });
        }
        // "{B" selects code set B; a literal '{' is sent as "{{".
        let mut payload = Vec::with_capacity(data.len() + 2);
        payload.extend_from_slice(b"{B");
        for b in data.bytes() {
            if b == b'{' {
                payload.push(b'{');
            }
            payload.push(b);
        }
        if payload.len() > CODE128_BYTES_MAX + 2 {
            return Err(EscPosError::Code128TooLong { bytes: payload.len() - 2, bytes_max: CODE128_BYTES_MAX });
        }
        self.barcode_style(style);
        self.gs_k(73, &payload);
        Ok(self)
    }

    /// GS h n (height), GS w n (module width), GS H n (HRI position).
    fn barcode_style(&mut self, style: BarcodeStyle) {
        let hri = match style.hri {
            Hri::None => 0,
            Hri::Above => 1,
            Hri::Below => 2,
            Hri::Both => 3,
        };
        self.bytes.extend_from_slice(&[GS, b'h', style.height_dots.max(1)]);
        self.bytes.extend_from_slice(&[GS, b'w', style.module_dots.clamp(2, 6)]);
        self.bytes.extend_from_slice(&[GS, b'H', hri]);
    }

    /// GS k m n d1..dn: print barcode, function B (length-prefixed).
    fn gs_k(&mut self, m: u8, payload: &[u8]) {
        let n = u8::try_from(payload.len()).expect("callers bound the payload to 255 bytes");
        self.bytes.extend_from_slice(&[GS, b'k', m, n]);
        self.bytes.extend_from_slice(payload);
    }

    /// A QR code (model 2) through the GS ( k functions 165, 167, 169, 180 and 181.
    pub fn qr(&mut self, data: &str, style: QrStyle) -> Result<&mut Self, EscPosError> {
        let data = data.as_bytes();
        if data.is_empty() {
            return Err(EscPosError::Empty);
        }
        if data.len() > QR_BYTES_MAX {
            return Err(EscPosError::QrTooLong { bytes: data.len(), bytes_max: QR_BYTES_MAX });
        }
        let ecc = match style.ecc {
            QrEcc::L => 48,
            QrEcc::M => 49,
            QrEcc::Q => 50,
            QrEcc::H => 51,
        };
        // Function 165: select model 2.
        self.bytes.extend_from_slice(&[GS, b'(', b'k', 4, 0, 49, 65, 50, 0]);
        // Function 167: module size in dots.
        self.bytes.extend_from_slice(&[GS, b'(', b'k', 3, 0, 49, 67, style.module_dots.clamp(1, 16)]);
        // Function 169: error correction level.
        self.bytes.extend_from_slice(&[GS, b'(', b'k', 3, 0, 49, 69, ecc]);
        // Function 180: store the data; pL pH count the data plus the 3 bytes cn fn m.
        let len = u16::try_from(data.len() + 3).expect("bounded by QR_BYTES_MAX");
        let [pl, ph] = len.to_le_bytes();
        self.bytes.extend_from_slice(&[GS, b'(', b'k', pl, ph, 49, 80, 48]);
        self.bytes.extend_from_slice(data);
        // Function 181: print the stored symbol.
        self.bytes.extend_from_slice(&[GS, b'(', b'k', 3, 0, 49, 81, 48]);
        Ok(self)
    }

    /// GS V m: cut the paper (m = 0 full, 1 partial). Feed first so the last line clears
    /// the cutter.
    pub fn cut(&mut self, cut: Cut) -> &mut Self {
        let m = match cut {
            Cut::Full => 0,
            Cut::Partial => 1,
        };
        self.bytes.extend_from_slice(&[GS, b'V', m]);
        self
    }

    /// ESC p m t1 t2: pulse the drawer kick-out connector.
    pub fn kick_drawer(&mut self, pulse: DrawerPulse) -> &mut Self {
        self.bytes.extend_from_slice(&pulse.command());
        self
    }
}

/// What the status byte answered to [`STATUS_QUERY`] says. `None` when the printer can
/// print; otherwise the cause, in words for the cashier.
pub fn offline_cause(status: u8) -> Option<&'static str> {
    // Bits 0, 1, 4 and 7 are fixed (0, 1, 1, 0). A byte that does not match is not an
    // answer to DLE EOT 2 (e.g. an automatic status block); it still shows the printer
    // is alive, so it is not treated as a fault.
    if status & 0b1001_0011 != 0b0001_0010 {
        return None;
    }
    if status & 0b0010_0000 != 0 {
        Some("the paper ran out")
    } else if status & 0b0000_0100 != 0 {
        Some("the cover is open")
    } else if status & 0b0100_0000 != 0 {
        Some("it reports an error (cutter jam or overheating)")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chinese_text_is_wrapped_in_fs_and_fs_dot() {
        let mut p = EscPos::new();
        p.text("中文").text("OK");
        assert_eq!(p.as_bytes(), &[0x1C, 0x26, 0xD6, 0xD0, 0xCE, 0xC4, 0x1C, 0x2E, b'O', b'K']);
    }

    #[test]
    fn text_cannot_smuggle_commands() {
        let mut p = EscPos::new();
        p.text("A\x1b@B\x1dV\x00");
        assert_eq!(p.as_bytes(), b"A@BV");
    }

    #[test]
    fn ean13_sends_twelve_digits() {
        let mut p = EscPos::new();
        p.barcode_gtin("6901234567892", BarcodeStyle::default()).expect("valid EAN-13");
        let b = p.as_bytes();
        assert_eq!(&b[9..13], &[GS, b'k', 67, 12]);
        assert_eq!(&b[13..], b"690123456789");
    }

    #[test]
    fn bad_ean_emits_nothing() {
        let mut p = EscPos::new();
        assert!(p.barcode_gtin("6901234567891", BarcodeStyle::default()).is_err());
        assert!(p.as_bytes().is_empty());
    }

    #[test]
    fn code128_escapes_brace() {
        let mut p = EscPos::new();
        p.barcode_code128("A{1", BarcodeStyle::default()).expect("printable");
        assert_eq!(&p.as_bytes()[9..], &[GS, b'k', 73, 6, b'{', b'B', b'A', b'{', b'{', b'1']);
        assert!(matches!(EscPos::new().barcode_code128("é", BarcodeStyle::default()), Err(EscPosError::Code128Char { .. })));
    }

    #[test]
    fn qr_length_counts_header() {
        let mut p = EscPos::new();
        p.qr("AB", QrStyle::default()).expect("short");
        let b = p.as_bytes();
        let store = &b[9 + 8 + 8..];
        assert_eq!(&store[..8], &[GS, b'(', b'k', 5, 0, 49, 80, 48]);
        let long = "x".repeat(QR_BYTES_MAX + 1);
        assert!(matches!(EscPos::new().qr(&long, QrStyle::default()), Err(EscPosError::QrTooLong { .. })));
    }

    #[test]
    fn drawer_pulse_in_two_ms_units() {
        assert_eq!(DrawerPulse::default().command(), [0x1B, 0x70, 0x00, 25, 250]);
        let p = DrawerPulse { pin: DrawerPin::Pin5, on_ms: 2000, off_ms: 0 };
        assert_eq!(p.command(), [0x1B, 0x70, 0x01, 255, 1]);
    }

    #[test]
    fn status_byte() {
        assert_eq!(offline_cause(0x12), None);
        assert_eq!(offline_cause(0x32), Some("the paper ran out"));
        assert_eq!(offline_cause(0x16), Some("the cover is open"));
        assert_eq!(offline_cause(0xFF), None, "not a DLE EOT answer");
    }
}
