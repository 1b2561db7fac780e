//! Compiles `proto/` into the gRPC stubs and the descriptor set served by reflection. protox parses the
//! schema in pure Rust, so no system `protoc` is needed.

use std::{env, path::PathBuf};

use prost::Message as _;

const PROTOS: &[&str] = &["switchyard/v1/broker.proto", "switchyard/v1/admin.proto"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let descriptors = protox::compile(PROTOS, ["proto"])?;
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("switchyard_descriptor.bin"),
        descriptors.encode_to_vec(),
    )?;
    tonic_prost_build::configure()
        .bytes(".switchyard.v1.Message.payload")
        // Blames the caller, not the server, for a request that does not decode.
        .codec_path("crate::transport::codec::SwitchyardCodec")
        .compile_fds(descriptors)?;
    Ok(())
}
