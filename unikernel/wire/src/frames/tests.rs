use std::format;
use std::io::Cursor;
use std::string::ToString;
use std::vec;
use std::vec::Vec;

use hdrhistogram::Histogram;

use super::*;

fn hello() -> Hello {
    Hello {
        run: "bench-1".into(),
        token: Token::from_bytes([7; Token::LEN]),
        workload: "pgbench".into(),
        params: vec![Param {
            key: "clients".into(),
            value: "4".into(),
        }],
        vcpus: 2,
        lock_requested: LockMode::Pv,
        lock_effective: LockMode::Base,
        kick_backend: "unknown".into(),
        build_id: "hermit-0.11.0/abc".into(),
        resumed: 0,
    }
}

fn latency_histogram(values: &[u64]) -> Histogram<u64> {
    let mut h = Histogram::new_with_bounds(1, 1 << 32, 3).unwrap();
    for &v in values {
        h.record(v).unwrap();
    }
    h
}

fn interval(seq: u64) -> Interval {
    let mut bytes = Vec::new();
    HistogramEncoder::new()
        .encode(&latency_histogram(&[10, 20, 30_000]), &mut bytes)
        .unwrap();
    Interval {
        seq,
        rep: 1,
        start_ns: seq * 1000,
        end_ns: seq * 1000 + 999,
        ops: 3,
        per_thread_ops: vec![1, 2],
        histogram: bytes,
        lock: LockStats::default(),
        queued: QueuedStats {
            wait_head: 2,
            ..QueuedStats::default()
        },
        tas: TasStats::default(),
    }
}

#[test]
fn replies_round_trip_and_keep_their_variant_numbers() {
    let replies = [
        Reply::Welcome,
        Reply::Rejected("no".into()),
        Reply::Ack(Ack {
            intervals: 1,
            ops: 2,
            samples: 3,
        }),
        Reply::Resume(Resume {
            next_seq: 17,
            ack: None,
        }),
        Reply::Resume(Resume {
            next_seq: 3,
            ack: Some(Ack {
                intervals: 3,
                ops: 4,
                samples: 5,
            }),
        }),
    ];
    for (i, r) in replies.iter().enumerate() {
        let bytes = encode(r).unwrap();
        // Resume came last: the older replies keep their postcard tags.
        let tag = [0, 1, 2, 3, 3][i];
        assert_eq!(bytes[4 + VERSION_BYTES], tag, "{r:?}");
        assert_eq!(&decode::<Reply>(&bytes[4..]).unwrap(), r);
    }
    let mut resumed = hello();
    resumed.resumed = 2;
    let bytes = encode(&Frame::Hello(resumed.clone())).unwrap();
    assert_eq!(decode::<Frame>(&bytes[4..]).unwrap(), Frame::Hello(resumed));
}

#[test]
fn frames_round_trip_through_a_reader() {
    let frames = [
        Frame::Hello(hello()),
        Frame::Interval(interval(0)),
        Frame::Done(Done {
            ops: 3,
            samples: 3,
            intervals_sent: 1,
            intervals_dropped: 0,
            ops_dropped: 0,
            samples_dropped: 0,
            result: "checksum=0x1".into(),
            elapsed_ns: 5,
            figures: Figures {
                elapsed_s: 2.5,
                ops: 3,
                tps: Some(1.2),
                runs: vec![2.4, 2.6],
            },
            lock: LockStats {
                halted: 4,
                ..LockStats::default()
            },
            queued: QueuedStats::default(),
            tas: TasStats {
                contended: 7,
                ..TasStats::default()
            },
            kick_wake_ns: vec![1, 2, 3],
            kernel: KernelEvents {
                stray_nmis: 0,
                stale_wakeups: 9,
            },
        }),
        Frame::Error(GuestFailure {
            message: "boom".into(),
        }),
    ];
    let mut stream = Vec::new();
    for f in &frames {
        encode_into(f, &mut stream).unwrap();
    }
    let mut reader = FrameReader::new(Cursor::new(&stream));
    for f in &frames {
        assert_eq!(reader.read::<Frame>().unwrap().as_ref(), Some(f));
    }
    assert!(reader.read::<Frame>().unwrap().is_none());
    assert_eq!(reader.bytes_read(), stream.len() as u64);
}

#[test]
fn histogram_survives_the_frame() {
    let Frame::Interval(i) = decode::<Frame>(&encode(&Frame::Interval(interval(3))).unwrap()[4..]).unwrap()
    else {
        panic!("not an interval");
    };
    let h = decode_histogram(&i.histogram).unwrap();
    assert_eq!(h.len(), 3);
    assert_eq!(h.max(), h.highest_equivalent(30_000));
    assert_eq!(h, latency_histogram(&[10, 20, 30_000]));
}

#[test]
fn every_cut_of_a_frame_is_truncated_not_a_panic() {
    let stream = encode(&Frame::Interval(interval(1))).unwrap();
    for cut in 1..stream.len() {
        let err = FrameReader::new(&stream[..cut]).read::<Frame>().unwrap_err();
        assert!(matches!(err, FrameError::Truncated { .. }), "cut {cut}: {err}");
    }
    assert!(FrameReader::new(&stream[..0]).read::<Frame>().unwrap().is_none());
}

#[test]
fn oversized_length_is_refused_before_buffering() {
    let mut stream = (u32::MAX).to_le_bytes().to_vec();
    stream.extend_from_slice(&[0; 16]);
    let err = FrameReader::new(&stream[..]).read::<Frame>().unwrap_err();
    assert!(matches!(err, FrameError::TooLarge { len, .. } if len == u64::from(u32::MAX)));
    let small = FrameReader::with_limit(&encode(&Frame::Hello(hello())).unwrap()[..], 8)
        .read::<Frame>()
        .unwrap_err();
    assert!(matches!(small, FrameError::TooLarge { max: 8, .. }), "{small}");
}

#[test]
fn encoding_refuses_frames_over_the_limit() {
    let mut big = interval(0);
    big.histogram = vec![0; MAX_FRAME_LEN];
    let mut out = vec![1, 2, 3];
    let err = encode_into(&Frame::Interval(big), &mut out).unwrap_err();
    assert!(matches!(err, FrameError::TooLarge { .. }));
    assert_eq!(out, [1, 2, 3], "a refused frame leaves no partial bytes");
}

#[test]
fn wrong_version_is_named() {
    let mut stream = encode(&Frame::Hello(hello())).unwrap();
    stream[4..6].copy_from_slice(&(VERSION + 1).to_le_bytes());
    let err = decode::<Frame>(&stream[4..]).unwrap_err();
    assert!(matches!(err, FrameError::Version { found, expected: VERSION } if found == VERSION + 1));
    let says = format!("version {}, this side version {VERSION}", VERSION + 1);
    assert!(err.to_string().contains(&says), "{err}");
}

#[test]
fn short_garbage_and_trailing_bytes_are_errors() {
    assert!(matches!(
        decode::<Frame>(&[1]),
        Err(FrameError::TooShort { len: 1 })
    ));
    let v = VERSION.to_le_bytes();
    assert!(matches!(decode::<Frame>(&v), Err(FrameError::Body(_))));
    assert!(matches!(
        decode::<Frame>(&[v[0], v[1], 200, 1, 2]),
        Err(FrameError::Body(_))
    ));
    let mut payload = encode(&Reply::Welcome).unwrap()[4..].to_vec();
    payload.push(0);
    assert!(matches!(
        decode::<Reply>(&payload),
        Err(FrameError::TrailingBytes { count: 1 })
    ));
}

#[test]
fn pseudo_random_bytes_never_panic() {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for _ in 0..2000 {
        let len = (next() % 300) as usize;
        let bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        let _ = decode::<Frame>(&bytes);
        let _ = decode_histogram(&bytes);
        let mut reader = FrameReader::new(&bytes[..]);
        while let Ok(Some(_)) = reader.read::<Frame>() {}
    }
}

#[test]
fn histogram_headers_are_checked_before_allocating() {
    let mut bytes = Vec::new();
    HistogramEncoder::new()
        .encode(&latency_histogram(&[5]), &mut bytes)
        .unwrap();
    assert!(decode_histogram(&bytes).is_ok());

    let mut huge = bytes.clone();
    // digits 5, highest u64::MAX: ~6 million counters.
    huge[12..16].copy_from_slice(&5u32.to_be_bytes());
    huge[24..32].copy_from_slice(&u64::MAX.to_be_bytes());
    assert!(matches!(
        decode_histogram(&huge),
        Err(HistogramError::TooManyCounts { .. })
    ));

    let mut lying = bytes.clone();
    lying[4..8].copy_from_slice(&u32::MAX.to_be_bytes());
    assert!(matches!(
        decode_histogram(&lying),
        Err(HistogramError::PayloadLength { .. })
    ));

    let mut cookie = bytes.clone();
    cookie[3] ^= 1;
    assert!(matches!(
        decode_histogram(&cookie),
        Err(HistogramError::Cookie { .. })
    ));
    assert!(matches!(
        decode_histogram(&bytes[..39]),
        Err(HistogramError::Short { len: 39 })
    ));

    let mut bounds = bytes.clone();
    bounds[16..24].copy_from_slice(&0u64.to_be_bytes());
    assert!(matches!(
        decode_histogram(&bounds),
        Err(HistogramError::Bounds { .. })
    ));
}

#[test]
fn counts_len_matches_hdrhistogram() {
    for (low, high, digits) in [
        (1, 2, 0),
        (1, 1 << 32, 3),
        (1, u64::MAX, 3),
        (1000, 1 << 40, 2),
        (1, 3_600_000_000, 5),
        (7, 1 << 20, 1),
        (1 << 20, 1 << 62, 4),
    ] {
        let h = Histogram::<u64>::new_with_bounds(low, high, digits as u8).unwrap();
        assert_eq!(
            counts_len(low, high, digits),
            Some(h.distinct_values() as u64),
            "low={low} high={high} digits={digits}"
        );
    }
    assert_eq!(counts_len(0, 10, 3), None);
    assert_eq!(counts_len(1, 10, 6), None);
    assert_eq!(counts_len(10, 15, 3), None);
}

#[test]
fn tokens_parse_print_and_compare() {
    let t = Token::parse("00112233445566778899AABBCCDDEEFF").unwrap();
    assert_eq!(t.to_hex(), "00112233445566778899aabbccddeeff");
    assert_eq!(Token::parse(&t.to_hex()), Ok(t));
    assert_ne!(t, Token::from_bytes([0; Token::LEN]));
    assert_eq!(Token::parse("abc"), Err(TokenError::Length { len: 3 }));
    assert_eq!(
        Token::parse("zz112233445566778899aabbccddeeff"),
        Err(TokenError::NotHex('z'))
    );
    assert!(Token::parse("é0112233445566778899aabbccddeef").is_err());
}

#[test]
fn lock_stats_deltas_saturate() {
    let a = LockStats {
        taken_slow: 5,
        time_blocked_cycles: 100,
        ..LockStats::default()
    };
    let b = LockStats {
        taken_slow: 7,
        time_blocked_cycles: 50,
        ..LockStats::default()
    };
    let d = b.since(&a);
    assert_eq!((d.taken_slow, d.time_blocked_cycles), (2, 0));
    assert_eq!(d.fields().len(), 8);
    let mut sum = a;
    sum.accumulate(&d);
    assert_eq!(sum.taken_slow, 7);
}

fn with_counts(template: &[u8], counts: &[u8]) -> Vec<u8> {
    let mut bytes = template[..40].to_vec();
    bytes[4..8].copy_from_slice(&(counts.len() as u32).to_be_bytes());
    bytes.extend_from_slice(counts);
    bytes
}

#[test]
fn decoder_matches_hdrhistogram_across_layouts() {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut encoder = HistogramEncoder::new();
    for (low, high, digits) in [
        (1, 2, 0),
        (1, 1 << 32, 3),
        (1, u64::MAX, 2),
        (1000, 1 << 40, 2),
        (1, 1 << 24, 4),
        (1, 100_000, 5),
        (7, 1 << 20, 1),
        (1 << 20, u64::MAX, 1),
    ] {
        let mut h = Histogram::<u64>::new_with_bounds(low, high, digits).unwrap();
        for _ in 0..500 {
            let v = low + next() % (high - low);
            h.record_n(v, 1 + next() % 3).unwrap();
        }
        h.record(high).unwrap();
        let mut bytes = Vec::new();
        encoder.encode(&h, &mut bytes).unwrap();
        let view = HistogramView::parse(&bytes).unwrap();
        assert_eq!(view.total(), h.len());
        let back = view.to_histogram().unwrap();
        let pairs = |h: &Histogram<u64>| -> Vec<(u64, u64)> {
            h.iter_recorded()
                .map(|v| (v.value_iterated_to(), v.count_at_value()))
                .collect()
        };
        let (a, b) = (pairs(&back), pairs(&h));
        if a != b {
            let first = a.iter().zip(&b).position(|(x, y)| x != y);
            panic!(
                "low={low} high={high} digits={digits}: {} vs {} values, first difference at {first:?}: {:?} vs {:?}; max {} vs {}",
                a.len(), b.len(), first.map(|i| a[i]), first.map(|i| b[i]), back.max(), h.max()
            );
        }
        // Same buckets; the extremes may differ within a bucket (decoding records
        // each bucket's lowest value, as HdrHistogram's own `add` does).
        assert_eq!(back.len(), h.len());
        assert!(h.equivalent(back.min(), h.min()) && h.equivalent(back.max(), h.max()));
        let mut merged = Histogram::<u64>::new(3).unwrap();
        view.add_to(&mut merged).unwrap();
        assert_eq!(merged.len(), h.len());
    }
}

#[test]
fn malformed_counts_are_errors() {
    let mut template = Vec::new();
    HistogramEncoder::new()
        .encode(&latency_histogram(&[5]), &mut template)
        .unwrap();
    // The zig-zag encoding of i64::MIN: negating it overflows HdrHistogram's own
    // decoder (found by fuzzing).
    let min = with_counts(&template, &[0xff; 9]);
    assert_eq!(
        HistogramView::parse(&min).unwrap_err(),
        HistogramError::Counts("zero run past the last counter")
    );
    // A varint whose continuation bit runs off the end.
    assert_eq!(
        HistogramView::parse(&with_counts(&template, &[0x02, 0x80])).unwrap_err(),
        HistogramError::Counts("varint cut short")
    );
    // 24,576 counters: a zero run to the end is fine, one count more is not.
    let mut to_end = Vec::new();
    let zz = ((24_576u64 - 1) << 1) | 1;
    let mut v = zz;
    while v >= 0x80 {
        to_end.push((v as u8) | 0x80);
        v >>= 7;
    }
    to_end.push(v as u8);
    assert_eq!(
        HistogramView::parse(&with_counts(&template, &to_end))
            .unwrap()
            .total(),
        0
    );
    to_end.push(0x02);
    assert_eq!(
        HistogramView::parse(&with_counts(&template, &to_end)).unwrap_err(),
        HistogramError::Counts("count past the last counter")
    );
    // Counts that add up past the limit (each alone is fine).
    let big = ((MAX_HISTOGRAM_SAMPLES / 2 + 1) << 1).to_le_bytes();
    let mut varint = Vec::new();
    let mut v = u64::from_le_bytes(big);
    while v >= 0x80 {
        varint.push((v as u8) | 0x80);
        v >>= 7;
    }
    varint.push(v as u8);
    let one = with_counts(&template, &varint);
    assert_eq!(
        HistogramView::parse(&one).unwrap().total(),
        MAX_HISTOGRAM_SAMPLES / 2 + 1
    );
    let two = with_counts(&template, &[varint.clone(), varint].concat());
    assert_eq!(
        HistogramView::parse(&two).unwrap_err(),
        HistogramError::Counts("more samples than a frame may carry")
    );
    // Empty counts: an empty histogram.
    assert_eq!(decode_histogram(&with_counts(&template, &[])).unwrap().len(), 0);
}
