// Finds libember: EMBER_LIB_DIR (a directory holding libember.so), else pkg-config's `--libs ember`.
use std::env;
use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=EMBER_LIB_DIR");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_LIBDIR");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_SYSROOT_DIR");
    println!("cargo:rerun-if-changed=build.rs");

    if let Some(dir) = env::var_os("EMBER_LIB_DIR") {
        let dir = Path::new(&dir);
        if !dir.is_dir() {
            panic!("EMBER_LIB_DIR={} is not a directory (it must hold libember.so)", dir.display());
        }
        println!("cargo:rustc-link-search=native={}", dir.display());
        println!("cargo:rustc-link-lib=dylib=ember");
        println!("cargo:lib_dir={}", dir.display());
        return;
    }

    match Command::new("pkg-config").args(&["--libs", "ember"]).output() {
        Ok(out) if out.status.success() => {
            let text = String::from_utf8_lossy(&out.stdout);
            for flag in text.split_whitespace() {
                if let Some(dir) = flag.strip_prefix("-L") {
                    println!("cargo:rustc-link-search=native={}", dir);
                    println!("cargo:lib_dir={}", dir);
                }
            }
            // Only ember itself: the C++ runtime comes with the shared library's own dependencies.
            println!("cargo:rustc-link-lib=dylib=ember");
        }
        Ok(out) => panic!(
            "\n\nember: cannot find libember. Set EMBER_LIB_DIR to the directory holding libember.so, or \
             install ember so that `pkg-config --libs ember` works (PKG_CONFIG_PATH may need the directory \
             of ember.pc).\npkg-config said: {}\n",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(e) => panic!(
            "\n\nember: cannot find libember. Set EMBER_LIB_DIR to the directory holding libember.so \
             (pkg-config could not be run: {}).\n",
            e
        ),
    }
}
