//! `/webhooks/videogen`: verify VideoGen's Standard Webhooks deliveries.
//!
//! * [`verify`] — signature and timestamp checks, exactly as the official SDK.

pub mod verify;
