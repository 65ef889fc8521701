//! Shared support for the integration tests: the port contract suites every adapter must pass, record fixtures,
//! and the connection to moto server for the AWS adapters.

pub mod cloud_model;
pub mod contracts;
pub mod fixtures;
pub mod moto;
pub mod publishing;
pub mod tools;
