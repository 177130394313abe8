//! The host runs the very bytes the npm package ships.

use sha2::{Digest, Sha256};

use crate::{module, support};

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Section ids of a core module, in order (a header walk: id, LEB128 size, skip).
fn sections(wasm: &[u8]) -> Vec<u8> {
    assert_eq!(wasm.get(..8), Some(&b"\0asm\x01\0\0\0"[..]), "a core wasm module, version 1");
    let (mut ids, mut i) = (Vec::new(), 8);
    while i < wasm.len() {
        let Some(&id) = wasm.get(i) else { break };
        i += 1;
        let (mut size, mut shift) = (0usize, 0);
        loop {
            let b = wasm.get(i).copied().unwrap_or(0);
            i += 1;
            size |= usize::from(b & 0x7f) << shift;
            shift += 7;
            if b < 0x80 {
                break;
            }
        }
        ids.push(id);
        i += size;
    }
    ids
}

#[test]
fn the_host_loads_the_npm_packages_module_byte_for_byte() {
    let on_disk = std::fs::read(module::path()).expect("module file");
    let engine = support::compiled();
    assert_eq!(engine.module_sha256(), sha256(&on_disk), "{}", module::path().display());
    assert_eq!(engine.module_sha256(), sha256(module::bytes()));
    // The xtask places identical bytes for every npm target: check the siblings it wrote.
    let dir = module::path().parent().expect("parent");
    if dir.file_name().is_some_and(|n| n == "pkg-web") {
        for sibling in ["pkg-nodejs", "pkg-bundler"] {
            let p = dir.with_file_name(sibling).join("rolescope_wasm_bg.wasm");
            if let Ok(bytes) = std::fs::read(&p) {
                assert_eq!(sha256(&bytes), engine.module_sha256(), "{}", p.display());
            }
        }
    }
}

#[test]
fn the_module_is_wasm_bindgen_output_with_no_start_section() {
    let wasm = module::bytes();
    let module = wasmtime::Module::new(&wasmtime::Engine::default(), wasm).expect("module");
    // wasm-bindgen's processed module: JS glue imports, and both faces exported.
    let imports: Vec<String> = module.imports().map(|i| format!("{}::{}", i.module(), i.name())).collect();
    assert!(imports.iter().any(|i| i.ends_with("::__wbindgen_init_externref_table")), "{imports:?}");
    assert!(imports.iter().all(|i| i.starts_with("./rolescope_wasm_bg.js::")), "{imports:?}");
    let exports: Vec<&str> = module.exports().map(|e| e.name()).collect();
    for name in
        ["memory", "rs_abi_version", "rs_input", "rs_decide", "rs_check_json", "policy_compile", "__wbindgen_start"]
    {
        assert!(exports.contains(&name), "no export `{name}`");
    }
    // No start section (id 8): instantiating runs no code, so no glue import is called.
    // `__wbindgen_start` is an export only the JS glue calls; the host never does.
    assert!(!sections(wasm).contains(&8), "start section in {:?}", sections(wasm));
}
