//! Golden ESC/POS bytes, one annotated chunk per command or text run, so each can be
//! checked against the Epson ESC/POS Command Reference. A mismatch names the chunk.

use devices::escpos::{Align, BarcodeStyle, EscPos, Hri};
use devices::receipt::{render, sample_layout, sample_receipt_data};
use devices::sample_receipt;

/// One expected piece of output: what it is, and its bytes.
type Chunk = (&'static str, &'static [u8]);

fn assert_golden(actual: &[u8], chunks: &[Chunk]) {
    let mut at = 0;
    for (name, expected) in chunks {
        let end = (at + expected.len()).min(actual.len());
        let got = &actual[at..end];
        assert_eq!(
            got,
            *expected,
            "chunk {name:?} at byte {at}:\n expected {expected:02X?}\n      got {got:02X?}\n as text {:?}",
            String::from_utf8_lossy(got)
        );
        at += expected.len();
    }
    assert_eq!(at, actual.len(), "bytes after the last chunk: {:02X?}", &actual[at..]);
}

#[test]
fn sample_receipt_golden_bytes() {
    #[rustfmt::skip]
    let chunks: &[Chunk] = &[
        ("ESC @ (1B 40): initialise printer", b"\x1b\x40"),
        ("ESC p m t1 t2 (1B 70): drawer kick, pin 2, 25x2 ms on, 250x2 ms off", b"\x1b\x70\x00\x19\xfa"),
        ("ESC a 1 (1B 61 01): centre", b"\x1b\x61\x01"),
        ("ESC E 1 (1B 45 01): bold on", b"\x1b\x45\x01"),
        ("GS ! 0x11 (1D 21 11): double width and height", b"\x1d\x21\x11"),
        ("FS & (1C 26): enter Chinese character mode", b"\x1c\x26"),
        ("好邻居便利店 in GB18030", b"\xba\xc3\xc1\xda\xbe\xd3\xb1\xe3\xc0\xfb\xb5\xea"),
        ("FS . (1C 2E): leave Chinese character mode", b"\x1c\x2e"),
        ("LF: print and feed", b"\n"),
        ("GS ! 0x00 (1D 21 00): normal size", b"\x1d\x21\x00"),
        ("ESC E 0 (1B 45 00): bold off", b"\x1b\x45\x00"),
        ("header line", b"88 Chaoyang Rd, Branch 012\n"),
        ("ESC a 0 (1B 61 00): left", b"\x1b\x61\x00"),
        ("document number, 32 columns", b"No.               S-012-0315-007\n"),
        ("date", b"Date            2025-03-15 14:32\n"),
        ("cashier", b"Cashier               Li Na (07)\n"),
        ("rule", b"--------------------------------\n"),
        ("column heads: name row", b"Item\n"),
        ("column heads: qty 8, price 10, amount 11 columns", b"        Qty     Price     Amount\n"),
        ("rule", b"--------------------------------\n"),
        ("FS &", b"\x1c\x26"),
        ("可口可乐 330ml in GB18030: 4 wide characters = 8 columns", b"\xbf\xc9\xbf\xda\xbf\xc9\xc0\xd6 330ml"),
        ("FS .", b"\x1c\x2e"),
        ("LF", b"\n"),
        ("numbers row: 2 x 3.50 = 7.00", b"          2      3.50       7.00\n"),
        ("name row", b"Bananas kg\n"),
        ("numbers row: 1.235 x 6.80 = 8.40", b"      1.235      6.80       8.40\n"),
        ("rule", b"--------------------------------\n"),
        ("ESC E 1: bold on", b"\x1b\x45\x01"),
        ("GS ! 0x01 (1D 21 01): double height only, columns unchanged", b"\x1d\x21\x01"),
        ("total", b"TOTAL                      15.40\n"),
        ("GS ! 0x00: normal size", b"\x1d\x21\x00"),
        ("ESC E 0: bold off", b"\x1b\x45\x00"),
        ("payment", b"Cash                       20.00\n"),
        ("change", b"Change                      4.60\n"),
        ("points earned", b"Points earned                 15\n"),
        ("points balance", b"Points balance              1280\n"),
        ("ESC a 1: centre", b"\x1b\x61\x01"),
        ("blank line before the footer", b"\n"),
        ("FS &", b"\x1c\x26"),
        ("谢谢惠顾 in GB18030", b"\xd0\xbb\xd0\xbb\xbb\xdd\xb9\xcb"),
        ("FS .", b"\x1c\x2e"),
        ("LF", b"\n"),
        ("GS ( k fn 165 (cn 49, fn 65): QR model 2", b"\x1d\x28\x6b\x04\x00\x31\x41\x32\x00"),
        ("GS ( k fn 167 (fn 67): module size 6 dots", b"\x1d\x28\x6b\x03\x00\x31\x43\x06"),
        ("GS ( k fn 169 (fn 69): error correction M (49)", b"\x1d\x28\x6b\x03\x00\x31\x45\x31"),
        ("GS ( k fn 180 (fn 80): store data, pL = 14 data + 3", b"\x1d\x28\x6b\x11\x00\x31\x50\x30"),
        ("QR data: the document number", b"S-012-0315-007"),
        ("GS ( k fn 181 (fn 81): print the symbol", b"\x1d\x28\x6b\x03\x00\x31\x51\x30"),
        ("LF", b"\n"),
        ("ESC d 4 (1B 64 04): feed 4 lines to clear the cutter", b"\x1b\x64\x04"),
        ("GS V 1 (1D 56 01): partial cut", b"\x1d\x56\x01"),
    ];
    assert_golden(&sample_receipt(), chunks);
    assert_eq!(render(&sample_receipt_data(), &sample_layout()).as_deref(), Ok(&sample_receipt()[..]));
}

#[test]
fn barcodes_golden_bytes() {
    let mut p = EscPos::new();
    p.init().align(Align::Center);
    p.barcode_gtin("6901234567892", BarcodeStyle::default()).expect("valid EAN-13");
    p.barcode_code128("S-012", BarcodeStyle { height_dots: 60, module_dots: 3, hri: Hri::None }).expect("printable ASCII");
    p.barcode_gtin("96385074", BarcodeStyle::default()).expect("valid EAN-8");
    #[rustfmt::skip]
    let chunks: &[Chunk] = &[
        ("ESC @: initialise", b"\x1b\x40"),
        ("ESC a 1: centre", b"\x1b\x61\x01"),
        ("GS h 80 (1D 68 50): bar height 80 dots", b"\x1d\x68\x50"),
        ("GS w 2 (1D 77 02): module width 2 dots", b"\x1d\x77\x02"),
        ("GS H 2 (1D 48 02): HRI digits below", b"\x1d\x48\x02"),
        ("GS k 67 12 (1D 6B 43 0C): EAN-13, function B, 12 digits; printer adds the check digit", b"\x1d\x6b\x43\x0c"),
        ("EAN-13 data without check digit 2", b"690123456789"),
        ("GS h 60", b"\x1d\x68\x3c"),
        ("GS w 3", b"\x1d\x77\x03"),
        ("GS H 0: no HRI", b"\x1d\x48\x00"),
        ("GS k 73 7 (1D 6B 49 07): CODE128, function B, 7 bytes", b"\x1d\x6b\x49\x07"),
        ("{B selects code set B, then the data", b"{BS-012"),
        ("GS h 80", b"\x1d\x68\x50"),
        ("GS w 2", b"\x1d\x77\x02"),
        ("GS H 2", b"\x1d\x48\x02"),
        ("GS k 68 7 (1D 6B 44 07): EAN-8, 7 digits", b"\x1d\x6b\x44\x07"),
        ("EAN-8 data without check digit 4", b"9638507"),
    ];
    assert_golden(p.as_bytes(), chunks);
}
