//! Message types of both directions and the msgpack codec (spec §3, §4).

use rmpv::Value;

use crate::args::{value_bytes, value_f64};
use crate::{ProtocolError, Seq};

/// Largest frame [`decode`] accepts; both stock sides have no limit, the spec asks for ≥ 16 MiB.
pub const MAX_MESSAGE_SIZE: usize = 64 << 20;

/// Deepest nesting [`decode`] accepts; real messages nest four or five levels.
const MAX_DEPTH: usize = 64;
/// Most msgpack values (scalars and containers, at any depth) one frame may hold. A value takes
/// as little as one byte on the wire but tens of bytes decoded, so without this a frame of
/// nils would cost forty times its size. Real messages hold a few thousand at most (an update
/// batch of 64 KiB carries two numbers per line).
pub const MAX_VALUES: usize = 1 << 18;

/// One protocol message: a request (any op) or the response to one.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// A request; the receiver must answer it with a [`Message::Response`] of the same `seq`.
    Request {
        /// The sender's sequence number (per connection, from 0).
        seq: Seq,
        /// What is asked.
        op: Op,
    },
    /// The answer to a request the receiver sent.
    Response {
        /// The `seq` of the request answered.
        seq: Seq,
        /// The result, or the error text when `is_exception`.
        result: Value,
        /// Whether the request failed (on the wire: the `is_exception` key is present).
        is_exception: bool,
    },
}

/// The request ops of both directions (spec §4.1 master→worker, §4.2 worker→master).
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// `print`: the worker logs `message`.
    Print {
        /// Usually a string such as "attached" or "ping".
        message: Value,
    },
    /// `keepalive`: liveness check, answered with nil.
    Keepalive,
    /// `get_worker_info`: answered with the info map of spec §4.3.
    GetWorkerInfo,
    /// `set_worker_settings`: output settings for commands started afterwards.
    SetWorkerSettings {
        /// Map with `buffer_size`, `buffer_timeout`, `newline_re`, `max_line_length`.
        args: Value,
    },
    /// `shutdown`: the worker answers, then exits without reconnecting.
    Shutdown,
    /// `start_command`: run a worker command.
    StartCommand {
        /// Unique per connection; every update and complete carries it.
        command_id: String,
        /// `shell`, `mkdir`, `upload_file`, …
        command_name: String,
        /// The command's arguments (a map).
        args: Value,
        /// Informational; ignored by workers.
        builder_name: Option<String>,
    },
    /// `interrupt_command`: flush then kill a running command.
    InterruptCommand {
        /// The command to interrupt; unknown ids are not an error.
        command_id: String,
        /// Human-readable reason.
        why: String,
    },
    /// `update`: a batch of `[key, value]` status updates of one command, in order.
    Update {
        /// The command the updates belong to.
        command_id: String,
        /// `stdout`, `stderr`, `header`, `log`, `rc`, `elapsed`, … with their values.
        updates: Vec<(String, Value)>,
    },
    /// `complete`: the command finished; nothing more follows for its id.
    Complete {
        /// The finished command.
        command_id: String,
        /// `None` on success; a worker-side failure description otherwise.
        failure: Option<String>,
    },
    /// `update_upload_file_write`: append a block to the master-side file.
    UploadFileWrite {
        /// The upload command.
        command_id: String,
        /// One block of file data.
        data: Vec<u8>,
    },
    /// `update_upload_file_close`: the uploaded file is complete.
    UploadFileClose {
        /// The upload command.
        command_id: String,
    },
    /// `update_upload_file_utime`: set the uploaded file's times (keepstamp).
    UploadFileUtime {
        /// The upload command.
        command_id: String,
        /// Access time, epoch seconds.
        access_time: f64,
        /// Modification time, epoch seconds.
        modified_time: f64,
    },
    /// `update_upload_directory_write`: append a block of the tar stream.
    UploadDirectoryWrite {
        /// The upload command.
        command_id: String,
        /// One block of the (possibly compressed) tar stream.
        data: Vec<u8>,
    },
    /// `update_upload_directory_unpack`: the tar stream is complete; extract it.
    UploadDirectoryUnpack {
        /// The upload command.
        command_id: String,
    },
    /// `update_read_file`: ask for the next ≤ `length` bytes of a download (answer: bin, empty = EOF).
    ReadFile {
        /// The download command.
        command_id: String,
        /// Most bytes wanted.
        length: u64,
    },
    /// `update_read_file_close`: the worker is done reading.
    ReadFileClose {
        /// The download command.
        command_id: String,
    },
    /// Any other op, kept so that it can be answered with "Command <op> does not exist.".
    Unknown {
        /// The op name.
        op: String,
        /// The other keys of the message (a map without `op` and `seq_number`).
        fields: Value,
    },
}

impl Op {
    /// The op name as it appears on the wire.
    pub fn name(&self) -> &str {
        match self {
            Op::Print { .. } => "print",
            Op::Keepalive => "keepalive",
            Op::GetWorkerInfo => "get_worker_info",
            Op::SetWorkerSettings { .. } => "set_worker_settings",
            Op::Shutdown => "shutdown",
            Op::StartCommand { .. } => "start_command",
            Op::InterruptCommand { .. } => "interrupt_command",
            Op::Update { .. } => "update",
            Op::Complete { .. } => "complete",
            Op::UploadFileWrite { .. } => "update_upload_file_write",
            Op::UploadFileClose { .. } => "update_upload_file_close",
            Op::UploadFileUtime { .. } => "update_upload_file_utime",
            Op::UploadDirectoryWrite { .. } => "update_upload_directory_write",
            Op::UploadDirectoryUnpack { .. } => "update_upload_directory_unpack",
            Op::ReadFile { .. } => "update_read_file",
            Op::ReadFileClose { .. } => "update_read_file_close",
            Op::Unknown { op, .. } => op,
        }
    }

    /// The command this op concerns, for command-scoped ops.
    pub fn command_id(&self) -> Option<&str> {
        match self {
            Op::StartCommand { command_id, .. }
            | Op::InterruptCommand { command_id, .. }
            | Op::Update { command_id, .. }
            | Op::Complete { command_id, .. }
            | Op::UploadFileWrite { command_id, .. }
            | Op::UploadFileClose { command_id }
            | Op::UploadFileUtime { command_id, .. }
            | Op::UploadDirectoryWrite { command_id, .. }
            | Op::UploadDirectoryUnpack { command_id }
            | Op::ReadFile { command_id, .. }
            | Op::ReadFileClose { command_id } => Some(command_id),
            _ => None,
        }
    }
}

impl Message {
    /// A successful response.
    pub fn ok(seq: Seq, result: Value) -> Message {
        Message::Response {
            seq,
            result,
            is_exception: false,
        }
    }

    /// A failed response carrying an error text.
    pub fn exception(seq: Seq, text: impl Into<String>) -> Message {
        Message::Response {
            seq,
            result: Value::from(text.into()),
            is_exception: true,
        }
    }

    /// The answer to an unknown op, worded as both stock sides word it.
    pub fn unknown_op(seq: Seq, op: &str) -> Message {
        Message::exception(seq, format!("Command {op} does not exist."))
    }
}

/// Encodes a message as one msgpack map with string keys.
///
/// Responses always carry `result` (nil included) and carry `is_exception: true` only on failure,
/// because the stock peers test the key's presence. File data goes out as msgpack `bin`.
pub fn encode(msg: &Message) -> Vec<u8> {
    let mut entries: Vec<(Value, Value)> = Vec::with_capacity(6);
    let mut put = |k: &str, v: Value| entries.push((Value::from(k), v));
    match msg {
        Message::Response {
            seq,
            result,
            is_exception,
        } => {
            put("op", Value::from("response"));
            put("seq_number", Value::from(*seq));
            put("result", result.clone());
            if *is_exception {
                put("is_exception", Value::Boolean(true));
            }
        }
        Message::Request { seq, op } => {
            put("op", Value::from(op.name()));
            put("seq_number", Value::from(*seq));
            if let Some(id) = op.command_id() {
                put("command_id", Value::from(id));
            }
            match op {
                Op::Print { message } => put("message", message.clone()),
                Op::Keepalive | Op::GetWorkerInfo | Op::Shutdown => {}
                Op::SetWorkerSettings { args } => put("args", args.clone()),
                Op::StartCommand {
                    command_name,
                    args,
                    builder_name,
                    ..
                } => {
                    put("command_name", Value::from(command_name.as_str()));
                    put("args", args.clone());
                    if let Some(builder) = builder_name {
                        put("builder_name", Value::from(builder.as_str()));
                    }
                }
                Op::InterruptCommand { why, .. } => put("why", Value::from(why.as_str())),
                Op::Update { updates, .. } => {
                    let pairs = updates
                        .iter()
                        .map(|(k, v)| Value::Array(vec![Value::from(k.as_str()), v.clone()]))
                        .collect();
                    put("args", Value::Array(pairs));
                }
                Op::Complete { failure, .. } => {
                    put("args", failure.as_deref().map_or(Value::Nil, Value::from))
                }
                Op::UploadFileWrite { data, .. } | Op::UploadDirectoryWrite { data, .. } => {
                    put("args", Value::Binary(data.clone()))
                }
                Op::UploadFileUtime {
                    access_time,
                    modified_time,
                    ..
                } => {
                    put("access_time", Value::F64(*access_time));
                    put("modified_time", Value::F64(*modified_time));
                }
                Op::ReadFile { length, .. } => put("length", Value::from(*length)),
                Op::UploadFileClose { .. }
                | Op::UploadDirectoryUnpack { .. }
                | Op::ReadFileClose { .. } => {}
                Op::Unknown { fields, .. } => {
                    if let Value::Map(extra) = fields {
                        for (k, v) in extra {
                            let reserved = matches!(k.as_str(), Some("op" | "seq_number"));
                            if !reserved {
                                entries.push((k.clone(), v.clone()));
                            }
                        }
                    }
                }
            }
        }
    }
    let mut out = Vec::with_capacity(64);
    rmpv::encode::write_value(&mut out, &Value::Map(entries))
        .expect("writing msgpack into a Vec cannot fail");
    out
}

/// Decodes one frame, strictly: a single msgpack map with string keys, `op` and `seq_number`
/// present and typed, and every known op's keys of the right type (str accepted for file data).
///
/// A request whose own keys are wrong yields [`ProtocolError::InvalidRequest`], which carries the
/// `seq` so that the receiver can still answer with an exception.
pub fn decode(bytes: &[u8]) -> Result<Message, ProtocolError> {
    if bytes.len() > MAX_MESSAGE_SIZE {
        return Err(ProtocolError::TooLarge {
            size: bytes.len(),
            limit: MAX_MESSAGE_SIZE,
        });
    }
    if count_values(bytes, MAX_VALUES).is_none() {
        return Err(ProtocolError::TooManyValues { limit: MAX_VALUES });
    }
    let mut cursor = bytes;
    let value = rmpv::decode::read_value_with_max_depth(&mut cursor, MAX_DEPTH)
        .map_err(|e| ProtocolError::Msgpack(e.to_string()))?;
    if !cursor.is_empty() {
        return Err(ProtocolError::Msgpack(format!(
            "{} trailing bytes",
            cursor.len()
        )));
    }
    let Value::Map(entries) = value else {
        return Err(ProtocolError::NotAMap);
    };
    let mut fields = Fields(Vec::with_capacity(entries.len()));
    for (k, v) in entries {
        let Value::String(k) = k else {
            return Err(ProtocolError::NotAMap);
        };
        let Some(k) = k.into_str() else {
            return Err(ProtocolError::NotAMap);
        };
        fields.0.push((k, v));
    }
    let op = match fields.take("op") {
        None => return Err(ProtocolError::MissingKey("op")),
        Some(Value::String(s)) => match s.into_str() {
            Some(s) => s,
            None => {
                return Err(ProtocolError::BadKey {
                    key: "op",
                    expected: "a string",
                })
            }
        },
        Some(_) => {
            return Err(ProtocolError::BadKey {
                key: "op",
                expected: "a string",
            })
        }
    };
    let seq = match fields.take("seq_number") {
        None => return Err(ProtocolError::MissingKey("seq_number")),
        Some(v) => v.as_i64().ok_or(ProtocolError::BadKey {
            key: "seq_number",
            expected: "an integer",
        })?,
    };
    if op == "response" {
        let result = fields
            .take("result")
            .ok_or(ProtocolError::MissingKey("result"))?;
        let is_exception = fields.take("is_exception").is_some();
        return Ok(Message::Response {
            seq,
            result,
            is_exception,
        });
    }
    match decode_op(&op, fields) {
        Ok(op) => Ok(Message::Request { seq, op }),
        Err(reason) => Err(ProtocolError::InvalidRequest {
            seq,
            op,
            reason: Box::new(reason),
        }),
    }
}

/// The top-level keys of a message, consumed one by one so that large values move, not copy.
struct Fields(Vec<(String, Value)>);

impl Fields {
    fn take(&mut self, key: &str) -> Option<Value> {
        let index = self.0.iter().position(|(k, _)| k == key)?;
        Some(self.0.swap_remove(index).1)
    }

    fn require(&mut self, key: &str) -> Result<Value, ProtocolError> {
        self.take(key)
            .ok_or_else(|| ProtocolError::MissingArg(key.to_owned()))
    }

    fn string(&mut self, key: &str) -> Result<String, ProtocolError> {
        into_string(self.require(key)?).ok_or_else(|| bad(key, "a string"))
    }

    fn bytes(&mut self, key: &str) -> Result<Vec<u8>, ProtocolError> {
        match self.require(key)? {
            Value::Binary(b) => Ok(b),
            Value::String(s) => Ok(s.into_bytes()),
            _ => Err(bad(key, "binary data")),
        }
    }

    fn number(&mut self, key: &str) -> Result<f64, ProtocolError> {
        value_f64(&self.require(key)?).ok_or_else(|| bad(key, "a number"))
    }
}

fn bad(key: &str, expected: &'static str) -> ProtocolError {
    ProtocolError::BadArg {
        key: key.to_owned(),
        expected,
    }
}

fn into_string(value: Value) -> Option<String> {
    match value {
        Value::String(s) => s.into_str(),
        _ => None,
    }
}

fn decode_op(op: &str, mut f: Fields) -> Result<Op, ProtocolError> {
    Ok(match op {
        "print" => Op::Print {
            message: f.require("message")?,
        },
        "keepalive" => Op::Keepalive,
        "get_worker_info" => Op::GetWorkerInfo,
        "shutdown" => Op::Shutdown,
        "set_worker_settings" => match f.require("args")? {
            args @ Value::Map(_) => Op::SetWorkerSettings { args },
            _ => return Err(bad("args", "a map")),
        },
        "start_command" => {
            let command_id = f.string("command_id")?;
            let command_name = f.string("command_name")?;
            let args = match f.require("args")? {
                args @ Value::Map(_) => args,
                _ => return Err(bad("args", "a map")),
            };
            let builder_name = match f.take("builder_name") {
                None | Some(Value::Nil) => None,
                Some(v) => Some(into_string(v).ok_or_else(|| bad("builder_name", "a string"))?),
            };
            Op::StartCommand {
                command_id,
                command_name,
                args,
                builder_name,
            }
        }
        "interrupt_command" => {
            let command_id = f.string("command_id")?;
            let why = match f.take("why") {
                None | Some(Value::Nil) => String::new(),
                Some(v) => into_string(v).ok_or_else(|| bad("why", "a string"))?,
            };
            Op::InterruptCommand { command_id, why }
        }
        "update" => {
            let command_id = f.string("command_id")?;
            let Value::Array(pairs) = f.require("args")? else {
                return Err(bad("args", "an array of [key, value] pairs"));
            };
            let mut updates = Vec::with_capacity(pairs.len());
            for pair in pairs {
                let Value::Array(pair) = pair else {
                    return Err(bad("args", "an array of [key, value] pairs"));
                };
                let Ok([key, value]) = <[Value; 2]>::try_from(pair) else {
                    return Err(bad("args", "an array of [key, value] pairs"));
                };
                let key = into_string(key).ok_or_else(|| bad("args", "pairs with string keys"))?;
                updates.push((key, value));
            }
            Op::Update {
                command_id,
                updates,
            }
        }
        "complete" => {
            let command_id = f.string("command_id")?;
            let failure = match f.take("args") {
                None | Some(Value::Nil) => None,
                Some(v) => Some(into_string(v).ok_or_else(|| bad("args", "nil or a string"))?),
            };
            Op::Complete {
                command_id,
                failure,
            }
        }
        "update_upload_file_write" => Op::UploadFileWrite {
            command_id: f.string("command_id")?,
            data: f.bytes("args")?,
        },
        "update_upload_file_close" => Op::UploadFileClose {
            command_id: f.string("command_id")?,
        },
        "update_upload_file_utime" => Op::UploadFileUtime {
            command_id: f.string("command_id")?,
            access_time: f.number("access_time")?,
            modified_time: f.number("modified_time")?,
        },
        "update_upload_directory_write" => Op::UploadDirectoryWrite {
            command_id: f.string("command_id")?,
            data: f.bytes("args")?,
        },
        "update_upload_directory_unpack" => Op::UploadDirectoryUnpack {
            command_id: f.string("command_id")?,
        },
        "update_read_file" => {
            let command_id = f.string("command_id")?;
            let length = f
                .require("length")?
                .as_u64()
                .ok_or_else(|| bad("length", "a non-negative integer"))?;
            Op::ReadFile { command_id, length }
        }
        "update_read_file_close" => Op::ReadFileClose {
            command_id: f.string("command_id")?,
        },
        other => Op::Unknown {
            op: other.to_owned(),
            fields: Value::Map(f.0.into_iter().map(|(k, v)| (Value::from(k), v)).collect()),
        },
    })
}

/// Reads the data of an `update_read_file` answer: bin (or str) bytes; nil means end of file.
pub fn read_file_data(result: &Value) -> Result<&[u8], ProtocolError> {
    match result {
        Value::Nil => Ok(&[]),
        other => value_bytes(other).ok_or_else(|| bad("result", "binary data")),
    }
}

/// Counts the msgpack values in `bytes` by walking their markers, without decoding; `None` once
/// the count passes `limit`. Containers add no bytes of their own (their members follow), so
/// one pass over the markers counts every value at every depth. Malformed or truncated input
/// stops the count early; the decoder then reports it.
fn count_values(bytes: &[u8], limit: usize) -> Option<usize> {
    let be = |at: usize, n: usize| -> Option<usize> {
        let field = bytes.get(at..at.checked_add(n)?)?;
        Some(
            field
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b)),
        )
    };
    let mut count = 0;
    let mut at = 0;
    while let Some(&marker) = bytes.get(at) {
        count += 1;
        if count > limit {
            return None;
        }
        at += 1;
        // Bytes that follow the marker: fixed-size payloads, or a length field then the data.
        let skip = match marker {
            0x00..=0x7f | 0x80..=0x9f | 0xc0..=0xc3 | 0xe0..=0xff => 0,
            0xa0..=0xbf => usize::from(marker & 0x1f),
            0xcc | 0xd0 => 1,
            0xcd | 0xd1 => 2,
            0xca | 0xce | 0xd2 => 4,
            0xcb | 0xcf | 0xd3 => 8,
            0xd4 => 2,
            0xd5 => 3,
            0xd6 => 5,
            0xd7 => 9,
            0xd8 => 17,
            0xc4 | 0xd9 => 1 + be(at, 1)?,
            0xc5 | 0xda => 2 + be(at, 2)?,
            0xc6 | 0xdb => 4 + be(at, 4)?,
            0xc7 => 2 + be(at, 1)?,
            0xc8 => 3 + be(at, 2)?,
            0xc9 => 5 + be(at, 4)?,
            0xdc | 0xde => 2,
            0xdd | 0xdf => 4,
        };
        at = at.checked_add(skip)?;
    }
    Some(count)
}
