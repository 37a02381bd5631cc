pub mod cluster;
pub mod fuzz;
pub mod raw_client;
pub mod relay;
