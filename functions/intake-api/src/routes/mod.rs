pub mod accounts;
pub mod media;
pub mod posts;
