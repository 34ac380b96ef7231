//! amqps:// against a real RabbitMQ TLS listener (scripts/test gives the test broker one on
//! 127.0.0.1:5671, with a throwaway CA from scripts/rabbitmq-tls.sh): the profile's CA file
//! is trusted, a client certificate is presented when configured, and a server the CA does
//! not vouch for is refused with a clear error, not a hang.
//! Without the listener the tests skip, except under CI=true, where they fail.

use mqscope::backend::rabbitmq::RabbitBackend;
use mqscope::backend::{Backend, ConnectOptions, Destination, PeekRequest, Publish};
use mqscope::config::{Profile, Target, TlsSettings};
use mqscope::model::Message;
use std::path::PathBuf;

fn tls_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(
        std::env::var("MQSCOPE_TEST_TLS_DIR")
            .unwrap_or_else(|_| "/etc/rabbitmq/mqscope-tls".into()),
    );
    let listening = std::net::TcpStream::connect("127.0.0.1:5671").is_ok();
    if dir.join("ca.pem").exists() && listening {
        return Some(dir);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "no TLS listener on 127.0.0.1:5671 with a CA in {} in CI; scripts/test sets one up",
        dir.display()
    );
    eprintln!("skipping: no RabbitMQ TLS listener on 127.0.0.1:5671");
    None
}

fn options(tls: TlsSettings) -> ConnectOptions {
    let mut profile = Profile::default();
    profile.management_url = Some("http://127.0.0.1:15672".into());
    profile.tls = tls;
    ConnectOptions {
        profile: Some(profile),
        ..ConnectOptions::default()
    }
}

fn target(host: &str) -> mqscope::config::AmqpTarget {
    match Target::parse(&format!("amqps://guest:guest@{host}:5671/%2f")) {
        Ok(Target::Amqp(t)) => t,
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amqps_with_the_profiles_ca_and_a_client_certificate() {
    let Some(dir) = tls_dir() else { return };
    for client_cert in [false, true] {
        let tls = TlsSettings {
            ca_file: Some(dir.join("ca.pem")),
            cert_file: client_cert.then(|| dir.join("client.pem")),
            key_file: client_cert.then(|| dir.join("client.key")),
            insecure: false,
        };
        let b = RabbitBackend::connect(&target("localhost"), &options(tls))
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
            let out = std::process::Command::new("rabbitmqctl")
                .args(["-q", "list_connections", "peer_cert_subject"])
                .output();
            if let Some(out) = out.ok().filter(|o| o.status.success()) {
                let text = String::from_utf8_lossy(&out.stdout);
                assert!(text.contains("mqscope-client"), "{text}");
            }
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
        declare(&q).await;
        b.publish(&dest, &m).await.unwrap();
        let page = b.peek(&q, &PeekRequest::first(5)).await.unwrap();
        assert_eq!(page.messages.len(), 1);
        assert_eq!(page.messages[0].payload.as_ref(), b"over tls");
        let again = b.peek(&q, &PeekRequest::first(5)).await.unwrap();
        assert_eq!(again.messages.len(), 1, "the peek left it there");
    }
}

/// A plain-AMQP helper connection declares the test queue (auto-expiring).
async fn declare(q: &str) {
    use lapin::options::QueueDeclareOptions;
    use lapin::types::{AMQPValue, FieldTable};
    let conn = lapin::Connection::connect(
        "amqp://guest:guest@127.0.0.1:5672/%2f",
        lapin::ConnectionProperties::default(),
    )
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
    let Some(dir) = tls_dir() else { return };
    // The system roots do not know the test CA.
    let started = std::time::Instant::now();
    let err = match RabbitBackend::connect(&target("localhost"), &options(TlsSettings::default()))
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
        &target("localhost"),
        &options(TlsSettings {
            ca_file: Some(missing.clone()),
            ..TlsSettings::default()
        }),
    )
    .await
    .err()
    .expect("missing CA file")
    .to_string();
    assert!(err.contains("nope.pem"), "{err}");
}
