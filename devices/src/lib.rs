//! Point-of-sale peripherals for a Branchline till that must keep selling offline:
//! receipt printer, cash drawer, customer display, barcode scanner and scale.
//!
//! Map of the crate:
//!
//! - [`station`]: [`Devices`], every peripheral of one till built from a [`DevicesConfig`];
//!   the one type a branch agent needs.
//! - [`config`]: the serde config ([`DevicesConfig`], [`Connection`]) that the agent's TOML embeds.
//! - [`error`]: [`DeviceError`], whose messages name the device, the place and what to do.
//! - Printing: [`escpos`] (the [`EscPos`] command builder), [`receipt`] (receipt data,
//!   [`ReceiptLayout`], [`render`], [`sample_receipt`]), [`printer`] (the
//!   [`ReceiptPrinter`] trait, the ESC/POS driver, a simulator), [`text`] (CJK-aware column
//!   widths and GB18030).
//! - [`drawer`]: [`CashDrawer`], kicked through the printer or on its own serial port.
//! - [`display`]: [`CustomerDisplay`] and [`DisplayState`], the two lines the pole display
//!   and the web second screen both show.
//! - Scanning: [`barcode`] (GTIN check digits, weighed-item codes), [`scanner`] (line
//!   scanners, the sans-IO [`ScanDecoder`]), [`wedge`] (keyboard-wedge scanners via evdev).
//! - [`scale`]: the [`Scale`] trait, the sans-IO [`ScaleParser`] and the serial driver.
//! - Plumbing: [`transport`] (the [`Transport`] trait, TCP, file and in-memory ends),
//!   [`serial`] (termios serial ports and device nodes), [`clock`] (injectable time).
//!
//! Architecture invariants:
//!
//! - No tokio and no async: every call blocks for at most its configured deadline, every
//!   loop and buffer has a named bound. Async callers use a blocking thread.
//! - No knowledge of documents, the journal or the books. A receipt arrives as numbers to
//!   print; nothing is added up or checked against a ledger here.
//! - Protocol parsing (ESC/POS bytes, scanner lines, evdev records, scale frames) is pure
//!   and tested without devices; the I/O around it is thin.
//! - A failing device never fails a sale: callers commit the sale first, then call a
//!   device, and show the error's text ("… the sale is saved — reprint the receipt from
//!   the document later").
//! - Money and weights are `rust_decimal::Decimal`, never floats.
//!
//! Example config (a section per device; each is optional):
//!
//! ```toml
//! [printer]
//! kind = "tcp"                 # none | simulator | serial | tcp | file | device_file
//! addr = "192.168.1.50:9100"
//! timeout_ms = 2000
//!
//! [receipt]
//! width_chars = 48             # 32 (58 mm) | 42 | 48 (80 mm)
//! header_lines = ["88 Chaoyang Rd", "Tel 010-8888-6666"]
//! footer_lines = ["谢谢惠顾"]
//! show_qr = true
//! cut = true
//! kick_drawer = false
//!
//! [drawer]
//! kind = "printer"             # none | simulator | printer | serial | tcp | device_file
//! pulse = { pin = 2, on_ms = 50, off_ms = 500 }
//!
//! [display]
//! kind = "serial"
//! path = "/dev/ttyUSB1"
//! baud = 9600
//! charset = "gb18030"
//!
//! [scanner]
//! kind = "device_file"
//! path = "/dev/input/event5"
//! input = "keyboard"
//!
//! [scale]
//! kind = "serial"
//! path = "/dev/ttyUSB2"
//! request = "W\r"
//!
//! [[weighed_barcodes]]
//! prefix = "20"
//! item_digits = 5
//! value_digits = 5
//! value = "price_cents"
//! ```

#![deny(unsafe_code)]

pub mod barcode;
pub mod clock;
pub mod config;
pub mod display;
pub mod drawer;
pub mod error;
pub mod escpos;
pub mod printer;
pub mod receipt;
pub mod scale;
pub mod scanner;
pub mod serial;
pub mod station;
pub mod text;
pub mod transport;
pub mod wedge;

pub use barcode::{interpret, Gtin, Scanned, WeighedFormat, WeighedItem, WeighedValue};
pub use config::{Connection, DevicesConfig};
pub use display::{CustomerDisplay, DisplayState};
pub use drawer::CashDrawer;
pub use error::{DeviceError, DeviceRole, InputError};
pub use escpos::EscPos;
pub use printer::ReceiptPrinter;
pub use receipt::{render, sample_receipt, Receipt, ReceiptLayout, ReceiptLine};
pub use scale::{Reading, Scale, ScaleParser};
pub use scanner::{ScanDecoder, Scanner};
pub use station::Devices;
pub use transport::Transport;
