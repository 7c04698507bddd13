//! The protocol crate's error type.

use crate::Seq;

/// Why a frame could not be decoded, or an argument could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProtocolError {
    /// The bytes are not one well-formed msgpack value.
    #[error("invalid msgpack: {0}")]
    Msgpack(String),
    /// The frame is larger than [`crate::MAX_MESSAGE_SIZE`].
    #[error("message of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// Size of the frame.
        size: usize,
        /// The limit it exceeded.
        limit: usize,
    },
    /// The frame holds more msgpack values than [`crate::MAX_VALUES`]; decoding it could take
    /// far more memory than its size.
    #[error("message holds more than {limit} values")]
    TooManyValues {
        /// The limit it exceeded.
        limit: usize,
    },
    /// The top level value is not a map with string keys.
    #[error("message is not a map with string keys")]
    NotAMap,
    /// A required top-level key (`op`, `seq_number`, `result`) is absent.
    #[error("message has no \"{0}\" key")]
    MissingKey(&'static str),
    /// A top-level key has the wrong type (`op` not a string, `seq_number` not an int).
    #[error("message key \"{key}\" must be {expected}")]
    BadKey {
        /// The offending key.
        key: &'static str,
        /// What was expected, e.g. "a string".
        expected: &'static str,
    },
    /// A request with a valid `op` and `seq_number` whose other keys are wrong; it can still be
    /// answered with an exception.
    #[error("invalid \"{op}\" request: {reason}")]
    InvalidRequest {
        /// Sequence number of the request, for the exception reply.
        seq: Seq,
        /// The request's op.
        op: String,
        /// What was wrong, e.g. the argument error.
        reason: Box<ProtocolError>,
    },
    /// A required argument is missing.
    #[error("missing argument \"{0}\"")]
    MissingArg(String),
    /// An argument has the wrong type.
    #[error("argument \"{key}\" must be {expected}")]
    BadArg {
        /// The argument's key.
        key: String,
        /// What was expected, e.g. "a string".
        expected: &'static str,
    },
    /// A line chunk (`[text, offsets, times]`) is malformed.
    #[error("malformed line chunk: {0}")]
    BadChunk(&'static str),
}

impl ProtocolError {
    /// The sequence number of the request this error belongs to, when it can still be answered.
    pub fn request_seq(&self) -> Option<Seq> {
        match self {
            ProtocolError::InvalidRequest { seq, .. } => Some(*seq),
            _ => None,
        }
    }
}
