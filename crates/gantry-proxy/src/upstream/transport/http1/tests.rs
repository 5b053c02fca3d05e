//! The HTTP/1 client against scripted servers (the framing and connection reuse cases real
//! servers rarely show on demand), and its chunked decoder fed byte by byte.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::{ChunkState, Host, Step, chunk_step};

/// What the scripted server does with one request on a connection.
enum Act {
    /// Writes these bytes, keeps the connection.
    Send(&'static [u8]),
    /// Writes these bytes, then closes.
    SendClose(&'static [u8]),
    /// Closes without answering.
    Close,
}

/// A server that plays one script per accepted connection (in order of acceptance) and
/// records every request it read. After its script a connection stays open, unanswered.
struct Scripted {
    host: Arc<Host>,
    accepted: Arc<AtomicUsize>,
    requests: Arc<Mutex<Vec<String>>>,
}

impl Scripted {
    async fn start(scripts: Vec<Vec<Act>>) -> Scripted {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/mcp?x=1", listener.local_addr().unwrap());
        let accepted = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (count, seen) = (accepted.clone(), requests.clone());
        tokio::spawn(async move {
            for script in scripts {
                let (io, _) = listener.accept().await.unwrap();
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(play(io, script, seen.clone()));
            }
            // Connections past the scripts are refused by closing them at once.
            loop {
                let (io, _) = listener.accept().await.unwrap();
                count.fetch_add(1, Ordering::SeqCst);
                drop(io);
            }
        });
        Scripted {
            host: Host::new(&url.parse().unwrap()),
            accepted,
            requests,
        }
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// A POST with a JSON body; the answer's status and whole body.
    async fn post(&self, body: &'static str) -> Result<(StatusCode, Bytes), String> {
        let req = Request::builder()
            .method(Method::POST)
            .uri("http://ignored/mcp?x=1")
            .header("content-type", "application/json")
            .body(Bytes::from_static(body.as_bytes()))
            .unwrap();
        let resp = self.host.request(req).await.map_err(|e| e.to_string())?;
        let status = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok((status, body))
    }
}

async fn play(mut io: TcpStream, script: Vec<Act>, seen: Arc<Mutex<Vec<String>>>) {
    let mut buf = Vec::new();
    for act in script {
        let Some(request) = read_request(&mut io, &mut buf).await else {
            return;
        };
        seen.lock().unwrap().push(request);
        match act {
            Act::Send(bytes) => io.write_all(bytes).await.unwrap(),
            Act::SendClose(bytes) => {
                io.write_all(bytes).await.unwrap();
                return;
            }
            Act::Close => return,
        }
    }
    let mut rest = Vec::new();
    let _ = io.read_to_end(&mut rest).await;
}

/// One request (head and `content-length` body) as text, or `None` at the end.
async fn read_request(io: &mut TcpStream, buf: &mut Vec<u8>) -> Option<String> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8(buf[..end + 4].to_vec()).unwrap();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .map_or(0, |v| v.trim().parse().unwrap());
            if buf.len() >= end + 4 + len {
                let all = String::from_utf8(buf.drain(..end + 4 + len).collect()).unwrap();
                return Some(all);
            }
        }
        let mut chunk = [0u8; 4096];
        let n = io.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

const OK_JSON: &[u8] =
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\n\r\n{\"ok\":true}";

#[tokio::test]
async fn sends_a_complete_request_and_reuses_the_connection() {
    let server = Scripted::start(vec![vec![
        Act::Send(OK_JSON),
        Act::Send(OK_JSON),
        Act::Send(OK_JSON),
    ]])
    .await;
    for _ in 0..3 {
        let (status, body) = server.post("{\"a\":1}").await.unwrap();
        assert_eq!(status, StatusCode::OK);
        assert_eq!(&body[..], b"{\"ok\":true}");
    }
    assert_eq!(
        server.accepted(),
        1,
        "one keep-alive connection serves all three"
    );
    let requests = server.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 3);
    let port = server.host.port;
    assert_eq!(
        requests[0],
        format!(
            "POST /mcp?x=1 HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\ncontent-type: application/json\r\n\
             content-length: 7\r\n\r\n{{\"a\":1}}"
        )
    );
}

#[tokio::test]
async fn reads_a_chunked_body_with_extensions_and_trailers_then_reuses() {
    let chunked: &[u8] = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n\
        5;name=value\r\nhello\r\n7\r\n, world\r\n0\r\nx-trailer: 1\r\n\r\n";
    let server = Scripted::start(vec![vec![Act::Send(chunked), Act::Send(OK_JSON)]]).await;
    let (_, body) = server.post("{}").await.unwrap();
    assert_eq!(&body[..], b"hello, world");
    let (_, body) = server.post("{}").await.unwrap();
    assert_eq!(&body[..], b"{\"ok\":true}");
    assert_eq!(server.accepted(), 1);
}

#[tokio::test]
async fn a_body_without_length_ends_with_the_connection_and_is_not_reused() {
    let until_close: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nall of it";
    let server = Scripted::start(vec![
        vec![Act::SendClose(until_close)],
        vec![Act::Send(OK_JSON)],
    ])
    .await;
    let (_, body) = server.post("{}").await.unwrap();
    assert_eq!(&body[..], b"all of it");
    server.post("{}").await.unwrap();
    assert_eq!(server.accepted(), 2);
}

#[tokio::test]
async fn connection_close_and_http_1_0_are_not_reused() {
    let close: &[u8] =
        b"HTTP/1.1 200 OK\r\nconnection: keep-alive, close\r\ncontent-length: 2\r\n\r\nok";
    let old: &[u8] = b"HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\nok";
    let both: &[u8] =
        b"HTTP/1.1 200 OK\r\ncontent-length: 99\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n";
    let server = Scripted::start(vec![
        vec![Act::Send(close)],
        vec![Act::Send(old)],
        vec![Act::Send(both)],
        vec![Act::Send(OK_JSON)],
    ])
    .await;
    for _ in 0..4 {
        let (_, body) = server.post("{}").await.unwrap();
        assert!(body == "ok" || body == "{\"ok\":true}", "{body:?}");
    }
    assert_eq!(server.accepted(), 4);
}

#[tokio::test]
async fn informational_answers_are_skipped() {
    let early: &[u8] = b"HTTP/1.1 103 Early Hints\r\nlink: </x>\r\n\r\n\
        HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n";
    let server = Scripted::start(vec![vec![Act::Send(early), Act::Send(OK_JSON)]]).await;
    let (status, body) = server.post("{}").await.unwrap();
    assert_eq!(status, StatusCode::ACCEPTED);
    assert!(body.is_empty());
    server.post("{}").await.unwrap();
    assert_eq!(
        server.accepted(),
        1,
        "an empty body frees the connection at once"
    );
}

#[tokio::test]
async fn a_reused_connection_the_server_dropped_is_retried_on_a_new_one() {
    // The server answers once, then closes the kept-alive connection on the next request
    // without answering (its idle close racing our request): sent again, it succeeds.
    let server = Scripted::start(vec![
        vec![Act::Send(OK_JSON), Act::Close],
        vec![Act::Send(OK_JSON)],
    ])
    .await;
    server.post("{}").await.unwrap();
    let (status, _) = server.post("{\"again\":1}").await.unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(server.accepted(), 2);
    let requests = server.requests.lock().unwrap().clone();
    assert_eq!(
        requests.len(),
        3,
        "the second request reached both connections"
    );
    assert!(requests[1].ends_with("{\"again\":1}") && requests[2].ends_with("{\"again\":1}"));
}

#[tokio::test]
async fn the_retry_takes_a_new_connection_not_another_idle_one() {
    // Two kept-alive connections, both dropped by the server at their next request (as a
    // restarted server drops all of them): the retry must not land on the other one.
    let server = Scripted::start(vec![
        vec![Act::Send(OK_JSON), Act::Close],
        vec![Act::Send(OK_JSON), Act::Close],
        vec![Act::Send(OK_JSON)],
    ])
    .await;
    let (a, b) = tokio::join!(server.post("{}"), server.post("{}"));
    a.unwrap();
    b.unwrap();
    assert_eq!(server.accepted(), 2, "two connections now idle");
    let (status, _) = server.post("{\"again\":1}").await.unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(server.accepted(), 3, "the retry opened a third");
}

#[tokio::test]
async fn a_new_connection_closed_without_answer_is_an_error_and_not_repeated() {
    let server = Scripted::start(vec![vec![Act::Close]]).await;
    let err = server.post("{}").await.unwrap_err();
    assert_eq!(err, "the server closed the connection without an answer");
    assert_eq!(server.requests.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_body_dropped_before_its_end_closes_its_connection() {
    let open_stream: &[u8] =
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n\
          7\r\ndata: 1\r\n";
    let server =
        Scripted::start(vec![vec![Act::Send(open_stream)], vec![Act::Send(OK_JSON)]]).await;
    let req = Request::post("http://ignored/mcp")
        .body(Bytes::new())
        .unwrap();
    let resp = server.host.request(req).await.unwrap();
    let mut body = resp.into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(&first[..], b"data: 1");
    drop(body);
    server.post("{}").await.unwrap();
    assert_eq!(server.accepted(), 2);
}

#[tokio::test]
async fn malformed_answers_are_errors_that_say_what_is_wrong() {
    let bad_chunk: &[u8] = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n";
    let short: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nshort";
    let bad_length: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\n";
    let not_http: &[u8] = b"SSH-2.0-OpenSSH\r\n\r\n";
    let cut_chunk: &[u8] = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhel";
    let server = Scripted::start(vec![
        vec![Act::Send(bad_chunk)],
        vec![Act::SendClose(short)],
        vec![Act::Send(bad_length)],
        vec![Act::Send(not_http)],
        vec![Act::SendClose(cut_chunk)],
    ])
    .await;
    assert_eq!(
        server.post("{}").await.unwrap_err(),
        "invalid chunk size in a chunked body"
    );
    assert_eq!(
        server.post("{}").await.unwrap_err(),
        "the connection ended before the whole body"
    );
    assert_eq!(
        server.post("{}").await.unwrap_err(),
        "the response has an invalid Content-Length"
    );
    assert!(
        server
            .post("{}")
            .await
            .unwrap_err()
            .starts_with("invalid HTTP response"),
        "a non-HTTP answer is named as such"
    );
    assert_eq!(
        server.post("{}").await.unwrap_err(),
        "the connection ended inside a chunked body"
    );
}

#[tokio::test]
async fn an_unreachable_host_names_the_address() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let host = Host::new(&format!("http://{addr}/").parse().unwrap());
    let err = host
        .request(Request::get("/").body(Bytes::new()).unwrap())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.starts_with(&format!("connect to {addr}: ")), "{err}");
}

/// Feeds `wire` one byte at a time and collects the data and how it ended.
fn decode_bytewise(wire: &[u8]) -> (Vec<u8>, Result<(), &'static str>) {
    let mut state = ChunkState::Size;
    let mut buf = BytesMut::new();
    let mut data = Vec::new();
    for byte in wire {
        buf.extend_from_slice(&[*byte]);
        loop {
            match chunk_step(&mut state, &mut buf) {
                Step::Frame(d) => data.extend_from_slice(&d),
                Step::Progress => {}
                Step::NeedMore => break,
                Step::End => return (data, Ok(())),
                Step::Bad(why) => return (data, Err(why)),
            }
        }
    }
    (data, Err("incomplete"))
}

#[test]
fn the_chunked_decoder_works_across_every_split() {
    let wire = b"3\r\nabc\r\nA;ext\r\n0123456789\r\n1\n!\n0\r\nt: v\r\n\r\n";
    assert_eq!(decode_bytewise(wire), (b"abc0123456789!".to_vec(), Ok(())));
    assert_eq!(
        decode_bytewise(b"2\r\nabc\r\n0\r\n\r\n").1,
        Err("a chunk is longer than its size")
    );
    assert_eq!(
        decode_bytewise(b"12345678901234567\r\n").1,
        Err("invalid chunk size in a chunked body")
    );
    assert_eq!(decode_bytewise(b"4\r\nab").1, Err("incomplete"));
}
