//! `plume-server`: the self-hostable Plume Open API.
//!
//! Start at [`cli`] (the commands), then [`service::Service`] (what a request can do) and
//! [`worker`] (how a task runs). `docs/ARCHITECTURE.md` has the map and the invariants.
//!
//! * [`config`]: TOML file + `PLUME_*` overrides;
//! * [`db`]: the [`db::Database`] trait, SQLite and PostgreSQL (tasks, ledger, keys);
//! * [`blob`]: the [`blob::BlobStore`] trait, local disk and S3-compatible buckets;
//! * [`migrate`]: `migrate` (schema) and `migrate-store` (moving an install between backends);
//! * [`executor`]: the [`executor::Executor`] trait that categories plug into;
//! * [`worker`]: leases, retries, deadlines, graceful shutdown;
//! * [`tasks`], [`accounts`], [`describe`]: the operations behind the endpoints and the admin
//!   commands; [`time`]: how times are stored and shown;
//! * [`upload`], [`fetch`]: checking uploaded images and fetching image URLs safely;
//! * [`local`]: remove-bg and remove-watermark on this CPU, through `plume-vision`;
//! * [`providers`]: the upstream executors (Gemini image, Seedream, Veo, Seedance) and describe;
//! * [`retention`]: deleting uploads and results older than the configured days;
//! * [`portal`]: the Plume Platform's operations (sign-up, sessions, keys, credits, codes,
//!   the operator's pages), behind its pages and its `/api/portal/*` JSON;
//! * [`http`]: routes and handlers; [`metrics`]: Prometheus text.

pub mod accounts;
pub mod blob;
pub mod cli;
pub mod config;
pub mod db;
pub mod describe;
pub mod error;
pub mod events;
pub mod executor;
pub mod fetch;
pub mod http;
pub mod local;
pub mod metrics;
pub mod migrate;
pub mod portal;
pub mod providers;
pub mod retention;
pub mod service;
pub mod tasks;
pub mod time;
pub mod upload;
pub mod worker;

pub use config::Config;
pub use executor::{
    ExecContext, ExecError, ExecOutput, Executor, Executors, OutputImage, OutputVideo,
};
pub use service::Service;
