//! Segment and campaign definitions: the JSON shapes admins send, their validation (clear
//! errors, regexes compiled with size limits — the `regex` crate is linear-time, so no pattern is
//! catastrophic), and the compiled forms the engine evaluates.

use regex::{Regex, RegexBuilder};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::live::protocol::MessageContent;

/// How a URL pattern matches. A value starting with `/` is matched against the URL's path and
/// query; anything else against the whole URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MatchKind {
    Exact,
    Prefix,
    /// `*` matches within one path segment, `**` across segments, `?` one character.
    Glob,
    Regex,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UrlPattern {
    #[serde(rename = "match")]
    pub kind: MatchKind,
    pub value: String,
}

/// One condition of a segment.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Condition {
    /// The page the visitor is on now (any of their tabs).
    CurrentUrl {
        #[serde(rename = "match")]
        kind: MatchKind,
        value: String,
    },
    /// Page views of this session matching the pattern, at least `min` (default 1).
    Pages {
        #[serde(rename = "match")]
        kind: MatchKind,
        value: String,
        #[serde(default = "one")]
        min: u32,
    },
    /// Items viewed this session (schema.org data of the pages) with all the given attributes,
    /// at least `min` times (default 1). Text attributes compare case-insensitively.
    Item {
        #[serde(default)]
        brand: Option<String>,
        #[serde(default)]
        model: Option<String>,
        #[serde(default)]
        category: Option<String>,
        #[serde(default)]
        name: Option<String>,
        #[serde(default)]
        min_price: Option<f64>,
        #[serde(default)]
        max_price: Option<f64>,
        #[serde(default = "one")]
        min: u32,
    },
    /// Time since the session started.
    TimeOnSite { min_seconds: u64 },
    /// Time on the current page.
    TimeOnPage { min_seconds: u64 },
    /// Number of sessions including this one (1 = new visitor).
    Sessions {
        #[serde(default)]
        min: Option<u32>,
        #[serde(default)]
        max: Option<u32>,
    },
    /// The referrer of the session's first page.
    Referrer {
        #[serde(rename = "match")]
        kind: MatchKind,
        value: String,
    },
    /// A UTM parameter of the session's landing page, e.g. `{"param":"source","value":"newsletter"}`.
    Utm { param: String, value: String },
    /// Device class: desktop, mobile, bot, appliance, other.
    Device { value: String },
    /// An identified user's trait equals the value (any JSON), or exists when `value` is absent.
    Trait {
        key: String,
        #[serde(default)]
        value: Option<Value>,
    },
    /// Custom events of this session with this name (and these props), at least `min`.
    Event {
        name: String,
        #[serde(default)]
        #[schema(value_type = Object)]
        props: serde_json::Map<String, Value>,
        #[serde(default = "one")]
        min: u32,
    },
}

fn one() -> u32 {
    1
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Combine {
    #[default]
    All,
    Any,
}

/// A segment as stored and as the API shows it (without id and times).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SegmentDef {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(rename = "match", default)]
    pub combine: Combine,
    pub conditions: Vec<Condition>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Trigger {
    /// The visitor enters the segment.
    SegmentEntered { segment: String },
    /// A page view matching the pattern.
    Pageview {
        #[serde(rename = "match")]
        kind: MatchKind,
        value: String,
    },
    /// A custom event with this name.
    Event { name: String },
    /// The visitor has been on one page this long.
    TimeOnPage { seconds: u64 },
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Goal {
    Pageview {
        #[serde(rename = "match")]
        kind: MatchKind,
        value: String,
    },
    Event {
        name: String,
    },
}

/// Frequency caps. `per_visitor` and `per_session` count this campaign's messages;
/// `max_messages` per `period_seconds` counts every message the visitor received (manual ones
/// too), so that nobody is pestered.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Frequency {
    #[serde(default)]
    pub per_visitor: Option<u32>,
    #[serde(default)]
    pub per_session: Option<u32>,
    #[serde(default)]
    pub max_messages: Option<u32>,
    #[serde(default)]
    pub period_seconds: Option<u64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    /// RFC 3339; the campaign is inactive before.
    #[serde(default)]
    pub starts_at: Option<String>,
    /// RFC 3339; the campaign is inactive from then on.
    #[serde(default)]
    pub ends_at: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CampaignDef {
    pub name: String,
    #[serde(default)]
    pub enabled: bool,
    /// Higher wins when several campaigns trigger on the same event.
    #[serde(default)]
    pub priority: i32,
    pub trigger: Trigger,
    /// Only visitors in this segment (optional).
    #[serde(default)]
    pub segment: Option<String>,
    /// The message; `{{brand}}`, `{{model}}`, `{{name}}`, `{{category}}`, `{{price}}`,
    /// `{{currency}}`, `{{sku}}`, `{{url}}`, `{{title}}`, `{{user_id}}` and `{{trait.KEY}}` are
    /// filled from the visitor's context.
    pub message: MessageContent,
    #[serde(default)]
    pub frequency: Frequency,
    #[serde(default)]
    pub schedule: Schedule,
    /// Test mode: only this visitor can trigger the campaign.
    #[serde(default)]
    pub test_visitor: Option<String>,
    #[serde(default)]
    pub goal: Option<Goal>,
    /// How long after the trigger a goal counts as a conversion (default 1 day).
    #[serde(default)]
    pub goal_window_seconds: Option<u64>,
    /// Percentage (0–90) of triggering visitors held back as a control group.
    #[serde(default)]
    pub control_percent: u8,
}

/// A validation failure, with the JSON path of the offending field.
#[derive(Debug)]
pub struct RuleError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, RuleError> {
    Err(RuleError(msg.into()))
}

/// A compiled URL pattern.
#[derive(Debug, Clone)]
pub enum Matcher {
    Exact(String),
    Prefix(String),
    Regex(Regex),
}

impl Matcher {
    pub fn compile(kind: MatchKind, value: &str, at: &str) -> Result<(Self, bool), RuleError> {
        if value.is_empty() || value.len() > 1024 {
            return err(format!("{at}.value must have 1 to 1024 characters"));
        }
        let path_only = value.starts_with('/');
        let m = match kind {
            MatchKind::Exact => Matcher::Exact(value.to_string()),
            MatchKind::Prefix => Matcher::Prefix(value.to_string()),
            MatchKind::Glob => Matcher::Regex(build_regex(&glob_to_regex(value), at)?),
            MatchKind::Regex => Matcher::Regex(build_regex(value, at)?),
        };
        Ok((m, path_only))
    }

    pub fn is_match(&self, s: &str) -> bool {
        match self {
            Matcher::Exact(v) => s == v,
            Matcher::Prefix(v) => s.starts_with(v.as_str()),
            Matcher::Regex(r) => r.is_match(s),
        }
    }
}

/// `*` → any run within a path segment, `**` → anything, `?` → one character; the rest literal.
fn glob_to_regex(glob: &str) -> String {
    let mut out = String::from("^");
    let mut chars = glob.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' if chars.peek() == Some(&'*') => {
                chars.next();
                out.push_str(".*");
            }
            '*' => out.push_str("[^/]*"),
            '?' => out.push_str("[^/]"),
            other => out.push_str(&regex::escape(other.encode_utf8(&mut [0; 4]))),
        }
    }
    out.push('$');
    out
}

fn build_regex(pattern: &str, at: &str) -> Result<Regex, RuleError> {
    RegexBuilder::new(pattern)
        .size_limit(256 * 1024)
        .dfa_size_limit(256 * 1024)
        .nest_limit(32)
        .build()
        .map_err(|e| RuleError(format!("{at}.value is not a usable regex: {e}")))
}

/// A URL pattern ready to match page URLs.
#[derive(Debug, Clone)]
pub struct CompiledPattern {
    matcher: Matcher,
    path_only: bool,
}

impl CompiledPattern {
    pub fn new(kind: MatchKind, value: &str, at: &str) -> Result<Self, RuleError> {
        let (matcher, path_only) = Matcher::compile(kind, value, at)?;
        Ok(Self { matcher, path_only })
    }

    pub fn matches_url(&self, url: &str) -> bool {
        if self.path_only {
            self.matcher.is_match(path_and_query(url))
        } else {
            self.matcher.is_match(url)
        }
    }

    pub fn matches_text(&self, s: &str) -> bool {
        self.matcher.is_match(s)
    }
}

/// `https://host/a/b?x#y` → `/a/b?x`.
pub fn path_and_query(url: &str) -> &str {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let path = rest.find('/').map(|i| &rest[i..]).unwrap_or("/");
    path.split('#').next().unwrap_or(path)
}

#[derive(Debug, Clone)]
pub enum CompiledCondition {
    CurrentUrl(CompiledPattern),
    Pages(CompiledPattern, u32),
    Item(ItemFilter, u32),
    TimeOnSite(u64),
    TimeOnPage(u64),
    Sessions(Option<u32>, Option<u32>),
    Referrer(CompiledPattern),
    Utm(String, String),
    Device(String),
    Trait(String, Option<Value>),
    Event(String, serde_json::Map<String, Value>, u32),
}

#[derive(Debug, Clone, Default)]
pub struct ItemFilter {
    pub brand: Option<String>,
    pub model: Option<String>,
    pub category: Option<String>,
    pub name: Option<String>,
    pub min_price: Option<f64>,
    pub max_price: Option<f64>,
}

#[derive(Debug, Clone)]
pub struct CompiledSegment {
    pub id: String,
    pub combine: Combine,
    pub conditions: Vec<CompiledCondition>,
}

const UTM_PARAMS: [&str; 5] = ["source", "medium", "campaign", "term", "content"];
const MAX_CONDITIONS: usize = 50;

fn check_text(v: &Option<String>, at: &str) -> Result<(), RuleError> {
    match v {
        Some(s) if s.trim().is_empty() || s.len() > 200 => {
            err(format!("{at} must have 1 to 200 characters"))
        }
        _ => Ok(()),
    }
}

pub fn compile_segment(id: &str, def: &SegmentDef) -> Result<CompiledSegment, RuleError> {
    if def.name.trim().is_empty() || def.name.chars().count() > 100 {
        return err("name must have 1 to 100 characters");
    }
    if def.conditions.is_empty() {
        return err("conditions must not be empty");
    }
    if def.conditions.len() > MAX_CONDITIONS {
        return err(format!("a segment has at most {MAX_CONDITIONS} conditions"));
    }
    let mut out = Vec::with_capacity(def.conditions.len());
    for (i, c) in def.conditions.iter().enumerate() {
        let at = format!("conditions[{i}]");
        out.push(match c {
            Condition::CurrentUrl { kind, value } => CompiledCondition::CurrentUrl(CompiledPattern::new(*kind, value, &at)?),
            Condition::Pages { kind, value, min } => {
                if *min == 0 || *min > 10_000 {
                    return err(format!("{at}.min must be 1 to 10000"));
                }
                CompiledCondition::Pages(CompiledPattern::new(*kind, value, &at)?, *min)
            }
            Condition::Item { brand, model, category, name, min_price, max_price, min } => {
                for (field, v) in [("brand", brand), ("model", model), ("category", category), ("name", name)] {
                    check_text(v, &format!("{at}.{field}"))?;
                }
                for (field, v) in [("min_price", min_price), ("max_price", max_price)] {
                    if v.is_some_and(|p| !p.is_finite() || p < 0.0) {
                        return err(format!("{at}.{field} must be a non-negative number"));
                    }
                }
                if let (Some(lo), Some(hi)) = (min_price, max_price) {
                    if lo > hi {
                        return err(format!("{at}.min_price must not exceed max_price"));
                    }
                }
                if brand.is_none() && model.is_none() && category.is_none() && name.is_none() && min_price.is_none() && max_price.is_none() {
                    return err(format!("{at} needs at least one attribute (brand, model, category, name, min_price, max_price)"));
                }
                if *min == 0 || *min > 10_000 {
                    return err(format!("{at}.min must be 1 to 10000"));
                }
                let lower = |v: &Option<String>| v.as_ref().map(|s| s.trim().to_lowercase());
                CompiledCondition::Item(
                    ItemFilter {
                        brand: lower(brand),
                        model: lower(model),
                        category: lower(category),
                        name: lower(name),
                        min_price: *min_price,
                        max_price: *max_price,
                    },
                    *min,
                )
            }
            Condition::TimeOnSite { min_seconds } => {
                if *min_seconds == 0 || *min_seconds > 86_400 {
                    return err(format!("{at}.min_seconds must be 1 to 86400"));
                }
                CompiledCondition::TimeOnSite(*min_seconds)
            }
            Condition::TimeOnPage { min_seconds } => {
                if *min_seconds == 0 || *min_seconds > 86_400 {
                    return err(format!("{at}.min_seconds must be 1 to 86400"));
                }
                CompiledCondition::TimeOnPage(*min_seconds)
            }
            Condition::Sessions { min, max } => {
                if min.is_none() && max.is_none() {
                    return err(format!("{at} needs min or max"));
                }
                if let (Some(lo), Some(hi)) = (min, max) {
                    if lo > hi {
                        return err(format!("{at}.min must not exceed max"));
                    }
                }
                CompiledCondition::Sessions(*min, *max)
            }
            Condition::Referrer { kind, value } => CompiledCondition::Referrer(CompiledPattern::new(*kind, value, &at)?),
            Condition::Utm { param, value } => {
                let p = param.trim_start_matches("utm_").to_lowercase();
                if !UTM_PARAMS.contains(&p.as_str()) {
                    return err(format!("{at}.param must be one of source, medium, campaign, term, content"));
                }
                check_text(&Some(value.clone()), &format!("{at}.value"))?;
                CompiledCondition::Utm(p, value.clone())
            }
            Condition::Device { value } => {
                if !["desktop", "mobile", "bot", "appliance", "other"].contains(&value.as_str()) {
                    return err(format!("{at}.value must be desktop, mobile, bot, appliance or other"));
                }
                CompiledCondition::Device(value.clone())
            }
            Condition::Trait { key, value } => {
                check_text(&Some(key.clone()), &format!("{at}.key"))?;
                CompiledCondition::Trait(key.clone(), value.clone())
            }
            Condition::Event { name, props, min } => {
                check_text(&Some(name.clone()), &format!("{at}.name"))?;
                if *min == 0 || *min > 10_000 {
                    return err(format!("{at}.min must be 1 to 10000"));
                }
                CompiledCondition::Event(name.clone(), props.clone(), *min)
            }
        });
    }
    Ok(CompiledSegment {
        id: id.to_string(),
        combine: def.combine,
        conditions: out,
    })
}

#[derive(Debug, Clone)]
pub enum CompiledTrigger {
    SegmentEntered(String),
    Pageview(CompiledPattern),
    Event(String),
    TimeOnPage(u64),
}

#[derive(Debug, Clone)]
pub enum CompiledGoal {
    Pageview(CompiledPattern),
    Event(String),
}

#[derive(Debug, Clone)]
pub struct CompiledCampaign {
    pub id: String,
    pub enabled: bool,
    pub priority: i32,
    pub trigger: CompiledTrigger,
    pub segment: Option<String>,
    pub message: MessageContent,
    pub frequency: Frequency,
    pub starts_at: Option<i64>,
    pub ends_at: Option<i64>,
    pub test_visitor: Option<String>,
    pub goal: Option<CompiledGoal>,
    pub goal_window_ms: i64,
    pub control_percent: u8,
}

impl CompiledCampaign {
    pub fn active_at(&self, now: i64) -> bool {
        self.enabled
            && self.starts_at.is_none_or(|s| now >= s)
            && self.ends_at.is_none_or(|e| now < e)
    }
}

pub const PLACEHOLDERS: [&str; 10] = [
    "brand", "model", "name", "category", "price", "currency", "sku", "url", "title", "user_id",
];

/// Checks that every `{{…}}` in the text names a known placeholder.
fn check_placeholders(text: &str, at: &str) -> Result<(), RuleError> {
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            return err(format!("{at} has an unclosed {{{{"));
        };
        let name = after[..end].trim();
        let known = PLACEHOLDERS.contains(&name)
            || name.strip_prefix("trait.").is_some_and(|k| !k.is_empty());
        if !known {
            return err(format!(
                "{at} uses the unknown placeholder {{{{{name}}}}}; known: {}, trait.KEY",
                PLACEHOLDERS.join(", ")
            ));
        }
        rest = &after[end + 2..];
    }
    Ok(())
}

/// Validates a campaign. `segment_exists` tells whether a segment id belongs to the site.
pub fn compile_campaign(
    id: &str,
    def: &CampaignDef,
    segment_exists: impl Fn(&str) -> bool,
) -> Result<CompiledCampaign, RuleError> {
    if def.name.trim().is_empty() || def.name.chars().count() > 100 {
        return err("name must have 1 to 100 characters");
    }
    let trigger = match &def.trigger {
        Trigger::SegmentEntered { segment } => {
            if !segment_exists(segment) {
                return err("trigger.segment is not a segment of this site");
            }
            CompiledTrigger::SegmentEntered(segment.clone())
        }
        Trigger::Pageview { kind, value } => {
            CompiledTrigger::Pageview(CompiledPattern::new(*kind, value, "trigger")?)
        }
        Trigger::Event { name } => {
            check_text(&Some(name.clone()), "trigger.name")?;
            CompiledTrigger::Event(name.clone())
        }
        Trigger::TimeOnPage { seconds } => {
            if *seconds == 0 || *seconds > 86_400 {
                return err("trigger.seconds must be 1 to 86400");
            }
            CompiledTrigger::TimeOnPage(*seconds)
        }
    };
    if let Some(s) = &def.segment {
        if !segment_exists(s) {
            return err("segment is not a segment of this site");
        }
    }
    let mut message = def.message.clone();
    message
        .validate()
        .map_err(|m| RuleError(format!("message: {m}")))?;
    check_placeholders(&message.title, "message.title")?;
    check_placeholders(&message.body, "message.body")?;
    if let Some(cta) = &message.cta {
        check_placeholders(&cta.label, "message.cta.label")?;
        check_placeholders(&cta.url, "message.cta.url")?;
    }
    let f = &def.frequency;
    if f.max_messages.is_some() != f.period_seconds.is_some() {
        return err("frequency.max_messages and frequency.period_seconds go together");
    }
    if f.per_visitor == Some(0)
        || f.per_session == Some(0)
        || f.max_messages == Some(0)
        || f.period_seconds == Some(0)
    {
        return err("frequency caps must be at least 1");
    }
    let parse_time = |v: &Option<String>, at: &str| -> Result<Option<i64>, RuleError> {
        match v {
            None => Ok(None),
            Some(s) => crate::domain::parse_rfc3339(s)
                .map(Some)
                .ok_or_else(|| RuleError(format!("{at} must be an RFC 3339 time"))),
        }
    };
    let starts_at = parse_time(&def.schedule.starts_at, "schedule.starts_at")?;
    let ends_at = parse_time(&def.schedule.ends_at, "schedule.ends_at")?;
    if let (Some(s), Some(e)) = (starts_at, ends_at) {
        if s >= e {
            return err("schedule.starts_at must be before schedule.ends_at");
        }
    }
    if def.control_percent > 90 {
        return err("control_percent must be 0 to 90");
    }
    let goal = match &def.goal {
        None => None,
        Some(Goal::Pageview { kind, value }) => Some(CompiledGoal::Pageview(CompiledPattern::new(
            *kind, value, "goal",
        )?)),
        Some(Goal::Event { name }) => {
            check_text(&Some(name.clone()), "goal.name")?;
            Some(CompiledGoal::Event(name.clone()))
        }
    };
    let window = def.goal_window_seconds.unwrap_or(86_400);
    if window == 0 || window > 90 * 86_400 {
        return err("goal_window_seconds must be 1 to 7776000");
    }
    if let Some(v) = &def.test_visitor {
        if crate::domain::ClientId::parse(v).is_none() {
            return err("test_visitor is not a visitor id");
        }
    }
    Ok(CompiledCampaign {
        id: id.to_string(),
        enabled: def.enabled,
        priority: def.priority,
        trigger,
        segment: def.segment.clone(),
        message,
        frequency: def.frequency.clone(),
        starts_at,
        ends_at,
        test_visitor: def.test_visitor.clone(),
        goal,
        goal_window_ms: (window as i64) * 1000,
        control_percent: def.control_percent,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn seg(conditions: Value) -> Result<CompiledSegment, RuleError> {
        let def: SegmentDef =
            serde_json::from_value(json!({"name": "s", "conditions": conditions})).expect("parses");
        compile_segment("s1", &def)
    }

    #[test]
    fn patterns_match_paths_or_whole_urls() {
        let p = CompiledPattern::new(MatchKind::Prefix, "/cars/tesla", "t").expect("valid");
        assert!(p.matches_url("https://shop.test/cars/tesla-model-3?x=1"));
        assert!(!p.matches_url("https://shop.test/cars/bmw"));
        let g = CompiledPattern::new(MatchKind::Glob, "/cars/*/model-?", "t").expect("valid");
        assert!(g.matches_url("https://shop.test/cars/tesla/model-3"));
        assert!(!g.matches_url("https://shop.test/cars/a/b/model-3"));
        let r = CompiledPattern::new(MatchKind::Regex, r"^https://shop\.test/cars/\d+$", "t")
            .expect("valid");
        assert!(r.matches_url("https://shop.test/cars/42"));
        let e = CompiledPattern::new(MatchKind::Exact, "/financing", "t").expect("valid");
        assert!(e.matches_url("https://shop.test/financing#top"));
        assert!(!e.matches_url("https://shop.test/financing/apply"));
    }

    #[test]
    fn bad_rules_are_refused_with_a_pointer_to_the_field() {
        let cases = [
            json!([]),
            json!([{"type": "current_url", "match": "regex", "value": "("}]),
            json!([{"type": "current_url", "match": "glob", "value": ""}]),
            json!([{"type": "pages", "match": "prefix", "value": "/x", "min": 0}]),
            json!([{"type": "item"}]),
            json!([{"type": "item", "min_price": 10.0, "max_price": 5.0}]),
            json!([{"type": "utm", "param": "nope", "value": "x"}]),
            json!([{"type": "device", "value": "fridge"}]),
            json!([{"type": "sessions"}]),
            json!([{"type": "time_on_page", "min_seconds": 0}]),
            json!([{"type": "current_url", "match": "regex", "value": "a{1000}{1000}{1000}"}]),
        ];
        for c in cases {
            assert!(seg(c.clone()).is_err(), "{c} should be refused");
        }
        let e = seg(
            json!([{"type": "device", "value": "desktop"}, {"type": "device", "value": "fridge"}]),
        )
        .expect_err("refused");
        assert!(e.0.starts_with("conditions[1]"), "{}", e.0);
        let unknown: Result<SegmentDef, _> =
            serde_json::from_value(json!({"name": "s", "conditions": [{"type": "moon_phase"}]}));
        assert!(unknown.is_err());
    }

    #[test]
    fn campaigns_check_placeholders_segments_and_caps() {
        let base = json!({"name": "c", "trigger": {"type": "event", "name": "x"}, "message": {"title": "Financing for your {{model}}"}});
        let def: CampaignDef = serde_json::from_value(base.clone()).expect("parses");
        assert!(compile_campaign("c1", &def, |_| false).is_ok());
        let mut bad = base.clone();
        bad["message"]["title"] = json!("Hi {{shoe_size}}");
        let def: CampaignDef = serde_json::from_value(bad).expect("parses");
        assert!(compile_campaign("c1", &def, |_| false).is_err());
        let mut bad = base.clone();
        bad["trigger"] = json!({"type": "segment_entered", "segment": "nope"});
        let def: CampaignDef = serde_json::from_value(bad).expect("parses");
        assert!(compile_campaign("c1", &def, |_| false).is_err());
        let mut bad = base;
        bad["frequency"] = json!({"max_messages": 3});
        let def: CampaignDef = serde_json::from_value(bad).expect("parses");
        assert!(compile_campaign("c1", &def, |_| false).is_err());
    }
}
