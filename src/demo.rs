//! `--demo`: a demo account and site for the demo car-dealer shop served at `/demo/`.

use crate::auth::hash_password;
use crate::db::{now_ms, Db};
use crate::domain::{new_id, random_id};

pub const DEMO_EMAIL: &str = "demo@lookout.test";
pub const DEMO_PASSWORD: &str = "lookout-demo";
pub const DEMO_SITE: &str = "Demo car shop";

/// Creates the demo account and site unless they exist; returns the site's id and key.
pub async fn seed(db: &Db) -> anyhow::Result<(String, String)> {
    let account: Option<String> =
        sqlx::query_scalar("select account_id from account where email = $1")
            .bind(DEMO_EMAIL)
            .fetch_optional(db.pool())
            .await?;
    let now = now_ms();
    let account = match account {
        Some(a) => a,
        None => {
            let id = new_id();
            sqlx::query("insert into account (account_id, email, password_hash, created_at) values ($1, $2, $3, $4)")
                .bind(&id)
                .bind(DEMO_EMAIL)
                .bind(hash_password(DEMO_PASSWORD.to_string()).await?)
                .bind(now)
                .execute(db.pool())
                .await?;
            id
        }
    };
    let site: Option<(String, String)> = sqlx::query_as(
        "select s.site_id, s.site_key from site s join membership m on m.site_id = s.site_id \
         where m.account_id = $1 and s.name = $2 order by s.created_at limit 1",
    )
    .bind(&account)
    .bind(DEMO_SITE)
    .fetch_optional(db.pool())
    .await?;
    if let Some(site) = site {
        return Ok(site);
    }
    let (site_id, key) = (new_id(), format!("pk_{}", random_id(24)));
    sqlx::query("insert into site (site_id, name, site_key, domains, created_at) values ($1, $2, $3, '[]', $4)")
        .bind(&site_id)
        .bind(DEMO_SITE)
        .bind(&key)
        .bind(now)
        .execute(db.pool())
        .await?;
    sqlx::query("insert into membership (site_id, account_id, role, created_at) values ($1, $2, 'admin', $3)")
        .bind(&site_id)
        .bind(&account)
        .bind(now)
        .execute(db.pool())
        .await?;
    Ok((site_id, key))
}
