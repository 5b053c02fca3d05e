//! Every config in `examples/` must load.

#[test]
fn every_example_config_loads() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("examples/ exists") {
        let path = entry.expect("readable entry").path();
        if path.extension().is_some_and(|e| e == "toml" || e == "json") {
            let config = gantry_config::load_with_env(&path, &|_| Some("example".into()))
                .unwrap_or_else(|e| panic!("{e}"));
            assert!(!config.endpoints.is_empty(), "{}", path.display());
            seen += 1;
        }
    }
    assert!(seen > 0, "no example configs found in {}", dir.display());
}
