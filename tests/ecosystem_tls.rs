//! `wss://` over tokio-rustls on loopback, with a self-signed certificate
//! for `localhost` made at test time (rcgen): the server is
//! `Conn::accept` over the server's TLS stream, the client
//! `Conn::connect(tls, "wss://localhost:PORT/...")` over the client's. No
//! feature of rtwire is involved: any `AsyncRead + AsyncWrite` works.

mod conn_support;

use std::sync::Arc;

use conn_support::*;
use rtwire::ws::{CloseCode, Config, Conn, Message};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A TLS acceptor and a connector that trusts only its certificate.
fn tls_pair() -> (TlsAcceptor, TlsConnector) {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert: CertificateDer<'static> = ck.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.signing_key.serialize_der()));
    let server = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).unwrap();
    let client = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    (
        TlsAcceptor::from(Arc::new(server)),
        TlsConnector::from(Arc::new(client)),
    )
}

#[tokio::test]
async fn wss_echo_over_rustls() {
    let (acceptor, connector) = tls_pair();
    let (l, addr) = listener().await;
    let config = Config::builder()
        .subprotocols(["chat"])
        .max_message_size(4 << 20)
        .max_frame_size(4 << 20)
        .build();
    let server_config = config.clone();
    let server = tokio::spawn(async move {
        let (tcp, _) = l.accept().await.unwrap();
        let tls = acceptor.accept(tcp).await.expect("TLS accept");
        let (mut conn, accepted) = Conn::accept(tls, &server_config).await.unwrap();
        assert_eq!(accepted.head.path(), "/secure");
        while let Some(m) = conn.read_message().await.unwrap() {
            conn.feed_message(m).await.unwrap();
        }
        conn.peer_close_frame().map(|c| c.code)
    });

    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let tls = bounded("TLS connect", connector.connect(name, tcp))
        .await
        .expect("TLS connect");
    let url = format!("wss://localhost:{}/secure", addr.port());
    let (mut conn, head) = bounded("connect", Conn::connect(tls, &url, &config))
        .await
        .unwrap();
    assert_eq!(head.header_str("sec-websocket-protocol"), Some("chat"));
    for i in 0..30usize {
        let len = if i % 10 == 9 { 1 << 20 } else { i * 1000 };
        let msg = if i % 2 == 0 {
            Message::Binary(pattern(len, i as u8).into())
        } else {
            Message::Text("é".repeat(len / 2).into())
        };
        conn.send_message(msg.clone()).await.unwrap();
        assert_eq!(
            bounded("echo", conn.read_message()).await.unwrap(),
            Some(msg)
        );
    }
    bounded("close", conn.close(CloseCode::NORMAL, "done"))
        .await
        .unwrap();
    assert_eq!(
        bounded("server", server).await.unwrap(),
        Some(CloseCode::NORMAL)
    );
}
