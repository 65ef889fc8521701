//! The product guide's rules, applied identically by every entry point.
