//! Line chunks: the `[text, newline_offsets, line_times]` value of `stdout`/`stderr`/`header`/`log`
//! updates (spec §7.2).

use rmpv::Value;

use crate::args::value_f64;
use crate::ProtocolError;

/// One or more complete lines of output, as carried by an `update`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LineChunk {
    /// Whole lines, each ending with `\n`.
    pub text: String,
    /// For each line, the code-point index of its `\n` inside `text` (advisory).
    pub offsets: Vec<u64>,
    /// For each line, the epoch time its first character was received (advisory).
    pub times: Vec<f64>,
}

impl LineChunk {
    /// Reads `[text, offsets, times]`; a bare string is accepted as text without offsets.
    ///
    /// Offsets and times are advisory (the stock worker can send lists of different lengths),
    /// so only their element types are checked.
    pub fn from_value(value: &Value) -> Result<LineChunk, ProtocolError> {
        if let Some(text) = value.as_str() {
            return Ok(LineChunk {
                text: text.to_owned(),
                ..LineChunk::default()
            });
        }
        let Value::Array(items) = value else {
            return Err(ProtocolError::BadChunk("not an array"));
        };
        let [text, offsets, times] = items.as_slice() else {
            return Err(ProtocolError::BadChunk("not a 3-element array"));
        };
        let text = match text {
            Value::String(s) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
            Value::Binary(b) => String::from_utf8_lossy(b).into_owned(),
            _ => return Err(ProtocolError::BadChunk("text is not a string")),
        };
        let Value::Array(offsets) = offsets else {
            return Err(ProtocolError::BadChunk("offsets is not an array"));
        };
        let Value::Array(times) = times else {
            return Err(ProtocolError::BadChunk("times is not an array"));
        };
        let offsets = offsets
            .iter()
            .map(|v| {
                v.as_u64()
                    .ok_or(ProtocolError::BadChunk("offset is not a non-negative int"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let times = times
            .iter()
            .map(|v| value_f64(v).ok_or(ProtocolError::BadChunk("time is not a number")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(LineChunk {
            text,
            offsets,
            times,
        })
    }

    /// The wire form `[text, offsets, times]`, consuming the chunk so the text is not copied.
    pub fn into_value(self) -> Value {
        Value::Array(vec![
            Value::from(self.text),
            Value::Array(self.offsets.into_iter().map(Value::from).collect()),
            Value::Array(self.times.into_iter().map(Value::F64).collect()),
        ])
    }

    /// The wire form `[text, offsets, times]`.
    pub fn to_value(&self) -> Value {
        Value::Array(vec![
            Value::from(self.text.as_str()),
            Value::Array(self.offsets.iter().map(|&o| Value::from(o)).collect()),
            Value::Array(self.times.iter().map(|&t| Value::F64(t)).collect()),
        ])
    }
}

/// Reads a `log` update value `[logfile_name, [text, offsets, times]]`.
pub fn parse_log_update(value: &Value) -> Result<(String, LineChunk), ProtocolError> {
    let Value::Array(items) = value else {
        return Err(ProtocolError::BadChunk("log update is not an array"));
    };
    let [name, chunk] = items.as_slice() else {
        return Err(ProtocolError::BadChunk(
            "log update is not a 2-element array",
        ));
    };
    let Some(name) = name.as_str() else {
        return Err(ProtocolError::BadChunk("log name is not a string"));
    };
    Ok((name.to_owned(), LineChunk::from_value(chunk)?))
}

/// Builds a `log` update value from a logfile name and a chunk.
pub fn log_update_value(name: &str, chunk: &LineChunk) -> Value {
    Value::Array(vec![Value::from(name), chunk.to_value()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_round_trip_and_errors() {
        let chunk = LineChunk {
            text: "a\nbé\n".into(),
            offsets: vec![1, 4],
            times: vec![1.5, 2.0],
        };
        assert_eq!(LineChunk::from_value(&chunk.to_value()), Ok(chunk.clone()));
        let log = log_update_value("l", &chunk);
        assert_eq!(parse_log_update(&log), Ok(("l".to_owned(), chunk)));
        let ints = Value::Array(vec![
            Value::from("x\n"),
            Value::Array(vec![Value::from(1)]),
            Value::Array(vec![Value::from(7)]),
        ]);
        assert_eq!(LineChunk::from_value(&ints).map(|c| c.times), Ok(vec![7.0]));
        assert!(LineChunk::from_value(&Value::from(3)).is_err());
        assert!(LineChunk::from_value(&Value::Array(vec![Value::from("x")])).is_err());
        assert!(parse_log_update(&Value::Nil).is_err());
    }
}
