//! Compiles the broker's schema (`proto/` at the repository root) into client stubs only.

const PROTOS: &[&str] = &["switchyard/v1/broker.proto", "switchyard/v1/admin.proto"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=../../proto");
    let descriptors = protox::compile(PROTOS, ["../../proto"])?;
    tonic_prost_build::configure()
        .build_server(false)
        .bytes(".switchyard.v1.Message.payload")
        .compile_fds(descriptors)?;
    Ok(())
}
