//! Integration tests of the devices crate, one binary: golden ESC/POS bytes, serial
//! drivers against pseudo-terminals, network and file printers, config and `Devices`.

mod golden;
mod network;
mod pty;
mod serial;
mod station;
