//! `qilu-awards` as its own process (containers). All logic is in the library and
//! `qilu_common::app`.

/// mimalloc instead of glibc's malloc: allocation was about a tenth of a call's CPU under load
/// (BENCHMARKS.md, the read path).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    qilu_common::app::main::<qilu_awards::Awards>().await
}
