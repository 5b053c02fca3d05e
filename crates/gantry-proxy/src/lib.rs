//! The Gantry data path.
#![deny(missing_docs)]

pub mod upstream;
