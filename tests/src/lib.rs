pub mod cluster;
pub mod relay;
