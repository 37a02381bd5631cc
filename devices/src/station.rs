//! [`Devices`]: all peripherals of one till, built from a [`DevicesConfig`].
//!
//! Nothing here can stop a sale. Opening never fails as a whole: a device that is missing
//! at start is noted in [`Devices::startup_problems`] and tried again on its next use, and
//! one whose connection breaks is reopened on the use after. Every call returns a
//! `Result` whose error text the till can show as it is.
//!
//! All calls block for at most the device's configured deadline; an async caller runs
//! them on a blocking thread.

use std::time::Duration;

use rust_decimal::Decimal;

use crate::barcode::{interpret, Scanned, WeighedFormat};
use crate::clock::SystemClock;
use crate::config::{timeout, Connection, DevicesConfig, DrawerConnection, ScannerInput};
use crate::display::{CustomerDisplay, DisplayLabels, DisplayState, PoleDisplay, SimulatedDisplay};
use crate::drawer::{kick_through_printer, CashDrawer, SerialDrawer, SimulatedDrawer};
use crate::error::{DeviceError, DeviceRole, InputError};
use crate::escpos::DrawerPulse;
use crate::printer::{EscPosPrinter, ReceiptPrinter, SimulatedPrinter};
use crate::receipt::{render, Receipt, ReceiptLayout};
use crate::scale::{Reading, Scale, SerialScale, SimulatedScale};
use crate::scanner::{LineScanner, Scanner, SimulatedScanner};
use crate::wedge::WedgeScanner;

/// Lines a simulated scale from config answers with: moving, then settled at 0.500 kg.
const SIMULATED_SCALE_LINES: [&str; 3] = ["US,GS,+  0.498kg", "US,GS,+  0.501kg", "ST,GS,+  0.500kg"];

// The branch agent moves `Devices` onto a blocking thread, so it must stay `Send`.
const _: () = {
    const fn is_send<T: Send>() {}
    is_send::<Devices>()
};

type Opener<D> = Box<dyn FnMut() -> Result<Box<D>, DeviceError> + Send>;

/// One device: open, or closed with a way to open it.
struct Slot<D: ?Sized> {
    role: DeviceRole,
    device: Option<Box<D>>,
    opener: Option<Opener<D>>,
}

impl<D: ?Sized> Slot<D> {
    fn absent(role: DeviceRole) -> Slot<D> {
        Slot { role, device: None, opener: None }
    }

    fn ready(role: DeviceRole, device: Box<D>) -> Slot<D> {
        Slot { role, device: Some(device), opener: None }
    }

    fn lazy(role: DeviceRole, opener: Opener<D>) -> Slot<D> {
        Slot { role, device: None, opener: Some(opener) }
    }

    fn is_configured(&self) -> bool {
        self.device.is_some() || self.opener.is_some()
    }

    fn ensure_open(&mut self) -> Result<&mut D, DeviceError> {
        if self.device.is_none() {
            let opener = self.opener.as_mut().ok_or(DeviceError::NotConfigured { role: self.role })?;
            self.device = Some(opener()?);
        }
        Ok(self.device.as_deref_mut().expect("opened above"))
    }

    /// Runs `f` on the device, opening it first if needed; drops a connection that broke
    /// so the next use opens a fresh one.
    fn with<R>(&mut self, f: impl FnOnce(&mut D) -> Result<R, DeviceError>) -> Result<R, DeviceError> {
        let result = f(self.ensure_open()?);
        if let Err(e) = &result {
            if e.is_connection_lost() && self.opener.is_some() {
                self.device = None;
            }
        }
        result
    }
}

enum DrawerSlot {
    ThroughPrinter(DrawerPulse),
    Own(Slot<dyn CashDrawer>),
}

/// The peripherals of one till.
pub struct Devices {
    printer: Slot<dyn ReceiptPrinter>,
    drawer: DrawerSlot,
    display: Slot<dyn CustomerDisplay>,
    scanner: Slot<dyn Scanner>,
    scale: Slot<dyn Scale>,
    layout: ReceiptLayout,
    weighed: Vec<WeighedFormat>,
    display_labels: DisplayLabels,
    display_state: DisplayState,
    scanner_timeout: Duration,
    startup_problems: Vec<DeviceError>,
}

impl Devices {
    /// Devices with nothing attached, to be filled with the `with_*` methods (tests,
    /// simulators kept by the caller).
    pub fn empty(layout: ReceiptLayout) -> Devices {
        Devices {
            printer: Slot::absent(DeviceRole::ReceiptPrinter),
            drawer: DrawerSlot::Own(Slot::absent(DeviceRole::CashDrawer)),
            display: Slot::absent(DeviceRole::CustomerDisplay),
            scanner: Slot::absent(DeviceRole::Scanner),
            scale: Slot::absent(DeviceRole::Scale),
            layout,
            weighed: Vec::new(),
            display_labels: DisplayLabels::default(),
            display_state: DisplayState::default(),
            scanner_timeout: timeout(crate::config::DEVICE_TIMEOUT_MS_DEFAULT),
            startup_problems: Vec::new(),
        }
    }

    pub fn with_printer(mut self, printer: Box<dyn ReceiptPrinter>) -> Devices {
        self.printer = Slot::ready(DeviceRole::ReceiptPrinter, printer);
        self
    }

    pub fn with_drawer(mut self, drawer: Box<dyn CashDrawer>) -> Devices {
        self.drawer = DrawerSlot::Own(Slot::ready(DeviceRole::CashDrawer, drawer));
        self
    }

    pub fn with_drawer_through_printer(mut self, pulse: DrawerPulse) -> Devices {
        self.drawer = DrawerSlot::ThroughPrinter(pulse);
        self
    }

    pub fn with_display(mut self, display: Box<dyn CustomerDisplay>) -> Devices {
        self.display_labels = display.labels().clone();
        self.display = Slot::ready(DeviceRole::CustomerDisplay, display);
        self
    }

    pub fn with_scanner(mut self, scanner: Box<dyn Scanner>) -> Devices {
        self.scanner = Slot::ready(DeviceRole::Scanner, scanner);
        self
    }

    pub fn with_scale(mut self, scale: Box<dyn Scale>) -> Devices {
        self.scale = Slot::ready(DeviceRole::Scale, scale);
        self
    }

    pub fn with_weighed_formats(mut self, formats: Vec<WeighedFormat>) -> Devices {
        self.weighed = formats;
        self
    }

    /// Builds every configured device and tries to open the ones that stay open
    /// (display, scanner, scale). Failures are kept in [`Devices::startup_problems`];
    /// those devices are tried again on first use. The printer connects per job.
    pub fn open(config: &DevicesConfig) -> Devices {
        let mut devices = Devices::empty(config.receipt.clone());
        devices.weighed = config.weighed_barcodes.clone();
        devices.display_labels = config.display.labels.clone();
        devices.scanner_timeout = timeout(config.scanner.timeout_ms);

        let p = &config.printer;
        devices.printer = match &p.connection {
            Connection::None => Slot::absent(DeviceRole::ReceiptPrinter),
            Connection::Simulator => Slot::ready(DeviceRole::ReceiptPrinter, Box::new(SimulatedPrinter::new())),
            other => {
                Slot::ready(DeviceRole::ReceiptPrinter, Box::new(EscPosPrinter::new(other.clone(), timeout(p.timeout_ms), p.status_check)))
            }
        };

        let d = &config.drawer;
        devices.drawer = match &d.connection {
            DrawerConnection::None => DrawerSlot::Own(Slot::absent(DeviceRole::CashDrawer)),
            DrawerConnection::Simulator => DrawerSlot::Own(Slot::ready(DeviceRole::CashDrawer, Box::new(SimulatedDrawer::new()))),
            DrawerConnection::Printer => DrawerSlot::ThroughPrinter(d.pulse),
            DrawerConnection::Serial { path, baud } => {
                drawer_slot(Connection::Serial { path: path.clone(), baud: *baud }, d.pulse, d.timeout_ms)
            }
            DrawerConnection::Tcp { addr } => drawer_slot(Connection::Tcp { addr: addr.clone() }, d.pulse, d.timeout_ms),
            DrawerConnection::DeviceFile { path } => drawer_slot(Connection::DeviceFile { path: path.clone() }, d.pulse, d.timeout_ms),
        };

        let c = config.display.clone();
        devices.display = match &c.connection {
            Connection::None => Slot::absent(DeviceRole::CustomerDisplay),
            Connection::Simulator => Slot::ready(DeviceRole::CustomerDisplay, Box::new(SimulatedDisplay::new(c.labels.clone()))),
            _ => Slot::lazy(
                DeviceRole::CustomerDisplay,
                Box::new(move || {
                    let t = c.connection.open(DeviceRole::CustomerDisplay, None, timeout(c.timeout_ms))?;
                    Ok(Box::new(PoleDisplay::open(t, c.charset, c.labels.clone())?))
                }),
            ),
        };

        let c = config.scanner.clone();
        devices.scanner = match (&c.connection, c.input) {
            (Connection::None, _) => Slot::absent(DeviceRole::Scanner),
            (Connection::Simulator, _) => Slot::ready(DeviceRole::Scanner, Box::new(SimulatedScanner::new())),
            (Connection::DeviceFile { path }, ScannerInput::Keyboard) => {
                let (path, grab) = (path.clone(), c.grab);
                Slot::lazy(
                    DeviceRole::Scanner,
                    Box::new(move || {
                        let location = path.display().to_string();
                        let scanner = WedgeScanner::open(&path, grab)
                            .map_err(|e| DeviceError::from_io(DeviceRole::Scanner, &location, Duration::ZERO, e))?;
                        Ok(Box::new(scanner))
                    }),
                )
            }
            (_, ScannerInput::Keyboard) => {
                config_error(DeviceRole::Scanner, "input = \"keyboard\" reads /dev/input/eventN and needs kind = \"device_file\"")
            }
            (Connection::File { .. }, _) => {
                config_error(DeviceRole::Scanner, "kind = \"file\" is write-only; a scanner needs a port to read")
            }
            (_, ScannerInput::Lines) => Slot::lazy(
                DeviceRole::Scanner,
                Box::new(move || {
                    let t = c.connection.open(DeviceRole::Scanner, None, timeout(c.timeout_ms))?;
                    Ok(Box::new(LineScanner::new(t)))
                }),
            ),
        };

        let c = config.scale.clone();
        devices.scale = match &c.connection {
            Connection::None => Slot::absent(DeviceRole::Scale),
            Connection::Simulator => Slot::ready(DeviceRole::Scale, Box::new(SimulatedScale::new(&SIMULATED_SCALE_LINES))),
            Connection::File { .. } => config_error(DeviceRole::Scale, "kind = \"file\" is write-only; a scale needs a port to read"),
            _ => Slot::lazy(
                DeviceRole::Scale,
                Box::new(move || {
                    let t = c.connection.open(DeviceRole::Scale, None, timeout(c.timeout_ms))?;
                    Ok(Box::new(SerialScale::new(t, SystemClock::new(), c.request.as_bytes())))
                }),
            ),
        };

        let mut problems = Vec::new();
        if let Err(e) = devices.display.ensure_open() {
            problems.push(e);
        }
        if devices.scanner.is_configured() {
            if let Err(e) = devices.scanner.ensure_open() {
                problems.push(e);
            }
        }
        if devices.scale.is_configured() {
            if let Err(e) = devices.scale.ensure_open() {
                problems.push(e);
            }
        }
        problems.retain(|e| !matches!(e, DeviceError::NotConfigured { .. }));
        devices.startup_problems = problems;
        devices
    }

    /// Devices that could not be opened at start, to show the technician. Each is tried
    /// again when it is next used.
    pub fn startup_problems(&self) -> &[DeviceError] {
        &self.startup_problems
    }

    pub fn layout(&self) -> &ReceiptLayout {
        &self.layout
    }

    /// Lays out and prints a receipt. Call after the sale is committed.
    pub fn print_receipt(&mut self, receipt: &Receipt) -> Result<(), DeviceError> {
        let job = render(receipt, &self.layout).map_err(|e| DeviceError::BadInput {
            role: DeviceRole::ReceiptPrinter,
            location: "receipt layout".into(),
            reason: InputError::Receipt(e),
        })?;
        self.print_job(&job)
    }

    /// Sends a ready ESC/POS job, e.g. a reprint.
    pub fn print_job(&mut self, job: &[u8]) -> Result<(), DeviceError> {
        self.printer.with(|p| p.print(job))
    }

    /// Opens the cash drawer. Call after the sale is committed.
    pub fn open_drawer(&mut self) -> Result<(), DeviceError> {
        match &mut self.drawer {
            DrawerSlot::ThroughPrinter(pulse) => {
                let pulse = *pulse;
                self.printer.with(|p| kick_through_printer(p, pulse)).map_err(|e| match e {
                    DeviceError::NotConfigured { .. } => DeviceError::Config {
                        role: DeviceRole::CashDrawer,
                        reason: "it is wired to the receipt printer, and no printer is configured".into(),
                    },
                    other => other,
                })
            }
            DrawerSlot::Own(slot) => slot.with(|d| d.open()),
        }
    }

    /// What the customer display shows now; the web second screen renders this too, so
    /// it is kept even when there is no pole display.
    pub fn display_state(&self) -> &DisplayState {
        &self.display_state
    }

    /// Shows `state`. Without a pole display this only updates [`Devices::display_state`]
    /// and is not an error.
    pub fn show(&mut self, state: DisplayState) -> Result<(), DeviceError> {
        self.display_state = state;
        if !self.display.is_configured() {
            return Ok(());
        }
        let state = &self.display_state;
        self.display.with(|d| d.show(state))
    }

    pub fn show_item(&mut self, name: &str, price: Decimal) -> Result<(), DeviceError> {
        self.show(DisplayState::item(name, price))
    }

    pub fn show_total(&mut self, total: Decimal) -> Result<(), DeviceError> {
        let state = DisplayState::total(&self.display_labels, total);
        self.show(state)
    }

    pub fn show_change(&mut self, paid: Decimal, change: Decimal) -> Result<(), DeviceError> {
        let state = DisplayState::change(&self.display_labels, paid, change);
        self.show(state)
    }

    /// Waits up to `timeout` for a scan and checks it: `Ok(None)` when nothing was
    /// scanned, an error naming the misread when a check digit is wrong.
    pub fn next_scan(&mut self, timeout: Duration) -> Result<Option<Scanned>, DeviceError> {
        let weighed = &self.weighed;
        self.scanner.with(|s| {
            let Some(code) = s.next_code(timeout)? else {
                return Ok(None);
            };
            interpret(&code, weighed).map(Some).map_err(|e| DeviceError::BadInput {
                role: DeviceRole::Scanner,
                location: s.location().to_owned(),
                reason: InputError::Barcode(e),
            })
        })
    }

    /// [`Devices::next_scan`] with the scanner's configured deadline.
    pub fn poll_scan(&mut self) -> Result<Option<Scanned>, DeviceError> {
        self.next_scan(self.scanner_timeout)
    }

    pub fn read_weight(&mut self, timeout: Duration) -> Result<Reading, DeviceError> {
        self.scale.with(|s| s.read(timeout))
    }

    /// The first stable weight within `timeout`, or "scale never settled".
    pub fn read_stable_weight(&mut self, timeout: Duration) -> Result<Reading, DeviceError> {
        self.scale.with(|s| s.read_stable(timeout))
    }
}

impl std::fmt::Debug for Devices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Devices")
            .field("printer", &self.printer.is_configured())
            .field("display", &self.display.is_configured())
            .field("scanner", &self.scanner.is_configured())
            .field("scale", &self.scale.is_configured())
            .field("display_state", &self.display_state)
            .finish_non_exhaustive()
    }
}

fn drawer_slot(connection: Connection, pulse: DrawerPulse, timeout_ms: u64) -> DrawerSlot {
    DrawerSlot::Own(Slot::lazy(
        DeviceRole::CashDrawer,
        Box::new(move || {
            let t = connection.open(DeviceRole::CashDrawer, None, timeout(timeout_ms))?;
            Ok(Box::new(SerialDrawer::new(t, pulse)))
        }),
    ))
}

/// A slot that answers every use with the configuration problem.
fn config_error<D: ?Sized + 'static>(role: DeviceRole, reason: &'static str) -> Slot<D> {
    Slot::lazy(role, Box::new(move || Err(DeviceError::Config { role, reason: reason.to_owned() })))
}
