//! `rolescope keygen`: write a new ed25519 key pair for signing bundles.

use std::io::Write as _;
use std::path::Path;

use crate::args::KeygenArgs;
use crate::discover::display;
use crate::emit;
use crate::error::{CliError, Exit};

/// Create `path` (which must not exist yet) holding `text`; `private` files are readable by
/// their owner only.
fn create(path: &Path, text: &str, private: bool) -> Result<(), CliError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    if private {
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut file = options.open(path).map_err(|source| CliError::Write { path: path.to_path_buf(), source })?;
    file.write_all(text.as_bytes()).map_err(|source| CliError::Write { path: path.to_path_buf(), source })
}

pub(crate) fn run(args: &KeygenArgs) -> Result<Exit, CliError> {
    if args.name.is_empty() || args.name.contains(['/', '\\']) {
        return Err(CliError::usage(format!("`{}` is not a file name", args.name)));
    }
    let private_path = args.out.join(format!("{}.key.pem", args.name));
    let public_path = args.out.join(format!("{}.pub.pem", args.name));
    for p in [&private_path, &public_path] {
        if p.exists() {
            return Err(CliError::usage_with(
                format!("`{}` already exists", display(p)),
                "keys are never overwritten: remove the old pair or choose another --name",
            ));
        }
    }
    let key = rolescope_sign::generate().map_err(|e| CliError::usage(e.to_string()))?;
    let private = rolescope_sign::private_key_to_pem(&key).map_err(|e| CliError::usage(e.to_string()))?;
    let public = rolescope_sign::public_key_to_pem(&key.verifying_key()).map_err(|e| CliError::usage(e.to_string()))?;
    std::fs::create_dir_all(&args.out).map_err(|source| CliError::Write { path: args.out.clone(), source })?;
    create(&private_path, &private, true)?;
    create(&public_path, &public, false)?;
    emit(&format!(
        "wrote key pair {}\n  private: {} (keep it secret; `rolescope build --sign`)\n  public:  {} (give it to the hosts that verify)\n",
        rolescope_sign::key_id(&key.verifying_key()),
        display(&private_path),
        display(&public_path),
    ))?;
    Ok(Exit::Ok)
}
