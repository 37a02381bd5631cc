//! The binary's own rooms: argument parsing (`args`) and the admin client for a running
//! HQ (`remote`), and the transfer commands (`transfer`). The library (`hq::…`) knows nothing of them.

pub(crate) mod args;
pub(crate) mod remote;
pub(crate) mod transfer;
