//! Where a password comes from when the URL has none: `MQSCOPE_PASSWORD`, the profile's
//! environment variable, its command (bounded in time, and killed with everything it
//! started), or the person at the terminal. An empty answer counts as none: handed on,
//! it became lapin's default password, "guest".

use super::{ConfigError, Profile, Secret};
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

/// How long a `password_command` may run when the profile does not say: `pass` or a
/// keyring answers in well under a second; one waiting for input that never comes (a
/// gpg pinentry without a terminal) never does.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(5);

/// The most of a command's output that is read: a password, not a file.
const MAX_OUTPUT: u64 = 64 * 1024;

/// How often a running command is looked at: a password command is run once per
/// connection, and 10 ms is below what anyone notices.
const POLL: Duration = Duration::from_millis(10);

/// What the password sources gave.
#[derive(Debug, Default)]
pub struct Lookup {
    pub secret: Option<Secret>,
    /// The sources that were there but empty, for the message that asks for a password.
    pub empty: Vec<String>,
}

/// The password from `MQSCOPE_PASSWORD`, the profile's variable, or its command, in that
/// order; the first that is not empty wins.
pub fn password_for(profile: &Profile) -> Result<Option<Secret>, ConfigError> {
    lookup(profile).map(|l| l.secret)
}

/// Like [`password_for`], and also says which sources were empty.
pub fn lookup(profile: &Profile) -> Result<Lookup, ConfigError> {
    let mut found = Lookup::default();
    // Set but empty (`MQSCOPE_PASSWORD= mqscope ...`, a template that filled in nothing)
    // is not a password anybody chose.
    match std::env::var("MQSCOPE_PASSWORD") {
        Ok(p) if !p.is_empty() => return Ok(with(found, p)),
        Ok(_) => found.empty.push("MQSCOPE_PASSWORD is empty".into()),
        Err(_) => {}
    }
    if let Some(var) = &profile.password_env {
        match std::env::var(var) {
            Ok(p) if !p.is_empty() => return Ok(with(found, p)),
            Ok(_) => found.empty.push(format!("${var} (password_env) is empty")),
            Err(_) => {
                return Err(ConfigError::Password(format!(
                    "the profile reads its password from ${var}, which is not set"
                )));
            }
        }
    }
    if let Some(cmd) = &profile.password_command {
        let timeout = command_timeout(profile)?;
        let p = run_command(cmd, timeout)?;
        if !p.is_empty() {
            return Ok(with(found, p));
        }
        found.empty.push("password_command printed nothing".into());
    }
    Ok(found)
}

fn with(mut found: Lookup, password: String) -> Lookup {
    found.secret = Some(Secret::new(password));
    found
}

/// The profile's `password_command_timeout`, or the default.
pub fn command_timeout(profile: &Profile) -> Result<Duration, ConfigError> {
    match &profile.password_command_timeout {
        Some(text) => parse_timeout(text).map_err(|reason| {
            ConfigError::Password(format!("password_command_timeout \"{text}\": {reason}"))
        }),
        None => Ok(DEFAULT_COMMAND_TIMEOUT),
    }
}

/// A timeout such as `5s`, `500ms`, `2m`: the units of `--idle`, and milliseconds.
pub fn parse_timeout(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let n: u64 = n
        .parse()
        .map_err(|_| "expected a duration like 5s or 500ms".to_string())?;
    let d = match unit.trim() {
        "ms" => Duration::from_millis(n),
        "s" | "" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        _ => return Err("the unit must be ms, s or m".into()),
    };
    if d.is_zero() {
        return Err("must be more than zero".into());
    }
    Ok(d)
}

/// A duration as people write it in a config: `5 s`, `1500 ms`.
pub fn shown_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}

/// The signal that arrived while a command ran (0: none).
static CAUGHT: AtomicI32 = AtomicI32::new(0);
/// Signal handlers are the process's: one command at a time installs them.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
/// What stops mqscope stops the command too.
const WATCHED: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

extern "C" fn note_signal(sig: libc::c_int) {
    CAUGHT.store(sig, Ordering::SeqCst);
}

/// While a command runs in its own process group, Ctrl-C reaches only mqscope: these
/// handlers note the signal, so that the group is killed before mqscope goes. The
/// previous handlers come back on drop; signals that were ignored stay ignored.
struct SignalWatch {
    old: Vec<(libc::c_int, libc::sigaction)>,
}

impl SignalWatch {
    fn install() -> Self {
        CAUGHT.store(0, Ordering::SeqCst);
        let mut old = Vec::new();
        for sig in WATCHED {
            // SAFETY: sigaction reads and writes only the two structs given, which live
            // on this stack; the handler only stores to an atomic, which is
            // async-signal-safe.
            unsafe {
                let mut prev: libc::sigaction = std::mem::zeroed();
                if libc::sigaction(sig, std::ptr::null(), &mut prev) != 0
                    || prev.sa_sigaction == libc::SIG_IGN
                {
                    continue;
                }
                let mut sa: libc::sigaction = std::mem::zeroed();
                sa.sa_sigaction = note_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
                libc::sigemptyset(&mut sa.sa_mask);
                if libc::sigaction(sig, &sa, std::ptr::null_mut()) == 0 {
                    old.push((sig, prev));
                }
            }
        }
        Self { old }
    }

    fn caught(&self) -> Option<libc::c_int> {
        match CAUGHT.load(Ordering::SeqCst) {
            0 => None,
            sig => Some(sig),
        }
    }
}

impl Drop for SignalWatch {
    fn drop(&mut self) {
        for (sig, prev) in &self.old {
            // SAFETY: puts back the action read in `install`.
            unsafe {
                libc::sigaction(*sig, prev, std::ptr::null_mut());
            }
        }
    }
}

/// The command's process group: killed whole on every way out, so that nothing it
/// started (a `sleep 60 &`, an agent that keeps our pipe open) outlives it.
struct Group(libc::pid_t);

impl Group {
    fn kill(&self) {
        // SAFETY: killpg only sends a signal. The group's leader is our child and is not
        // reaped before this runs (see `exited`), so the id cannot have been reused.
        unsafe {
            libc::killpg(self.0, libc::SIGKILL);
        }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Whether the child has exited, without reaping it: a reaped leader frees its process
/// group id for reuse, and the group still has to be killed after it.
fn exited(pid: libc::pid_t) -> std::io::Result<bool> {
    // SAFETY: waitid writes only the siginfo given, which lives on this stack.
    unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        let r = libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        );
        if r != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(info.si_pid() != 0)
    }
}

fn failed(reason: String) -> ConfigError {
    ConfigError::Password(reason)
}

/// Run `cmd` with `sh -c` in a process group of its own and return what it printed,
/// without the line end. The password is read once the command exits; whatever it left
/// running is killed then. A command still running after `timeout` is killed with its
/// whole group, and so is one running when mqscope is interrupted (which then ends as
/// the signal asks).
pub fn run_command(cmd: &str, timeout: Duration) -> Result<String, ConfigError> {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let watch = SignalWatch::install();
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .process_group(0)
        .spawn()
        .map_err(|e| failed(format!("cannot run password_command: {e}")))?;
    let pid = child.id() as libc::pid_t;
    let group = Group(pid);
    // Read while it runs: a command that writes more than a pipe holds must not block.
    let (tx, rx) = std::sync::mpsc::channel();
    if let Some(mut out) = child.stdout.take() {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let read = (&mut out).take(MAX_OUTPUT).read_to_end(&mut buf);
            let _ = tx.send(read.map(|_| buf));
        });
    }
    let deadline = Instant::now() + timeout;
    loop {
        match exited(pid) {
            Ok(true) => break,
            Ok(false) => {}
            Err(e) => {
                group.kill();
                let _ = child.wait();
                return Err(failed(format!("cannot wait for password_command: {e}")));
            }
        }
        if let Some(sig) = watch.caught() {
            group.kill();
            let _ = child.wait();
            drop(watch);
            // Die of the signal as we would have without the command, now that nothing
            // of it is left; if a handler of ours takes it instead, report it.
            // SAFETY: raise sends a signal to this thread only.
            unsafe {
                libc::raise(sig);
            }
            return Err(failed("interrupted while password_command ran".into()));
        }
        if Instant::now() >= deadline {
            group.kill();
            let _ = child.wait();
            return Err(failed(format!(
                "password_command did not finish within {} (killed); raise password_command_timeout in the profile if it needs longer",
                shown_duration(timeout)
            )));
        }
        std::thread::sleep(POLL);
    }
    // It exited: what it left behind goes now, which also closes our pipe if they held it.
    group.kill();
    let status = child
        .wait()
        .map_err(|e| failed(format!("cannot wait for password_command: {e}")))?;
    drop(watch);
    if !status.success() {
        return Err(failed(format!("password_command failed ({status})")));
    }
    let grace = deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(500));
    let bytes = match rx.recv_timeout(grace) {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(e)) => {
            return Err(failed(format!(
                "cannot read password_command's output: {e}"
            )));
        }
        Err(_) => {
            return Err(failed(
                "password_command exited, but something it started (outside its process group) still holds its output open".into(),
            ));
        }
    };
    let text = String::from_utf8(bytes)
        .map_err(|_| failed("password_command printed something that is not UTF-8".into()))?;
    Ok(text.trim_end_matches(['\n', '\r']).to_string())
}

/// Whether a password can be asked for: someone is at a terminal to type it and to see
/// the question.
pub fn can_ask() -> bool {
    use std::io::IsTerminal;
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// Ask at the terminal, without echo. `None` when the person gives up (Esc, Ctrl-C,
/// Ctrl-D) or enters nothing.
pub fn ask_on_terminal(prompt: &str) -> std::io::Result<Option<Secret>> {
    use crossterm::event::{Event, KeyCode, KeyEventKind, KeyModifiers, read};
    /// Raw mode is left on every way out, or the shell is left without echo.
    struct Raw;
    impl Drop for Raw {
        fn drop(&mut self) {
            let _ = crossterm::terminal::disable_raw_mode();
        }
    }
    let mut err = std::io::stderr();
    write!(err, "{prompt}")?;
    err.flush()?;
    // Raw mode, so Ctrl-C comes as a key (a signal would leave the terminal raw).
    crossterm::terminal::enable_raw_mode()?;
    let raw = Raw;
    let mut text = String::new();
    let entered = loop {
        match read()? {
            Event::Key(k) if k.kind != KeyEventKind::Release => match k.code {
                KeyCode::Enter => break true,
                KeyCode::Char('c' | 'd') if k.modifiers.contains(KeyModifiers::CONTROL) => {
                    break false;
                }
                KeyCode::Esc => break false,
                KeyCode::Backspace => {
                    text.pop();
                }
                KeyCode::Char(c) => text.push(c),
                _ => {}
            },
            Event::Paste(p) => text.push_str(&p),
            _ => {}
        }
    };
    drop(raw);
    writeln!(err)?;
    Ok((entered && !text.is_empty()).then(|| Secret::new(text)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_read_like_the_other_durations() {
        assert_eq!(parse_timeout("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_timeout("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_timeout("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_timeout("7"), Ok(Duration::from_secs(7)));
        assert!(parse_timeout("0s").is_err());
        assert!(parse_timeout("5 parsecs").is_err());
        assert!(parse_timeout("soon").is_err());
        assert_eq!(shown_duration(Duration::from_secs(5)), "5 s");
        assert_eq!(shown_duration(Duration::from_millis(1500)), "1500 ms");
    }

    #[test]
    fn a_command_that_prints_nothing_gives_no_password() {
        let profile = Profile {
            password_command: Some("true".into()),
            ..Profile::default()
        };
        // MQSCOPE_PASSWORD is read first; these tests run without it.
        if std::env::var_os("MQSCOPE_PASSWORD").is_some() {
            return;
        }
        let found = lookup(&profile).unwrap();
        assert!(found.secret.is_none());
        assert_eq!(found.empty, vec!["password_command printed nothing"]);
    }

    #[test]
    fn a_hanging_command_is_killed_at_its_timeout() {
        let started = Instant::now();
        let e = run_command("sleep 30", Duration::from_millis(300))
            .unwrap_err()
            .to_string();
        assert!(started.elapsed() < Duration::from_secs(5), "{e}");
        assert!(
            e.contains("password_command did not finish within 300 ms (killed)"),
            "{e}"
        );
    }

    #[test]
    fn the_password_is_read_when_the_command_exits_and_its_leftovers_die() {
        let started = Instant::now();
        let p = run_command("sleep 30 & echo 'pw with spaces'", Duration::from_secs(10)).unwrap();
        assert_eq!(p, "pw with spaces");
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
