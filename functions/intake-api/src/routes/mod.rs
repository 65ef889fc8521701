pub mod accounts;
pub mod connect;
pub mod media;
pub mod posts;
pub mod webhooks;
