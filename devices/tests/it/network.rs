//! Network printers (raw TCP, port 9100 style) against a listener on 127.0.0.1, and file
//! sinks that fail mid-write.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::time::Duration;

use devices::config::Connection;
use devices::escpos::STATUS_QUERY;
use devices::printer::{EscPosPrinter, ReceiptPrinter};
use devices::{sample_receipt, DeviceError};

/// Upper bound for calls whose answer is on its way; never reached when things work.
const WAIT: Duration = Duration::from_secs(5);

fn listener() -> (TcpListener, String) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let addr = l.local_addr().expect("local addr").to_string();
    (l, addr)
}

#[test]
fn tcp_printer_prints_and_answers_status() {
    let (l, addr) = listener();
    let job = sample_receipt();
    let expected_len = job.len() + STATUS_QUERY.len();
    let device = std::thread::spawn(move || {
        let (mut stream, _) = l.accept().expect("accept");
        stream.set_read_timeout(Some(WAIT)).expect("timeout");
        let mut received = vec![0u8; expected_len];
        stream.read_exact(&mut received).expect("whole job and status query");
        stream.write_all(&[0x12]).expect("status answer: online");
        received
    });
    let mut printer = EscPosPrinter::new(Connection::Tcp { addr }, WAIT, true);
    printer.print(&job).expect("printed");
    let received = device.join().expect("device thread");
    assert_eq!(received, [job, STATUS_QUERY.to_vec()].concat());
}

#[test]
fn tcp_printer_closing_mid_receipt_says_sale_is_saved() {
    let (l, addr) = listener();
    let device = std::thread::spawn(move || {
        let (mut stream, _) = l.accept().expect("accept");
        stream.set_read_timeout(Some(WAIT)).expect("timeout");
        let mut first = [0u8; 64];
        stream.read_exact(&mut first).expect("start of the job");
        // Power cut: the connection goes away with the rest of the job unread.
    });
    let mut printer = EscPosPrinter::new(Connection::Tcp { addr: addr.clone() }, WAIT, true);
    let e = printer.print(&sample_receipt()).expect_err("peer closed");
    device.join().expect("device thread");
    assert!(matches!(e, DeviceError::Unplugged { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        format!(
            "receipt printer at {addr} is unplugged or closed the connection; \
             the sale is saved — reprint the receipt from the document later"
        )
    );
}

#[test]
fn tcp_printer_that_never_answers_times_out() {
    let (l, addr) = listener();
    let device = std::thread::spawn(move || {
        let (mut stream, _) = l.accept().expect("accept");
        // Take the job, never answer, hold the connection until the driver gives up.
        let mut sink = Vec::new();
        stream.set_read_timeout(Some(WAIT)).expect("timeout");
        let _ = stream.read_to_end(&mut sink);
    });
    let mut printer = EscPosPrinter::new(Connection::Tcp { addr: addr.clone() }, Duration::from_millis(50), true);
    let e = printer.print(&sample_receipt()).expect_err("no answer");
    drop(printer);
    device.join().expect("device thread");
    assert_eq!(
        e.to_string(),
        format!(
            "receipt printer at {addr} did not answer within 50 ms; \
             the sale is saved — reprint the receipt from the document later"
        )
    );
}

#[test]
fn file_sink_failing_mid_write_says_sale_is_saved() {
    // /dev/full takes the open and fails every write with ENOSPC.
    let mut printer = EscPosPrinter::new(Connection::File { path: PathBuf::from("/dev/full") }, Duration::from_secs(1), true);
    let e = printer.print(&sample_receipt()).expect_err("disk full");
    assert!(matches!(e, DeviceError::Io { .. }), "{e:?}");
    let text = e.to_string();
    assert!(text.starts_with("receipt printer at /dev/full failed: "), "{text}");
    assert!(text.ends_with("the sale is saved — reprint the receipt from the document later"), "{text}");
}

#[test]
fn file_sink_keeps_every_job() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("receipts.bin");
    let mut printer = EscPosPrinter::new(Connection::File { path: path.clone() }, Duration::from_secs(1), true);
    printer.print(b"\x1b@one\n").expect("first");
    printer.print(b"\x1b@two\n").expect("second");
    assert_eq!(std::fs::read(&path).expect("read back"), b"\x1b@one\n\x1b@two\n");
}
