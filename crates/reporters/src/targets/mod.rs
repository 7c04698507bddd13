//! One module per status target kind; each implements [`crate::StatusTarget`].

pub mod mail;
