//! amqps:// against a real RabbitMQ TLS listener: the profile's CA file is trusted, a
//! client certificate is presented when configured, and a server the CA does not vouch for
//! is refused with a clear error, not a hang. The listener belongs to a private RabbitMQ
//! node each test starts (tests/support), with a throwaway CA from scripts/rabbitmq-tls.sh:
//! the shared broker's configuration is never changed, nor is it restarted.
//! Where no node can be started the tests skip, except under CI=true, where they fail.

use mqscope::backend::rabbitmq::RabbitBackend;
use mqscope::backend::{Backend, ConnectOptions, Destination, PeekRequest, Publish};
use mqscope::config::{Target, TlsSettings};
use mqscope::model::Message;
use std::path::PathBuf;

mod support;
use support::PrivateNode;

/// A private node with an AMQPS listener; its TLS directory and port.
async fn tls_node(name: &'static str) -> Option<(PrivateNode, PathBuf, u16)> {
    let node = PrivateNode::start_for_test(name, move |dir, conf, port| {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/rabbitmq-tls.sh");
        let out = std::process::Command::new("bash")
            .arg(script)
            .env("TLS_DIR", dir.join("tls"))
            .env("RABBITMQ_CONF", conf)
            .env("TLS_PORT", port.to_string())
            .output()
            .map_err(|e| format!("{script}: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{script}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    })
    .await?;
    // The management listener comes up a moment after AMQP; connect needs both.
    drop(node.backend().await);
    let tls = node.dir().join("tls");
    let port = node.spare_port;
    Some((node, tls, port))
}

fn options(node: &PrivateNode, tls: TlsSettings) -> ConnectOptions {
    let mut opts = node.options();
    opts.settings.tls = tls;
    opts
}

fn target(host: &str, port: u16) -> mqscope::config::AmqpTarget {
    match Target::parse(&format!("amqps://guest:guest@{host}:{port}/%2f")) {
        Ok(Target::Amqp(t)) => t,
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amqps_with_the_profiles_ca_and_a_client_certificate() {
    let Some((node, dir, port)) = tls_node("tls-ca").await else {
        return;
    };
    for client_cert in [false, true] {
        let tls = TlsSettings {
            ca_file: Some(dir.join("ca.pem")),
            cert_file: client_cert.then(|| dir.join("client.pem")),
            key_file: client_cert.then(|| dir.join("client.key")),
            insecure: false,
        };
        let b = RabbitBackend::connect(&target("localhost", port), &options(&node, tls))
            .await
            .unwrap_or_else(|e| panic!("amqps (client cert: {client_cert}): {e}"));
        assert!(
            b.info().target.starts_with("amqps://"),
            "{}",
            b.info().target
        );
        if client_cert {
            // The broker saw the client certificate (rabbitmqctl is exact; the management
            // API lists connections only after its statistics interval).
            let out = node
                .ctl(&["list_connections", "peer_cert_subject"])
                .expect("rabbitmqctl list_connections");
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(text.contains("CN=mqscope-client"), "{text}");
        }
        // A round trip over TLS: publish with confirms, peek it back, nothing consumed.
        let q = format!("mqscope-test-tls-{}-{client_cert}", std::process::id());
        let m = Message::new("", 0, b"over tls".to_vec());
        let dest = Destination::Exchange {
            exchange: String::new(),
            routing_key: q.clone(),
        };
        // The queue does not exist yet: unroutable, and said so.
        assert!(b.publish(&dest, &m).await.is_err());
        declare(&node, &q).await;
        b.publish(&dest, &m).await.unwrap();
        let page = b.peek(&q, &PeekRequest::first(5)).await.unwrap();
        assert_eq!(page.messages.len(), 1);
        assert_eq!(page.messages[0].payload.as_ref(), b"over tls");
        let again = b.peek(&q, &PeekRequest::first(5)).await.unwrap();
        assert_eq!(again.messages.len(), 1, "the peek left it there");
    }
}

/// A plain-AMQP helper connection declares the test queue (auto-expiring).
async fn declare(node: &PrivateNode, q: &str) {
    use lapin::options::QueueDeclareOptions;
    use lapin::types::{AMQPValue, FieldTable};
    let conn = lapin::Connection::connect(&node.url(), lapin::ConnectionProperties::default())
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    let mut args = FieldTable::default();
    args.insert("x-expires".into(), AMQPValue::LongInt(60_000));
    ch.queue_declare(q.into(), QueueDeclareOptions::default(), args)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_the_ca_does_not_vouch_for_is_refused_clearly() {
    let Some((node, dir, port)) = tls_node("tls-unknown-ca").await else {
        return;
    };
    // The system roots do not know the test CA.
    let started = std::time::Instant::now();
    let err = match RabbitBackend::connect(
        &target("localhost", port),
        &options(&node, TlsSettings::default()),
    )
    .await
    {
        Ok(_) => panic!("a certificate from an unknown CA was accepted"),
        Err(e) => e.to_string(),
    };
    assert!(started.elapsed().as_secs() < 30, "refused promptly");
    assert!(
        err.to_lowercase().contains("certificate") || err.to_lowercase().contains("tls"),
        "{err}"
    );
    assert!(!err.contains("guest:guest"), "no password in errors: {err}");
    // A missing CA file is reported before connecting, naming the file.
    let missing = dir.join("nope.pem");
    let err = RabbitBackend::connect(
        &target("localhost", port),
        &options(
            &node,
            TlsSettings {
                ca_file: Some(missing.clone()),
                ..TlsSettings::default()
            },
        ),
    )
    .await
    .err()
    .expect("missing CA file")
    .to_string();
    assert!(err.contains("nope.pem"), "{err}");
}
