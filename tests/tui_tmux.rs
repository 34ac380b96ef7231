//! The real binary in a real terminal (tmux): open the demo, filter to a dead-letter queue,
//! open a message, read its death reason, go back, quit, and check the terminal is restored.

use std::process::Command;
use std::time::{Duration, Instant};

struct Session(String);

impl Drop for Session {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.0])
            .output();
    }
}

fn tmux(args: &[&str]) -> String {
    let out = Command::new("tmux").args(args).output().expect("run tmux");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn screen(s: &Session) -> String {
    tmux(&["capture-pane", "-p", "-t", &s.0])
}

fn wait_for(s: &Session, what: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = screen(s);
        if text.contains(what) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what:?}; screen:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn keys(s: &Session, keys: &[&str]) {
    let mut args = vec!["send-keys", "-t", s.0.as_str()];
    args.extend_from_slice(keys);
    tmux(&args);
    std::thread::sleep(Duration::from_millis(300));
}

#[test]
fn browse_filter_open_back_and_quit_in_a_real_terminal() {
    if Command::new("tmux").arg("-V").output().is_err() {
        assert!(
            std::env::var("CI").is_err(),
            "tmux is required for this test in CI (scripts/test installs it)"
        );
        eprintln!("skipping: tmux is not installed");
        return;
    }
    let home = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_mqscope");
    let name = format!("mqscope-e2e-{}", std::process::id());
    let script = format!(
        "XDG_CONFIG_HOME='{}' '{bin}' demo --fixed-clock; echo MQSCOPE_EXITED=$?; stty -a | tr ' ' '\\n' | grep -x -e icanon -e -icanon -e echo -e -echo | tr '\\n' ' '; echo; sleep 60",
        home.path().display()
    );
    tmux(&[
        "new-session",
        "-d",
        "-s",
        &name,
        "-x",
        "120",
        "-y",
        "40",
        "sh",
        "-c",
        &script,
    ]);
    let s = Session(name);

    let first = wait_for(&s, "billing.dlq");
    assert!(first.contains("Queues (14/14)"), "{first}");
    assert!(first.contains("connected"), "{first}");

    keys(&s, &["/", "billing\\.dlq"]);
    keys(&s, &["Enter"]);
    let filtered = wait_for(&s, "Queues (1/14)");
    assert!(!filtered.contains("shipping"), "{filtered}");

    keys(&s, &["Enter"]);
    let list = wait_for(&s, "rejected in billing");
    assert!(list.contains("› billing.dlq"), "{list}");

    keys(&s, &["Enter"]);
    let detail = wait_for(&s, "Dead-letter history");
    assert!(detail.contains("rejected in billing ×1"), "{detail}");
    assert!(detail.contains("Payload"), "{detail}");

    // t traces the message's correlation ID: the dead-letter hop and the summary appear,
    // f follows live, Esc leaves the trace for the message again.
    keys(&s, &["t"]);
    let trace = wait_for(&s, "last seen in");
    assert!(trace.contains("› Trace"), "{trace}");
    assert!(trace.contains("rejected in billing ×1"), "{trace}");
    keys(&s, &["f"]);
    wait_for(&s, "following live");
    keys(&s, &["Escape"]);
    wait_for(&s, "Dead-letter history");

    keys(&s, &["Escape"]);
    wait_for(&s, "DEAD LETTER");
    keys(&s, &["?"]);
    let help = wait_for(&s, "Keys in the messages view");
    assert!(
        help.contains("open message") && help.contains("next partition"),
        "{help}"
    );
    keys(&s, &["Escape"]);

    keys(&s, &["q"]);
    let after = wait_for(&s, "MQSCOPE_EXITED=");
    assert!(after.contains("MQSCOPE_EXITED=0"), "{after}");
    // Raw mode is off again: canonical input and echo are back.
    assert!(
        after.contains("icanon") && !after.contains("-icanon"),
        "{after}"
    );
    assert!(
        after.contains("echo") && !after.contains("-echo"),
        "{after}"
    );
    // The alternate screen is gone: the queue table is no longer on screen.
    assert!(!after.contains("DEAD LETTER"), "{after}");
}

/// A command line pasted in one go (5,000 characters, more than one 1 KiB read of the
/// terminal) still runs on Enter. crossterm's default reader returned after the first
/// read, leaving the rest of the paste, and the Enter behind it, in the terminal until
/// the next key: Enter seemed to do nothing.
#[test]
fn a_pasted_command_line_runs_on_enter() {
    if Command::new("tmux").arg("-V").output().is_err() {
        assert!(
            std::env::var("CI").is_err(),
            "tmux is required for this test in CI (scripts/test installs it)"
        );
        eprintln!("skipping: tmux is not installed");
        return;
    }
    let home = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_mqscope");
    let name = format!("mqscope-e2e-paste-{}", std::process::id());
    let script = format!(
        "XDG_CONFIG_HOME='{}' '{bin}' demo --fixed-clock; sleep 60",
        home.path().display()
    );
    tmux(&[
        "new-session",
        "-d",
        "-s",
        &name,
        "-x",
        "120",
        "-y",
        "40",
        "sh",
        "-c",
        &script,
    ]);
    let s = Session(name);
    wait_for(&s, "billing.dlq");
    keys(&s, &[":"]);
    // Leading spaces are trimmed: the command is `q billing`, at the end of the paste.
    let pasted = format!("{}q billing", " ".repeat(5_000));
    tmux(&["send-keys", "-t", &s.0, "-l", &pasted]);
    std::thread::sleep(Duration::from_millis(500));
    keys(&s, &["Enter"]);
    let opened = wait_for(&s, "› billing");
    assert!(!opened.contains("Esc cancel"), "{opened}");
}
