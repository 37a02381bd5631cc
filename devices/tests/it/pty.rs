//! A pseudo-terminal stands in for a USB serial cable: the driver opens the slave path
//! exactly as it would open /dev/ttyUSB0 (termios raw mode, baud), and the test plays the
//! device on the master side.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::termios::{self, SetArg};

/// Poll slice of the device side; only bounds how quickly a helper notices it should stop.
const POLL_SLICE_MS: u16 = 10;

/// Slices a device-side helper waits in all before giving up, so a broken driver fails
/// the test instead of hanging it.
const SLICES_MAX: usize = 1000;

pub struct Pty {
    /// The device's end.
    pub master: File,
    /// Kept open so the pty lives while the driver opens and closes its own descriptor.
    pub slave: OwnedFd,
    /// /dev/pts/N: what the driver is configured with.
    pub path: PathBuf,
}

impl Pty {
    pub fn open() -> Pty {
        let pair = nix::pty::openpty(None, None).expect("openpty");
        // Raw line discipline from the start: bytes the device side writes before the
        // driver opens the port must not be echoed back or have CR turned into LF.
        let mut t = termios::tcgetattr(&pair.slave).expect("tcgetattr");
        termios::cfmakeraw(&mut t);
        termios::tcsetattr(&pair.slave, SetArg::TCSANOW, &t).expect("tcsetattr");
        let path = std::fs::read_link(format!("/proc/self/fd/{}", pair.slave.as_raw_fd())).expect("slave path");
        Pty { master: File::from(pair.master), slave: pair.slave, path }
    }
}

fn readable(file: &File) -> bool {
    let mut fds = [PollFd::new(file.as_fd(), PollFlags::POLLIN)];
    matches!(poll(&mut fds, PollTimeout::from(POLL_SLICE_MS)), Ok(n) if n > 0)
}

/// Reads from the device side until `enough(received)` holds; panics if the driver never
/// sends that much.
pub fn read_until(master: &mut File, enough: impl Fn(&[u8]) -> bool) -> Vec<u8> {
    let mut received = Vec::new();
    for _ in 0..SLICES_MAX {
        if enough(&received) {
            return received;
        }
        if readable(master) {
            let mut buf = [0u8; 4096];
            match master.read(&mut buf) {
                Ok(n) => received.extend_from_slice(&buf[..n]),
                Err(e) => panic!("device side read failed after {} bytes: {e}", received.len()),
            }
        }
    }
    panic!("the driver sent only {} bytes: {received:02X?}", received.len());
}

/// Plays a device in request/response mode until `done` is set: everything received is
/// collected, and `answer` may turn the bytes so far into a reply (it drains what it
/// answered). Returns everything received.
pub fn serve(master: &mut File, done: &AtomicBool, mut answer: impl FnMut(&mut Vec<u8>) -> Option<Vec<u8>>) -> Vec<u8> {
    let mut received = Vec::new();
    let mut unanswered = Vec::new();
    for _ in 0..SLICES_MAX {
        if done.load(Ordering::SeqCst) {
            break;
        }
        if !readable(master) {
            continue;
        }
        let mut buf = [0u8; 4096];
        let Ok(n) = master.read(&mut buf) else { break };
        received.extend_from_slice(&buf[..n]);
        unanswered.extend_from_slice(&buf[..n]);
        if let Some(reply) = answer(&mut unanswered) {
            master.write_all(&reply).expect("device side write");
        }
    }
    received
}
