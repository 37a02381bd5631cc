//! Cash drawers. Most drawers hang off the receipt printer's DK port and open on the
//! ESC p pulse; some have their own serial trigger box, which takes the same ESC p bytes
//! on its own port. Opening is fire-and-forget: drawers report nothing back.

use crate::error::{DeviceError, DeviceRole};
use crate::escpos::DrawerPulse;
use crate::printer::ReceiptPrinter;
use crate::transport::Transport;

/// A cash drawer. Open it only after the sale is committed: its errors say the sale is saved.
pub trait CashDrawer: Send {
    fn open(&mut self) -> Result<(), DeviceError>;
}

/// Opens a drawer wired to the printer's drawer port by sending ESC p as a job of its own.
/// Errors name the drawer, since that is what the cashier was waiting for.
pub fn kick_through_printer(printer: &mut dyn ReceiptPrinter, pulse: DrawerPulse) -> Result<(), DeviceError> {
    printer.print(&pulse.command()).map_err(|e| as_drawer_error(e, printer.location()))
}

fn as_drawer_error(e: DeviceError, printer_location: &str) -> DeviceError {
    let role = DeviceRole::CashDrawer;
    let location = format!("{printer_location} (through the printer)");
    match e {
        DeviceError::NotConfigured { .. } => DeviceError::NotConfigured { role },
        DeviceError::Unplugged { .. } => DeviceError::Unplugged { role, location },
        DeviceError::Timeout { timeout_ms, .. } => DeviceError::Timeout { role, location, timeout_ms },
        DeviceError::Io { source, .. } => DeviceError::Io { role, location, source },
        DeviceError::NotReady { cause, .. } => DeviceError::NotReady { role, location, cause },
        other => other,
    }
}

/// A drawer on its own serial trigger box (or any transport).
#[derive(Debug)]
pub struct SerialDrawer<T: Transport> {
    transport: T,
    pulse: DrawerPulse,
}

impl<T: Transport> SerialDrawer<T> {
    pub fn new(transport: T, pulse: DrawerPulse) -> SerialDrawer<T> {
        SerialDrawer { transport, pulse }
    }

    pub fn transport(&self) -> &T {
        &self.transport
    }
}

impl<T: Transport> CashDrawer for SerialDrawer<T> {
    fn open(&mut self) -> Result<(), DeviceError> {
        self.transport
            .write_all(&self.pulse.command())
            .map_err(|e| DeviceError::from_io(DeviceRole::CashDrawer, self.transport.location(), self.transport.write_timeout(), e))
    }
}

/// A drawer that counts how often it was opened.
#[derive(Debug, Default)]
pub struct SimulatedDrawer {
    opened: u64,
}

impl SimulatedDrawer {
    pub fn new() -> SimulatedDrawer {
        SimulatedDrawer::default()
    }

    pub fn opened(&self) -> u64 {
        self.opened
    }
}

impl CashDrawer for SimulatedDrawer {
    fn open(&mut self) -> Result<(), DeviceError> {
        self.opened = self.opened.saturating_add(1);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::printer::SimulatedPrinter;
    use crate::transport::MemoryTransport;

    #[test]
    fn serial_drawer_sends_esc_p() {
        let mut d = SerialDrawer::new(MemoryTransport::new("mem"), DrawerPulse::default());
        d.open().expect("memory");
        assert_eq!(d.transport().written(), [0x1B, 0x70, 0x00, 0x19, 0xFA]);
    }

    #[test]
    fn drawer_through_unplugged_printer_names_the_drawer() {
        let mut p = SimulatedPrinter::new();
        p.unplug_after(0);
        let e = kick_through_printer(&mut p, DrawerPulse::default()).expect_err("unplugged");
        assert_eq!(
            e.to_string(),
            "cash drawer at simulator (through the printer) is unplugged or closed the connection; \
             the sale is saved — open the drawer with its key"
        );
    }
}
