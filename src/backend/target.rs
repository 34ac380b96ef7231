//! Where a backend connects: the target URLs (`amqp://`, `kafka://`, `local://`) parsed
//! and shown without their passwords, the [`Secret`] a password is kept in, and a
//! profile's TLS files. Config resolves profiles and the environment down to these.

use serde::Deserialize;
use std::fmt;
use std::path::PathBuf;

/// A target URL that does not parse. The URL is shown with any password masked.
#[derive(Debug, thiserror::Error)]
#[error("bad URL \"{url}\": {reason}")]
pub struct BadUrl {
    pub url: String,
    pub reason: String,
}

/// A password or other secret: printing it shows only that it is there.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The secret itself, for handing to a client library and nowhere else.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// The local broker: a scenario, its seed, and whether its clock is fixed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalTarget {
    pub scenario: String,
    pub seed: u64,
    /// A manual clock starting at a fixed date: output depends only on the seed.
    pub fixed_clock: bool,
}

impl LocalTarget {
    pub fn demo(seed: u64) -> Self {
        Self {
            scenario: "demo".into(),
            seed,
            fixed_clock: false,
        }
    }
}

pub const DEFAULT_SEED: u64 = 42;

impl fmt::Display for LocalTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "local://{}", self.scenario)?;
        let mut sep = '?';
        if self.seed != DEFAULT_SEED {
            write!(f, "{sep}seed={}", self.seed)?;
            sep = '&';
        }
        if self.fixed_clock {
            write!(f, "{sep}clock=fixed")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmqpTarget {
    pub tls: bool,
    pub host: String,
    pub port: u16,
    /// Decoded virtual host name (`/` for the default).
    pub vhost: String,
    pub user: Option<String>,
    pub password: Option<Secret>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaTarget {
    /// `host:port` bootstrap servers.
    pub brokers: Vec<String>,
}

/// What to connect to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Local(LocalTarget),
    Amqp(AmqpTarget),
    Kafka(KafkaTarget),
}

/// A host as it goes in a URL: IPv6 addresses in brackets.
pub fn url_host(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

/// Percent-encode a vhost for a URL path segment (`/` becomes `%2F`).
pub fn encode_vhost(vhost: &str) -> String {
    url::form_urlencoded::byte_serialize(vhost.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

impl Target {
    pub fn parse(raw: &str) -> Result<Self, BadUrl> {
        let bad = |reason: &str| BadUrl {
            url: redact_raw(raw),
            reason: reason.to_string(),
        };
        let scheme = raw
            .split_once("://")
            .map(|(s, _)| s.to_ascii_lowercase())
            .ok_or_else(|| {
                bad("expected scheme://..., e.g. amqp://, amqps://, kafka:// or local://demo")
            })?;
        match scheme.as_str() {
            "local" => parse_local(raw).map_err(|r| bad(&r)),
            "amqp" | "amqps" => parse_amqp(raw).map_err(|r| bad(&r)),
            "kafka" => parse_kafka(raw).map_err(|r| bad(&r)),
            other => Err(bad(&format!(
                "unknown scheme \"{other}\" (use amqp://, amqps://, kafka:// or local://demo)"
            ))),
        }
    }

    /// The target as a URL without any password.
    pub fn redacted(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Local(l) => write!(f, "{l}"),
            Target::Amqp(a) => {
                let scheme = if a.tls { "amqps" } else { "amqp" };
                let user = a
                    .user
                    .as_deref()
                    .map(|u| format!("{}@", encode_vhost(u)))
                    .unwrap_or_default();
                let host = url_host(&a.host);
                write!(
                    f,
                    "{scheme}://{user}{host}:{}/{}",
                    a.port,
                    encode_vhost(&a.vhost)
                )
            }
            Target::Kafka(k) => write!(f, "kafka://{}", k.brokers.join(",")),
        }
    }
}

/// Remove a password from a URL we could not parse, for error messages: everything
/// between the scheme (or the start) and the last `@` is treated as user information and
/// only the user name before the first `:` is kept.
pub fn redact_raw(raw: &str) -> String {
    let (scheme, rest) = match raw.split_once("://") {
        Some((s, r)) => (format!("{s}://"), r),
        None => (String::new(), raw),
    };
    match rest.rfind('@') {
        Some(at) => {
            let userinfo = &rest[..at];
            let user = userinfo.split(':').next().unwrap_or("");
            let masked = if userinfo.contains(':') { ":***" } else { "" };
            format!("{scheme}{user}{masked}@{}", &rest[at + 1..])
        }
        None => raw.to_string(),
    }
}

fn parse_local(raw: &str) -> Result<Target, String> {
    let u = url::Url::parse(raw).map_err(|e| e.to_string())?;
    let scenario = u.host_str().unwrap_or("").to_string();
    if scenario.is_empty() {
        return Err("name a scenario: local://demo or local://empty".into());
    }
    if !matches!(u.path(), "" | "/") {
        return Err("local URLs take no path".into());
    }
    let mut t = LocalTarget {
        scenario,
        seed: DEFAULT_SEED,
        fixed_clock: false,
    };
    for (k, v) in u.query_pairs() {
        match k.as_ref() {
            "seed" => {
                t.seed = v
                    .parse()
                    .map_err(|_| format!("seed must be a whole number, not \"{v}\""))?
            }
            "clock" => {
                t.fixed_clock = match v.as_ref() {
                    "fixed" => true,
                    "system" => false,
                    _ => return Err(format!("clock must be fixed or system, not \"{v}\"")),
                }
            }
            other => return Err(format!("unknown option \"{other}\" (seed, clock)")),
        }
    }
    Ok(Target::Local(t))
}

fn decode(s: &str) -> Result<String, String> {
    percent_decode(s).ok_or_else(|| format!("\"{s}\" is not valid percent-encoded UTF-8"))
}

/// Decode the user name or the password of a URL. The error does not repeat it: the text
/// may be a password, or a password typed where the user name goes.
fn decode_userinfo(s: &str, what: &str) -> Result<String, String> {
    percent_decode(s).ok_or_else(|| {
        format!("the {what} is not valid percent-encoded UTF-8 (write a % in it as %25)")
    })
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn parse_amqp(raw: &str) -> Result<Target, String> {
    let u = url::Url::parse(raw).map_err(|e| e.to_string())?;
    // An '@' the parser did not take as the end of the user information: a '/', '?' or
    // '#' in the password cut the URL short there, and the rest of the password would
    // become a port, a vhost or an option, and be printed as one.
    let after_scheme = raw.split_once("://").map_or(raw, |(_, r)| r);
    if after_scheme.contains('@') && u.username().is_empty() && u.password().is_none() {
        return Err(
            "the URL has an '@' outside its user part: percent-encode '/', '?', '#' and '@' in a user name or password (%2F, %3F, %23, %40)"
                .into(),
        );
    }
    let tls = u.scheme() == "amqps";
    let host = match u.host() {
        Some(url::Host::Ipv6(a)) => a.to_string(),
        Some(h) => h.to_string(),
        None => return Err("no host".into()),
    };
    if host.is_empty() {
        return Err("no host".into());
    }
    let port = u.port().unwrap_or(if tls { 5671 } else { 5672 });
    let path = u.path();
    let vhost = match path {
        "" | "/" => "/".to_string(),
        p => {
            let seg = &p[1..];
            if seg.contains('/') {
                return Err(
                    "a vhost containing '/' must be written %2F, e.g. amqp://host/%2F for \"/\""
                        .into(),
                );
            }
            decode(seg)?
        }
    };
    let user = match u.username() {
        "" => None,
        name => Some(decode_userinfo(name, "user name")?),
    };
    // `guest:@host` names a user and gives no password.
    let password = u
        .password()
        .filter(|p| !p.is_empty())
        .map(|p| decode_userinfo(p, "password"))
        .transpose()?
        .map(Secret::new);
    if let Some((k, _)) = u.query_pairs().next() {
        return Err(format!(
            "unsupported option \"{k}\"; put connection settings in a profile"
        ));
    }
    Ok(Target::Amqp(AmqpTarget {
        tls,
        host,
        port,
        vhost,
        user,
        password,
    }))
}

fn parse_kafka(raw: &str) -> Result<Target, String> {
    let rest = &raw["kafka://".len()..];
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains('/') || rest.contains('?') || rest.contains('@') {
        return Err(
            "expected kafka://host:port[,host:port...]; put credentials and options in a profile"
                .into(),
        );
    }
    let mut brokers = Vec::new();
    for part in rest.split(',') {
        let part = part.trim();
        if part.is_empty() {
            return Err("empty broker address".into());
        }
        let (host, port) = if let Some(v6) = part.strip_prefix('[') {
            let (h, after) = v6.split_once(']').ok_or("unclosed [ in IPv6 address")?;
            (h, after.strip_prefix(':'))
        } else {
            match part.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (part, None),
            }
        };
        if host.is_empty() {
            return Err(format!("no host in \"{part}\""));
        }
        let port: u16 = match port {
            Some(p) => p.parse().map_err(|_| format!("bad port in \"{part}\""))?,
            None => 9092,
        };
        let host = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.to_string()
        };
        brokers.push(format!("{host}:{port}"));
    }
    Ok(Target::Kafka(KafkaTarget { brokers }))
}

/// TLS settings of a profile.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    /// PEM file of CA certificates to trust instead of the system roots.
    pub ca_file: Option<PathBuf>,
    /// Client certificate and key (PEM) for mutual TLS.
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    /// Skip certificate verification. For test brokers only.
    #[serde(default)]
    pub insecure: bool,
}
/// A management API address: http(s), and no credentials in it. Those would be printed
/// with every message that names the API, and the profile's user and password are the
/// ones sent anyway. The reason never repeats the URL.
pub fn check_management_url(raw: &str) -> Result<(), String> {
    let u = url::Url::parse(raw).map_err(|e| format!("not a URL ({e})"))?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err("expected http:// or https://".into());
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(
            "must not hold a user or password: the profile's user and password are sent".into(),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn amqp(raw: &str) -> AmqpTarget {
        match Target::parse(raw).unwrap() {
            Target::Amqp(a) => a,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn amqp_vhosts_and_credentials() {
        let a = amqp("amqp://guest:gu%40st@127.0.0.1:5672/%2f");
        assert_eq!(
            (a.host.as_str(), a.port, a.vhost.as_str()),
            ("127.0.0.1", 5672, "/")
        );
        assert_eq!(a.user.as_deref(), Some("guest"));
        assert_eq!(a.password.as_ref().map(Secret::expose), Some("gu@st"));
        assert_eq!(amqp("amqp://h").vhost, "/");
        assert_eq!(amqp("amqp://h/").vhost, "/");
        assert_eq!(amqp("amqp://h/my%20vhost%2Fprod").vhost, "my vhost/prod");
        assert_eq!(amqp("amqp://h/caf%C3%A9").vhost, "café");
        let s = amqps_default_port();
        assert_eq!(s.port, 5671);
        assert_eq!(amqp("amqp://[::1]:5673/x").host, "::1");
        assert!(Target::parse("amqp://h/a/b").is_err());
        assert!(Target::parse("amqp:///vhost").is_err());
    }

    fn amqps_default_port() -> AmqpTarget {
        amqp("amqps://rabbit.example.com/")
    }

    #[test]
    fn password_never_shown() {
        let t = Target::parse("amqp://ops:s3cr3t@rabbit:5672/prod%2Feu").unwrap();
        assert_eq!(t.to_string(), "amqp://ops@rabbit:5672/prod%2Feu");
        assert!(!format!("{t:?}").contains("s3cr3t"));
        let err = Target::parse("amqp://ops:s3cr3t@rabbit:notaport/")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("s3cr3t"), "{err}");
        assert!(err.contains("ops:***@"), "{err}");
    }

    #[test]
    fn url_errors_never_repeat_a_password() {
        for raw in [
            "amqp://guest:Zq%Sec9@rabbit/",
            "amqp://guest:4242?Sec9@rabbit/",
            "amqp://guest:12/Sec9@rabbit",
            "amqp://guest:12#Sec9@rabbit/",
            "amqp://guest:12/Zq%Sec9@rabbit",
        ] {
            let e = Target::parse(raw).unwrap_err().to_string();
            assert!(!e.contains("Sec9"), "{raw}: {e}");
        }
        let e = Target::parse("amqp://Us%zz:Sec9@rabbit/")
            .unwrap_err()
            .to_string();
        assert!(e.contains("user name") && !e.contains("Sec9"), "{e}");
        // `user:@host` names a user and gives no password: none, not an empty one.
        assert!(amqp("amqp://guest:@rabbit/").password.is_none());
        assert_eq!(amqp("amqp://guest:@rabbit/").user.as_deref(), Some("guest"));
        // An '@' escaped as %40 in a vhost is still fine.
        assert_eq!(amqp("amqp://rabbit/a%40b").vhost, "a@b");
        for bad in ["http://u:Sec9@h:15672", "http://u:Sec9@[::1", "ftp://h"] {
            let e = check_management_url(bad).unwrap_err();
            assert!(!e.contains("Sec9"), "{e}");
        }
        assert!(check_management_url("https://rabbit:15671/").is_ok());
    }

    #[test]
    fn kafka_broker_lists() {
        let Target::Kafka(k) = Target::parse("kafka://a:9092,b:9093, c").unwrap() else {
            panic!()
        };
        assert_eq!(k.brokers, vec!["a:9092", "b:9093", "c:9092"]);
        let Target::Kafka(k) = Target::parse("kafka://[::1]:19092").unwrap() else {
            panic!()
        };
        assert_eq!(k.brokers, vec!["[::1]:19092"]);
        assert!(Target::parse("kafka://").is_err());
        assert!(Target::parse("kafka://a:x").is_err());
        assert!(Target::parse("kafka://a,,b").is_err());
    }

    #[test]
    fn local_options() {
        let Target::Local(l) = Target::parse("local://demo?seed=7&clock=fixed").unwrap() else {
            panic!()
        };
        assert_eq!(
            (l.scenario.as_str(), l.seed, l.fixed_clock),
            ("demo", 7, true)
        );
        assert_eq!(
            Target::Local(l).to_string(),
            "local://demo?seed=7&clock=fixed"
        );
        assert!(Target::parse("local://demo?seed=x").is_err());
        assert!(Target::parse("local://demo?color=red").is_err());
        assert!(Target::parse("local://").is_err());
        assert!(Target::parse("redis://x").is_err());
        assert!(Target::parse("just words").is_err());
    }
}
