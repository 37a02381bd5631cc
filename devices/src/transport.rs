//! How bytes reach a device: the [`Transport`] trait and its network, file and in-memory
//! implementations. Serial ports and device nodes live in [`crate::serial`].
//!
//! A transport moves bytes with deadlines and reports `std::io` errors; it does not know
//! which device is on the other end. The drivers turn its errors into [`DeviceError`]s
//! that name the device.
//!
//! [`DeviceError`]: crate::DeviceError

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::path::Path;
use std::time::Duration;

/// The port raw ESC/POS printers listen on ("JetDirect" / AppSocket).
pub const PRINTER_TCP_PORT: u16 = 9100;

/// Addresses tried for one host name: a name with dozens of records must not multiply
/// the connect timeout.
const CONNECT_ADDRS_MAX: usize = 4;

/// Reads done by [`Transport::discard_input`] when there is no driver call to flush
/// input; each takes at most one buffer, so stale input is bounded by this times 4 KiB.
const DISCARD_READS_MAX: usize = 64;

/// Bytes a [`MemoryTransport`] keeps before it refuses more, so a forgotten simulator
/// cannot grow without bound.
pub const MEMORY_BYTES_MAX: usize = 1 << 20;

/// A byte pipe to one device.
pub trait Transport: Send {
    /// Where the device is, for messages: "192.168.1.50:9100", "/dev/ttyUSB0".
    fn location(&self) -> &str;

    /// The deadline each [`Transport::write_all`] runs under.
    fn write_timeout(&self) -> Duration;

    /// Writes all of `bytes`, or fails with `TimedOut` when the device takes no more
    /// before the write deadline.
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()>;

    /// Reads what arrives within `timeout`: `Ok(n > 0)` bytes, `Ok(0)` the other side
    /// closed, `Err(TimedOut)` nothing arrived, `Err(Unsupported)` this transport cannot
    /// read (a file sink).
    fn read_timeout(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize>;

    /// Drops input that arrived before now, e.g. scale readings from before the request.
    fn discard_input(&mut self) -> io::Result<()>;

    /// False for a write-only end (a file sink): nothing will ever be read from it, so
    /// drivers skip queries that expect an answer.
    fn can_read(&self) -> bool {
        true
    }
}

impl<T: Transport + ?Sized> Transport for Box<T> {
    fn location(&self) -> &str {
        (**self).location()
    }
    fn write_timeout(&self) -> Duration {
        (**self).write_timeout()
    }
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        (**self).write_all(bytes)
    }
    fn read_timeout(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
        (**self).read_timeout(buf, timeout)
    }
    fn discard_input(&mut self) -> io::Result<()> {
        (**self).discard_input()
    }
    fn can_read(&self) -> bool {
        (**self).can_read()
    }
}

/// A raw TCP connection, e.g. to a network receipt printer on port 9100.
#[derive(Debug)]
pub struct TcpTransport {
    stream: TcpStream,
    location: String,
    write_timeout: Duration,
}

impl TcpTransport {
    /// Connects within `timeout`; `addr` is "host:port", or a bare host or IP that gets
    /// `default_port` (an error when there is none). Writes then also run under `timeout`.
    pub fn connect(addr: &str, default_port: Option<u16>, timeout: Duration) -> io::Result<TcpTransport> {
        let timeout = timeout.max(Duration::from_millis(1));
        let has_port = addr.parse::<SocketAddr>().is_ok()
            || (addr.parse::<IpAddr>().is_err() && addr.rsplit_once(':').is_some_and(|(_, port)| port.parse::<u16>().is_ok()));
        let candidates: Vec<SocketAddr> = if let Ok(sa) = addr.parse::<SocketAddr>() {
            vec![sa]
        } else if has_port {
            addr.to_socket_addrs()?.take(CONNECT_ADDRS_MAX).collect()
        } else {
            let Some(port) = default_port else {
                return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("{addr} needs a port, e.g. {addr}:4001")));
            };
            match addr.parse::<IpAddr>() {
                Ok(ip) => vec![SocketAddr::new(ip, port)],
                Err(_) => (addr, port).to_socket_addrs()?.take(CONNECT_ADDRS_MAX).collect(),
            }
        };
        let mut last_error = io::Error::new(io::ErrorKind::NotFound, format!("{addr} has no address"));
        for sa in candidates {
            match TcpStream::connect_timeout(&sa, timeout) {
                Ok(stream) => {
                    stream.set_write_timeout(Some(timeout))?;
                    // Receipt jobs are small and sent whole; waiting for Nagle only delays the print.
                    stream.set_nodelay(true)?;
                    return Ok(TcpTransport { stream, location: addr.to_owned(), write_timeout: timeout });
                }
                Err(e) => last_error = e,
            }
        }
        Err(last_error)
    }
}

impl Transport for TcpTransport {
    fn location(&self) -> &str {
        &self.location
    }

    fn write_timeout(&self) -> Duration {
        self.write_timeout
    }

    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    fn read_timeout(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
        self.stream.set_read_timeout(Some(timeout.max(Duration::from_millis(1))))?;
        match self.stream.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Err(io::ErrorKind::TimedOut.into()),
            other => other,
        }
    }

    fn discard_input(&mut self) -> io::Result<()> {
        self.stream.set_nonblocking(true)?;
        let mut buf = [0u8; 4096];
        let mut result = Ok(());
        for _ in 0..DISCARD_READS_MAX {
            match self.stream.read(&mut buf) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        self.stream.set_nonblocking(false)?;
        result
    }
}

/// A write-only file that receives the bytes a device would get: for tests, and for a
/// till without a printer that still wants the receipts kept. Appends, so jobs add up.
#[derive(Debug)]
pub struct FileSink {
    file: File,
    location: String,
}

impl FileSink {
    pub fn open(path: &Path) -> io::Result<FileSink> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(FileSink { file, location: path.display().to_string() })
    }
}

impl Transport for FileSink {
    fn location(&self) -> &str {
        &self.location
    }

    fn write_timeout(&self) -> Duration {
        Duration::ZERO
    }

    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.file.write_all(bytes)?;
        self.file.flush()
    }

    fn read_timeout(&mut self, _buf: &mut [u8], _timeout: Duration) -> io::Result<usize> {
        Err(io::ErrorKind::Unsupported.into())
    }

    fn discard_input(&mut self) -> io::Result<()> {
        Ok(())
    }

    fn can_read(&self) -> bool {
        false
    }
}

/// Answers written bytes with bytes to read, like a device in request/response mode.
pub type Responder = Box<dyn FnMut(&[u8]) -> Vec<u8> + Send>;

/// An in-memory device end for tests and simulators: records what is written, hands out
/// scripted input, and can be made to fail ("unplug") after a number of bytes.
///
/// It never blocks: when no input is queued a read fails with `TimedOut` at once, which
/// is how a silent device looks to a driver.
pub struct MemoryTransport {
    location: String,
    written: Vec<u8>,
    incoming: VecDeque<Vec<u8>>,
    responder: Option<Responder>,
    unplug_after_bytes: Option<usize>,
}

impl MemoryTransport {
    pub fn new(location: &str) -> MemoryTransport {
        MemoryTransport {
            location: location.to_owned(),
            written: Vec::new(),
            incoming: VecDeque::new(),
            responder: None,
            unplug_after_bytes: None,
        }
    }

    /// Queues bytes for one future read.
    pub fn push_incoming(&mut self, bytes: &[u8]) {
        self.incoming.push_back(bytes.to_vec());
    }

    /// Called with each write; what it returns is queued for reading.
    pub fn respond_with(&mut self, responder: Responder) {
        self.responder = Some(responder);
    }

    /// After `bytes` more bytes are written, every write fails with `BrokenPipe`.
    pub fn unplug_after(&mut self, bytes: usize) {
        self.unplug_after_bytes = Some(self.written.len().saturating_add(bytes));
    }

    pub fn written(&self) -> &[u8] {
        &self.written
    }

    pub fn take_written(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.written)
    }
}

impl Transport for MemoryTransport {
    fn location(&self) -> &str {
        &self.location
    }

    fn write_timeout(&self) -> Duration {
        Duration::ZERO
    }

    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        let limit = self.unplug_after_bytes.unwrap_or(MEMORY_BYTES_MAX).min(MEMORY_BYTES_MAX);
        let room = limit.saturating_sub(self.written.len());
        if bytes.len() > room {
            self.written.extend_from_slice(&bytes[..room]);
            return Err(io::Error::new(io::ErrorKind::BrokenPipe, "device unplugged mid-write"));
        }
        self.written.extend_from_slice(bytes);
        if let Some(responder) = self.responder.as_mut() {
            let reply = responder(bytes);
            if !reply.is_empty() {
                self.incoming.push_back(reply);
            }
        }
        Ok(())
    }

    fn read_timeout(&mut self, buf: &mut [u8], _timeout: Duration) -> io::Result<usize> {
        let Some(mut chunk) = self.incoming.pop_front() else {
            return Err(io::ErrorKind::TimedOut.into());
        };
        let n = chunk.len().min(buf.len());
        buf[..n].copy_from_slice(&chunk[..n]);
        if n < chunk.len() {
            self.incoming.push_front(chunk.split_off(n));
        }
        Ok(n)
    }

    fn discard_input(&mut self) -> io::Result<()> {
        // Queued chunks stand for input that arrives later, not input already waiting.
        Ok(())
    }
}

impl std::fmt::Debug for MemoryTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryTransport")
            .field("location", &self.location)
            .field("written_bytes", &self.written.len())
            .field("incoming_chunks", &self.incoming.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_transport_unplugs_mid_write() {
        let mut t = MemoryTransport::new("mem");
        t.unplug_after(4);
        t.write_all(b"ab").expect("fits");
        let e = t.write_all(b"cdef").expect_err("past the limit");
        assert_eq!(e.kind(), io::ErrorKind::BrokenPipe);
        assert_eq!(t.written(), b"abcd");
    }

    #[test]
    fn memory_transport_reads_chunks_then_times_out() {
        let mut t = MemoryTransport::new("mem");
        t.push_incoming(b"hello");
        let mut buf = [0u8; 3];
        assert_eq!(t.read_timeout(&mut buf, Duration::ZERO).expect("data"), 3);
        assert_eq!(t.read_timeout(&mut buf, Duration::ZERO).expect("rest"), 2);
        let e = t.read_timeout(&mut buf, Duration::ZERO).expect_err("empty");
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
    }
}
