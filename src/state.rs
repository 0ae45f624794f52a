//! The application state shared by every handler: cheap to clone, no globals.

use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;
use tokio_util::sync::CancellationToken;

use crate::auth::{LoginLimiter, TokenKeys};
use crate::config::Settings;
use crate::db::writer::WriterHandle;
use crate::db::Db;
use crate::live::hub::Hub;
use crate::live::sites::SiteCache;
use crate::live::PendingIndex;

#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub writer: WriterHandle,
    pub hub: Hub,
    pub sites: SiteCache,
    pub pending: PendingIndex,
    pub targeting: crate::targeting::Engine,
    /// The Redis bus, when `REDIS_URL` is set.
    pub cluster: Option<crate::cluster::Cluster>,
    pub tokens: Arc<TokenKeys>,
    pub login_limiter: Arc<LoginLimiter>,
    pub settings: Arc<Settings>,
    pub metrics: PrometheusHandle,
    /// Key of the demo site when started with `--demo` (the demo shop's pages carry it).
    pub demo_site_key: Option<Arc<str>>,
    /// Counts live socket tasks so that shutdown can wait for them to close.
    pub sockets: tokio_util::task::TaskTracker,
    /// Cancelled when the service begins to shut down: sockets close with 1001.
    pub shutdown: CancellationToken,
}
