//! Domain types parsed at the edge: ids, roles, emails, site domains and origins, times.

use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use rand::distributions::Alphanumeric;
use rand::Rng;
use serde::{Deserialize, Serialize};

/// A fresh random id of `len` alphanumeric characters (~5.95 bits each).
pub fn random_id(len: usize) -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// Ids of accounts, sites, keys and messages: 20 random characters (119 bits).
pub fn new_id() -> String {
    random_id(20)
}

/// A visitor, session or tab id chosen by the browser: `[A-Za-z0-9_-]{8,64}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct ClientId(String);

impl ClientId {
    pub fn parse(s: &str) -> Option<Self> {
        let ok = (8..=64).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        ok.then(|| Self(s.to_string()))
    }
    /// Parses, or makes a new id when the browser's is missing or invalid.
    pub fn parse_or_new(s: Option<&str>) -> Self {
        s.and_then(Self::parse)
            .unwrap_or_else(|| Self(random_id(22)))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Viewer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Viewer => "viewer",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "admin" => Some(Role::Admin),
            "viewer" => Some(Role::Viewer),
            _ => None,
        }
    }
}

/// A normalised e-mail address (trimmed, lowercase), checked for a plausible shape.
pub fn parse_email(s: &str) -> Option<String> {
    let e = s.trim().to_lowercase();
    let (local, domain) = e.split_once('@')?;
    let ok = !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && e.len() <= 254
        && !e.chars().any(|c| c.is_whitespace() || c.is_control());
    ok.then_some(e)
}

/// One allowed domain of a site: `example.com` (that host) or `*.example.com` (its subdomains).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainPattern {
    host: String,
    wildcard: bool,
}

impl DomainPattern {
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim().to_ascii_lowercase();
        let (wildcard, host) = match s.strip_prefix("*.") {
            Some(rest) => (true, rest.to_string()),
            None => (false, s.clone()),
        };
        let valid_label = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if host.is_empty() || host.len() > 253 || !host.split('.').all(valid_label) {
            return Err(format!(
                "`{s}` is not a domain: use a host name like example.com or *.example.com (no scheme, port or path)"
            ));
        }
        Ok(Self { host, wildcard })
    }

    pub fn matches_host(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        if self.wildcard {
            host.len() > self.host.len() + 1
                && host.ends_with(&self.host)
                && host.as_bytes()[host.len() - self.host.len() - 1] == b'.'
        } else {
            host == self.host
        }
    }
}

impl fmt::Display for DomainPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.wildcard {
            write!(f, "*.{}", self.host)
        } else {
            f.write_str(&self.host)
        }
    }
}

/// Parses and de-duplicates a site's domain list.
pub fn parse_domains(list: &[String]) -> Result<Vec<String>, String> {
    if list.len() > 100 {
        return Err("a site has at most 100 domains".into());
    }
    let mut out: Vec<String> = Vec::new();
    for d in list {
        let p = DomainPattern::parse(d)?.to_string();
        if !out.contains(&p) {
            out.push(p);
        }
    }
    Ok(out)
}

/// Does an `Origin` header value pass a site's domain list? (Scheme and port are ignored; a site
/// with no domains accepts any origin, a site with domains refuses a missing one.)
pub fn origin_allowed(domains: &[DomainPattern], origin: Option<&str>) -> bool {
    if domains.is_empty() {
        return true;
    }
    let Some(origin) = origin else { return false };
    let Ok(url) = url::Url::parse(origin) else {
        return false;
    };
    let Some(host) = url.host_str() else {
        return false;
    };
    domains.iter().any(|d| d.matches_host(host))
}

/// RFC 3339 UTC with milliseconds, from epoch milliseconds.
pub fn rfc3339(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub fn parse_rfc3339(s: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|d| d.timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ids_follow_the_contract_pattern() {
        assert!(ClientId::parse("abcdEFGH").is_some());
        assert!(ClientId::parse("a-b_c-d_e").is_some());
        assert!(ClientId::parse("short").is_none());
        assert!(ClientId::parse(&"x".repeat(65)).is_none());
        assert!(ClientId::parse("has space1").is_none());
        assert!(ClientId::parse("ünicode12").is_none());
        let fresh = ClientId::parse_or_new(Some("bad"));
        assert!(ClientId::parse(fresh.as_str()).is_some());
    }

    #[test]
    fn exact_domains_match_only_that_host() {
        let d = DomainPattern::parse("Example.com").expect("valid");
        assert!(d.matches_host("example.com"));
        assert!(d.matches_host("EXAMPLE.COM"));
        assert!(!d.matches_host("www.example.com"));
        assert!(!d.matches_host("badexample.com"));
    }

    #[test]
    fn wildcard_domains_match_subdomains_but_not_the_apex() {
        let d = DomainPattern::parse("*.example.com").expect("valid");
        assert!(d.matches_host("www.example.com"));
        assert!(d.matches_host("a.b.example.com"));
        assert!(!d.matches_host("example.com"));
        assert!(!d.matches_host("evilexample.com"));
    }

    #[test]
    fn domains_with_scheme_port_or_path_are_refused() {
        for bad in [
            "https://example.com",
            "example.com:80",
            "example.com/x",
            "",
            "*.",
            "a..b",
            "-a.com",
        ] {
            assert!(
                DomainPattern::parse(bad).is_err(),
                "{bad} should be refused"
            );
        }
    }

    #[test]
    fn origins_are_checked_by_host_ignoring_scheme_and_port() {
        let ds = vec![DomainPattern::parse("shop.test").expect("valid")];
        assert!(origin_allowed(&ds, Some("https://shop.test")));
        assert!(origin_allowed(&ds, Some("http://shop.test:8080")));
        assert!(!origin_allowed(&ds, Some("https://other.test")));
        assert!(!origin_allowed(&ds, None));
        assert!(!origin_allowed(&ds, Some("null")));
        assert!(origin_allowed(&[], None));
    }

    #[test]
    fn emails_are_normalised() {
        assert_eq!(parse_email(" A@B.io ").as_deref(), Some("a@b.io"));
        assert!(parse_email("nope").is_none());
        assert!(parse_email("a@b").is_none());
        assert!(parse_email("a b@c.io").is_none());
    }

    #[test]
    fn times_round_trip_through_rfc3339() {
        let ms = 1_764_000_000_123;
        assert_eq!(parse_rfc3339(&rfc3339(ms)), Some(ms));
        assert!(parse_rfc3339("yesterday").is_none());
    }
}
