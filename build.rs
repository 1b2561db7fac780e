//! Compiles `proto/` into the gRPC stubs and the descriptor set served by reflection. protox parses the
//! schema in pure Rust, so no system `protoc` is needed.
//!
//! The messages and the clients come from tonic-prost-build. The servers are generated from the same
//! descriptors through tonic-build's manual builder, for one reason: a few server-streaming responses
//! are written straight from the broker's own messages (`transport::wire`), so the server's trait
//! names those types instead of the generated ones. Everything else about a method (its route, its
//! streaming, its request type) is read from the schema, so the schema stays the one source of truth.

use std::{env, path::PathBuf};

use prost::Message as _;
use prost_types::{FileDescriptorSet, MethodDescriptorProto};

const PROTOS: &[&str] = &["switchyard/v1/broker.proto", "switchyard/v1/admin.proto"];

/// Blames the caller, not the server, for a request that does not decode.
const CODEC: &str = "crate::transport::codec::SwitchyardCodec";

/// Responses the server writes itself, by fully qualified protobuf name.
const WRITTEN_BY_THE_SERVER: &[(&str, &str)] = &[
    (
        ".switchyard.v1.SubscribeResponse",
        "crate::transport::wire::SubscribeResponse",
    ),
    (
        ".switchyard.v1.Delivery",
        "crate::transport::wire::Delivery",
    ),
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let descriptors = protox::compile(PROTOS, ["proto"])?;
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("switchyard_descriptor.bin"),
        descriptors.encode_to_vec(),
    )?;
    let servers = servers(&descriptors)?;
    tonic_prost_build::configure()
        .build_server(false)
        .bytes(".switchyard.v1.Message.payload")
        .codec_path(CODEC)
        .compile_fds(descriptors)?;
    tonic_build::manual::Builder::new()
        .build_client(false)
        .compile(&servers);
    Ok(())
}

/// Every service of the schema, as tonic-build's manual builder describes it.
fn servers(descriptors: &FileDescriptorSet) -> Result<Vec<tonic_build::manual::Service>, String> {
    let mut servers = Vec::new();
    for file in &descriptors.file {
        let package = file.package();
        for service in &file.service {
            let mut builder = tonic_build::manual::Service::builder()
                .name(service.name())
                .package(package);
            for method in &service.method {
                builder = builder.method(server_method(method, package)?);
            }
            servers.push(builder.build());
        }
    }
    Ok(servers)
}

fn server_method(
    method: &MethodDescriptorProto,
    package: &str,
) -> Result<tonic_build::manual::Method, String> {
    let mut builder = tonic_build::manual::Method::builder()
        .name(snake_case(method.name()))
        .route_name(method.name())
        .input_type(rust_type(method.input_type(), package)?)
        .output_type(rust_type(method.output_type(), package)?)
        .codec_path(CODEC);
    if method.client_streaming() {
        builder = builder.client_streaming();
    }
    if method.server_streaming() {
        builder = builder.server_streaming();
    }
    Ok(builder.build())
}

/// The Rust path of a message type (`.switchyard.v1.Gap` is `super::Gap`, from the generated server
/// module inside `pb`), or of the server's own type when it writes that response itself. Only the
/// service's own package is generated into `pb`, so a type from elsewhere stops the build.
fn rust_type(proto_name: &str, package: &str) -> Result<String, String> {
    if let Some((_, path)) = WRITTEN_BY_THE_SERVER
        .iter()
        .find(|(name, _)| *name == proto_name)
    {
        return Ok((*path).to_owned());
    }
    proto_name
        .strip_prefix(&format!(".{package}."))
        .filter(|short| !short.contains('.'))
        .map(|short| format!("super::{short}"))
        .ok_or_else(|| format!("{proto_name}: a method type outside package {package}"))
}

/// `PublishStream` -> `publish_stream`, as tonic names the handler of a method.
fn snake_case(name: &str) -> String {
    let mut snake = String::with_capacity(name.len() + 4);
    for (index, character) in name.char_indices() {
        if character.is_ascii_uppercase() {
            if index > 0 {
                snake.push('_');
            }
            snake.push(character.to_ascii_lowercase());
        } else {
            snake.push(character);
        }
    }
    snake
}
