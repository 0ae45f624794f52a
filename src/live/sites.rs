//! Site-key lookups for the visitor socket, cached briefly (unknown keys too) so that a flood of
//! connections, or of bogus keys, does not become a flood of queries.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::db::Db;
use crate::domain::DomainPattern;

const TTL: Duration = Duration::from_secs(30);
const MAX_ENTRIES: usize = 100_000;

#[derive(Debug, Clone)]
pub struct SiteInfo {
    pub site_id: String,
    pub domains: Vec<DomainPattern>,
}

/// Key → (looked up at, the site or None for an unknown key).
type Entries = HashMap<String, (Instant, Option<SiteInfo>)>;

#[derive(Clone, Default)]
pub struct SiteCache {
    entries: Arc<Mutex<Entries>>,
}

impl SiteCache {
    pub async fn lookup(&self, db: &Db, key: &str) -> Result<Option<SiteInfo>, sqlx::Error> {
        if let Some((at, info)) = self
            .entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
        {
            if at.elapsed() < TTL {
                return Ok(info.clone());
            }
        }
        let row: Option<(String, String)> =
            sqlx::query_as("select site_id, domains from site where site_key = $1")
                .bind(key)
                .fetch_optional(db.pool())
                .await?;
        let info = row.map(|(site_id, domains)| {
            let list: Vec<String> = serde_json::from_str(&domains).unwrap_or_default();
            SiteInfo {
                site_id,
                domains: list
                    .iter()
                    .filter_map(|d| DomainPattern::parse(d).ok())
                    .collect(),
            }
        });
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, (at, _)| at.elapsed() < TTL);
        }
        entries.insert(key.to_string(), (Instant::now(), info.clone()));
        Ok(info)
    }

    /// Forgets a key after its site changed or was deleted.
    pub fn invalidate(&self, key: &str) {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }
}
