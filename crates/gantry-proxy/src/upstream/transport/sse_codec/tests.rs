use super::*;

fn ev(data: &str) -> SseEvent {
    SseEvent {
        data: data.to_owned(),
        ..SseEvent::default()
    }
}

/// Feeds all chunks and collects everything they produced.
fn decode_chunks(max: usize, chunks: &[&[u8]]) -> Vec<SseItem> {
    let mut dec = SseDecoder::new(max);
    let mut out = Vec::new();
    for c in chunks {
        out.extend(dec.feed(c));
    }
    out
}

fn decode(input: &str) -> Vec<SseItem> {
    decode_chunks(1 << 20, &[input.as_bytes()])
}

/// Decodes `input` split at every possible point, and byte by byte, and checks that the
/// result never depends on where the chunks end.
fn decode_every_split(input: &str) -> Vec<SseItem> {
    let bytes = input.as_bytes();
    let whole = decode_chunks(1 << 20, &[bytes]);
    for i in 0..=bytes.len() {
        let (a, b) = bytes.split_at(i);
        assert_eq!(
            decode_chunks(1 << 20, &[a, b]),
            whole,
            "split at {i} of {input:?}"
        );
    }
    let singles: Vec<&[u8]> = bytes.chunks(1).collect();
    assert_eq!(decode_chunks(1 << 20, &singles), whole, "byte by byte");
    whole
}

#[test]
fn one_event_with_all_fields() {
    let out = decode_every_split("event: message\nid: 42\nretry: 1500\ndata: {\"a\":1}\n\n");
    assert_eq!(
        out,
        vec![Ok(SseEvent {
            event: Some("message".into()),
            data: "{\"a\":1}".into(),
            id: Some("42".into()),
            retry: Some(1500),
        })]
    );
}

#[test]
fn line_ends_lf_crlf_and_cr() {
    for input in [
        "data: a\n\ndata: b\n\n",
        "data: a\r\n\r\ndata: b\r\n\r\n",
        "data: a\r\rdata: b\r\r",
        "data: a\r\n\rdata: b\n\r\n",
    ] {
        assert_eq!(
            decode_every_split(input),
            vec![Ok(ev("a")), Ok(ev("b"))],
            "{input:?}"
        );
    }
}

#[test]
fn crlf_split_across_chunks_is_one_line_end() {
    // `\r` ends one chunk and `\n` starts the next: that is one line end, not a blank line.
    let out = decode_chunks(1024, &[b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n"]);
    assert_eq!(out, vec![Ok(ev("a\nb"))]);
}

#[test]
fn multi_line_data_is_joined_with_newlines() {
    let out = decode_every_split("data: first\ndata:second\ndata:  third\ndata\n\n");
    assert_eq!(out, vec![Ok(ev("first\nsecond\n third\n"))]);
}

#[test]
fn only_one_space_after_the_colon_is_dropped() {
    assert_eq!(decode("data:x\n\n"), vec![Ok(ev("x"))]);
    assert_eq!(decode("data: x\n\n"), vec![Ok(ev("x"))]);
    assert_eq!(decode("data:  x\n\n"), vec![Ok(ev(" x"))]);
    assert_eq!(decode("data:\tx\n\n"), vec![Ok(ev("\tx"))]);
}

#[test]
fn comments_are_ignored() {
    let out = decode_every_split(": keepalive\n\n:another\ndata: x\n: in the middle\n\n");
    assert_eq!(out, vec![Ok(ev("x"))]);
}

#[test]
fn field_without_colon_has_an_empty_value() {
    // `data` alone adds an empty line; `event` alone sets an empty name; `id` alone resets.
    let out = decode("data\ndata\n\nevent\nid\ndata: x\n\n");
    assert_eq!(
        out,
        vec![
            Ok(ev("\n")),
            Ok(SseEvent {
                event: Some(String::new()),
                data: "x".into(),
                id: Some(String::new()),
                retry: None,
            })
        ]
    );
}

#[test]
fn unknown_fields_and_bad_retry_are_ignored() {
    let out = decode("foo: bar\nretry: 12a\nretry:\ndata: x\n\n");
    assert_eq!(out, vec![Ok(ev("x"))]);
}

#[test]
fn id_with_nul_is_ignored() {
    let out = decode("id: a\0b\ndata: x\n\n");
    assert_eq!(out, vec![Ok(ev("x"))]);
}

#[test]
fn nothing_is_dispatched_before_the_blank_line() {
    let mut dec = SseDecoder::new(1024);
    assert_eq!(dec.feed(b"data: x\n").count(), 0);
    assert_eq!(dec.feed(b"id: 1\n").count(), 0);
    let out: Vec<_> = dec.feed(b"\n").collect();
    assert_eq!(
        out,
        vec![Ok(SseEvent {
            data: "x".into(),
            id: Some("1".into()),
            ..SseEvent::default()
        })]
    );
    // An event left without its blank line at the end of the stream is dropped, as in the
    // standard.
    assert_eq!(dec.feed(b"data: unfinished\n").count(), 0);
}

#[test]
fn blank_lines_and_lone_event_names_yield_nothing() {
    assert_eq!(decode("\n\n\r\n\r\r"), vec![]);
    assert_eq!(decode("event: ping\n\n"), vec![]);
}

#[test]
fn priming_event_is_reported_with_its_id_and_empty_data() {
    // What the TypeScript SDK sends first on a 2025-11-25 response stream.
    let out = decode_every_split(
        "id: 4c1a51fb\ndata: \n\nevent: message\nid: 03e312b1\ndata: {\"id\":1}\n\n",
    );
    assert_eq!(
        out,
        vec![
            Ok(SseEvent {
                id: Some("4c1a51fb".into()),
                ..SseEvent::default()
            }),
            Ok(SseEvent {
                event: Some("message".into()),
                data: "{\"id\":1}".into(),
                id: Some("03e312b1".into()),
                retry: None,
            }),
        ]
    );
    // The variant with a retry hint, and one without any data line.
    assert_eq!(
        decode("id: p\nretry: 10\ndata: \n\nretry: 20\n\n"),
        vec![
            Ok(SseEvent {
                id: Some("p".into()),
                retry: Some(10),
                ..SseEvent::default()
            }),
            Ok(SseEvent {
                retry: Some(20),
                ..SseEvent::default()
            }),
        ]
    );
}

#[test]
fn fields_do_not_leak_into_the_next_event() {
    let out = decode("event: endpoint\nid: 1\ndata: /m\n\ndata: x\n\n");
    assert_eq!(
        out,
        vec![
            Ok(SseEvent {
                event: Some("endpoint".into()),
                data: "/m".into(),
                id: Some("1".into()),
                retry: None,
            }),
            Ok(ev("x")),
        ]
    );
}

#[test]
fn leading_bom_is_skipped() {
    let out = decode_chunks(1024, &[b"\xEF\xBB", b"\xBFdata: x\n\n"]);
    assert_eq!(out, vec![Ok(ev("x"))]);
}

#[test]
fn invalid_utf8_is_replaced_not_fatal() {
    let out = decode_chunks(1024, &[b"data: a\xFFb\n\n"]);
    assert_eq!(out, vec![Ok(ev("a\u{FFFD}b"))]);
}

#[test]
fn data_up_to_the_limit_is_accepted() {
    let out = decode_chunks(10, &[b"data: 0123456789\n\n"]);
    assert_eq!(out, vec![Ok(ev("0123456789"))]);
    // Two lines: 4 + newline + 5 = 10 bytes.
    let out = decode_chunks(10, &[b"data: 0123\ndata: 45678\n\n"]);
    assert_eq!(out, vec![Ok(ev("0123\n45678"))]);
}

#[test]
fn oversized_event_is_an_error_and_the_stream_goes_on() {
    let big = format!("id: 7\ndata: {}\n\ndata: next\n\n", "x".repeat(11));
    for split in [1, 3, 9, 20, big.len()] {
        let chunks: Vec<&[u8]> = big.as_bytes().chunks(split).collect();
        let out = decode_chunks(10, &chunks);
        assert_eq!(
            out,
            vec![
                Err(EventTooLarge {
                    limit: 10,
                    id: Some("7".into())
                }),
                Ok(ev("next"))
            ],
            "chunks of {split}"
        );
    }
}

#[test]
fn oversized_by_many_data_lines_is_reported_once() {
    let mut input = String::new();
    for _ in 0..100 {
        input.push_str("data: 0123456789\n");
    }
    input.push_str("\ndata: ok\n\n");
    let out = decode_chunks(64, &[input.as_bytes()]);
    assert_eq!(
        out,
        vec![
            Err(EventTooLarge {
                limit: 64,
                id: None
            }),
            Ok(ev("ok"))
        ]
    );
}

#[test]
fn oversized_line_is_not_buffered() {
    // A single line far beyond the limit, fed in small chunks without any line end: the
    // decoder reports it as soon as it crosses the limit and keeps no more than that.
    let mut dec = SseDecoder::new(100);
    let mut errors = 0;
    errors += dec.feed(b"data: ").filter(Result::is_err).count();
    for _ in 0..1000 {
        errors += dec.feed(&[b'y'; 64]).filter(Result::is_err).count();
        assert!(dec.line.capacity() <= 2 * (100 + LINE_SLACK + 64));
    }
    assert_eq!(errors, 1);
    let out: Vec<_> = dec.feed(b"\n\ndata: after\n\n").collect();
    assert_eq!(out, vec![Ok(ev("after"))]);
}

#[test]
fn large_chunk_with_many_events() {
    let mut input = String::new();
    for i in 0..500 {
        input.push_str(&format!("event: message\nid: {i}\ndata: {{\"n\":{i}}}\n\n"));
    }
    let out = decode_chunks(1024, &[input.as_bytes()]);
    assert_eq!(out.len(), 500);
    for (i, e) in out.into_iter().enumerate() {
        let e = e.unwrap();
        assert_eq!(e.id.as_deref(), Some(i.to_string().as_str()));
        assert_eq!(e.data, format!("{{\"n\":{i}}}"));
    }
}
