//! `DevicesConfig` as TOML, and `Devices` built from it: simulators, absent devices,
//! devices that are missing at start, a keyboard-wedge scanner read from a file.

use std::io::Write;
use std::time::Duration;

use devices::barcode::{Scanned, WeighedValue};
use devices::config::{Connection, DevicesConfig, DrawerConnection, ScannerInput};
use devices::display::DisplayCharset;
use devices::receipt::{render, sample_receipt_data, PaperWidth};
use devices::scanner::Scanner;
use devices::wedge::{key_events_for, WedgeScanner};
use devices::{DeviceError, DeviceRole, Devices, DisplayState};
use rust_decimal::Decimal;

/// The example from the crate docs, kept in step with it.
const EXAMPLE: &str = r#"
[printer]
kind = "tcp"
addr = "192.168.1.50:9100"
timeout_ms = 2000

[receipt]
width_chars = 48
header_lines = ["88 Chaoyang Rd", "Tel 010-8888-6666"]
footer_lines = ["谢谢惠顾"]
show_qr = true
cut = true
kick_drawer = false

[drawer]
kind = "printer"
pulse = { pin = 2, on_ms = 50, off_ms = 500 }

[display]
kind = "serial"
path = "/dev/ttyUSB1"
baud = 9600
charset = "gb18030"

[scanner]
kind = "device_file"
path = "/dev/input/event5"
input = "keyboard"

[scale]
kind = "serial"
path = "/dev/ttyUSB2"
request = "W\r"

[[weighed_barcodes]]
prefix = "20"
item_digits = 5
value_digits = 5
value = "price_cents"
"#;

#[test]
fn example_config_parses_and_round_trips() {
    let config: DevicesConfig = toml::from_str(EXAMPLE).expect("example parses");
    assert_eq!(config.printer.connection, Connection::Tcp { addr: "192.168.1.50:9100".into() });
    assert!(config.printer.status_check, "on unless turned off");
    assert_eq!(config.receipt.width_chars, PaperWidth::Chars48);
    assert_eq!(config.drawer.connection, DrawerConnection::Printer);
    assert_eq!(config.display.charset, DisplayCharset::Gb18030);
    assert_eq!(config.scanner.input, ScannerInput::Keyboard);
    assert_eq!(config.scale.request, "W\r");
    assert_eq!(config.weighed_barcodes.len(), 1);

    let written = toml::to_string(&config).expect("serializes");
    let again: DevicesConfig = toml::from_str(&written).expect("reads its own output");
    assert_eq!(again, config, "{written}");
    assert_eq!(toml::from_str::<DevicesConfig>("").expect("empty config"), DevicesConfig::default());
}

#[test]
fn config_mistakes_are_explained() {
    let cases = [
        ("[receipt]\nwidth_chars = 40", "paper width 40 is not supported"),
        ("[display]\nkind = \"serial\"\npath = \"/dev/ttyUSB0\"\nbaud = 9601", "baud 9601 is not supported"),
        ("[drawer]\nkind = \"printer\"\npulse = { pin = 3 }", "drawer pin must be 2 or 5"),
        ("[[weighed_barcodes]]\nprefix = \"2\"\nitem_digits = 5\nvalue_digits = 5\nvalue = \"weight_grams\"", "adds up to 12 digits"),
        ("[printer]\nkind = \"usb\"", "unknown variant `usb`"),
    ];
    for (text, needle) in cases {
        let e = toml::from_str::<DevicesConfig>(text).expect_err(text).to_string();
        assert!(e.contains(needle), "{text:?} gave {e}");
    }
}

#[test]
fn simulators_from_config_run_a_whole_sale() {
    let config: DevicesConfig = toml::from_str(
        r#"
        printer = { kind = "simulator" }
        drawer = { kind = "simulator" }
        display = { kind = "simulator" }
        scanner = { kind = "simulator" }
        scale = { kind = "simulator" }
        "#,
    )
    .expect("parses");
    let mut devices = Devices::open(&config);
    assert!(devices.startup_problems().is_empty());
    assert_eq!(devices.next_scan(Duration::ZERO).expect("scanner"), None);
    let reading = devices.read_stable_weight(Duration::from_secs(3)).expect("simulated scale settles");
    assert_eq!(reading.kg, Decimal::new(500, 3));
    devices.show_item("可口可乐 330ml", Decimal::new(350, 2)).expect("display");
    devices.show_total(Decimal::new(1540, 2)).expect("display");
    assert_eq!(devices.display_state(), &DisplayState::new("TOTAL", "               15.40"));
    devices.print_receipt(&sample_receipt_data()).expect("printer");
    devices.open_drawer().expect("drawer");
}

#[test]
fn a_till_without_devices_still_sells() {
    let mut devices = Devices::open(&DevicesConfig::default());
    assert!(devices.startup_problems().is_empty());
    let e = devices.print_receipt(&sample_receipt_data()).expect_err("no printer");
    assert_eq!(e.to_string(), "no receipt printer is configured");
    // The web second screen still gets the state.
    devices.show_change(Decimal::new(2000, 2), Decimal::new(460, 2)).expect("no pole display is not an error");
    assert_eq!(devices.display_state().line2, "CHANGE          4.60");
    assert!(matches!(devices.open_drawer(), Err(DeviceError::NotConfigured { role: DeviceRole::CashDrawer })));
}

#[test]
fn missing_devices_are_reported_at_start_and_retried() {
    let dir = tempfile::tempdir().expect("temp dir");
    let tty = dir.path().join("ttyUSB9");
    let config: DevicesConfig = toml::from_str(&format!(
        "[scanner]\nkind = \"serial\"\npath = \"{}\"\n[scale]\nkind = \"file\"\npath = \"/tmp/x\"\n",
        tty.display()
    ))
    .expect("parses");
    let mut devices = Devices::open(&config);
    let problems: Vec<String> = devices.startup_problems().iter().map(ToString::to_string).collect();
    assert_eq!(
        problems,
        [
            format!("barcode scanner at {} is unplugged or closed the connection; scan again or type the code by hand", tty.display()),
            "scale is misconfigured: kind = \"file\" is write-only; a scale needs a port to read".to_owned(),
        ]
    );
    // Still missing on use: the same clear error, and nothing panics or hangs.
    assert!(matches!(devices.next_scan(Duration::ZERO), Err(DeviceError::Unplugged { .. })));
}

#[test]
fn receipt_and_drawer_kick_go_to_a_file_printer() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("printer.bin");
    let config: DevicesConfig = toml::from_str(&format!(
        "[printer]\nkind = \"file\"\npath = \"{}\"\n[drawer]\nkind = \"printer\"\n[receipt]\nwidth_chars = 32\n",
        path.display()
    ))
    .expect("parses");
    let mut devices = Devices::open(&config);
    devices.print_receipt(&sample_receipt_data()).expect("printed to file");
    devices.open_drawer().expect("kicked through the printer");
    let expected = [render(&sample_receipt_data(), devices.layout()).expect("renders"), vec![0x1B, 0x70, 0x00, 0x19, 0xFA]].concat();
    assert_eq!(std::fs::read(&path).expect("read back"), expected);
}

#[test]
fn weighed_barcode_from_a_scanner() {
    let config: DevicesConfig = toml::from_str(
        "[[weighed_barcodes]]\nprefix = \"28\"\nitem_digits = 4\nvalue_digits = 5\nvalue = \"weight_grams\"\nprice_check_digit = true\n",
    )
    .expect("parses");
    let mut scanner = devices::scanner::SimulatedScanner::new();
    // 28 + item 0042 + price check digit 6 + 14685 g + EAN check digit 0.
    scanner.push_code("2800426146850");
    let mut devices =
        Devices::empty(config.receipt.clone()).with_weighed_formats(config.weighed_barcodes.clone()).with_scanner(Box::new(scanner));
    let Some(Scanned::Weighed(item)) = devices.next_scan(Duration::ZERO).expect("valid") else { panic!("not a weighed item") };
    assert_eq!(item.item_code, "0042");
    assert_eq!(item.value, WeighedValue::WeightKg(Decimal::new(14685, 3)));
}

#[test]
fn keyboard_wedge_scanner_reads_event_records() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("event5");
    let mut file = std::fs::File::create(&path).expect("create");
    for event in key_events_for("6901234567892").expect("digits") {
        file.write_all(&event.to_record()).expect("write record");
    }
    drop(file);
    let mut scanner = WedgeScanner::open(&path, false).expect("open");
    assert_eq!(scanner.next_code(Duration::from_secs(5)).expect("code"), Some("6901234567892".into()));
    // A regular file ends; a device node that ends has gone away.
    assert!(matches!(scanner.next_code(Duration::from_secs(5)), Err(DeviceError::Unplugged { .. })));
}
