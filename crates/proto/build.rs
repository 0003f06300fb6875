//! Compiles `proto/` into Rust types, tonic clients and servers, and a file descriptor set for
//! server reflection. protoc comes from `protoc-bin-vendored`, so a fresh machine needs none.

use std::error::Error;
use std::path::{Path, PathBuf};

fn main() -> Result<(), Box<dyn Error>> {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let proto_root = manifest.join("../../proto");
    let third_party = proto_root.join("third_party");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);

    // tonic-prost-build emits no rerun-if-changed of its own; a directory is scanned recursively.
    println!("cargo:rerun-if-changed={}", proto_root.display());

    let mut protos = Vec::new();
    collect_protos(&proto_root.join("qilu"), &mut protos)?;
    protos.sort();
    // google.longrunning (AIP-151): Rust types and the `Operations` service every Qilu server
    // also serves. Its own imports (google.rpc.Status, google.api) are generated with it.
    protos.push(third_party.join("google/longrunning/operations.proto"));
    // google.rpc's rich error details (ErrorInfo, BadRequest, ...): in the descriptor set so that
    // the HTTP/JSON side writes an error's details as typed JSON, as a gRPC caller decodes them.
    protos.push(third_party.join("google/rpc/error_details.proto"));

    let mut config = prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    // `prost::Name` on every message: the audit log stores each change's published state as a
    // typed `google.protobuf.Any`, which needs the message's full name and type URL.
    config.enable_type_names();

    tonic_prost_build::configure()
        .file_descriptor_set_path(out_dir.join("qilu_descriptor.bin"))
        // No default (UNIMPLEMENTED) handlers: an RPC added to the contract without a handler
        // fails to compile instead of shipping as a stub.
        .generate_default_stubs(false)
        .compile_with_config(
            config,
            &protos,
            // third_party first: protoc names a file after the first include path holding it,
            // and google/longrunning/operations.proto is compiled by path.
            &[
                third_party,
                proto_root.clone(),
                protoc_bin_vendored::include_path()?,
            ],
        )?;
    Ok(())
}

fn collect_protos(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_protos(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "proto") {
            out.push(path);
        }
    }
    Ok(())
}
