//! The whole datagram → response path on the shipped example data (see
//! `checks.rs`).
#![no_main]

#[path = "../checks.rs"]
mod checks;

use std::path::Path;
use std::sync::LazyLock;

use switchboard::routing_data::Loader;
use switchboard::routing::{Region, RoutingTable};
use switchboard::server::handler::Handler;

static TABLE: LazyLock<RoutingTable> = LazyLock::new(|| {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/routing.yaml");
    Loader::new(path, Region::us()).load().expect("example data").table
});

static CONFIG: LazyLock<Handler> = LazyLock::new(checks::datagram_config);

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::datagram(data, &CONFIG, &TABLE));
