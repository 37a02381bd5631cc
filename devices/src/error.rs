//! Typed errors of the devices crate.
//!
//! Every failure a cashier can meet names the device, where it is, what went wrong and what
//! to do next, so the branch agent can show the message as it is. A device error never
//! means the sale failed: the caller saves the sale before it touches a peripheral, and the
//! advice text relies on that contract (see [`DeviceRole::advice`]).

use std::fmt;
use std::io;

/// Which peripheral of the till an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DeviceRole {
    ReceiptPrinter,
    CashDrawer,
    CustomerDisplay,
    Scanner,
    Scale,
}

impl DeviceRole {
    /// What the cashier should do when this device fails. Callers print a receipt, open the
    /// drawer and update the display only after the sale is committed, which is why the
    /// printer and drawer texts can promise that the sale is saved.
    pub fn advice(self) -> &'static str {
        match self {
            DeviceRole::ReceiptPrinter => "the sale is saved — reprint the receipt from the document later",
            DeviceRole::CashDrawer => "the sale is saved — open the drawer with its key",
            DeviceRole::CustomerDisplay => "the sale goes on; the customer display is not updated",
            DeviceRole::Scanner => "scan again or type the code by hand",
            DeviceRole::Scale => "weigh again or enter the weight by hand",
        }
    }
}

impl fmt::Display for DeviceRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DeviceRole::ReceiptPrinter => "receipt printer",
            DeviceRole::CashDrawer => "cash drawer",
            DeviceRole::CustomerDisplay => "customer display",
            DeviceRole::Scanner => "barcode scanner",
            DeviceRole::Scale => "scale",
        })
    }
}

/// A failure of one peripheral. Each message ends with what the cashier should do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeviceError {
    /// The device is set to `kind = "none"` (or was never given to [`crate::Devices`]).
    #[error("no {role} is configured")]
    NotConfigured { role: DeviceRole },

    /// The configuration cannot work for this device, e.g. a scale on a write-only file.
    #[error("{role} is misconfigured: {reason}")]
    Config { role: DeviceRole, reason: String },

    /// The device went away: cable pulled, peer closed the connection, device node gone.
    #[error("{role} at {location} is unplugged or closed the connection; {}", role.advice())]
    Unplugged { role: DeviceRole, location: String },

    /// The device did not answer (connect, write or reply) before the deadline.
    #[error("{role} at {location} did not answer within {}; {}", Millis(*timeout_ms), role.advice())]
    Timeout { role: DeviceRole, location: String, timeout_ms: u64 },

    /// Any other I/O failure, with the operating system's words.
    #[error("{role} at {location} failed: {source}; {}", role.advice())]
    Io {
        role: DeviceRole,
        location: String,
        #[source]
        source: io::Error,
    },

    /// The device answered but reports it cannot work: paper out, cover open.
    #[error("{role} at {location} is not ready: {cause}; {}", role.advice())]
    NotReady { role: DeviceRole, location: String, cause: &'static str },

    /// The scale kept moving until the deadline.
    #[error("scale at {location} never settled within {}; {}", Millis(*timeout_ms), DeviceRole::Scale.advice())]
    NotSettled { location: String, timeout_ms: u64 },

    /// The load is above the scale's capacity.
    #[error("scale at {location} is overloaded; take the item off and weigh again")]
    Overload { location: String },

    /// The device or the caller sent data that does not follow its format.
    #[error("{role} at {location}: {reason}; {}", role.advice())]
    BadInput {
        role: DeviceRole,
        location: String,
        #[source]
        reason: InputError,
    },
}

impl DeviceError {
    /// Which device the error is about, when it is about one.
    pub fn role(&self) -> DeviceRole {
        match self {
            DeviceError::NotConfigured { role }
            | DeviceError::Config { role, .. }
            | DeviceError::Unplugged { role, .. }
            | DeviceError::Timeout { role, .. }
            | DeviceError::Io { role, .. }
            | DeviceError::NotReady { role, .. }
            | DeviceError::BadInput { role, .. } => *role,
            DeviceError::NotSettled { .. } | DeviceError::Overload { .. } => DeviceRole::Scale,
        }
    }

    /// True when the connection to the device is no longer worth keeping; the next use
    /// opens it again (a USB printer plugged back in, a TCP printer rebooted).
    pub fn is_connection_lost(&self) -> bool {
        matches!(self, DeviceError::Unplugged { .. } | DeviceError::Timeout { .. } | DeviceError::Io { .. })
    }

    /// Turns an I/O error into the variant a cashier can act on.
    pub(crate) fn from_io(role: DeviceRole, location: &str, timeout: std::time::Duration, source: io::Error) -> DeviceError {
        let location = location.to_owned();
        if is_timeout(&source) {
            return DeviceError::Timeout { role, location, timeout_ms: millis(timeout) };
        }
        if is_unplugged(&source) {
            return DeviceError::Unplugged { role, location };
        }
        DeviceError::Io { role, location, source }
    }
}

/// Bad data, from a device or from the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InputError {
    #[error(transparent)]
    Barcode(#[from] crate::barcode::BarcodeError),
    #[error(transparent)]
    Scan(#[from] crate::scanner::ScanError),
    #[error(transparent)]
    ScaleFrame(#[from] crate::scale::FrameError),
    #[error(transparent)]
    EscPos(#[from] crate::escpos::EscPosError),
    #[error(transparent)]
    Receipt(#[from] crate::receipt::ReceiptError),
}

/// Whole seconds when the value is whole, else milliseconds: "2 s", "150 ms".
struct Millis(u64);

impl fmt::Display for Millis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (seconds, rest_ms) = (self.0 / 1000, self.0 % 1000);
        if seconds > 0 && rest_ms == 0 {
            write!(f, "{seconds} s")
        } else {
            write!(f, "{} ms", self.0)
        }
    }
}

pub(crate) fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock)
}

fn is_unplugged(e: &io::Error) -> bool {
    use io::ErrorKind as K;
    if matches!(
        e.kind(),
        K::BrokenPipe | K::ConnectionReset | K::ConnectionAborted | K::ConnectionRefused | K::NotConnected | K::UnexpectedEof | K::NotFound
    ) {
        return true;
    }
    // A USB serial adapter or USB printer that is pulled out answers EIO, ENODEV or ENXIO;
    // a pty whose other side closed answers EIO.
    matches!(e.raw_os_error(), Some(nix::libc::EIO) | Some(nix::libc::ENODEV) | Some(nix::libc::ENXIO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn printer_timeout_message_says_sale_is_saved() {
        let e = DeviceError::from_io(
            DeviceRole::ReceiptPrinter,
            "192.168.1.50:9100",
            Duration::from_secs(2),
            io::Error::from(io::ErrorKind::TimedOut),
        );
        assert_eq!(
            e.to_string(),
            "receipt printer at 192.168.1.50:9100 did not answer within 2 s; \
             the sale is saved — reprint the receipt from the document later"
        );
        assert!(e.is_connection_lost());
    }

    #[test]
    fn eio_is_unplugged() {
        let e = DeviceError::from_io(
            DeviceRole::CustomerDisplay,
            "/dev/ttyUSB0",
            Duration::from_millis(150),
            io::Error::from_raw_os_error(nix::libc::EIO),
        );
        assert!(matches!(e, DeviceError::Unplugged { .. }), "{e:?}");
    }
}
