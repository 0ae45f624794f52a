//! `GET /api/openapi.json`: the OpenAPI 3 description, generated from the handlers' annotations.

use axum::routing::get;
use axum::{Json, Router};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{auth, history, live, messages, sites, targeting};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/openapi.json", get(|| async { Json(ApiDoc::openapi()) }))
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A login token, or a site API key for that site's endpoints",
                    ))
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Lookout API", description = "Realtime visitor monitoring and targeting: accounts, sites, history, messages."),
    modifiers(&BearerAuth),
    paths(
        auth::signup, auth::login, auth::logout, auth::me,
        sites::create_site, sites::list_sites, sites::get_site, sites::update_site, sites::delete_site,
        sites::list_members, sites::add_member, sites::update_member, sites::remove_member,
        sites::list_keys, sites::create_key, sites::revoke_key,
        history::pageviews, history::events, history::visitors, history::visitor_profile,
        history::erase_visitor, history::stats,
        messages::post_message, messages::list_messages,
        live::live,
        targeting::list_segments, targeting::create_segment, targeting::get_segment, targeting::update_segment,
        targeting::delete_segment, targeting::segment_members,
        targeting::list_campaigns, targeting::create_campaign, targeting::get_campaign, targeting::update_campaign,
        targeting::delete_campaign,
    ),
    tags(
        (name = "accounts"), (name = "sites"), (name = "members"), (name = "api-keys"),
        (name = "history"), (name = "messages"), (name = "live"), (name = "targeting"),
    )
)]
pub struct ApiDoc;
