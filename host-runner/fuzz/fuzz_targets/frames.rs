//! The collector's whole receive path on arbitrary bytes: framing, version,
//! postcard body, V2 histogram checks and decoding, merging, the run's
//! accounting and its percentile file. Nothing here may panic, hang or allocate
//! without bound.

#![no_main]

use libfuzzer_sys::fuzz_target;
use pvbench_wire::frames::{self, Frame, FrameReader, Reply, Token};

// The collector's own source (it lives in the `pvbench` binary). Its parts
// refer to each other as `super::run` etc., which resolves at this crate's root.
#[path = "../../src/collect/output.rs"]
#[allow(dead_code)]
mod output;
#[path = "../../src/collect/run.rs"]
#[allow(dead_code)]
mod run;
#[path = "../../src/collect/server.rs"]
#[allow(dead_code)]
mod server;

fuzz_target!(|data: &[u8]| {
    // As a stream after an accepted Hello, exactly as a connection thread runs it.
    let mut state = run::RunState::new("fuzz");
    let mut reader = FrameReader::new(data);
    let mut hello_seen = false;
    let how = loop {
        match reader.next_payload() {
            Ok(Some(payload)) => {
                if !hello_seen {
                    // The first frame must be a Hello (the token is checked by
                    // the server, not here).
                    hello_seen = true;
                    if let Ok(Frame::Hello(h)) = frames::decode::<Frame>(payload) {
                        state.start(h, std::time::SystemTime::UNIX_EPOCH);
                        continue;
                    }
                }
                if let Err(e) = state.on_payload(payload) {
                    break run::Disconnect::Error(e);
                }
            }
            Ok(None) => break run::Disconnect::Eof,
            Err(e) => break run::Disconnect::Error(e),
        }
    };
    state.count_bytes(reader.bytes_read());
    state.on_disconnect(how);
    let result = state.into_result(Vec::new());
    let _ = output::percentile_distribution(&result.histogram);
    for e in &result.errors {
        let _ = e.to_string();
    }

    // As single payloads and a bare histogram.
    let _ = frames::decode::<Frame>(data);
    let _ = frames::decode::<Reply>(data);
    if let Ok(h) = frames::decode_histogram(data) {
        let _ = output::percentile_distribution(&h);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Token::parse(text);
    }
});
