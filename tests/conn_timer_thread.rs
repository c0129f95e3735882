//! `Timer::Thread`: every timeout of a connection (handshake, keepalive,
//! write, close) fires on a runtime that has no time driver at all, over
//! real loopback TCP. Any tokio timer left on these paths would panic here
//! ("timers are disabled"). The tests check outcomes only (which error,
//! which close code, what the peer saw), never how long something took.

mod conn_support;

use std::time::Duration;

use bytes::Bytes;
use conn_support::*;
use rtwire::error::{HandshakeError, TimeoutKind};
use rtwire::ws::{CloseCode, Config, Conn, Message, OpCode, Timer};
use rtwire::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// A current-thread runtime with I/O only: no time driver.
fn io_only_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .expect("runtime")
}

fn base() -> rtwire::ws::ConfigBuilder {
    Config::builder().timer(Timer::Thread)
}

/// A client with a small receive buffer that upgrades, then never reads:
/// the server's writes stall once the socket buffers are full.
async fn stalled_client(addr: std::net::SocketAddr) -> TcpStream {
    let sock = TcpSocket::new_v4().expect("socket");
    sock.set_recv_buffer_size(4096).expect("rcvbuf");
    let mut tcp = sock.connect(addr).await.expect("connect");
    tcp.write_all(upgrade_request(addr, "/", "").as_bytes())
        .await
        .expect("upgrade");
    let (resp, _) = read_response_head(&mut tcp).await;
    assert_eq!(resp.status(), 101);
    tcp
}

#[test]
fn handshake_timeout_fires_without_a_time_driver() {
    io_only_runtime().block_on(bounded("handshake timeout", async {
        let (l, addr) = listener().await;
        let config = base()
            .handshake_timeout(Some(Duration::from_millis(100)))
            .build();
        let server = tokio::spawn(async move {
            let (tcp, _) = l.accept().await.expect("accept");
            Conn::accept(tcp, &config).await.map(|_| ())
        });
        // Connects and sends half a request head, then nothing.
        let mut tcp = TcpStream::connect(addr).await.expect("connect");
        tcp.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
            .await
            .expect("send");
        let r = server.await.expect("server task");
        assert!(
            matches!(r, Err(Error::Handshake(HandshakeError::Timeout))),
            "{r:?}"
        );
        // The best-effort 408, then end of stream.
        let mut answer = Vec::new();
        tcp.read_to_end(&mut answer).await.expect("read answer");
        let text = String::from_utf8_lossy(&answer);
        assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    }));
}

#[test]
fn keepalive_pings_then_fails_a_silent_peer() {
    io_only_runtime().block_on(bounded("keepalive", async {
        let (l, addr) = listener().await;
        let config = base()
            .keepalive(Duration::from_millis(30), Duration::from_millis(200))
            .build();
        let server = tokio::spawn(async move {
            let mut conn = accept(&l, &config).await;
            conn.read_message().await
        });
        let mut c = RawClient::connect(addr, "/", "").await;
        // Reads and never answers: pings (each re-arming the deadline on
        // the timer thread), then the close for the dead peer.
        let mut pings = 0;
        let close = loop {
            let f = c.frame().await;
            match f.opcode {
                OpCode::Ping => pings += 1,
                OpCode::Close => break f,
                other => panic!("unexpected {other:?}"),
            }
        };
        assert!(pings >= 2, "only {pings} pings before the close");
        assert_eq!(close.payload[..2], 1011u16.to_be_bytes());
        let r = server.await.expect("server task");
        assert!(
            matches!(r, Err(Error::Timeout(TimeoutKind::Keepalive))),
            "{r:?}"
        );
    }));
}

#[test]
fn keepalive_holds_for_a_peer_that_keeps_talking() {
    io_only_runtime().block_on(bounded("keepalive, lively peer", async {
        let (l, addr) = listener().await;
        let config = base()
            .keepalive(Duration::from_millis(20), Duration::from_millis(150))
            .build();
        let server = tokio::spawn(async move {
            let mut conn = accept(&l, &config).await;
            let mut got = 0u32;
            while let Some(m) = conn.read_message().await? {
                got += 1;
                conn.send_message(m).await?;
            }
            Ok::<u32, Error>(got)
        });
        let mut c = RawClient::connect(addr, "/", "").await;
        // 40 echoes, each answered: the dead-peer deadline keeps moving
        // later, which the lazy registration must follow (an early,
        // stale wake-up must not fail the connection).
        for i in 0..40u32 {
            c.send(rtwire::ws::Frame::binary(Bytes::from(
                i.to_be_bytes().to_vec(),
            )))
            .await;
            loop {
                let f = c.frame().await;
                match f.opcode {
                    OpCode::Ping => c.send(rtwire::ws::Frame::pong(f.payload)).await,
                    OpCode::Binary => {
                        assert_eq!(&f.payload[..], i.to_be_bytes());
                        break;
                    }
                    other => panic!("unexpected {other:?}"),
                }
            }
            // Let a few intervals pass between some messages, answering
            // pings meanwhile.
            if i % 10 == 9 {
                for _ in 0..3 {
                    let f = c.frame().await;
                    assert_eq!(f.opcode, OpCode::Ping);
                    c.send(rtwire::ws::Frame::pong(f.payload)).await;
                }
            }
        }
        c.send(rtwire::ws::Frame::close(CloseCode::NORMAL, ""))
            .await;
        let got = server.await.expect("server task").expect("no timeout");
        assert_eq!(got, 40);
    }));
}

#[test]
fn write_timeout_fires_when_the_peer_stops_reading() {
    io_only_runtime().block_on(bounded("write timeout", async {
        let (l, addr) = listener().await;
        let config = base()
            .write_timeout(Some(Duration::from_millis(100)))
            .build();
        let server = tokio::spawn(async move {
            let mut conn = accept(&l, &config).await;
            let big = Bytes::from(vec![7u8; 1 << 20]);
            for _ in 0..512 {
                conn.send_message(Message::Binary(big.clone())).await?;
            }
            Ok::<(), Error>(())
        });
        let tcp = stalled_client(addr).await;
        let r = server.await.expect("server task");
        assert!(
            matches!(r, Err(Error::Timeout(TimeoutKind::Write))),
            "{r:?}"
        );
        drop(tcp);
    }));
}

#[test]
fn close_timeout_fires_when_the_peer_never_answers() {
    io_only_runtime().block_on(bounded("close timeout", async {
        let (l, addr) = listener().await;
        let config = base().close_timeout(Duration::from_millis(100)).build();
        let server = tokio::spawn(async move {
            let mut conn = accept(&l, &config).await;
            conn.close(CloseCode::NORMAL, "bye").await
        });
        let mut c = RawClient::connect(addr, "/", "").await;
        // Sees our close, never answers it.
        let f = c.frame().await;
        assert_eq!(f.opcode, OpCode::Close);
        let r = server.await.expect("server task");
        assert!(
            matches!(r, Err(Error::Timeout(TimeoutKind::Close))),
            "{r:?}"
        );
    }));
}

#[test]
fn client_handshake_timeout_fires_without_a_time_driver() {
    io_only_runtime().block_on(bounded("client handshake timeout", async {
        // A server that accepts TCP and never answers the upgrade.
        let (l, addr) = listener().await;
        let silent = tokio::spawn(async move {
            let (mut tcp, _) = l.accept().await.expect("accept");
            let mut sink = Vec::new();
            let _ = tcp.read_to_end(&mut sink).await;
        });
        let config = base()
            .handshake_timeout(Some(Duration::from_millis(100)))
            .build();
        let tcp = TcpStream::connect(addr).await.expect("connect");
        let r = Conn::connect(tcp, &format!("ws://{addr}/"), &config).await;
        assert!(
            matches!(r, Err(Error::Handshake(HandshakeError::Timeout))),
            "{:?}",
            r.map(|_| ())
        );
        silent.abort();
    }));
}

#[test]
fn split_write_half_times_out_when_the_peer_stops_reading() {
    io_only_runtime().block_on(bounded("split write timeout", async {
        let (l, addr) = listener().await;
        let config = base()
            .write_timeout(Some(Duration::from_millis(100)))
            .build();
        let server = tokio::spawn(async move {
            let conn = accept(&l, &config).await;
            let (_read, mut write) = conn.split();
            let big = Bytes::from(vec![7u8; 1 << 20]);
            for _ in 0..512 {
                write.send_message(Message::Binary(big.clone())).await?;
            }
            Ok::<(), Error>(())
        });
        let tcp = stalled_client(addr).await;
        let r = server.await.expect("server task");
        assert!(
            matches!(r, Err(Error::Timeout(TimeoutKind::Write))),
            "{r:?}"
        );
        drop(tcp);
    }));
}

/// `Timer::Thread` keeps real time even when tokio's clock is paused: a
/// silent peer is still pinged and then failed (this once spun forever,
/// deadlines computed on the paused clock and fired on the real one).
#[test]
fn thread_timer_keeps_real_time_under_a_paused_tokio_clock() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("runtime");
    rt.block_on(bounded("keepalive, paused clock", async {
        let (l, addr) = listener().await;
        let config = base()
            .keepalive(Duration::from_millis(30), Duration::from_millis(200))
            .build();
        let server = tokio::spawn(async move {
            let mut conn = accept(&l, &config).await;
            conn.read_message().await
        });
        let mut c = RawClient::connect(addr, "/", "").await;
        let mut pings = 0;
        loop {
            let f = c.frame().await;
            match f.opcode {
                OpCode::Ping => pings += 1,
                OpCode::Close => break,
                other => panic!("unexpected {other:?}"),
            }
            assert!(pings < 100, "{pings} pings: the deadline does not move");
        }
        let r = server.await.expect("server task");
        assert!(
            matches!(r, Err(Error::Timeout(TimeoutKind::Keepalive))),
            "{r:?}"
        );
    }));
}
