//! `cargo xtask wasm`: one module for every host.
//!
//! The module is built once, its JS glue generated for three targets, optimized once, and the
//! same bytes shipped everywhere:
//!
//! ```text
//! bindings/pkg/                 the npm package `rolescope`
//!   package.json README.md      from bindings/npm/ (templates)
//!   index.d.ts web.d.ts         hand-written declarations, from bindings/npm/
//!   node/     rolescope_wasm.js (CommonJS, loads synchronously)          rolescope_wasm_bg.wasm
//!   web/      rolescope_wasm.js (ES module, `await init()` first)        rolescope_wasm_bg.wasm
//!   bundler/  rolescope_wasm.js rolescope_wasm_bg.js (ES module + .wasm) rolescope_wasm_bg.wasm
//! target/wasm/rolescope.wasm    the same bytes, for the gateway
//! target/wasm/rolescope.wasm.sha256, target/wasm/size.json
//! ```

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::{Context, Result, capture, cargo, done, fail, run, step, tools};

/// The wasm-bindgen targets, with the folder each one gets in the package.
const TARGETS: [(&str, &str); 3] = [("nodejs", "node"), ("web", "web"), ("bundler", "bundler")];

/// The base name of the generated files: wasm-bindgen's default (the crate's name), so the
/// module imports from `./rolescope_wasm_bg.js` and is `rolescope_wasm_bg.wasm` everywhere
/// (bindings/ABI.md; the gateway's tests check the import names).
const OUT_NAME: &str = "rolescope_wasm";

/// Features the module uses (rustc's defaults for wasm32-unknown-unknown, listed in its
/// `target_features` section); wasm-opt must accept them and may use nothing else.
const WASM_OPT_FLAGS: [&str; 7] = [
    "-Oz",
    "--enable-bulk-memory",
    "--enable-multivalue",
    "--enable-mutable-globals",
    "--enable-nontrapping-float-to-int",
    "--enable-reference-types",
    "--enable-sign-ext",
];

/// The plain ABI (`bindings/ABI.md`) the gateway calls: the module must export all of it.
const ABI_EXPORTS: [&str; 9] = [
    "rs_abi_version",
    "rs_input",
    "rs_output_ptr",
    "rs_output_len",
    "rs_load_bundle",
    "rs_principal",
    "rs_principal_free",
    "rs_decide",
    "rs_check_json",
];

/// The size budget: 120 KiB gzipped (reported, not enforced).
const BUDGET_GZIP: u64 = 120 * 1024;

/// Files copied from `bindings/npm/` into the package.
const TEMPLATES: [&str; 4] = ["package.json", "README.md", "index.d.ts", "web.d.ts"];

fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).map_or_else(|| root.join("target"), |d| root.join(d))
}

/// Runs the whole pipeline.
pub(crate) fn build(root: &Path) -> Result<()> {
    let started = std::time::Instant::now();
    let target = target_dir(root);
    let out = target.join("wasm");
    let pkg = root.join("bindings/pkg");
    let npm = root.join("bindings/npm");

    let t = step("tools");
    tools::ensure_wasm_target(root)?;
    let bindgen = tools::ensure_wasm_bindgen(&tools::locked_version(root, "wasm-bindgen")?)?;
    let wasm_opt = tools::ensure_node_tools(root)?;
    check_template_version(root, &npm)?;
    done(t);

    let t = step("build rolescope-wasm (profile wasm, wasm32-unknown-unknown)");
    run(cargo().current_dir(root).args([
        "build",
        "--locked",
        "-p",
        "rolescope-wasm",
        "--target",
        "wasm32-unknown-unknown",
        "--profile",
        "wasm",
    ]))?;
    let module = target.join("wasm32-unknown-unknown/wasm/rolescope_wasm.wasm");
    done(t);

    let t = step("wasm-bindgen: nodejs, web, bundler");
    let glue = out.join("bindgen");
    remove_dir(&glue)?;
    for (name, _) in TARGETS {
        run(Command::new(&bindgen)
            .args(["--target", name, "--no-typescript", "--out-name", OUT_NAME, "--out-dir"])
            .arg(glue.join(name))
            .arg(&module))?;
    }
    let bg = format!("{OUT_NAME}_bg.wasm");
    let raw = read(&glue.join("nodejs").join(&bg))?;
    for (name, _) in TARGETS {
        if read(&glue.join(name).join(&bg))? != raw {
            return Err(fail(format!(
                "wasm-bindgen wrote a different {bg} for `{name}` than for `nodejs`: one optimized module cannot serve all targets"
            )));
        }
    }
    done(t);

    let t = step("wasm-opt -Oz (once, for every target)");
    let wasm = out.join("rolescope.wasm");
    let version = capture(&wasm_opt, &["--version"]).unwrap_or_default();
    let key =
        hex(&Sha256::new().chain_update(&raw).chain_update(&version).chain_update(WASM_OPT_FLAGS.join(" ")).finalize());
    let key_file = out.join("rolescope.wasm.input");
    if wasm.is_file() && fs::read_to_string(&key_file).is_ok_and(|k| k.trim() == key) {
        println!("xtask: unchanged input: keeping {}", wasm.display());
    } else {
        let _ = fs::remove_file(&key_file);
        run(Command::new(&wasm_opt).args(WASM_OPT_FLAGS).arg(glue.join("nodejs").join(&bg)).arg("-o").arg(&wasm))?;
        write(&key_file, format!("{key}\n"))?;
    }
    let bytes = read(&wasm)?;
    check_exports(&bytes)?;
    done(t);

    let t = step(format!("npm package: {}", pkg.display()));
    assemble(&glue, &npm, &pkg, &bytes)?;
    let sha = hex(&Sha256::digest(&bytes));
    write(&out.join("rolescope.wasm.sha256"), format!("{sha}  rolescope.wasm\n"))?;
    done(t);

    let t = step("smoke test: the optimized module loads in Node (node and web entries)");
    run(Command::new("node")
        .current_dir(root)
        .args(["-e", SMOKE, "--"])
        .arg(&pkg)
        .arg(root.join("tests/corpus/core")))?;
    done(t);

    let size = report_size(root, &out, &bytes, &sha)?;
    println!("\nxtask: wasm done in {:.1} s: {}", started.elapsed().as_secs_f64(), size);
    Ok(())
}

/// The template's version must be the workspace's (the package ships this workspace's engine).
fn check_template_version(root: &Path, npm: &Path) -> Result<()> {
    let manifest = fs::read_to_string(root.join("Cargo.toml")).context("reading Cargo.toml")?;
    let workspace = manifest
        .split("[workspace.package]")
        .nth(1)
        .and_then(|s| s.lines().find_map(|l| l.trim().strip_prefix("version = \"")))
        .map(|v| v.trim_end_matches('"'))
        .context("Cargo.toml: no [workspace.package] version")?;
    let template: serde_json::Value = serde_json::from_str(
        &fs::read_to_string(npm.join("package.json")).context("reading bindings/npm/package.json")?,
    )
    .context("parsing bindings/npm/package.json")?;
    let version = template.get("version").and_then(|v| v.as_str()).unwrap_or_default();
    if version == workspace {
        Ok(())
    } else {
        Err(fail(format!(
            "bindings/npm/package.json has version `{version}`, the workspace `{workspace}`: make them equal"
        )))
    }
}

/// Writes the package into a fresh folder, then moves it into place.
fn assemble(glue: &Path, npm: &Path, pkg: &Path, wasm: &[u8]) -> Result<()> {
    let tmp = pkg.with_file_name("pkg.tmp");
    remove_dir(&tmp)?;
    for (name, folder) in TARGETS {
        let dir = tmp.join(folder);
        fs::create_dir_all(&dir).context(format!("creating {}", dir.display()))?;
        for entry in fs::read_dir(glue.join(name)).context(format!("reading {}", glue.display()))? {
            let path = entry.context("reading the glue folder")?.path();
            let Some(file) = path.file_name() else { continue };
            if path.extension().is_some_and(|e| e == "wasm") {
                write(&dir.join(file), wasm)?;
            } else {
                fs::copy(&path, dir.join(file)).context(format!("copying {}", path.display()))?;
            }
        }
        // The nearest package.json says how Node reads the folder's .js files.
        let kind = if name == "nodejs" { "commonjs" } else { "module" };
        write(&dir.join("package.json"), format!("{{ \"type\": \"{kind}\" }}\n"))?;
    }
    for file in TEMPLATES {
        fs::copy(npm.join(file), tmp.join(file)).context(format!("copying bindings/npm/{file}"))?;
    }
    remove_dir(pkg)?;
    fs::rename(&tmp, pkg).context(format!("moving {} to {}", tmp.display(), pkg.display()))
}

/// Fails unless the module exports every `rs_*` function of the plain ABI.
fn check_exports(wasm: &[u8]) -> Result<()> {
    let exports = exports(wasm).context("reading the module's exports")?;
    let missing: Vec<&str> = ABI_EXPORTS.into_iter().filter(|e| !exports.iter().any(|x| x == e)).collect();
    if missing.is_empty() {
        println!("xtask: plain ABI: all {} rs_* exports present", ABI_EXPORTS.len());
        Ok(())
    } else {
        Err(fail(format!("the module lacks the plain-ABI exports {} (see bindings/ABI.md)", missing.join(", "))))
    }
}

/// Measures, prints and records the size (`size.json`); the budget is reported, not enforced.
fn report_size(root: &Path, out: &Path, wasm: &[u8], sha: &str) -> Result<String> {
    let file = out.join("rolescope.wasm");
    let raw = wasm.len() as u64;
    let gz = gzip9_len(&file)?;
    let within = gz <= BUDGET_GZIP;
    let json = serde_json::json!({
        "file": file.strip_prefix(root).unwrap_or(&file).display().to_string(),
        "sha256": sha,
        "raw_bytes": raw,
        "gzip9_bytes": gz,
        "budget_gzip_bytes": BUDGET_GZIP,
        "within_budget": within,
    });
    let text = serde_json::to_string_pretty(&json).context("size.json")?;
    write(&out.join("size.json"), format!("{text}\n"))?;
    let kib = |n: u64| n as f64 / 1024.0;
    let verdict = if within {
        "within the budget".to_owned()
    } else {
        format!("OVER THE BUDGET by {:.1} KiB (not enforced yet)", kib(gz - BUDGET_GZIP))
    };
    println!("\nxtask: module size: {raw} bytes raw ({:.1} KiB), {gz} bytes gzip -9 ({:.1} KiB)", kib(raw), kib(gz));
    println!("xtask: budget {BUDGET_GZIP} bytes ({:.0} KiB) gzipped: {verdict}", kib(BUDGET_GZIP));
    println!("xtask: sha256 {sha}");
    Ok(format!("{:.1} KiB gzipped, {verdict}", kib(gz)))
}

/// `gzip -9` output size (Node's zlib at level 9 when there is no gzip).
fn gzip9_len(file: &Path) -> Result<u64> {
    if let Ok(out) = Command::new("gzip").args(["-9", "-n", "-c"]).arg(file).output()
        && out.status.success()
    {
        return Ok(out.stdout.len() as u64);
    }
    let script = "process.stdout.write(String(require('zlib').gzipSync(require('fs').readFileSync(process.argv[1]), {level: 9}).length))";
    let file = file.to_string_lossy();
    capture("node", &["-e", script, &file]).and_then(|s| s.parse().ok()).context("cannot gzip the module (gzip, node)")
}

/// Export names of a WebAssembly module (section 7).
fn exports(wasm: &[u8]) -> Option<Vec<String>> {
    let mut r = Reader { bytes: wasm, pos: 0 };
    if r.take(8)? != b"\0asm\x01\0\0\0" {
        return None;
    }
    while r.pos < wasm.len() {
        let id = r.byte()?;
        let size = r.leb()?;
        let body = r.take(size)?;
        if id != 7 {
            continue;
        }
        let mut s = Reader { bytes: body, pos: 0 };
        let count = s.leb()?;
        let mut names = Vec::with_capacity(count);
        for _ in 0..count {
            let len = s.leb()?;
            names.push(String::from_utf8_lossy(s.take(len)?).into_owned());
            s.byte()?; // kind
            s.leb()?; // index
        }
        return Some(names);
    }
    Some(Vec::new())
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Option<u8> {
        let b = *self.bytes.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.bytes.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(s)
    }
    /// An unsigned LEB128 of at most 32 bits.
    fn leb(&mut self) -> Option<usize> {
        let mut v: u64 = 0;
        for shift in (0..35).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return usize::try_from(v).ok();
            }
        }
        None
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn read(path: &Path) -> Result<Vec<u8>> {
    fs::read(path).context(format!("reading {}", path.display()))
}

fn write(path: &Path, data: impl AsRef<[u8]>) -> Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).context(format!("creating {}", dir.display()))?;
    }
    fs::write(path, data).context(format!("writing {}", path.display()))
}

fn remove_dir(dir: &Path) -> Result<()> {
    match fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(fail(format!("removing {}: {e}", dir.display()))),
        _ => Ok(()),
    }
}

/// Loads the package's `node` entry and, with the same bytes, its `web` entry; compiles a corpus
/// policy and decides one request with each. Arguments: the package folder, a policy folder.
const SMOKE: &str = r#"
const fs = require('fs'), path = require('path');
const [pkg, dir] = process.argv.slice(1);
const files = fs.readdirSync(dir).sort()
  .filter((n) => /\.(ya?ml|json)$/.test(n) && !/_test\.(ya?ml|json)$/.test(n))
  .map((n) => ({ name: n, text: fs.readFileSync(path.join(dir, n), 'utf8') }));
const probe = { principal: 'nobody', action: 'view', resource: { kind: 'nothing', scope: 'x:y' } };
const node = require(pkg);
const a = node.Policy.compile(files).check(probe);
if (typeof a.allowed !== 'boolean' || typeof a.reason !== 'string') throw new Error('node entry: ' + JSON.stringify(a));
import(path.join(pkg, 'web', 'rolescope_wasm.js')).then((web) => {
  web.initSync({ module: fs.readFileSync(path.join(pkg, 'web', 'rolescope_wasm_bg.wasm')) });
  const b = web.Policy.compile(files).check(probe);
  if (JSON.stringify(a) !== JSON.stringify(b)) throw new Error('web entry: ' + JSON.stringify(b));
  console.log(`xtask: loads in Node ${process.version} (node and web entries): ${JSON.stringify(a)}`);
}).catch((e) => { console.error(e); process.exit(1); });
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_export_names() {
        // (module (func (export "rs_a")) (memory (export "m") 1))
        let wasm: &[u8] = &[
            0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, // header
            1, 4, 1, 0x60, 0, 0, // type section: () -> ()
            3, 2, 1, 0, // function section
            5, 3, 1, 0, 1, // memory section
            7, 12, 2, 4, b'r', b's', b'_', b'a', 0, 0, 1, b'm', 2, 0, // export section
            10, 4, 1, 2, 0, 0x0b, // code section
        ];
        assert_eq!(exports(wasm), Some(vec!["rs_a".to_owned(), "m".to_owned()]));
        assert_eq!(exports(b"not wasm"), None);
        assert!(check_exports(wasm).is_err());
    }
}
