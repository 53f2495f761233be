//! The test-tool opt-out. A few tests drive outside tools (Debian's chromium, the official Feishu
//! SDK, Pillow as the reference decoder) and fail when the tool is missing, so a green run has really used them. A developer
//! without a tool sets `FACESYNC_SKIP_TOOLS=chromium,lark-oapi`; the named tests are then compiled
//! as ignored, so `cargo test` lists them as skipped in its summary. CI (`CI=true`) ignores the
//! opt-out: there every test runs.

const TOOLS: &[(&str, &str)] = &[
    ("chromium", "skip_chromium"),
    ("lark-oapi", "skip_lark_oapi"),
    ("pillow", "skip_pillow"),
];

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=FACESYNC_SKIP_TOOLS");
    println!("cargo::rerun-if-env-changed=CI");
    for (_, cfg) in TOOLS {
        println!("cargo::rustc-check-cfg=cfg({cfg})");
    }
    let named = std::env::var("FACESYNC_SKIP_TOOLS").unwrap_or_default();
    let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    for tool in named.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        let Some((_, cfg)) = TOOLS.iter().find(|(name, _)| *name == tool) else {
            let known: Vec<_> = TOOLS.iter().map(|(name, _)| *name).collect();
            panic!(
                "FACESYNC_SKIP_TOOLS names `{tool}`, which no test uses; the tools are: {}",
                known.join(", ")
            );
        };
        if ci {
            println!("cargo::warning=FACESYNC_SKIP_TOOLS is ignored in CI: the {tool} test runs");
        } else {
            println!("cargo::rustc-cfg={cfg}");
        }
    }
}
