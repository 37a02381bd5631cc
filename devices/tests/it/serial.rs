//! The real serial drivers against a pseudo-terminal playing the device.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use devices::barcode::{BarcodeError, Scanned};
use devices::clock::StepClock;
use devices::config::{Connection, DevicesConfig, ScannerConfig};
use devices::display::{CustomerDisplay, DisplayCharset, DisplayLabels, PoleDisplay};
use devices::drawer::{CashDrawer, SerialDrawer};
use devices::escpos::{DrawerPulse, STATUS_QUERY};
use devices::printer::{EscPosPrinter, ReceiptPrinter};
use devices::scale::{Scale, SerialScale, Stability};
use devices::scanner::{LineScanner, ScanError, Scanner};
use devices::serial::{open_serial, Baud};
use devices::{sample_receipt, DeviceError, Devices, InputError};
use rust_decimal::Decimal;

use crate::pty::{read_until, serve, Pty};

/// Upper bound for a driver call whose answer is already on its way; never reached when
/// the driver works.
const WAIT: Duration = Duration::from_secs(5);

fn port(pty: &Pty) -> devices::serial::FdTransport {
    open_serial(&pty.path, Baud::B9600, WAIT).expect("open the pty slave as a serial port")
}

#[test]
fn scanner_codes_arrive_over_serial() {
    let mut pty = Pty::open();
    let mut scanner = LineScanner::new(port(&pty));
    pty.master.write_all(b"6901234567892\r\n4006381333931\r").expect("device writes");
    assert_eq!(scanner.next_code(WAIT).expect("first"), Some("6901234567892".into()));
    assert_eq!(scanner.next_code(WAIT).expect("second"), Some("4006381333931".into()));
    assert_eq!(scanner.next_code(Duration::from_millis(1)).expect("quiet"), None);
}

#[test]
fn scanner_over_long_input_without_terminator_is_bounded() {
    let mut pty = Pty::open();
    let mut scanner = LineScanner::new(port(&pty));
    pty.master.write_all(&[b'7'; 300]).expect("device writes noise");
    let e = scanner.next_code(WAIT).expect_err("too long");
    assert!(matches!(&e, DeviceError::BadInput { reason: InputError::Scan(ScanError::TooLong { bytes_max: 256 }), .. }), "{e:?}");
    assert!(e.to_string().contains("more than 256 bytes arrived without an end of line"), "{e}");
}

#[test]
fn misread_barcode_through_devices_config() {
    let mut pty = Pty::open();
    let config = DevicesConfig {
        scanner: ScannerConfig { connection: Connection::Serial { path: pty.path.clone(), baud: Baud::B9600 }, ..ScannerConfig::default() },
        ..DevicesConfig::default()
    };
    let mut devices = Devices::open(&config);
    assert!(devices.startup_problems().is_empty(), "{:?}", devices.startup_problems());
    pty.master.write_all(b"6901234567891\r6901234567892\r").expect("device writes");

    let e = devices.next_scan(WAIT).expect_err("bad check digit");
    assert!(matches!(&e, DeviceError::BadInput { reason: InputError::Barcode(BarcodeError::CheckDigit { .. }), .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        format!(
            "barcode scanner at {}: barcode 6901234567891 has check digit 1, expected 2: it was misread; \
             scan again or type the code by hand",
            pty.path.display()
        )
    );
    let Some(Scanned::Product(gtin)) = devices.next_scan(WAIT).expect("good scan") else { panic!("no product") };
    assert_eq!(gtin.as_str(), "6901234567892");
}

#[test]
fn display_commands_are_received() {
    let mut pty = Pty::open();
    let mut display = PoleDisplay::open(port(&pty), DisplayCharset::Gb18030, DisplayLabels::default()).expect("display opens");
    display.show_item("可乐 Cola", Decimal::new(350, 2)).expect("shown");
    display.show_total(Decimal::new(1540, 2)).expect("shown");

    let mut expected: Vec<u8> = Vec::new();
    expected.extend_from_slice(b"\x1b\x40"); // ESC @: initialise the display
    expected.push(0x0C); // CLR: clear both lines
    expected.extend_from_slice(b"\x1b\x51\x41"); // ESC Q A: upper line follows
    expected.extend_from_slice(b"\xbf\xc9\xc0\xd6 Cola           "); // 可乐 (GB18030, 4 cells) + " Cola" + 11 spaces = 20 cells
    expected.push(0x0D); // CR: end of line
    expected.extend_from_slice(b"\x1b\x51\x42"); // ESC Q B: lower line follows
    expected.extend_from_slice(b"                3.50"); // price, right-aligned
    expected.push(0x0D); // CR
    expected.extend_from_slice(b"\x1b\x51\x41TOTAL               \x0d"); // ESC Q A, label, CR
    expected.extend_from_slice(b"\x1b\x51\x42               15.40\x0d"); // ESC Q B, total, CR
    let got = read_until(&mut pty.master, |b| b.len() >= expected.len());
    assert_eq!(got, expected, "as text: {:?}", String::from_utf8_lossy(&got));
}

#[test]
fn drawer_pulse_is_sent() {
    let mut pty = Pty::open();
    let mut drawer = SerialDrawer::new(port(&pty), DrawerPulse::default());
    drawer.open().expect("pulse sent");
    // ESC p 0 25 250: pin 2, 50 ms on, 500 ms off.
    assert_eq!(read_until(&mut pty.master, |b| b.len() >= 5), [0x1B, 0x70, 0x00, 0x19, 0xFA]);
}

/// Answers each "W\r" request with the next line, repeating the last.
fn scale_device(lines: &'static [&'static str]) -> impl FnMut(&mut Vec<u8>) -> Option<Vec<u8>> {
    let mut next = 0;
    move |unanswered: &mut Vec<u8>| {
        let at = unanswered.windows(2).position(|w| w == b"W\r")?;
        unanswered.drain(..at + 2);
        let line = lines[next.min(lines.len() - 1)];
        next += 1;
        Some(format!("{line}\r\n").into_bytes())
    }
}

#[test]
fn scale_readings_are_parsed() {
    let Pty { mut master, slave: _slave, path } = Pty::open();
    let port = open_serial(&path, Baud::B9600, WAIT).expect("open");
    let mut scale = SerialScale::new(port, StepClock::new(1), b"W\r");
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        let device = s.spawn(|| serve(&mut master, &done, scale_device(&["US,GS,+  1.198kg", "ST,GS,+  1.200kg"])));
        let reading = scale.read_stable(WAIT);
        done.store(true, Ordering::SeqCst);
        let reading = reading.expect("settles on the second reading");
        assert_eq!(reading.kg, Decimal::new(1200, 3));
        assert_eq!(reading.stability, Stability::Stable);
        let requests = device.join().expect("device thread");
        assert_eq!(requests, b"W\rW\r", "one request per reading");
    });
}

#[test]
fn scale_that_never_settles_fails_after_the_deadline() {
    let Pty { mut master, slave: _slave, path } = Pty::open();
    let port = open_serial(&path, Baud::B9600, WAIT).expect("open");
    // Simulated time: each clock reading is 100 ms later, so 2 s pass after ~20 readings
    // of the clock, with no sleeping.
    let mut scale = SerialScale::new(port, StepClock::new(100), b"W\r");
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        let device = s.spawn(|| serve(&mut master, &done, scale_device(&["US,GS,+  0.498kg", "US,GS,+  0.503kg"])));
        let result = scale.read_stable(Duration::from_secs(2));
        done.store(true, Ordering::SeqCst);
        device.join().expect("device thread");
        let e = result.expect_err("never stable");
        assert!(matches!(e, DeviceError::NotSettled { timeout_ms: 2000, .. }), "{e:?}");
        assert_eq!(e.to_string(), format!("scale at {} never settled within 2 s; weigh again or enter the weight by hand", path.display()));
    });
}

#[test]
fn printer_on_serial_port_prints_and_answers_status() {
    let Pty { mut master, slave: _slave, path } = Pty::open();
    let mut printer = EscPosPrinter::new(Connection::Serial { path, baud: Baud::B9600 }, WAIT, true);
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        let device = s.spawn(|| {
            serve(&mut master, &done, |unanswered| {
                // DLE EOT 2 -> 0x12: online, cover closed, paper present.
                unanswered.ends_with(&STATUS_QUERY).then(|| {
                    unanswered.clear();
                    vec![0x12]
                })
            })
        });
        let result = printer.print(&sample_receipt());
        done.store(true, Ordering::SeqCst);
        let received = device.join().expect("device thread");
        result.expect("printed");
        assert_eq!(received, [sample_receipt(), STATUS_QUERY.to_vec()].concat());
    });
}

#[test]
fn printer_unplugged_mid_receipt_on_serial_port() {
    let Pty { mut master, slave: _slave, path } = Pty::open();
    let location = path.display().to_string();
    let mut printer = EscPosPrinter::new(Connection::Serial { path, baud: Baud::B9600 }, WAIT, true);
    std::thread::scope(|s| {
        s.spawn(move || {
            // The cable is pulled after the first 64 bytes: the device end goes away.
            read_until(&mut master, |b| b.len() >= 64);
            drop(master);
        });
        let e = printer.print(&sample_receipt()).expect_err("unplugged");
        assert!(matches!(e, DeviceError::Unplugged { .. }), "{e:?}");
        assert_eq!(
            e.to_string(),
            format!(
                "receipt printer at {location} is unplugged or closed the connection; \
                 the sale is saved — reprint the receipt from the document later"
            )
        );
    });
}
