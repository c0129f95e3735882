//! Server handshake: parse a browser's upgrade request (13 headers, as
//! Chrome sends it) and produce the `101`.
//!
//! - `rtwire_sans_io`: `HeadParser::parse_request` + `handshake::accept` +
//!   `Accepted::write_response` (no stream).
//! - Stream-level, over an in-memory stream (request in, response out):
//!   rtwire `Conn::accept`, tungstenite `accept` (sync), tokio-tungstenite
//!   `accept_async`, tokio-websockets `ServerBuilder::accept`.
//! - `fastwebsockets_approx`: fastwebsockets leaves HTTP to hyper, whose
//!   server cannot be driven without its connection machinery. This row
//!   parses with httparse into an `http::Request` (as hyper does), calls
//!   `fastwebsockets::upgrade::upgrade` and writes the response head: an
//!   approximation of hyper's path that leaves out hyper's own bookkeeping.

use std::cell::RefCell;
use std::hint::black_box;
use std::io::Write;
use std::rc::Rc;

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, Criterion};
use rtwire::http::{HeadParser, Limits};
use rtwire::ws::handshake::{accept, ServerConfig};
use rtwire::ws::{Config, Conn};
use rtwire_peers::{MemInput, MemStream, BROWSER_UPGRADE};

fn handshake(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut g = c.benchmark_group("handshake");

    let server = ServerConfig::default();
    g.bench_function("rtwire_sans_io", |b| {
        let mut out = BytesMut::with_capacity(256);
        b.iter(|| {
            let mut buf = BytesMut::from(black_box(BROWSER_UPGRADE));
            let head = HeadParser::new(Limits::default())
                .parse_request(&mut buf)
                .unwrap()
                .unwrap();
            let accepted = accept(head, &server).unwrap();
            out.clear();
            accepted.write_response(&mut out);
            black_box(&out);
        })
    });

    let input = MemInput::new(BROWSER_UPGRADE.to_vec());
    let out = Rc::new(RefCell::new(Vec::with_capacity(512)));
    let stream = || {
        input.rewind();
        out.borrow_mut().clear();
        MemStream::keeping(input.clone(), out.clone())
    };
    let config = Config::default();
    g.bench_function("rtwire_conn_accept", |b| {
        b.iter(|| rt.block_on(async { black_box(Conn::accept(stream(), &config).await.unwrap()) }))
    });
    g.bench_function("tungstenite_accept", |b| {
        b.iter(|| black_box(tungstenite::accept(stream()).unwrap()))
    });
    g.bench_function("tokio_tungstenite_accept_async", |b| {
        b.iter(|| {
            rt.block_on(async {
                black_box(tokio_tungstenite::accept_async(stream()).await.unwrap())
            })
        })
    });
    g.bench_function("tokio_websockets_accept", |b| {
        b.iter(|| {
            rt.block_on(async {
                black_box(
                    tokio_websockets::ServerBuilder::new()
                        .accept(stream())
                        .await
                        .unwrap(),
                )
            })
        })
    });
    g.bench_function("fastwebsockets_approx", |b| {
        let mut resp_head = Vec::with_capacity(256);
        b.iter(|| {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut req = httparse::Request::new(&mut headers);
            let _ = req.parse(black_box(BROWSER_UPGRADE)).unwrap();
            let mut builder = http::Request::builder()
                .method(req.method.unwrap())
                .uri(req.path.unwrap());
            for h in req.headers.iter() {
                builder = builder.header(h.name, h.value);
            }
            let mut request = builder.body(()).unwrap();
            assert!(fastwebsockets::upgrade::is_upgrade_request(&request));
            let (response, fut) = fastwebsockets::upgrade::upgrade(&mut request).unwrap();
            resp_head.clear();
            resp_head.extend_from_slice(b"HTTP/1.1 101 Switching Protocols\r\n");
            for (name, value) in response.headers() {
                resp_head.extend_from_slice(name.as_str().as_bytes());
                resp_head.extend_from_slice(b": ");
                resp_head.extend_from_slice(value.as_bytes());
                resp_head.extend_from_slice(b"\r\n");
            }
            resp_head.write_all(b"\r\n").unwrap();
            black_box((&resp_head, fut));
        })
    });
    g.finish();
}

criterion_group!(benches, handshake);
criterion_main!(benches);
