//! Compiles the broker's schema into client stubs only. `proto/` here is a link to the repository's
//! one schema, which `cargo package` copies into the packaged crate, so the crate builds on its own.

const PROTOS: &[&str] = &["switchyard/v1/broker.proto", "switchyard/v1/admin.proto"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let descriptors = protox::compile(PROTOS, ["proto"])?;
    tonic_prost_build::configure()
        .build_server(false)
        .bytes(".switchyard.v1.Message.payload")
        .compile_fds(descriptors)?;
    Ok(())
}
