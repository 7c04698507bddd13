//! The Buildbot worker protocol (msgpack over WebSocket): messages and codec.
//!
//! This crate knows nothing about sockets: one WebSocket binary message is one [`Message`], turned
//! into bytes by [`encode`] and back by [`decode`]. The decoder is strict about the envelope
//! (string keys, `op`, `seq_number`) and about the types of known ops' keys, so that a peer's
//! mistake becomes an error value, never a panic. Dynamic parts (`start_command` args, `update`
//! values, results) stay [`Value`]s, read with the getters of [`args`].
//!
//! ```
//! use protocol::{decode, encode, Message, Op, Value};
//! let msg = Message::Request { seq: 0, op: Op::Print { message: Value::from("attached") } };
//! assert_eq!(decode(&encode(&msg)).unwrap(), msg);
//! ```
#![warn(missing_docs)]

pub mod args;
mod chunk;
mod error;
mod message;

pub use chunk::{log_update_value, parse_log_update, LineChunk};
pub use error::ProtocolError;
pub use message::{decode, encode, read_file_data, Message, Op, MAX_MESSAGE_SIZE, MAX_VALUES};
pub use rmpv::Value;

/// A sequence number; each side numbers its own requests from 0 per connection.
pub type Seq = i64;

/// The 14 command names a worker advertises in `worker_commands` (all at version "3.3").
pub const WORKER_COMMANDS: [&str; 14] = [
    "shell",
    "uploadFile",
    "upload_file",
    "uploadDirectory",
    "upload_directory",
    "downloadFile",
    "download_file",
    "mkdir",
    "rmdir",
    "cpdir",
    "stat",
    "glob",
    "listdir",
    "rmfile",
];

/// The command-protocol version advertised for every entry of [`WORKER_COMMANDS`].
pub const WORKER_COMMANDS_VERSION: &str = "3.3";

#[cfg(test)]
mod tests;
