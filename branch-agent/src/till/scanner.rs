//! The scanner thread: reads the scanner with its own `Devices`, so a wait for the next scan
//! never holds the printer, and feeds each good code into the cart like a typed one. Holds
//! no till state of its own; everything it learns goes through `Pos`.

use std::sync::Arc;
use std::time::Duration;

use devices::{DeviceError, Devices, DevicesConfig, InputError, Scanned};
use tracing::{info, warn};

use super::resolve::misread_message;
use super::service::{problem_of, DeviceProblem, Pos};

/// Pause after a scanner failure (unplugged, cannot open) before trying again, so a
/// missing scanner costs one attempt a second, not a busy loop.
const SCANNER_RETRY_MS: u64 = 1000;

/// Starts the scanner thread for `pos`; a thread that cannot start is logged, and the
/// till goes on with typed codes.
pub fn spawn_scanner(pos: Arc<Pos>, config: DevicesConfig, rt: tokio::runtime::Handle) {
    let only_scanner = DevicesConfig { scanner: config.scanner, weighed_barcodes: config.weighed_barcodes, ..DevicesConfig::default() };
    let spawned = std::thread::Builder::new().name("pos-scanner".into()).spawn(move || {
        let mut scanner = Devices::open(&only_scanner);
        let problems: Vec<DeviceProblem> = scanner.startup_problems().iter().map(problem_of).collect();
        for p in &problems {
            warn!(device = %p.device, error = %p.error, "scanner not available at start; retrying");
        }
        pos.add_startup_problems(problems);
        loop {
            match scanner.poll_scan() {
                Ok(None) => {}
                Ok(Some(scanned)) => {
                    let code = match &scanned {
                        Scanned::Product(g) => g.to_string(),
                        Scanned::Weighed(w) => w.barcode.to_string(),
                        Scanned::Other(s) => s.clone(),
                    };
                    let result = rt.block_on(pos.add_scanned(&scanned, None));
                    if let Err(e) = &result {
                        info!(%code, error = %e, "scan refused");
                    }
                    pos.record_scan(result.map(|_| format!("{code} added")).map_err(|e| e.to_string()));
                }
                Err(DeviceError::BadInput { reason: InputError::Barcode(b), .. }) => pos.record_scan(Err(misread_message(&b))),
                Err(e @ DeviceError::BadInput { .. }) => pos.record_scan(Err(e.to_string())),
                Err(e) => {
                    pos.note(vec![e]);
                    std::thread::sleep(Duration::from_millis(SCANNER_RETRY_MS));
                }
            }
        }
    });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the scanner thread; type codes instead");
    }
}
