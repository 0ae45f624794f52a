//! One integration test binary: the real application on port 0, a fresh database per test.

mod helpers;

mod auth;
mod cluster;
mod history;
mod live;
mod sites;
mod targeting;
