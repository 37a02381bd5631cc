//! Receipt printers: the [`ReceiptPrinter`] trait, the ESC/POS driver and a simulator.
//!
//! A job is sent whole over a connection opened for that job and closed after it. Network
//! printers drop idle connections and USB printers come and go, so a connection kept from
//! the morning is the likeliest to be dead at the evening rush; a fresh one per receipt
//! costs a few milliseconds.
//!
//! Must not: know what a receipt means (`receipt` renders it) or fail a sale: errors go
//! back to the caller as values.

use std::collections::VecDeque;
use std::io;
use std::time::Duration;

use crate::config::Connection;
use crate::error::{DeviceError, DeviceRole};
use crate::escpos::{offline_cause, STATUS_QUERY};
use crate::transport::{Transport, PRINTER_TCP_PORT};

/// Bytes read when waiting for the status answer; one is expected, a few more tolerate a
/// printer that also sends automatic status blocks.
const STATUS_REPLY_BYTES_MAX: usize = 8;

/// A receipt printer.
///
/// Call [`ReceiptPrinter::print`] only after the sale is committed: its errors tell the
/// cashier "the sale is saved — reprint the receipt from the document later".
pub trait ReceiptPrinter: Send {
    /// Sends one complete ESC/POS job (see [`crate::receipt::render`]).
    fn print(&mut self, job: &[u8]) -> Result<(), DeviceError>;

    /// Where the printer is, for messages.
    fn location(&self) -> &str;
}

/// Writes `job`, then, when `status_check` is set, asks the printer for its status
/// (DLE EOT 2) and waits up to `reply_timeout` for the answer.
///
/// The answer is what turns "the bytes left this machine" into "a printer took them":
/// a TCP peer that closed or a pty whose other end is gone shows up here even when the
/// job fit in the kernel's buffers. Transports that cannot read (a file sink) skip it,
/// so the query bytes never end up in a receipt file.
pub fn print_job(transport: &mut dyn Transport, job: &[u8], status_check: bool, reply_timeout: Duration) -> Result<(), DeviceError> {
    let role = DeviceRole::ReceiptPrinter;
    let fail = |t: &dyn Transport, timeout: Duration, e: io::Error| DeviceError::from_io(role, t.location(), timeout, e);
    transport.write_all(job).map_err(|e| fail(transport, transport.write_timeout(), e))?;
    if !status_check || !transport.can_read() {
        return Ok(());
    }
    // Bytes from before (an automatic status block) must not be taken for the answer.
    transport.discard_input().map_err(|e| fail(transport, reply_timeout, e))?;
    transport.write_all(&STATUS_QUERY).map_err(|e| fail(transport, transport.write_timeout(), e))?;
    let mut reply = [0u8; STATUS_REPLY_BYTES_MAX];
    let n = match transport.read_timeout(&mut reply, reply_timeout) {
        Err(e) if e.kind() == io::ErrorKind::Unsupported => return Ok(()),
        Err(e) => return Err(fail(transport, reply_timeout, e)),
        Ok(0) => return Err(DeviceError::Unplugged { role, location: transport.location().to_owned() }),
        Ok(n) => n,
    };
    match offline_cause(reply[n - 1]) {
        None => Ok(()),
        Some(cause) => Err(DeviceError::NotReady { role, location: transport.location().to_owned(), cause }),
    }
}

/// An ESC/POS printer reached through a [`Connection`], one connection per job.
#[derive(Debug, Clone)]
pub struct EscPosPrinter {
    connection: Connection,
    timeout: Duration,
    status_check: bool,
    location: String,
}

impl EscPosPrinter {
    /// `timeout` bounds the connect, the write and the wait for the status answer.
    pub fn new(connection: Connection, timeout: Duration, status_check: bool) -> EscPosPrinter {
        let location = connection.location();
        EscPosPrinter { connection, timeout, status_check, location }
    }
}

impl ReceiptPrinter for EscPosPrinter {
    fn print(&mut self, job: &[u8]) -> Result<(), DeviceError> {
        let mut transport = self.connection.open(DeviceRole::ReceiptPrinter, Some(PRINTER_TCP_PORT), self.timeout)?;
        print_job(&mut *transport, job, self.status_check, self.timeout)
    }

    fn location(&self) -> &str {
        &self.location
    }
}

/// Jobs a [`SimulatedPrinter`] keeps; older ones are dropped.
pub const SIMULATED_JOBS_MAX: usize = 16;

/// A printer in memory: keeps the jobs it got and can be unplugged mid-receipt.
#[derive(Debug, Default)]
pub struct SimulatedPrinter {
    jobs: VecDeque<Vec<u8>>,
    unplug_after_bytes: Option<usize>,
    unplugged: bool,
}

impl SimulatedPrinter {
    pub fn new() -> SimulatedPrinter {
        SimulatedPrinter::default()
    }

    /// The next job is cut off after `bytes` bytes, and the printer stays unplugged until
    /// [`SimulatedPrinter::plug_in`].
    pub fn unplug_after(&mut self, bytes: usize) {
        self.unplug_after_bytes = Some(bytes);
    }

    pub fn plug_in(&mut self) {
        self.unplug_after_bytes = None;
        self.unplugged = false;
    }

    /// Jobs received, oldest first; a job cut off by an unplug is kept as far as it got.
    pub fn jobs(&self) -> impl Iterator<Item = &[u8]> {
        self.jobs.iter().map(Vec::as_slice)
    }

    fn keep(&mut self, job: &[u8]) {
        if self.jobs.len() == SIMULATED_JOBS_MAX {
            self.jobs.pop_front();
        }
        self.jobs.push_back(job.to_vec());
    }
}

impl ReceiptPrinter for SimulatedPrinter {
    fn print(&mut self, job: &[u8]) -> Result<(), DeviceError> {
        let unplugged = || DeviceError::Unplugged { role: DeviceRole::ReceiptPrinter, location: "simulator".into() };
        if self.unplugged {
            return Err(unplugged());
        }
        match self.unplug_after_bytes.take() {
            Some(limit) if limit < job.len() => {
                self.keep(&job[..limit]);
                self.unplugged = true;
                Err(unplugged())
            }
            _ => {
                self.keep(job);
                Ok(())
            }
        }
    }

    fn location(&self) -> &str {
        "simulator"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::MemoryTransport;

    #[test]
    fn status_answer_paper_out_is_not_ready() {
        let mut t = MemoryTransport::new("mem");
        t.respond_with(Box::new(|bytes: &[u8]| if bytes == STATUS_QUERY { vec![0x32] } else { Vec::new() }));
        let e = print_job(&mut t, b"\x1b@hello", true, Duration::from_millis(10)).expect_err("paper out");
        assert!(matches!(e, DeviceError::NotReady { cause: "the paper ran out", .. }), "{e:?}");
        assert!(e.to_string().contains("the sale is saved"), "{e}");
    }

    #[test]
    fn silent_printer_times_out() {
        let mut t = MemoryTransport::new("192.168.1.50:9100");
        let e = print_job(&mut t, b"\x1b@", true, Duration::from_secs(2)).expect_err("no answer");
        assert_eq!(
            e.to_string(),
            "receipt printer at 192.168.1.50:9100 did not answer within 2 s; \
             the sale is saved — reprint the receipt from the document later"
        );
    }

    #[test]
    fn simulator_unplugs_mid_receipt_and_stays_unplugged() {
        let mut p = SimulatedPrinter::new();
        p.unplug_after(3);
        let e = p.print(b"\x1b@hello").expect_err("unplugged");
        assert!(e.to_string().contains("reprint the receipt"), "{e}");
        assert_eq!(p.jobs().last(), Some(&b"\x1b@h"[..]));
        assert!(p.print(b"\x1b@").is_err());
        p.plug_in();
        p.print(b"\x1b@").expect("plugged in again");
    }
}
