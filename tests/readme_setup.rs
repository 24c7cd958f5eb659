//! README's two set-up commands, as written: the tool's (`cargo run --release`) and the test
//! command, which must install what the tests need (tmux, for `tests/tui_tmux.rs`; munge and
//! Slurm, for `tests/slurm.rs`) and be exactly what CI (`.ci/run`) runs, so that a fresh
//! machine that follows README passes.

use std::path::Path;

fn read(rel: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(rel))
        .unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The indented command lines of README's "Set-up on a fresh machine" section.
fn setup_commands(readme: &str) -> Vec<String> {
    let start = readme
        .find("## Set-up on a fresh machine")
        .expect("README has its set-up section");
    let section = &readme[start..];
    let end = section[3..].find("\n#").map_or(section.len(), |i| i + 3);
    section[..end]
        .lines()
        .filter(|l| l.starts_with("    ") && !l.trim().is_empty())
        .map(|l| l.trim().to_string())
        .collect()
}

#[test]
fn readmes_setup_commands_are_the_tool_and_the_script_ci_runs() {
    let cmds = setup_commands(&read("README.md"));
    assert_eq!(
        cmds,
        ["cargo run --release", "bash scripts/test"],
        "{cmds:?}"
    );
    // CI runs exactly README's test command.
    let ci = read(".ci/run");
    let ci_cmds: Vec<&str> = ci
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter(|l| !l.starts_with("set ") && !l.starts_with("cd "))
        .collect();
    assert_eq!(ci_cmds, ["bash scripts/test"], ".ci/run: {ci_cmds:?}");
    // The script installs tmux (tests/tui_tmux.rs), munge and Slurm (tests/slurm.rs) when a
    // command of theirs is missing, then runs the tests in release.
    let script = read("scripts/test");
    assert!(
        script.contains("command -v \"$cmd\"") && script.contains("apt-get install -y -qq \"$@\""),
        "scripts/test checks for a command and installs its package"
    );
    for need in [
        "need tmux tmux",
        "need munged munge",
        "need slurmctld slurm-wlm",
        "need sbatch slurm-wlm",
    ] {
        assert!(
            script.lines().any(|l| l.trim() == need),
            "scripts/test lacks `{need}`"
        );
    }
    assert!(
        script
            .lines()
            .any(|l| l.trim() == "cargo test --release \"$@\""),
        "scripts/test runs cargo test --release"
    );
    // The extraction is not vacuous: a changed command is seen.
    let other = read("README.md").replacen("    bash scripts/test", "    cargo test --release", 1);
    assert_ne!(setup_commands(&other)[1], "bash scripts/test");
}
