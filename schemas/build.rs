//! Compiles `proto/**/*.proto` with protox (pure Rust), so no `protoc` is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/iga/v1/envelope.proto",
        "proto/iga/v1/identity.proto",
        "proto/iga/v1/catalog.proto",
        "proto/iga/v1/policy.proto",
        "proto/iga/v1/access.proto",
        "proto/iga/v1/delivery.proto",
        "proto/iga/v1/review.proto",
        "proto/iga/v1/audit.proto",
    ];
    for f in files {
        println!("cargo:rerun-if-changed={f}");
    }
    let descriptors = protox::compile(files, ["proto"])?;
    prost_build::Config::new()
        // JSON views of events (audit API): camelCase like the HTTP API.
        .type_attribute(
            ".iga.v1",
            "#[derive(serde::Serialize, serde::Deserialize)] #[serde(rename_all = \"camelCase\", default)]",
        )
        .compile_fds(descriptors)?;
    Ok(())
}
