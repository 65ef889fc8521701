//! Logging setup shared by every binary.
