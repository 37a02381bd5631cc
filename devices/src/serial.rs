//! Serial ports and device nodes (/dev/ttyUSB0, /dev/ttyS0, /dev/usb/lp0, a pty slave).
//!
//! A serial port is a device node with termios settings: raw mode, 8N1, no flow control,
//! a chosen baud rate. Reads and writes go through `poll` so every call has a deadline; the
//! descriptor is non-blocking so a stuck device can never hang the till. A pseudo-terminal
//! slave opens exactly like a USB serial adapter, which is how the tests drive this code.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::libc;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::termios::{self, BaudRate, ControlFlags, FlushArg, InputFlags, SetArg, SpecialCharacterIndices};
use serde::{Deserialize, Serialize};

use crate::transport::Transport;

/// Reads done by [`Transport::discard_input`] on a node that is not a tty.
const DISCARD_READS_MAX: usize = 64;

/// A baud rate the termios interface can set. Serial POS devices use these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct Baud(u32);

impl Baud {
    pub const B9600: Baud = Baud(9600);

    fn rate(self) -> BaudRate {
        match self.0 {
            1200 => BaudRate::B1200,
            2400 => BaudRate::B2400,
            4800 => BaudRate::B4800,
            19200 => BaudRate::B19200,
            38400 => BaudRate::B38400,
            57600 => BaudRate::B57600,
            9600 => BaudRate::B9600,
            115200 => BaudRate::B115200,
            // `TryFrom` admits only the rates above; 9600 is the POS default anyway.
            _ => BaudRate::B9600,
        }
    }
}

impl TryFrom<u32> for Baud {
    type Error = String;
    fn try_from(bits_per_s: u32) -> Result<Self, String> {
        match bits_per_s {
            1200 | 2400 | 4800 | 9600 | 19200 | 38400 | 57600 | 115200 => Ok(Baud(bits_per_s)),
            other => Err(format!("baud {other} is not supported; use 1200, 2400, 4800, 9600, 19200, 38400, 57600 or 115200")),
        }
    }
}

impl From<Baud> for u32 {
    fn from(b: Baud) -> u32 {
        b.0
    }
}

impl Default for Baud {
    fn default() -> Self {
        Baud::B9600
    }
}

/// A device node used through a non-blocking descriptor with deadlines.
#[derive(Debug)]
pub struct FdTransport {
    file: File,
    location: String,
    write_timeout: Duration,
}

/// Opens a serial port: raw 8N1, no flow control, `baud`, and input left from before
/// discarded. Writes run under `write_timeout`.
pub fn open_serial(path: &Path, baud: Baud, write_timeout: Duration) -> io::Result<FdTransport> {
    let port = open_device_file(path, write_timeout)?;
    let mut t = termios::tcgetattr(&port.file)?;
    termios::cfmakeraw(&mut t);
    // CLOCAL: ignore modem lines, which cheap adapters leave floating. No parity, one stop
    // bit, no RTS/CTS or XON/XOFF: POS devices send binary that may contain 0x11/0x13.
    t.control_flags |= ControlFlags::CLOCAL | ControlFlags::CREAD | ControlFlags::CS8;
    t.control_flags &= !(ControlFlags::PARENB | ControlFlags::CSTOPB | ControlFlags::CRTSCTS);
    t.input_flags &= !(InputFlags::IXON | InputFlags::IXOFF | InputFlags::IXANY);
    // VMIN 1, VTIME 0 on a non-blocking descriptor: a read returns what is there or fails
    // with EAGAIN, and 0 only means hang-up. (VMIN 0 would make "no data yet" read as 0,
    // indistinguishable from an unplugged adapter.) Deadlines come from poll.
    t.control_chars[SpecialCharacterIndices::VMIN as usize] = 1;
    t.control_chars[SpecialCharacterIndices::VTIME as usize] = 0;
    termios::cfsetspeed(&mut t, baud.rate())?;
    termios::tcsetattr(&port.file, SetArg::TCSANOW, &t)?;
    termios::tcflush(&port.file, FlushArg::TCIFLUSH)?;
    Ok(port)
}

/// Opens a device node read-write without touching its settings, e.g. /dev/usb/lp0.
pub fn open_device_file(path: &Path, write_timeout: Duration) -> io::Result<FdTransport> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        // O_NOCTTY: a serial port must never become the agent's controlling terminal.
        .custom_flags(libc::O_NOCTTY | libc::O_NONBLOCK)
        .open(path)?;
    Ok(FdTransport { file, location: path.display().to_string(), write_timeout })
}

/// Opens a node read-only and non-blocking, e.g. /dev/input/event3.
pub(crate) fn open_read_only(path: &Path) -> io::Result<File> {
    OpenOptions::new().read(true).custom_flags(libc::O_NOCTTY | libc::O_NONBLOCK).open(path)
}

/// Waits until `fd` is ready for `flags` or `timeout` passes; false on timeout. An
/// interrupted wait reports ready, and the caller's next read or write finds out.
pub(crate) fn wait_ready(fd: &impl AsFd, flags: PollFlags, timeout: Duration) -> io::Result<bool> {
    // poll takes at most ~65 s in this form; callers loop against their own deadline.
    let ms = u16::try_from(crate::error::millis(timeout)).unwrap_or(u16::MAX);
    let mut fds = [PollFd::new(fd.as_fd(), flags)];
    match poll(&mut fds, PollTimeout::from(ms)) {
        Ok(0) => Ok(false),
        Ok(_) => Ok(true),
        Err(nix::errno::Errno::EINTR) => Ok(true),
        Err(e) => Err(e.into()),
    }
}

/// Reads from a non-blocking `file` within `timeout`. Same contract as
/// [`Transport::read_timeout`]. Every pass either returns or waits on poll, and the loop
/// ends at the deadline.
pub(crate) fn read_deadline(file: &mut File, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
    let deadline = Instant::now() + timeout;
    loop {
        match file.read(buf) {
            Ok(n) => return Ok(n),
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => {}
            Err(e) => return Err(e),
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || !wait_ready(file, PollFlags::POLLIN, left)? {
            return Err(io::ErrorKind::TimedOut.into());
        }
    }
}

impl Transport for FdTransport {
    fn location(&self) -> &str {
        &self.location
    }

    fn write_timeout(&self) -> Duration {
        self.write_timeout
    }

    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        let deadline = Instant::now() + self.write_timeout;
        let mut rest = bytes;
        while !rest.is_empty() {
            match self.file.write(rest) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    rest = &rest[n..];
                    continue;
                }
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => {}
                Err(e) => return Err(e),
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || !wait_ready(&self.file, PollFlags::POLLOUT, left)? {
                return Err(io::ErrorKind::TimedOut.into());
            }
        }
        Ok(())
    }

    fn read_timeout(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
        read_deadline(&mut self.file, buf, timeout)
    }

    fn discard_input(&mut self) -> io::Result<()> {
        if termios::tcflush(&self.file, FlushArg::TCIFLUSH).is_ok() {
            return Ok(());
        }
        // Not a tty (a printer node, a plain file): read away what is waiting.
        let mut buf = [0u8; 4096];
        for _ in 0..DISCARD_READS_MAX {
            match self.file.read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn baud_must_be_standard() {
        assert_eq!(Baud::try_from(9600), Ok(Baud::B9600));
        assert!(Baud::try_from(9601).is_err());
    }
}
