//! `qilu-registry`: the enterprise registry as its own process (containers). All logic is in
//! the library and `qilu_common::app`.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    qilu_common::app::main::<qilu_registry::Registry>().await
}
