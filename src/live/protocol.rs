//! Typed frames of the visitor and admin sockets, and the validation that turns a visitor's
//! frame into checked values (or a 4400 close).

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub const MAX_URL: usize = 2048;
pub const MAX_TITLE: usize = 1024;
pub const MAX_NAME: usize = 100;
pub const MAX_PROPS_BYTES: usize = 4096;
pub const MAX_PROPS_DEPTH: usize = 4;
pub const MAX_SHORT: usize = 64;

pub mod close {
    pub const MALFORMED: u16 = 4400;
    pub const FORBIDDEN: u16 = 4403;
    pub const NO_HELLO: u16 = 4408;
    pub const TOO_LARGE: u16 = 4413;
    pub const RATE_LIMITED: u16 = 4429;
    /// Standard "going away": the node shuts down; clients reconnect (elsewhere).
    pub const GOING_AWAY: u16 = 1001;
    /// Standard "try again later": the node cannot accept more right now.
    pub const TRY_AGAIN: u16 = 1013;
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum VisitorFrame {
    Hello(Hello),
    Page(Page),
    Event {
        name: String,
        #[serde(default)]
        props: Option<Value>,
    },
    Identify {
        #[serde(default)]
        user_id: Option<Value>,
        #[serde(default)]
        traits: Option<Value>,
    },
    Visibility {
        state: String,
    },
    Ack {
        message: String,
        status: String,
    },
}

#[derive(Debug, Deserialize)]
pub struct Hello {
    pub visitor: Option<String>,
    pub session: Option<String>,
    pub tab: Option<String>,
    pub url: String,
    pub title: Option<String>,
    pub referrer: Option<String>,
    pub lang: Option<String>,
    pub screen: Option<String>,
    pub tz: Option<String>,
    #[serde(default)]
    pub resume: bool,
    /// Schema.org data of the page (brand, model, price, …), read by the snippet.
    #[serde(default)]
    pub item: Option<Value>,
}

#[derive(Debug, Deserialize)]
pub struct Page {
    pub url: String,
    pub title: Option<String>,
    pub referrer: Option<String>,
    #[serde(default)]
    pub item: Option<Value>,
}

/// Why a frame was refused; becomes the close reason.
#[derive(Debug)]
pub struct Invalid(pub String);

pub fn parse_visitor_frame(text: &str) -> Result<VisitorFrame, Invalid> {
    serde_json::from_str(text).map_err(|e| Invalid(format!("malformed frame: {e}")))
}

/// A page URL: absolute http(s), at most `MAX_URL` characters.
pub fn check_url(url: &str) -> Result<String, Invalid> {
    if url.len() > MAX_URL {
        return Err(Invalid(format!("url longer than {MAX_URL} bytes")));
    }
    let parsed = url::Url::parse(url).map_err(|_| Invalid("url is not an absolute URL".into()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(Invalid("url must be http or https".into()));
    }
    Ok(url.to_string())
}

/// A page title: informative, so an over-long one is cut (at a character boundary) rather
/// than costing the visitor a reconnect.
pub fn check_title(title: Option<String>) -> Result<Option<String>, Invalid> {
    match title {
        Some(mut t) if t.len() > MAX_TITLE => {
            let mut end = MAX_TITLE;
            while !t.is_char_boundary(end) {
                end -= 1;
            }
            t.truncate(end);
            Ok(Some(t))
        }
        Some(t) if t.is_empty() => Ok(None),
        other => Ok(other),
    }
}

/// Referrers are informative only: an unusable one is dropped rather than refusing the frame.
pub fn clean_referrer(referrer: Option<String>) -> Option<String> {
    referrer.filter(|r| !r.is_empty() && r.len() <= MAX_URL && url::Url::parse(r).is_ok())
}

/// The referrer if it is another site than the page's (same-host referrers are navigations).
pub fn external_referrer(referrer: Option<&str>, page: &str) -> Option<String> {
    let r = referrer?;
    let host = |u: &str| {
        url::Url::parse(u)
            .ok()
            .and_then(|u| u.host_str().map(str::to_lowercase))
    };
    match (host(r), host(page)) {
        (Some(a), Some(b)) if a == b => None,
        _ => Some(r.to_string()),
    }
}

pub fn check_short(field: &str, value: Option<String>) -> Result<Option<String>, Invalid> {
    match value {
        Some(v) if v.len() > MAX_SHORT => {
            Err(Invalid(format!("{field} longer than {MAX_SHORT} bytes")))
        }
        other => Ok(other),
    }
}

pub fn check_name(name: &str) -> Result<String, Invalid> {
    let n = name.trim();
    if n.is_empty() || n.len() > MAX_NAME || n.chars().any(char::is_control) {
        return Err(Invalid(format!(
            "event name must be 1 to {MAX_NAME} bytes of text"
        )));
    }
    Ok(n.to_string())
}

fn depth(v: &Value) -> usize {
    match v {
        Value::Object(m) => 1 + m.values().map(depth).max().unwrap_or(0),
        Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// Event props and traits: a JSON object (or absent), at most 4 KiB and 4 levels deep.
pub fn check_object(
    field: &str,
    v: Option<Value>,
) -> Result<serde_json::Map<String, Value>, Invalid> {
    let map = match v {
        None | Some(Value::Null) => return Ok(Default::default()),
        Some(Value::Object(m)) => m,
        Some(_) => return Err(Invalid(format!("{field} must be an object"))),
    };
    let v = Value::Object(map);
    if depth(&v) > MAX_PROPS_DEPTH {
        return Err(Invalid(format!(
            "{field} nested deeper than {MAX_PROPS_DEPTH} levels"
        )));
    }
    if v.to_string().len() > MAX_PROPS_BYTES {
        return Err(Invalid(format!(
            "{field} larger than {MAX_PROPS_BYTES} bytes"
        )));
    }
    match v {
        Value::Object(m) => Ok(m),
        _ => Ok(Default::default()),
    }
}

/// A user id may arrive as a string or a number; anything else is refused.
pub fn check_user_id(v: Option<Value>) -> Result<Option<String>, Invalid> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.is_empty() && s.len() <= 256 => Ok(Some(s)),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(_) => Err(Invalid(
            "user_id must be a non-empty string of at most 256 bytes".into(),
        )),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Style {
    Toast,
    Banner,
    Modal,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Cta {
    pub label: String,
    pub url: String,
}

/// The content of a message, as admins send it and visitors receive it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MessageContent {
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub body: String,
    #[serde(default = "default_style")]
    pub style: Style,
    #[serde(default)]
    pub cta: Option<Cta>,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub data: Value,
}

fn default_style() -> Style {
    Style::Toast
}

impl MessageContent {
    /// Checks lengths and the call-to-action URL; returns a message for a 422 / error frame.
    pub fn validate(&mut self) -> Result<(), String> {
        if self.title.trim().is_empty() && self.body.trim().is_empty() {
            return Err("a message needs a title or a body".into());
        }
        if self.title.chars().count() > 200 {
            return Err("title has more than 200 characters".into());
        }
        if self.body.chars().count() > 2000 {
            return Err("body has more than 2000 characters".into());
        }
        if let Some(cta) = &self.cta {
            if cta.label.trim().is_empty() || cta.label.chars().count() > 60 {
                return Err("cta.label must have 1 to 60 characters".into());
            }
            match url::Url::parse(&cta.url) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && cta.url.len() <= MAX_URL => {}
                _ => return Err("cta.url must be an absolute http(s) URL".into()),
            }
        }
        if self.data.is_null() {
            self.data = Value::Object(Default::default());
        }
        if !self.data.is_object() {
            return Err("data must be an object".into());
        }
        if self.data.to_string().len() > 8192 {
            return Err("data is larger than 8 KiB".into());
        }
        Ok(())
    }
}

/// Whom a message is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Target {
    Visitor(String),
    Session(String),
    Tab(String),
    Segment(String),
    /// Always `true`.
    All(bool),
}

impl Target {
    pub fn validate(&self) -> Result<(), String> {
        match self {
            Target::All(false) => Err("`all` must be true".into()),
            Target::Visitor(s) | Target::Session(s) | Target::Tab(s) | Target::Segment(s)
                if s.is_empty() || s.len() > 64 =>
            {
                Err("the target id must have 1 to 64 characters".into())
            }
            _ => Ok(()),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AdminFrame {
    Auth {
        token: String,
    },
    Send {
        #[serde(default)]
        r#ref: Option<Value>,
        to: Target,
        message: MessageContent,
    },
    /// Asks for a fresh snapshot.
    Snapshot,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn hello_frames_parse() {
        let f = parse_visitor_frame(
            r#"{"type":"hello","visitor":"abcdefgh","session":"s1234567","tab":"t1234567","url":"https://a.test/","resume":true}"#,
        );
        assert!(matches!(
            f,
            Ok(VisitorFrame::Hello(Hello { resume: true, .. }))
        ));
    }

    #[test]
    fn unknown_types_and_bad_json_are_malformed() {
        assert!(parse_visitor_frame(r#"{"type":"nope"}"#).is_err());
        assert!(parse_visitor_frame("{").is_err());
        assert!(parse_visitor_frame(r#"{"type":"page"}"#).is_err());
    }

    #[test]
    fn urls_must_be_absolute_http() {
        assert!(check_url("https://shop.test/cars?x=1").is_ok());
        assert!(check_url("javascript:alert(1)").is_err());
        assert!(check_url("/relative").is_err());
        assert!(check_url(&format!("https://a.test/{}", "x".repeat(MAX_URL))).is_err());
    }

    #[test]
    fn long_titles_are_cut_at_a_character_boundary() {
        let t = check_title(Some("é".repeat(MAX_TITLE)))
            .expect("kept")
            .expect("some");
        assert!(t.len() <= MAX_TITLE && t.chars().all(|c| c == 'é'));
        assert_eq!(check_title(Some(String::new())).expect("ok"), None);
    }

    #[test]
    fn props_are_limited_in_depth_and_size() {
        assert!(check_object("props", Some(json!({"a": {"b": {"c": 1}}}))).is_ok());
        assert!(check_object("props", Some(json!({"a": {"b": {"c": {"d": {"e": 1}}}}}))).is_err());
        assert!(check_object("props", Some(json!({"a": "x".repeat(5000)}))).is_err());
        assert!(check_object("props", Some(json!([1, 2]))).is_err());
        assert!(check_object("props", None).is_ok_and(|m| m.is_empty()));
    }

    #[test]
    fn targets_parse_from_the_contract_shapes() {
        let t: Target = serde_json::from_value(json!({"visitor": "v1"})).expect("visitor target");
        assert_eq!(t, Target::Visitor("v1".into()));
        let t: Target = serde_json::from_value(json!({"all": true})).expect("all target");
        assert!(t.validate().is_ok());
        assert!(serde_json::from_value::<Target>(json!({"everyone": true})).is_err());
        let t: Target = serde_json::from_value(json!({"all": false})).expect("parses");
        assert!(t.validate().is_err());
    }

    #[test]
    fn messages_need_text_and_safe_links() {
        let mut m: MessageContent = serde_json::from_value(json!({"title": "Hi"})).expect("parses");
        assert!(m.validate().is_ok());
        assert_eq!(m.style, Style::Toast);
        let mut m: MessageContent = serde_json::from_value(
            json!({"title": "Hi", "cta": {"label": "Go", "url": "javascript:x"}}),
        )
        .expect("parses");
        assert!(m.validate().is_err());
        let mut m: MessageContent = serde_json::from_value(json!({"body": ""})).expect("parses");
        assert!(m.validate().is_err());
    }
}
