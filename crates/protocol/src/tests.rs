//! Codec tests: round trips of every op, the spec's captured frame, and hostile input.

use proptest::prelude::*;

use crate::args::make_map;
use crate::{decode, encode, Message, Op, ProtocolError, Value};

fn round_trip(msg: Message) {
    let bytes = encode(&msg);
    assert_eq!(decode(&bytes), Ok(msg));
}

fn all_ops() -> Vec<Op> {
    let id = || "7".to_owned();
    vec![
        Op::Print {
            message: Value::from("attached"),
        },
        Op::Keepalive,
        Op::GetWorkerInfo,
        Op::SetWorkerSettings {
            args: make_map([
                ("buffer_size", Value::from(65536)),
                ("newline_re", Value::from("\\r\\n")),
            ]),
        },
        Op::Shutdown,
        Op::StartCommand {
            command_id: id(),
            command_name: "shell".into(),
            args: make_map([
                ("command", Value::Array(vec![Value::from("ls")])),
                ("env", Value::Map(vec![])),
            ]),
            builder_name: Some("b1".into()),
        },
        Op::StartCommand {
            command_id: id(),
            command_name: "stat".into(),
            args: Value::Map(vec![]),
            builder_name: None,
        },
        Op::InterruptCommand {
            command_id: id(),
            why: "stop".into(),
        },
        Op::Update {
            command_id: id(),
            updates: vec![
                ("rc".into(), Value::from(-1)),
                ("elapsed".into(), Value::F64(0.5)),
            ],
        },
        Op::Complete {
            command_id: id(),
            failure: None,
        },
        Op::Complete {
            command_id: id(),
            failure: Some("boom".into()),
        },
        Op::UploadFileWrite {
            command_id: id(),
            data: vec![0, 255, 1],
        },
        Op::UploadFileClose { command_id: id() },
        Op::UploadFileUtime {
            command_id: id(),
            access_time: 1.5,
            modified_time: 2.0,
        },
        Op::UploadDirectoryWrite {
            command_id: id(),
            data: vec![],
        },
        Op::UploadDirectoryUnpack { command_id: id() },
        Op::ReadFile {
            command_id: id(),
            length: 16384,
        },
        Op::ReadFileClose { command_id: id() },
        Op::Unknown {
            op: "frobnicate".into(),
            fields: make_map([("x", Value::from(1))]),
        },
    ]
}

#[test]
fn every_op_round_trips() {
    for (seq, op) in all_ops().into_iter().enumerate() {
        round_trip(Message::Request {
            seq: seq as i64,
            op,
        });
    }
    round_trip(Message::ok(3, Value::Nil));
    round_trip(Message::exception(4, "Command x does not exist."));
}

#[test]
fn response_wire_shape() {
    let ok = rmpv::decode::read_value(&mut &encode(&Message::ok(1, Value::Nil))[..]).unwrap();
    let keys: Vec<_> = ok
        .as_map()
        .unwrap()
        .iter()
        .map(|(k, _)| k.as_str().unwrap())
        .collect();
    assert_eq!(keys, ["op", "seq_number", "result"]);
    // Presence of is_exception means failure, whatever its value (spec Q4).
    let frame = make_map([
        ("op", Value::from("response")),
        ("seq_number", Value::from(2)),
        ("result", Value::from("no")),
        ("is_exception", Value::Boolean(false)),
    ]);
    let mut bytes = Vec::new();
    rmpv::encode::write_value(&mut bytes, &frame).unwrap();
    assert!(matches!(
        decode(&bytes),
        Ok(Message::Response {
            is_exception: true,
            ..
        })
    ));
}

#[test]
fn file_data_is_bin_and_str_is_accepted() {
    let bytes = encode(&Message::Request {
        seq: 0,
        op: Op::UploadFileWrite {
            command_id: "1".into(),
            data: b"ab".to_vec(),
        },
    });
    let value = rmpv::decode::read_value(&mut &bytes[..]).unwrap();
    assert!(crate::args::get(&value, "args").unwrap().is_bin());
    let frame = make_map([
        ("op", Value::from("update_upload_file_write")),
        ("seq_number", Value::from(0)),
        ("command_id", Value::from("1")),
        ("args", Value::from("ab")),
    ]);
    let mut bytes = Vec::new();
    rmpv::encode::write_value(&mut bytes, &frame).unwrap();
    assert!(
        matches!(decode(&bytes), Ok(Message::Request { op: Op::UploadFileWrite { data, .. }, .. }) if data == b"ab")
    );
}

#[test]
fn spec_frame_2_3() {
    // Payload of the first frame the real master sent (spec §2.3), after the 2-byte WS header.
    let hex = "83a26f70a57072696e74a76d657373616765a8617474616368656\
               4aa7365715f6e756d62657200";
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    assert_eq!(bytes.len(), 0x27);
    assert_eq!(
        decode(&bytes),
        Ok(Message::Request {
            seq: 0,
            op: Op::Print {
                message: Value::from("attached")
            }
        })
    );
}

fn frame(entries: Vec<(Value, Value)>) -> Vec<u8> {
    let mut bytes = Vec::new();
    rmpv::encode::write_value(&mut bytes, &Value::Map(entries)).unwrap();
    bytes
}

#[test]
fn malformed_envelopes_are_errors() {
    let s = |v: &str| Value::from(v);
    let n = |v: i64| Value::from(v);
    assert!(decode(&[]).is_err());
    assert_eq!(
        decode(&frame(vec![(s("seq_number"), n(1))])),
        Err(ProtocolError::MissingKey("op"))
    );
    assert_eq!(
        decode(&frame(vec![(s("op"), s("print"))])),
        Err(ProtocolError::MissingKey("seq_number"))
    );
    assert!(matches!(
        decode(&frame(vec![(s("op"), n(1)), (s("seq_number"), n(1))])),
        Err(ProtocolError::BadKey { .. })
    ));
    assert!(matches!(
        decode(&frame(vec![
            (s("op"), s("print")),
            (s("seq_number"), s("1"))
        ])),
        Err(ProtocolError::BadKey { .. })
    ));
    assert_eq!(
        decode(&frame(vec![(n(1), n(1))])),
        Err(ProtocolError::NotAMap)
    );
    assert_eq!(
        decode(&frame(vec![
            (s("op"), s("response")),
            (s("seq_number"), n(1))
        ])),
        Err(ProtocolError::MissingKey("result"))
    );
    let mut trailing = encode(&Message::ok(1, Value::Nil));
    trailing.push(0xc0);
    assert!(matches!(decode(&trailing), Err(ProtocolError::Msgpack(_))));
    let mut array = Vec::new();
    rmpv::encode::write_value(&mut array, &Value::Array(vec![])).unwrap();
    assert_eq!(decode(&array), Err(ProtocolError::NotAMap));
}

#[test]
fn wrong_arg_types_keep_the_seq() {
    let s = |v: &str| Value::from(v);
    let n = |v: i64| Value::from(v);
    let err = decode(&frame(vec![
        (s("op"), s("start_command")),
        (s("seq_number"), n(9)),
        (s("command_id"), n(3)),
        (s("command_name"), s("shell")),
        (s("args"), Value::Map(vec![])),
    ]))
    .unwrap_err();
    assert_eq!(err.request_seq(), Some(9));
    assert_eq!(
        err.to_string(),
        "invalid \"start_command\" request: argument \"command_id\" must be a string"
    );
    let err = decode(&frame(vec![
        (s("op"), s("update")),
        (s("seq_number"), n(2)),
        (s("command_id"), s("1")),
        (s("args"), Value::Array(vec![Value::Array(vec![s("rc")])])),
    ]))
    .unwrap_err();
    assert_eq!(err.request_seq(), Some(2));
    let err = decode(&frame(vec![(s("op"), s("print")), (s("seq_number"), n(2))])).unwrap_err();
    assert_eq!(err.request_seq(), Some(2));
}

#[test]
fn oversized_and_hostile_lengths() {
    let big = vec![0u8; crate::MAX_MESSAGE_SIZE + 1];
    assert!(matches!(decode(&big), Err(ProtocolError::TooLarge { .. })));
    // Claims a 4 GiB map / bin / array with no data behind it.
    for bytes in [
        &[0xdf, 0xff, 0xff, 0xff, 0xff][..],
        &[0xc6, 0xff, 0xff, 0xff, 0xff],
        &[0xdd, 0xff, 0xff, 0xff, 0xff],
    ] {
        assert!(decode(bytes).is_err());
    }
    // Deep nesting is refused, not a stack overflow.
    let deep = [vec![0x91u8; 100_000], vec![0xc0]].concat();
    assert!(decode(&deep).is_err());
}

#[test]
fn random_bytes_never_panic() {
    let mut state = 0x9e3779b97f4a7c15u64;
    for len in 0..4000usize {
        let mut bytes = Vec::with_capacity(len % 64);
        for _ in 0..len % 64 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            bytes.push(state as u8);
        }
        let _ = decode(&bytes);
    }
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode(&bytes);
    }

    #[test]
    fn mutated_frames_never_panic(index in 0usize..64, byte in any::<u8>(), which in 0usize..19) {
        let op = all_ops().swap_remove(which);
        let mut bytes = encode(&Message::Request { seq: 1, op });
        let len = bytes.len();
        bytes[index % len] = byte;
        let _ = decode(&bytes);
    }

    #[test]
    fn updates_round_trip(text in ".*", rc in any::<i64>(), t in any::<f64>().prop_filter("not nan", |f| !f.is_nan())) {
        round_trip(Message::Request { seq: rc, op: Op::Update {
            command_id: text.clone(),
            updates: vec![("stdout".into(), Value::from(text)), ("rc".into(), Value::from(rc)), ("elapsed".into(), Value::F64(t))],
        }});
    }
}

#[test]
fn frames_with_too_many_values_are_refused_before_decoding() {
    // `{"op": [nil × 300000]}`: 300 KB on the wire, over 10 MB once decoded.
    let mut bytes = vec![0x81, 0xa2, b'o', b'p', 0xdd];
    bytes.extend_from_slice(&300_000u32.to_be_bytes());
    bytes.extend(std::iter::repeat_n(0xc0, 300_000));
    assert_eq!(
        decode(&bytes),
        Err(ProtocolError::TooManyValues {
            limit: crate::MAX_VALUES
        })
    );
    // A large but ordinary update batch still decodes.
    let lines: Vec<Value> = (0..20_000).map(Value::from).collect();
    let chunk = Value::Array(vec![
        Value::from("x\n".repeat(20_000)),
        Value::Array(lines.clone()),
        Value::Array(lines),
    ]);
    let msg = Message::Request {
        seq: 3,
        op: Op::Update {
            command_id: "1".into(),
            updates: vec![("stdout".into(), chunk)],
        },
    };
    round_trip(msg);
}
