//! Passwords under faults (issue 14), against the real binary: no error shows a
//! password.

use assert_cmd::Command;
use std::time::Duration;

/// The binary with no user config or environment leaking in.
fn mqscope(home: &tempfile::TempDir) -> Command {
    let mut c = Command::cargo_bin("mqscope").unwrap();
    c.env("XDG_CONFIG_HOME", home.path())
        .env("XDG_STATE_HOME", home.path())
        .env_remove("MQSCOPE_URL")
        .env_remove("MQSCOPE_PROFILE")
        .env_remove("MQSCOPE_CONFIG")
        .env_remove("MQSCOPE_PASSWORD")
        .env_remove("RUST_BACKTRACE")
        // A run that hangs fails the test instead of holding it up.
        .timeout(Duration::from_secs(30));
    c
}

/// Write the config file that `mqscope(home)` reads.
fn config(home: &tempfile::TempDir, text: &str) {
    let dir = home.path().join("mqscope");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("config.toml"), text).unwrap();
}

/// An environment variable a case sets.
type Env = Option<(&'static str, &'static str)>;

#[test]
fn no_error_shows_a_password() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().display().to_string();
    config(
        &home,
        r#"
[profiles.mgmt-creds]
url = "amqp://guest:guest@127.0.0.1:5672/%2f"
management_url = "http://guest:Mg9Secret@127.0.0.1:1"
"#,
    );
    let other = |name: &str, text: &str| {
        let path = format!("{dir}/{name}.toml");
        std::fs::write(&path, text).unwrap();
        path
    };
    let bad_mgmt = other(
        "bad-mgmt",
        "[profiles.p]\nurl = \"amqp://127.0.0.1/\"\nmanagement_url = \"http://guest:Mg8Secret@[::1\"\n",
    );
    let bad_url = other(
        "bad-url",
        "[profiles.p]\nurl = \"amqp://guest:Cf%Secret7@127.0.0.1/\"\n",
    );
    let plain = other(
        "plain",
        "[profiles.p]\nurl = \"amqp://127.0.0.1/\"\npassword = \"Pl2Secret\"\n",
    );
    let failing_command = other(
        "failing-command",
        "[profiles.p]\nurl = \"amqp://127.0.0.1:1/\"\nuser = \"ops\"\npassword_command = \"echo Pc6Secret; exit 3\"\n",
    );
    let kafka_sasl = other(
        "kafka-sasl",
        "[profiles.p]\nurl = \"kafka://127.0.0.1:1\"\nuser = \"ops\"\npassword_command = \"echo Kf5Secret\"\nkafka = { \"security.protocol\" = \"SASL_PLAINTEXT\", \"sasl.mechanism\" = \"PLAIN\" }\n",
    );
    let url = |u: &str| vec!["queues".to_string(), "--url".into(), u.to_string()];
    let with = |file: &str| {
        vec![
            "queues".to_string(),
            "--config".into(),
            file.to_string(),
            "--profile".into(),
            "p".into(),
        ]
    };
    let cases: Vec<(&str, Vec<String>, Env)> = vec![
        ("Sec9", url("amqp://guest:Zq%Sec9@127.0.0.1/"), None),
        ("Pw4Secret", url("amqp://Us%zz:Pw4Secret@127.0.0.1/"), None),
        (
            "Pq8Secret",
            url("amqp://guest:Pq8Secret@127.0.0.1:notaport/"),
            None,
        ),
        (
            "Pq8Secret",
            url("amqp://guest:4242?Pq8Secret@127.0.0.1/"),
            None,
        ),
        (
            "Pq8Secret",
            url("amqp://guest:12/Pq8Secret@127.0.0.1"),
            None,
        ),
        (
            "Pq8Secret",
            url("amqp://guest:12#Pq8Secret@127.0.0.1/"),
            None,
        ),
        (
            "Uh5Secret",
            url("amqp://guest:Uh5Secret@127.0.0.1:1/"),
            None,
        ),
        (
            "Uh5Secret",
            url("amqps://guest:Uh5Secret@127.0.0.1:1/"),
            None,
        ),
        (
            "Wr0ngSecret",
            url("amqp://guest:Wr0ngSecret@127.0.0.1:5672/"),
            None,
        ),
        (
            "Kf4Secret",
            url("kafka://ops:Kf4Secret@127.0.0.1:9092"),
            None,
        ),
        (
            "Mg9Secret",
            vec!["queues".into(), "--profile".into(), "mgmt-creds".into()],
            None,
        ),
        ("Mg8Secret", with(&bad_mgmt), None),
        ("Secret7", with(&bad_url), None),
        ("Pl2Secret", with(&plain), None),
        ("Pc6Secret", with(&failing_command), None),
        ("Kf5Secret", with(&kafka_sasl), None),
        (
            "Hx2Secret",
            vec!["--help".into()],
            Some(("MQSCOPE_URL", "amqp://guest:Hx2Secret@127.0.0.1:1/")),
        ),
        (
            "Hx3Secret",
            vec!["queues".into()],
            Some(("MQSCOPE_URL", "amqp://guest:Hx3Secret@127.0.0.1:1/")),
        ),
    ];
    // Every case is run, and every leak listed at the end.
    let mut leaks = Vec::new();
    for (secret, args, env) in cases {
        let mut cmd = mqscope(&home);
        cmd.args(&args);
        if let Some((k, v)) = env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if all.contains(secret) {
            leaks.push(format!("{args:?} {env:?} showed {secret}: {all}"));
        }
        if args != ["--help"] {
            assert_eq!(out.status.code(), Some(1), "{args:?}: {all}");
        }
    }
    assert!(leaks.is_empty(), "{}", leaks.join("\n"));
}
