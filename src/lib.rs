//! Lookout: realtime visitor monitoring and targeting for many sites at once.

pub mod api;
pub mod assets;
pub mod auth;
pub mod cluster;
pub mod config;
pub mod db;
pub mod demo;
pub mod domain;
pub mod error;
pub mod live;
pub mod startup;
pub mod state;
pub mod targeting;
pub mod telemetry;
