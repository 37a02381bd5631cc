//! What the till's peripherals are and how to reach them, as the branch agent's TOML
//! config holds it (see the crate docs for an example). Every section is optional and
//! defaults to "no such device", so a till with only a printer configures only a printer.
//!
//! Must not: open a device (that is `station`) or know what a sale is.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::barcode::WeighedFormat;
use crate::display::{DisplayCharset, DisplayLabels};
use crate::error::{DeviceError, DeviceRole};
use crate::escpos::DrawerPulse;
use crate::receipt::ReceiptLayout;
use crate::serial::{open_device_file, open_serial, Baud};
use crate::transport::{FileSink, TcpTransport, Transport};

/// Connect, write and reply deadline when the config names none.
pub const DEVICE_TIMEOUT_MS_DEFAULT: u64 = 2000;

/// Longest deadline accepted; a till must not freeze longer than this on one device.
pub const DEVICE_TIMEOUT_MS_MAX: u64 = 30_000;

/// How to reach one device. In TOML the `kind` key picks the variant and the other keys
/// of the same table are its fields: `kind = "tcp"`, `addr = "192.168.1.50:9100"`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Connection {
    /// No such device on this till.
    #[default]
    None,
    /// An in-memory stand-in, for demos and training tills.
    Simulator,
    /// A serial port: /dev/ttyUSB0, /dev/ttyS0, /dev/ttyACM0.
    Serial {
        path: PathBuf,
        #[serde(default)]
        baud: Baud,
    },
    /// Raw TCP: a network printer (port 9100 when none is given) or a serial-to-Ethernet box.
    Tcp { addr: String },
    /// A plain file that receives the bytes (appended); for tests and printer-less tills.
    File { path: PathBuf },
    /// A device node used as is: /dev/usb/lp0, or /dev/input/eventN for a keyboard-wedge scanner.
    DeviceFile { path: PathBuf },
}

impl Connection {
    /// Where the device is, for messages.
    pub fn location(&self) -> String {
        match self {
            Connection::None => "nowhere (not configured)".into(),
            Connection::Simulator => "simulator".into(),
            Connection::Serial { path, .. } | Connection::File { path } | Connection::DeviceFile { path } => path.display().to_string(),
            Connection::Tcp { addr } => addr.clone(),
        }
    }

    /// Opens the transport. `Simulator` has none: callers build the simulator instead.
    pub fn open(&self, role: DeviceRole, default_tcp_port: Option<u16>, timeout: Duration) -> Result<Box<dyn Transport>, DeviceError> {
        let location = self.location();
        let io = |e| DeviceError::from_io(role, &location, timeout, e);
        Ok(match self {
            Connection::None => return Err(DeviceError::NotConfigured { role }),
            Connection::Simulator => return Err(DeviceError::Config { role, reason: "a simulator has no transport to open".into() }),
            Connection::Serial { path, baud } => Box::new(open_serial(path, *baud, timeout).map_err(io)?),
            Connection::Tcp { addr } => Box::new(TcpTransport::connect(addr, default_tcp_port, timeout).map_err(io)?),
            Connection::File { path } => Box::new(FileSink::open(path).map_err(io)?),
            Connection::DeviceFile { path } => Box::new(open_device_file(path, timeout).map_err(io)?),
        })
    }
}

fn default_timeout_ms() -> u64 {
    DEVICE_TIMEOUT_MS_DEFAULT
}

fn default_true() -> bool {
    true
}

/// A config deadline as a duration, kept within 1 ms ..= [`DEVICE_TIMEOUT_MS_MAX`].
pub fn timeout(timeout_ms: u64) -> Duration {
    Duration::from_millis(timeout_ms.clamp(1, DEVICE_TIMEOUT_MS_MAX))
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrinterConfig {
    #[serde(flatten)]
    pub connection: Connection,
    /// Bounds the connect, the write and the wait for the status answer.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Ask the printer for its status (DLE EOT 2) after each job, to notice a dead or
    /// paper-less printer. Turn off for a printer that never answers.
    #[serde(default = "default_true")]
    pub status_check: bool,
}

impl Default for PrinterConfig {
    fn default() -> Self {
        PrinterConfig { connection: Connection::None, timeout_ms: DEVICE_TIMEOUT_MS_DEFAULT, status_check: true }
    }
}

/// How the cash drawer is opened.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DrawerConnection {
    #[default]
    None,
    Simulator,
    /// Wired to the receipt printer's drawer port: ESC p goes through the printer.
    Printer,
    /// Its own serial trigger box.
    Serial {
        path: PathBuf,
        #[serde(default)]
        baud: Baud,
    },
    Tcp {
        addr: String,
    },
    DeviceFile {
        path: PathBuf,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DrawerConfig {
    #[serde(flatten)]
    pub connection: DrawerConnection,
    #[serde(default)]
    pub pulse: DrawerPulse,
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisplayConfig {
    #[serde(flatten)]
    pub connection: Connection,
    #[serde(default)]
    pub charset: DisplayCharset,
    #[serde(default)]
    pub labels: DisplayLabels,
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

impl Default for DisplayConfig {
    fn default() -> Self {
        DisplayConfig {
            connection: Connection::None,
            charset: DisplayCharset::Ascii,
            labels: DisplayLabels::default(),
            timeout_ms: DEVICE_TIMEOUT_MS_DEFAULT,
        }
    }
}

/// How a scanner's bytes are to be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScannerInput {
    /// Each code is a line of bytes ending in CR or LF (serial, USB-CDC, TCP).
    #[default]
    Lines,
    /// A keyboard-wedge scanner read from /dev/input/eventN (`kind = "device_file"`).
    Keyboard,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScannerConfig {
    #[serde(flatten)]
    pub connection: Connection,
    #[serde(default)]
    pub input: ScannerInput,
    /// For keyboard input: take the event node for this process alone, so the scanner
    /// does not also type into the focused window.
    #[serde(default = "default_true")]
    pub grab: bool,
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

impl Default for ScannerConfig {
    fn default() -> Self {
        ScannerConfig { connection: Connection::None, input: ScannerInput::Lines, grab: true, timeout_ms: DEVICE_TIMEOUT_MS_DEFAULT }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScaleConfig {
    #[serde(flatten)]
    pub connection: Connection,
    /// Sent before each reading for a scale in request mode, e.g. "W\r"; empty for a
    /// scale that sends readings continuously.
    #[serde(default)]
    pub request: String,
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

impl Default for ScaleConfig {
    fn default() -> Self {
        ScaleConfig { connection: Connection::None, request: String::new(), timeout_ms: DEVICE_TIMEOUT_MS_DEFAULT }
    }
}

/// Every peripheral of one till, plus the store's receipt layout and barcode formats.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DevicesConfig {
    pub printer: PrinterConfig,
    pub receipt: ReceiptLayout,
    pub drawer: DrawerConfig,
    pub display: DisplayConfig,
    pub scanner: ScannerConfig,
    pub scale: ScaleConfig,
    /// In-store weighed-item barcode formats, tried in order.
    pub weighed_barcodes: Vec<WeighedFormat>,
}
