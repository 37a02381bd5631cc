pub mod cluster;
pub mod fuzz;
pub mod relay;
