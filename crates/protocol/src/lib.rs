//! The Buildbot worker protocol (msgpack over WebSocket): messages and codec
