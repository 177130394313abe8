//! The host runs the very bytes the npm package ships.
#![expect(clippy::expect_used, reason = "test helpers: a failure here is a test failure")]

use sha2::{Digest, Sha256};

use crate::{module, support};

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// A reader over a core module's bytes: just enough to list sections, imports and exports.
struct Reader<'a>(&'a [u8], usize);

impl<'a> Reader<'a> {
    fn byte(&mut self) -> u8 {
        let b = self.0.get(self.1).copied().expect("truncated module");
        self.1 += 1;
        b
    }
    fn leb(&mut self) -> usize {
        let (mut v, mut shift) = (0usize, 0);
        loop {
            let b = self.byte();
            v |= usize::from(b & 0x7f) << shift;
            shift += 7;
            if b < 0x80 {
                return v;
            }
        }
    }
    fn bytes(&mut self, n: usize) -> &'a [u8] {
        let s = self.0.get(self.1..self.1 + n).expect("truncated module");
        self.1 += n;
        s
    }
    fn name(&mut self) -> String {
        let n = self.leb();
        String::from_utf8(self.bytes(n).to_vec()).expect("UTF-8 name")
    }
}

/// The module's section ids (in order), `module::name` of its function imports, and its
/// export names.
fn inspect(wasm: &[u8]) -> (Vec<u8>, Vec<String>, Vec<String>) {
    assert_eq!(wasm.get(..8), Some(&b"\0asm\x01\0\0\0"[..]), "a core wasm module, version 1");
    let (mut ids, mut imports, mut exports) = (Vec::new(), Vec::new(), Vec::new());
    let mut r = Reader(wasm, 8);
    while r.1 < wasm.len() {
        let id = r.byte();
        let size = r.leb();
        let body = r.bytes(size);
        ids.push(id);
        let mut s = Reader(body, 0);
        match id {
            // imports: only functions (kind 0, a type index) are expected from wasm-bindgen
            2 => {
                for _ in 0..s.leb() {
                    let (module, name) = (s.name(), s.name());
                    assert_eq!(s.byte(), 0, "import `{module}::{name}` is not a function");
                    s.leb();
                    imports.push(format!("{module}::{name}"));
                }
            }
            7 => {
                for _ in 0..s.leb() {
                    exports.push(s.name());
                    s.byte();
                    s.leb();
                }
            }
            _ => {}
        }
    }
    (ids, imports, exports)
}

#[test]
fn the_host_loads_the_npm_packages_module_byte_for_byte() {
    let on_disk = std::fs::read(module::path()).expect("module file");
    let engine = support::compiled();
    assert_eq!(engine.module_sha256(), sha256(&on_disk), "{}", module::path().display());
    assert_eq!(engine.module_sha256(), sha256(module::bytes()));
    // Built by the xtask (`ROLESCOPE_WASM`): the npm package's three copies, and the
    // recorded digest, are the same bytes.
    if module::from_xtask() {
        let pkg = module::workspace().join("bindings/pkg");
        for folder in ["node", "web", "bundler"] {
            let p = pkg.join(folder).join("rolescope_wasm_bg.wasm");
            if let Ok(bytes) = std::fs::read(&p) {
                assert_eq!(sha256(&bytes), engine.module_sha256(), "{}", p.display());
            }
        }
        let mut recorded = module::path().as_os_str().to_owned();
        recorded.push(".sha256");
        if let Ok(line) = std::fs::read_to_string(&recorded) {
            assert_eq!(line.split_whitespace().next(), Some(engine.module_sha256()), "{line}");
        }
    }
}

#[test]
fn the_module_is_wasm_bindgen_output_with_no_start_section() {
    let (sections, imports, exports) = inspect(module::bytes());
    // wasm-bindgen's processed module: JS glue imports, and both faces exported.
    assert!(imports.iter().any(|i| i.ends_with("::__wbindgen_init_externref_table")), "{imports:?}");
    assert!(imports.iter().all(|i| i.starts_with("./rolescope_wasm_bg.js::")), "{imports:?}");
    for name in [
        "memory",
        "rs_abi_version",
        "rs_input",
        "rs_names",
        "rs_decide",
        "rs_authorize",
        "rs_check_json",
        "policy_fromBundle",
        "__wbindgen_start",
    ] {
        assert!(exports.iter().any(|e| e == name), "no export `{name}`");
    }
    // No start section (id 8): instantiating runs no code, so no glue import is called.
    // `__wbindgen_start` is an export only the JS glue calls; the host never does.
    assert!(!sections.contains(&8), "start section in {sections:?}");
}
