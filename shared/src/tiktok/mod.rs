//! The TikTok Content Posting API client.
