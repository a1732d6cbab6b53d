//! Compiles the suites that need real servers (`cfg(chronos_services)`) only where they can
//! run: with `CHRONOS_TEST_SERVICES` set (`cargo xtask test` does) or under `CI=true`, where
//! a missing server must fail. Elsewhere their `tests/services.rs` reports them as ignored.
//! The build script of every crate with server suites (`build = "../build/services_cfg.rs"`).

fn main() {
    println!("cargo::rustc-check-cfg=cfg(chronos_services)");
    println!("cargo::rerun-if-env-changed=CHRONOS_TEST_SERVICES");
    println!("cargo::rerun-if-env-changed=CI");
    let set = |v: &str| std::env::var(v).ok().filter(|s| !s.is_empty());
    if set("CHRONOS_TEST_SERVICES").is_some() || set("CI").as_deref() == Some("true") {
        println!("cargo::rustc-cfg=chronos_services");
    }
}
