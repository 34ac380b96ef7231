//! The real binary: subcommands, JSON formats, exit codes and error lines.

use assert_cmd::Command;
use serde_json::Value;

/// The binary with no user config or environment leaking in.
fn mqscope(home: &tempfile::TempDir) -> Command {
    let mut c = Command::cargo_bin("mqscope").unwrap();
    c.env("XDG_CONFIG_HOME", home.path())
        .env("XDG_STATE_HOME", home.path())
        .env_remove("MQSCOPE_URL")
        .env_remove("MQSCOPE_PROFILE")
        .env_remove("MQSCOPE_CONFIG")
        .env_remove("MQSCOPE_PASSWORD")
        .env_remove("RUST_BACKTRACE");
    c
}

fn json_lines(stdout: &[u8]) -> Vec<Value> {
    String::from_utf8(stdout.to_vec())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l}: {e}")))
        .collect()
}

/// Run expecting failure; returns (exit code, stderr).
fn fails(cmd: &mut Command) -> (i32, String) {
    let out = cmd.output().unwrap();
    assert!(!out.status.success(), "expected failure, got {:?}", out);
    let err = String::from_utf8(out.stderr).unwrap();
    (out.status.code().unwrap_or(-1), err)
}

fn one_clear_line(err: &str) {
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "one line expected: {err}"
    );
    assert!(err.starts_with("mqscope: error: "), "{err}");
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "{err}"
    );
}

#[test]
fn queues_json_lists_dead_letter_wiring() {
    let home = tempfile::tempdir().unwrap();
    let out = mqscope(&home)
        .args(["queues", "--url", "local://demo", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let rows = json_lines(&out.stdout);
    assert!(rows.len() >= 8);
    for r in &rows {
        for f in [
            "name",
            "kind",
            "type",
            "messages",
            "consumers",
            "dead_letter_queue",
            "is_dead_letter",
        ] {
            assert!(r.get(f).is_some(), "field {f} missing in {r}");
        }
    }
    let find = |n: &str| {
        rows.iter()
            .find(|r| r["name"] == n)
            .unwrap_or_else(|| panic!("{n} not listed"))
    };
    assert_eq!(find("billing.dlq")["is_dead_letter"], true);
    assert_eq!(find("billing")["dead_letter_queue"], "billing.dlq");
    assert_eq!(find("billing")["is_dead_letter"], false);
    assert_eq!(find("payments")["kind"], "topic");
    let filtered = mqscope(&home)
        .args(["queues", "DLQ", "--json", "--url", "local://demo"])
        .output()
        .unwrap();
    let rows = json_lines(&filtered.stdout);
    assert!(
        rows.iter()
            .all(|r| r["name"].as_str().unwrap().contains("dlq"))
    );
    assert_eq!(rows.len(), 4);
}

#[test]
fn peek_dead_letters_as_json() {
    let home = tempfile::tempdir().unwrap();
    let out = mqscope(&home)
        .args([
            "peek",
            "billing.dlq",
            "--url",
            "local://demo",
            "-n",
            "5",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let rows = json_lines(&out.stdout);
    assert_eq!(rows.len(), 5);
    let fields = [
        "queue",
        "position",
        "message_id",
        "correlation_id",
        "timestamp",
        "exchange",
        "routing_key",
        "partition",
        "offset",
        "key",
        "headers",
        "properties",
        "payload",
        "payload_encoding",
        "size",
        "redelivered",
        "deaths",
    ];
    for (i, r) in rows.iter().enumerate() {
        for f in fields {
            assert!(r.get(f).is_some(), "field {f} missing");
        }
        assert_eq!(r["position"], i);
        assert!(!r["correlation_id"].as_str().unwrap().is_empty());
        chrono::DateTime::parse_from_rfc3339(r["timestamp"].as_str().unwrap()).unwrap();
        let d = &r["deaths"][0];
        assert_eq!(d["reason"], "rejected");
        assert_eq!(d["queue"], "billing");
        for f in [
            "queue",
            "reason",
            "count",
            "exchange",
            "routing_keys",
            "time",
        ] {
            assert!(d.get(f).is_some(), "death field {f} missing");
        }
    }
}

#[test]
fn binary_payloads_are_base64() {
    let home = tempfile::tempdir().unwrap();
    let out = mqscope(&home)
        .args(["peek", "labels", "-n", "3", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    for r in json_lines(&out.stdout) {
        assert_eq!(r["payload_encoding"], "base64");
        use base64::Engine;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(r["payload"].as_str().unwrap())
            .unwrap();
        assert_eq!(bytes.len() as u64, r["size"].as_u64().unwrap());
        assert!(std::str::from_utf8(&bytes).is_err());
    }
}

#[test]
fn peek_windows_and_partitions() {
    let home = tempfile::tempdir().unwrap();
    let url = "local://demo?clock=fixed";
    let all = json_lines(
        &mqscope(&home)
            .args(["peek", "billing.dlq", "-n", "6", "--json", "--url", url])
            .output()
            .unwrap()
            .stdout,
    );
    let from = json_lines(
        &mqscope(&home)
            .args([
                "peek",
                "billing.dlq",
                "-n",
                "2",
                "--from",
                "4",
                "--json",
                "--url",
                url,
            ])
            .output()
            .unwrap()
            .stdout,
    );
    assert_eq!(from, all[4..6].to_vec());
    let part = json_lines(
        &mqscope(&home)
            .args([
                "peek",
                "payments",
                "--partition",
                "1",
                "--from",
                "3",
                "-n",
                "2",
                "--json",
                "--url",
                url,
            ])
            .output()
            .unwrap()
            .stdout,
    );
    assert_eq!(part.len(), 2);
    assert!(part.iter().all(|r| r["partition"] == 1));
    assert_eq!(part[0]["offset"], 3);
    assert!(part[0]["key"].as_str().unwrap().starts_with("ORD-"));
    let last = json_lines(
        &mqscope(&home)
            .args([
                "peek", "payments", "--last", "-n", "4", "--json", "--url", url,
            ])
            .output()
            .unwrap()
            .stdout,
    );
    assert_eq!(last.len(), 4);
    let times: Vec<&str> = last
        .iter()
        .map(|r| r["timestamp"].as_str().unwrap())
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "merged by time: {times:?}"
    );
    let since = mqscope(&home)
        .args([
            "peek",
            "payments",
            "--since",
            "2026-01-01T00:09:00Z",
            "-n",
            "1",
            "--json",
            "--url",
            url,
        ])
        .output()
        .unwrap();
    let since = json_lines(&since.stdout);
    assert!(since[0]["timestamp"].as_str().unwrap() >= "2026-01-01T00:09:00");
}

#[test]
fn fixed_clock_output_repeats() {
    let home = tempfile::tempdir().unwrap();
    let run = || {
        mqscope(&home)
            .args([
                "peek",
                "email.dlq",
                "-n",
                "20",
                "--json",
                "--url",
                "local://demo?seed=9&clock=fixed",
            ])
            .output()
            .unwrap()
            .stdout
    };
    assert_eq!(run(), run());
}

#[test]
fn human_output_reads_well() {
    let home = tempfile::tempdir().unwrap();
    let out = mqscope(&home)
        .args(["peek", "payments-dlt", "-n", "1"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("dead letter: rejected in payments"), "{text}");
    assert!(text.contains("CardDeclinedException"), "{text}");
    let out = mqscope(&home).args(["queues"]).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("NAME"));
    assert!(
        text.contains("-> billing.dlq") && text.contains("DLQ of billing"),
        "{text}"
    );
    let out = mqscope(&home).args(["groups"]).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("payments-processor"), "{text}");
}

#[test]
fn groups_json_has_lag() {
    let home = tempfile::tempdir().unwrap();
    let out = mqscope(&home).args(["groups", "--json"]).output().unwrap();
    let rows = json_lines(&out.stdout);
    let p = rows
        .iter()
        .find(|g| g["name"] == "payments-processor")
        .unwrap();
    assert!(p["lag"].as_u64().unwrap() > 0);
    assert_eq!(p["partitions"].as_array().unwrap().len(), 3);
}

#[test]
fn demo_and_bare_invocation_show_the_demo() {
    let home = tempfile::tempdir().unwrap();
    for args in [
        vec!["demo"],
        vec![],
        vec!["demo", "--seed", "3", "--fixed-clock"],
    ] {
        let out = mqscope(&home).args(&args).output().unwrap();
        assert!(out.status.success(), "{args:?}");
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(
            text.contains("billing.dlq") && text.contains("payments-processor"),
            "{args:?}: {text}"
        );
    }
}

#[test]
fn errors_are_one_line_with_the_right_exit_code() {
    let home = tempfile::tempdir().unwrap();
    let (code, err) = fails(mqscope(&home).args(["peek", "biling"]));
    assert_eq!(code, 1);
    one_clear_line(&err);
    assert!(err.contains("did you mean billing"), "{err}");

    let (code, err) = fails(mqscope(&home).args(["queues", "--url", "ftp://nowhere"]));
    assert_eq!(code, 1);
    one_clear_line(&err);

    let (code, err) = fails(mqscope(&home).args(["peek", "payments", "--partition", "9"]));
    assert_eq!(code, 1);
    one_clear_line(&err);

    let (code, err) = fails(mqscope(&home).args(["queues", "--url", "local://nosuch"]));
    assert_eq!(code, 1);
    one_clear_line(&err);

    let (code, err) = fails(mqscope(&home).args(["demo", "--theme", "no-such-theme"]));
    assert_eq!(code, 1);
    one_clear_line(&err);
    assert!(
        err.contains("no-such-theme") && err.contains("high-contrast"),
        "{err}"
    );

    let (code, _) = fails(mqscope(&home).args(["peek"]));
    assert_eq!(code, 2);
    let (code, _) = fails(mqscope(&home).args(["queues", "--bogus"]));
    assert_eq!(code, 2);
    let (code, _) = fails(mqscope(&home).args(["peek", "q", "--last", "--from", "3"]));
    assert_eq!(code, 2);
}

#[test]
fn passwords_never_appear() {
    let home = tempfile::tempdir().unwrap();
    for url in [
        "amqp://ops:s3cr3tpw@127.0.0.1:1/%2f",
        "amqp://ops:s3cr3tpw@127.0.0.1:badport/",
    ] {
        let out = mqscope(&home)
            .args(["queues", "--url", url])
            .output()
            .unwrap();
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!all.contains("s3cr3tpw"), "{all}");
        assert_eq!(out.status.code(), Some(1));
    }
}

#[test]
fn profiles_from_the_config_file() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("mqscope");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("config.toml"),
        "default_profile = \"seeded\"\n[profiles.seeded]\nurl = \"local://demo?seed=5&clock=fixed\"\n",
    )
    .unwrap();
    let by_default = mqscope(&home)
        .args(["peek", "billing.dlq", "-n", "3", "--json"])
        .output()
        .unwrap();
    let explicit = mqscope(&home)
        .args([
            "peek",
            "billing.dlq",
            "-n",
            "3",
            "--json",
            "--url",
            "local://demo?seed=5&clock=fixed",
        ])
        .output()
        .unwrap();
    assert!(by_default.status.success());
    assert_eq!(by_default.stdout, explicit.stdout);
    let (code, err) = fails(mqscope(&home).args(["queues", "--profile", "missing"]));
    assert_eq!(code, 1);
    one_clear_line(&err);
    assert!(err.contains("known: seeded"), "{err}");
    let (code, err) =
        fails(mqscope(&home).args(["queues", "--config", "/nonexistent/mqscope.toml"]));
    assert_eq!(code, 1);
    one_clear_line(&err);
}

#[test]
fn closed_pipe_is_not_an_error() {
    let home = tempfile::tempdir().unwrap();
    let bin = assert_cmd::cargo::cargo_bin("mqscope");
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("'{}' peek analytics -n 3000 --json | head -c 100 >/dev/null; echo \"${{PIPESTATUS:-}}\"", bin.display()))
        .env("XDG_CONFIG_HOME", home.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("error") && !err.contains("panicked"), "{err}");
}

#[test]
fn peek_all_reads_every_message_of_topics_and_queues() {
    let home = tempfile::tempdir().unwrap();
    let url = "local://demo?clock=fixed";
    let listed = json_lines(
        &mqscope(&home)
            .args(["queues", "--json", "--url", url])
            .output()
            .unwrap()
            .stdout,
    );
    for name in ["payments", "billing.dlq"] {
        let depth = listed.iter().find(|q| q["name"] == name).unwrap()["messages"]
            .as_u64()
            .unwrap();
        let rows = json_lines(
            &mqscope(&home)
                .args([
                    "peek",
                    name,
                    "--all",
                    "--json",
                    "--page-size",
                    "7",
                    "--url",
                    url,
                ])
                .output()
                .unwrap()
                .stdout,
        );
        assert!(depth > 0);
        assert_eq!(rows.len() as u64, depth, "{name}");
        let mut seen: Vec<(i64, i64)> = rows
            .iter()
            .map(|r| {
                (
                    r["partition"].as_i64().unwrap_or(-1),
                    r["offset"]
                        .as_i64()
                        .unwrap_or(r["position"].as_i64().unwrap()),
                )
            })
            .collect();
        seen.dedup();
        assert_eq!(seen.len(), rows.len(), "no message twice in {name}");
    }
    let (code, _) = fails(mqscope(&home).args(["peek", "payments", "--all", "-n", "3"]));
    assert_eq!(code, 2);
}

#[test]
fn read_only_refuses_every_modifying_command() {
    let home = tempfile::tempdir().unwrap();
    let cases: [&[&str]; 5] = [
        &["replay", "billing.dlq", "--yes"],
        &["purge", "billing.dlq", "--yes"],
        &["delete", "billing.dlq", "--ids", "x", "--yes"],
        &["publish", "--queue", "billing", "--body", "hi"],
        &["replay", "--resume", "--yes"],
    ];
    for args in cases {
        let (code, err) = fails(
            mqscope(&home)
                .args(["--read-only", "--url", "local://demo?clock=fixed"])
                .args(args),
        );
        assert_ne!(code, 0);
        assert!(err.contains("refused: read-only"), "{args:?}: {err}");
        one_clear_line(&err);
    }
    // Nothing was written: no journal, no backup, no audit entry.
    assert!(!home.path().join("mqscope").join("backups").exists());
    assert!(!home.path().join("mqscope").join("audit.jsonl").exists());
}

#[test]
fn modifying_commands_ask_and_without_a_terminal_do_nothing() {
    let home = tempfile::tempdir().unwrap();
    let (_, err) = fails(
        mqscope(&home)
            .args(["--url", "local://demo?clock=fixed", "purge", "billing.dlq"])
            .write_stdin(""),
    );
    assert!(err.contains("--yes"), "{err}");
    assert!(!home.path().join("mqscope").join("backups").exists());
}

#[test]
fn replay_and_purge_on_the_demo_write_journal_backup_and_audit() {
    let home = tempfile::tempdir().unwrap();
    let url = "local://demo?clock=fixed";
    let out = mqscope(&home)
        .args(["--url", url, "replay", "billing.dlq", "--dry-run", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let plan = &json_lines(&out.stdout)[0];
    assert_eq!(plan["dry_run"], true);
    let n = plan["replayed"].as_u64().unwrap();
    assert!(n > 0, "{plan}");

    let out = mqscope(&home)
        .args(["--url", url, "replay", "billing.dlq", "--yes", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let done = &json_lines(&out.stdout)[0];
    assert_eq!(done["replayed"].as_u64(), Some(n));
    let journal = done["journal"].as_str().unwrap();
    assert!(std::path::Path::new(journal).exists());

    let out = mqscope(&home)
        .args(["--url", url, "purge", "billing.dlq", "--yes", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let purged = &json_lines(&out.stdout)[0];
    let backup = purged["backup"].as_str().unwrap();
    let lines = std::fs::read_to_string(backup).unwrap().lines().count() as u64;
    assert_eq!(Some(lines), purged["removed"].as_u64());
    assert!(lines > 0);

    let audit = std::fs::read_to_string(home.path().join("mqscope").join("audit.jsonl")).unwrap();
    let entries: Vec<Value> = audit
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["action"], "replay");
    assert_eq!(entries[0]["count"].as_u64(), Some(n));
    assert_eq!(entries[1]["action"], "purge");
    assert_eq!(entries[1]["backup"], backup);
    assert_eq!(entries[1]["result"], "ok");
}

#[test]
fn describe_shows_one_queue_in_full() {
    let home = tempfile::tempdir().unwrap();
    let url = "local://demo?clock=fixed";
    let out = mqscope(&home)
        .args(["describe", "billing", "--url", url])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    for want in [
        "Queue\n  name ",
        "billing",
        "Depth\n",
        "Dead letters\n",
        "dead-letters to  orders.dlx, routing key \"billing.dlq\"",
        "which reaches    billing.dlq",
        "x-dead-letter-exchange",
        "Bound from\n",
    ] {
        assert!(text.contains(want), "{want:?} missing in:\n{text}");
    }
    // The dead-letter queue says where its dead letters come from.
    let out = mqscope(&home)
        .args(["describe", "billing.dlq", "--json", "--url", url])
        .output()
        .unwrap();
    let rows = json_lines(&out.stdout);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["name"], "billing.dlq");
    assert_eq!(rows[0]["is_dead_letter"], true);
    assert_eq!(
        rows[0]["dead_letter_sources"],
        serde_json::json!(["billing"])
    );
    // A topic lists its partitions with their offsets.
    let out = mqscope(&home)
        .args(["describe", "payments", "--url", url])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("Partitions\n"), "{text}");
    assert!(text.contains("offsets 0–"), "{text}");
    // ... and the consumer groups reading it, with their lag on it alone.
    assert!(text.contains("Consumer groups\n"), "{text}");
    assert!(text.contains("  payments-processor  lag "), "{text}");
    let (code, err) = fails(mqscope(&home).args(["describe", "billng", "--url", url]));
    assert_eq!(code, 1);
    one_clear_line(&err);
    assert!(err.contains("did you mean billing"), "{err}");
    // An exchange's name where a queue's belongs says what it is and where to look.
    let (_, err) = fails(mqscope(&home).args(["describe", "orders", "--url", url]));
    one_clear_line(&err);
    assert!(err.contains("\"orders\" is an exchange"), "{err}");
    assert!(err.contains("mqscope bindings --source 'orders'"), "{err}");
}

/// `tail` on the demo's live traffic: each message with the time it arrived, beside the
/// publish time, in both formats; `-n` stops it.
#[test]
fn tail_prints_live_messages_with_their_arrival() {
    let home = tempfile::tempdir().unwrap();
    let out = mqscope(&home)
        .args([
            "tail",
            "orders",
            "-n",
            "2",
            "--json",
            "--url",
            "local://demo",
        ])
        .timeout(std::time::Duration::from_secs(60))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let rows = json_lines(&out.stdout);
    assert_eq!(rows.len(), 2);
    for r in &rows {
        assert_eq!(r["exchange"], "orders");
        let at = r["received_at"].as_str().expect("received_at");
        chrono::DateTime::parse_from_rfc3339(at).unwrap_or_else(|e| panic!("{at}: {e}"));
    }
    let out = mqscope(&home)
        .args(["tail", "orders", "-n", "1", "--url", "local://demo"])
        .timeout(std::time::Duration::from_secs(60))
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let received = text.find("\n  received:    ").expect("a received line");
    let payload = text.find("\n  payload:     ").expect("a payload line");
    assert!(received < payload, "{text}");
}

#[test]
fn peek_filter_prints_only_the_matching_messages_read() {
    let home = tempfile::tempdir().unwrap();
    let url = "local://demo?clock=fixed";
    let peek = |extra: &[&str]| {
        let mut args = vec!["peek", "--url", url, "--json"];
        args.extend_from_slice(extra);
        mqscope(&home).args(&args).output().unwrap()
    };
    // The unfiltered window is the reference: the filter picks from it, in its order.
    let all = json_lines(&peek(&["payments", "-n", "300"]).stdout);
    assert_eq!(all.len(), 300);
    let out = peek(&[
        "payments",
        "-n",
        "300",
        "--filter",
        "key~7$ and body~.",
        "--partition",
        "1",
    ]);
    assert!(out.status.success(), "{out:?}");
    let partition_1 = json_lines(&peek(&["payments", "-n", "300", "--partition", "1"]).stdout);
    let want: Vec<&Value> = partition_1
        .iter()
        .filter(|m| m["key"].as_str().is_some_and(|k| k.ends_with('7')))
        .collect();
    assert!(!want.is_empty() && want.len() < partition_1.len());
    assert_eq!(json_lines(&out.stdout).iter().collect::<Vec<_>>(), want);
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains(&format!(
            "{} of 300 messages read matched --filter 'key~7$ and body~.'",
            want.len()
        )),
        "{err}"
    );
    // `--all` reads everything and prints the matches: one header value here.
    let one = &all[5];
    let id = one["correlation_id"].as_str().unwrap();
    let out = peek(&[
        "payments",
        "--all",
        "--filter",
        &format!("header.correlation_id={id}"),
    ]);
    let found = json_lines(&out.stdout);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["offset"], one["offset"]);
    assert_eq!(found[0]["partition"], one["partition"]);
    // Dead letters by reason, readable: nothing matched says so.
    let out = mqscope(&home)
        .args(["peek", "billing.dlq", "-n", "50", "--url", url])
        .args(["--filter", "reason=expired"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "(no message matched)\n"
    );
    let out = mqscope(&home)
        .args(["peek", "billing.dlq", "-n", "50", "--url", url, "--json"])
        .args(["--filter", "reason=rejected"])
        .output()
        .unwrap();
    let rows = json_lines(&out.stdout);
    assert_eq!(rows.len(), 50, "every billing dead letter was rejected");
    assert!(rows.iter().all(|r| r["deaths"][0]["reason"] == "rejected"));
    // A bad expression is a usage mistake found before anything is read.
    let (code, err) = fails(mqscope(&home).args([
        "peek",
        "billing.dlq",
        "--url",
        url,
        "--filter",
        "colour=red",
    ]));
    assert_eq!(code, 1);
    one_clear_line(&err);
    assert!(err.contains("unknown field \"colour\""), "{err}");
}

#[test]
fn a_server_that_is_not_amqp_is_named_as_such() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut c in listener.incoming().flatten().take(3) {
            let mut buf = [0u8; 64];
            let _ = c.read(&mut buf);
            let _ = c.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
        }
    });
    let home = tempfile::tempdir().unwrap();
    let url = format!("amqp://guest:guest@127.0.0.1:{port}/%2f");
    let (code, err) = fails(mqscope(&home).args(["peek", "q", "--url", &url]));
    assert_eq!(code, 1);
    one_clear_line(&err);
    assert!(err.contains("does not speak AMQP 0-9-1"), "{err}");
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
    // And a single message needs somewhere to go: a usage error.
    let (code, err) = fails(mqscope(&home).args(["publish", "--body", "hi"]));
    assert_eq!(code, 2, "{err}");
}

#[test]
fn a_removal_that_removes_nothing_leaves_no_empty_backup() {
    let home = tempfile::tempdir().unwrap();
    let out = mqscope(&home)
        .env("MQSCOPE_STATE_DIR", home.path().join("state"))
        .args([
            "delete",
            "billing.dlq",
            "--ids",
            "nope",
            "--yes",
            "--url",
            "local://demo",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains("restore with"), "{stdout}");
    let backups = home.path().join("state").join("backups");
    let files: Vec<_> = std::fs::read_dir(&backups)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(files.is_empty(), "{files:?}");
}

/// An empty queue, topic or trace name (an unset shell variable, most often) is a usage
/// mistake caught before anything happens: no connection (the URL here answers nothing),
/// no journal, exit 2. It used to reach the broker, where the management API answers an
/// empty name with the whole queue list, and `replay ''` left a journal that broke a later
/// `--resume`.
#[test]
fn an_empty_name_is_a_usage_error_before_anything_happens() {
    let home = tempfile::tempdir().unwrap();
    let state = home.path().join("state");
    let nobody = "amqp://guest:guest@127.0.0.1:1/%2f";
    let cases: &[&[&str]] = &[
        &["peek", ""],
        &["describe", ""],
        &["purge", "", "--yes"],
        &["delete", "", "--ids", "m-1", "--yes"],
        &["replay", "", "--yes"],
        &["replay", "", "--resume"],
        &["replay", "billing.dlq", "--to", "queue:", "--yes"],
        &["trace", ""],
        &["publish", "--queue", "", "--body", "x"],
        &["publish", "--topic", "", "--body", "x"],
    ];
    for args in cases {
        let (code, err) = fails(
            mqscope(&home)
                .env("MQSCOPE_STATE_DIR", &state)
                .args(*args)
                .args(["--url", nobody]),
        );
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(
            err.contains("empty") || err.contains("name a queue"),
            "{args:?}: {err}"
        );
        assert!(!err.contains("cannot reach"), "{args:?}: {err}");
    }
    assert!(!state.exists(), "nothing was written");
    // The default exchange has the empty name: that one stays allowed (`tail ''` follows it
    // too). A name of spaces is a legal RabbitMQ queue name, and reachable.
    let out = mqscope(&home)
        .args(["publish", "--exchange", "", "--routing-key", "billing"])
        .args(["--body", "x", "--url", "local://demo"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}

/// An operating-system error is said once: the state directory's error used to be printed
/// with its cause, which it already held (`Not a directory (os error 20): Not a directory
/// (os error 20)`).
#[test]
fn an_os_error_is_said_once() {
    let home = tempfile::tempdir().unwrap();
    let file = home.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    for args in [
        &["purge", "billing.dlq", "--yes"][..],
        &["replay", "billing.dlq", "--yes"],
    ] {
        let (code, err) = fails(
            mqscope(&home)
                .env("MQSCOPE_STATE_DIR", file.join("state"))
                .args(args)
                .args(["--url", "local://demo"]),
        );
        assert_eq!(code, 1, "{err}");
        one_clear_line(&err);
        assert_eq!(err.matches("os error 20").count(), 1, "{err}");
        assert!(err.contains("a-file/state"), "{err}");
    }
}

/// A `publish --from` file with a line that is not UTF-8 says which line, from a file and
/// from standard input, and nothing is sent.
#[test]
fn a_line_that_is_not_utf8_is_named_by_its_number() {
    let home = tempfile::tempdir().unwrap();
    let file = home.path().join("bad.jsonl");
    let mut bytes = b"{\"payload\":\"fine\"}\r\n\n{\"payload\":\"".to_vec();
    bytes.extend_from_slice(b"caf\xe9\"}\n");
    std::fs::write(&file, &bytes).unwrap();
    let (code, err) = fails(mqscope(&home).args([
        "publish",
        "--from",
        file.to_str().unwrap(),
        "--queue",
        "billing",
        "--url",
        "local://demo",
    ]));
    assert_eq!(code, 1, "{err}");
    one_clear_line(&err);
    assert!(err.contains("bad.jsonl line 3: not valid UTF-8"), "{err}");
    let (code, err) = fails(
        mqscope(&home)
            .args(["publish", "--from", "-", "--queue", "billing"])
            .args(["--url", "local://demo"])
            .write_stdin(bytes),
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("standard input line 3: not valid UTF-8"),
        "{err}"
    );
}

/// `--filter` joins conditions with `or` as well as `and` (which binds tighter), groups
/// them with parentheses, and takes a quoted value as written. `or` and `)` used to be
/// read as part of a value, so `reason=rejected or queue=x` matched nothing, silently.
#[test]
fn filter_or_and_parentheses_choose_as_written() {
    let home = tempfile::tempdir().unwrap();
    let url = "local://demo";
    let peek = |filter: Option<&str>| -> Vec<Value> {
        let mut c = mqscope(&home);
        c.args(["peek", "billing.dlq", "-n", "60", "--json", "--url", url]);
        if let Some(f) = filter {
            c.args(["--filter", f]);
        }
        let out = c.output().unwrap();
        assert!(out.status.success(), "{filter:?}: {out:?}");
        json_lines(&out.stdout)
    };
    let all = peek(None);
    let tenant = |r: &Value| r["headers"]["x-tenant"].as_str().unwrap_or("").to_string();
    let express = |r: &Value| r["headers"]["x-express"] == true;
    let mut tenants: Vec<String> = all.iter().map(tenant).collect();
    tenants.sort();
    tenants.dedup();
    assert!(tenants.len() >= 3, "{tenants:?}");
    let (a, b) = (&tenants[0], &tenants[1]);
    let ids =
        |rows: &[Value]| -> Vec<Value> { rows.iter().map(|r| r["position"].clone()).collect() };
    let want = |keep: &dyn Fn(&Value) -> bool| -> Vec<Value> {
        ids(&all.iter().filter(|r| keep(r)).cloned().collect::<Vec<_>>())
    };

    let either = want(&|r| tenant(r) == *a || tenant(r) == *b);
    assert!(!either.is_empty());
    let f = format!("header.x-tenant={a} or header.x-tenant={b}");
    assert_eq!(ids(&peek(Some(&f))), either, "{f}");
    // `and` binds tighter than `or`...
    let f = format!("header.x-tenant={a} OR header.x-tenant={b} and header.x-express=true");
    let tighter = want(&|r| tenant(r) == *a || (tenant(r) == *b && express(r)));
    assert_eq!(ids(&peek(Some(&f))), tighter, "{f}");
    // ...unless parentheses say otherwise.
    let f = format!("(header.x-tenant={a} or header.x-tenant={b}) and header.x-express=true");
    let grouped = want(&|r| (tenant(r) == *a || tenant(r) == *b) && express(r));
    assert_eq!(ids(&peek(Some(&f))), grouped, "{f}");
    assert_ne!(tighter, grouped, "the data tells the two readings apart");
    // A quoted value is taken as written, `or` and parentheses included.
    let f = "reason=rejected and body~\"(or) or\" or reason=\"rejected\"";
    assert_eq!(ids(&peek(Some(f))).len(), all.len(), "{f}");

    // What the language is, said when it is not followed.
    for bad in [
        "reason=rejected or",
        "(reason=rejected",
        "reason=rejected)",
        "()",
    ] {
        let (code, err) =
            fails(mqscope(&home).args(["peek", "billing.dlq", "--url", url, "--filter", bad]));
        assert_eq!(code, 1, "{bad}: {err}");
        one_clear_line(&err);
        assert!(err.contains("joined by and, or"), "{bad}: {err}");
    }
}

/// A replay that did not finish holds up a new replay of the same queue on the same
/// broker (it could send some messages twice), until it is resumed or given up with
/// `--abandon`, which keeps its journal under another name.
#[test]
fn an_unfinished_replay_blocks_a_new_one_until_resumed_or_abandoned() {
    let home = tempfile::tempdir().unwrap();
    let state = home.path().join("state");
    std::fs::create_dir_all(state.join("replays")).unwrap();
    let begin = serde_json::json!({"t": "begin", "id": "earlier", "time": "2026-12-05T00:00:00Z",
        "target": "local://demo", "source": "billing.dlq", "options": {}});
    std::fs::write(state.join("replays/earlier.jsonl"), format!("{begin}\n")).unwrap();
    let run = |args: &[&str]| {
        mqscope(&home)
            .env("MQSCOPE_STATE_DIR", &state)
            .args(["--url", "local://demo"])
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&["replay", "billing.dlq", "--yes"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "refused");
    assert!(
        err.contains("did not finish") && err.contains("--resume") && err.contains("--abandon"),
        "{err}"
    );
    // Another queue is not held up.
    let out = run(&["replay", "shipping.dlq", "--yes", "--dry-run"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = run(&["replay", "--abandon"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("abandoned the replay of \"billing.dlq\""),
        "{said}"
    );
    assert!(state.join("replays/earlier.jsonl.abandoned").exists());

    let out = run(&["replay", "billing.dlq", "--yes", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
