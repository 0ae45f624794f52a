//! `GET /api/sites/{site}/live`: who is on the site now (this node's view).

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use crate::auth::extract::SiteAccess;
use crate::error::{ErrorBody, Result};
use crate::live::hub::VisitorView;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/sites/{site}/live", get(live))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Live {
    pub visitors: Vec<VisitorView>,
}

/// The visitors on the site now, with their tabs and current pages.
#[utoipa::path(get, path = "/api/sites/{site}/live", tag = "live", params(("site" = String, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = Live), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn live(State(state): State<AppState>, access: SiteAccess) -> Result<Json<Live>> {
    if let Some(cluster) = &state.cluster {
        cluster.ensure_site(&access.site_id);
    }
    Ok(Json(Live {
        visitors: state.hub.snapshot(&access.site_id),
    }))
}
