//! A real Slurm, not a mock: starts a private single-node Slurm (munge, slurmctld, slurmd, all
//! under a temporary folder, on free ports) and runs `scripts/slurm/patch-array.sbatch`, the
//! array script README tells users to submit, through `sbatch --wait`; then `headhunt merge`
//! must give back exactly what one unsharded `headhunt patch` writes.
//!
//! Needs root (slurmd runs jobs as their user, and munge's checks want the daemons' owner) and
//! Debian's `slurm-wlm` and `munge`, which `scripts/test` installs. Without root the test says
//! loudly that it skipped; as root without the daemons it fails, naming `scripts/test`.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The daemons of one private Slurm; dropping it stops them by their pid files (a failed
/// assertion unwinds through the drop, so a failing test leaves no daemon behind).
struct Slurm {
    dir: PathBuf,
    conf: PathBuf,
    /// (pid file, process name) of each daemon started, in start order.
    daemons: Vec<(PathBuf, &'static str)>,
}

/// The commands the test needs, from PATH or the sbin folders (root's PATH may lack them).
const NEEDED: &[&str] = &[
    "munged",
    "slurmctld",
    "slurmd",
    "sbatch",
    "sinfo",
    "scancel",
];

fn find(cmd: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/local/sbin"].map(PathBuf::from))
        .map(|d| d.join(cmd))
        .find(|p| p.is_file())
}

fn tool(cmd: &str) -> PathBuf {
    find(cmd).unwrap_or_else(|| panic!("{cmd} not found"))
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// A Slurm to run jobs on, or `None` (after a loud note) when this user cannot start one.
fn slurm_or_skip(test: &str) -> Option<Slurm> {
    if !is_root() {
        eprintln!(
            "\n**********\nSKIPPED {test}: not root. A private Slurm needs root (slurmd starts \
             jobs as their user); run the test suite as root (CI does) to run it.\n**********\n"
        );
        return None;
    }
    let missing: Vec<&str> = NEEDED
        .iter()
        .copied()
        .filter(|c| find(c).is_none())
        .collect();
    assert!(
        missing.is_empty(),
        "tests/slurm.rs needs {}: run `bash scripts/test`, which installs Debian's slurm-wlm \
         and munge where they are missing",
        missing.join(", ")
    );
    Some(Slurm::start())
}

/// A port nobody listens on now (the kernel's choice; the daemons bind it a moment later).
fn free_port() -> u16 {
    std::net::TcpListener::bind("0.0.0.0:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn short_hostname() -> String {
    let out = Command::new("hostname").arg("-s").output().unwrap();
    assert!(out.status.success(), "hostname -s failed");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Runs a command that must succeed (a daemon that forks into the background).
fn start_daemon(cmd: &mut Command, what: &str) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} did not start: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Slurm {
    fn start() -> Slurm {
        let dir = temp_dir("slurm");
        for sub in ["munge", "state", "spool", "log", "jobs"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        let mut s = Slurm {
            conf: dir.join("slurm.conf"),
            dir,
            daemons: Vec::new(),
        };
        s.start_munge();
        std::fs::write(&s.conf, s.config()).unwrap();
        for daemon in ["slurmctld", "slurmd"] {
            s.daemons
                .push((s.dir.join(format!("{daemon}.pid")), daemon));
            start_daemon(Command::new(tool(daemon)).arg("-f").arg(&s.conf), daemon);
        }
        s.wait_idle();
        s
    }

    /// munged on a private socket with a private key: a munge the machine already runs (or a
    /// second test) is not touched.
    fn start_munge(&mut self) {
        use std::os::unix::fs::PermissionsExt;
        let m = self.dir.join("munge");
        std::fs::set_permissions(&m, std::fs::Permissions::from_mode(0o700)).unwrap();
        let key = m.join("munge.key");
        let mut bytes = vec![0u8; 1024];
        rand::fill(&mut bytes[..]);
        std::fs::write(&key, bytes).unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o400)).unwrap();
        let pid = m.join("munged.pid");
        self.daemons.push((pid.clone(), "munged"));
        let arg = |flag: &str, p: PathBuf| format!("--{flag}={}", p.display());
        start_daemon(
            Command::new(tool("munged")).args([
                "--force".to_string(),
                arg("socket", m.join("munge.socket")),
                arg("key-file", key),
                arg("log-file", m.join("munged.log")),
                arg("pid-file", pid),
                arg("seed-file", m.join("munged.seed")),
            ]),
            "munged",
        );
    }

    /// One node (this machine, with its real CPU count), one partition, no accounting; the
    /// facts of issue #25 (root, linuxproc, no task plugin, cons_tres by CPU).
    fn config(&self) -> String {
        let host = short_hostname();
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let d = self.dir.display();
        format!(
            "ClusterName=headhunt\n\
             SlurmctldHost={host}(127.0.0.1)\n\
             SlurmUser=root\nSlurmdUser=root\n\
             AuthType=auth/munge\nCredType=cred/munge\n\
             AuthInfo=socket={d}/munge/munge.socket\n\
             SlurmctldPort={}\nSlurmdPort={}\n\
             StateSaveLocation={d}/state\nSlurmdSpoolDir={d}/spool\n\
             SlurmctldPidFile={d}/slurmctld.pid\nSlurmdPidFile={d}/slurmd.pid\n\
             SlurmctldLogFile={d}/log/slurmctld.log\nSlurmdLogFile={d}/log/slurmd.log\n\
             ProctrackType=proctrack/linuxproc\nTaskPlugin=task/none\n\
             SelectType=select/cons_tres\nSelectTypeParameters=CR_CPU\n\
             SchedulerType=sched/backfill\nMpiDefault=none\nReturnToService=2\n\
             JobCompType=jobcomp/none\nAccountingStorageType=accounting_storage/none\n\
             JobAcctGatherType=jobacct_gather/none\n\
             NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} State=UNKNOWN\n\
             PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP\n",
            free_port(),
            free_port(),
        )
    }

    /// A Slurm client command pointed at this cluster.
    fn client(&self, cmd: &str) -> Command {
        let mut c = Command::new(tool(cmd));
        c.env("SLURM_CONF", &self.conf);
        c
    }

    /// Waits until the node takes jobs.
    fn wait_idle(&self) {
        let started = Instant::now();
        loop {
            let out = self.client("sinfo").args(["-h", "-o", "%t"]).output();
            if let Ok(o) = &out {
                if String::from_utf8_lossy(&o.stdout).trim() == "idle" {
                    return;
                }
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the private Slurm's node is not idle after 60 s (sinfo: {:?}); logs:\n{}",
                out.map(|o| String::from_utf8_lossy(&o.stdout).to_string()),
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// The tails of the daemons' and the jobs' logs (for a failure message).
    fn logs(&self) -> String {
        let mut files: Vec<PathBuf> = ["log", "jobs", "munge"]
            .iter()
            .flat_map(|d| std::fs::read_dir(self.dir.join(d)).into_iter().flatten())
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "log" || e == "out"))
            .collect();
        files.sort();
        let mut text = String::new();
        for f in files {
            let body = std::fs::read_to_string(&f).unwrap_or_default();
            let lines: Vec<&str> = body.lines().collect();
            let tail = lines[lines.len().saturating_sub(15)..].join("\n");
            text += &format!("--- {}\n{tail}\n", f.display());
        }
        text
    }

    /// `sbatch --wait` of `script` with `args`, `env` and an array; the job's exit status is
    /// sbatch's. Killed (and the test failed) after `limit`.
    fn run_array(
        &self,
        script: &Path,
        array: &str,
        env: &[(&str, &Path)],
        args: &[&str],
    ) -> std::process::Child {
        let mut c = self.client("sbatch");
        c.arg("--wait")
            .arg(format!("--array={array}"))
            .arg(format!("--output={}/jobs/%A_%a.out", self.dir.display()))
            .arg(format!("--chdir={}", self.dir.display()))
            .arg(script)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            c.env(k, v);
        }
        c.spawn().expect("sbatch")
    }

    /// Waits for an `sbatch --wait` child; panics with the logs when it fails or hangs.
    fn wait(&self, mut child: std::process::Child, what: &str, limit: Duration) {
        let started = Instant::now();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                let out = child.wait_with_output().unwrap();
                assert!(
                    status.success(),
                    "{what}: sbatch --wait exited {status}: {}{}\nlogs:\n{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr),
                    self.logs()
                );
                return;
            }
            if started.elapsed() > limit {
                let _ = child.kill();
                panic!("{what}: not done after {limit:?}; logs:\n{}", self.logs());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// Whether process `pid` still runs as `name` (a pid file left behind may name a pid reused by
/// another process: that one is never signalled).
fn running_as(pid: i32, name: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .is_ok_and(|comm| comm.trim_end().starts_with(name))
}

impl Drop for Slurm {
    fn drop(&mut self) {
        // Jobs still running (a failed test) end with the cluster.
        let _ = self.client("scancel").args(["--user", "root"]).output();
        for (file, name) in self.daemons.iter().rev() {
            let Some(pid) = std::fs::read_to_string(file)
                .ok()
                .and_then(|s| s.trim().parse::<i32>().ok())
            else {
                continue;
            };
            if !running_as(pid, name) {
                continue;
            }
            // SAFETY: kill has no memory preconditions; the pid is our daemon's (checked above).
            unsafe { libc::kill(pid, libc::SIGTERM) };
            let started = Instant::now();
            while running_as(pid, name) && started.elapsed() < Duration::from_secs(10) {
                std::thread::sleep(Duration::from_millis(100));
            }
            if running_as(pid, name) {
                eprintln!("{name} (pid {pid}) ignored SIGTERM for 10 s: SIGKILL");
                // SAFETY: as above.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        // A failed test keeps the folder (its logs are in the message too).
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// The array script README tells users to submit.
fn array_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/slurm/patch-array.sbatch")
}

/// `headhunt` with `args`, which must succeed.
fn headhunt(args: &[&str]) {
    let out = Command::new(bin()).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "headhunt {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The merged result equals the unsharded one: every r, every patched metric, the baselines,
/// the rows computed, and the per-example .npy files byte for byte.
fn assert_same_result(merged: &Path, unsharded: &Path) {
    use headhunt::results::{per_example_paths, RunRecord};
    let (m, u) = (
        RunRecord::load(merged).unwrap(),
        RunRecord::load(unsharded).unwrap(),
    );
    assert!(m.complete && u.complete);
    assert_eq!(m.rows_computed, u.rows_computed);
    assert_eq!(m.relative, u.relative, "r");
    assert_eq!(m.patched_logit_diff, u.patched_logit_diff, "patched metric");
    assert_eq!(
        (m.normal_logit_diff, m.contrast_logit_diff),
        (u.normal_logit_diff, u.contrast_logit_diff),
        "baselines"
    );
    assert_eq!(m.receiver, u.receiver);
    for (a, b) in per_example_paths(merged)
        .iter()
        .zip(per_example_paths(unsharded))
    {
        let (x, y) = (std::fs::read(a).unwrap(), std::fs::read(&b).unwrap());
        assert!(x == y, "{} differs from {}", a.display(), b.display());
    }
}

/// Task k of array `A-B` saved shard k - A of B - A + 1, a part of the sweep, in `parts`.
fn assert_parts(parts: &Path, array: &str) {
    let (a, b) = array.split_once('-').unwrap();
    let (a, b): (usize, usize) = (a.parse().unwrap(), b.parse().unwrap());
    let n = b - a + 1;
    for k in a..=b {
        let file = parts.join(format!("shard-{k}.json"));
        let text =
            std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["complete"], false, "{}: a part", file.display());
        assert_eq!(
            (v["shard"]["index"].as_u64(), v["shard"]["count"].as_u64()),
            (Some((k - a) as u64), Some(n as u64)),
            "{}",
            file.display()
        );
    }
}

#[test]
fn an_array_job_of_shards_merges_into_the_unsharded_result() {
    let Some(slurm) = slurm_or_skip("an_array_job_of_shards_merges_into_the_unsharded_result")
    else {
        return;
    };
    let model = fixture("tiny-llama");
    let data = model.join("addition.jsonl");
    // The last layer's resid_post over 4 tasks from 0; a head's value input over 3 tasks
    // numbered from 1 (SLURM_ARRAY_TASK_MIN), with a flag passed through the script.
    let cases: [(&str, Option<&str>, &str, &[&str]); 2] = [
        ("resid", None, "0-3", &[]),
        ("head", Some("3.1.v"), "1-3", &["--batch-size", "3"]),
    ];
    let bin_path = bin();
    let mut jobs = Vec::new();
    for (name, receiver, array, extra) in cases {
        let parts = slurm.dir.join(format!("parts-{name}"));
        let mut env: Vec<(&str, &Path)> =
            vec![("MODEL", &model), ("DATA", &data), ("HEADHUNT", &bin_path)];
        let parts_env = parts.clone();
        let rec = receiver.map(PathBuf::from);
        if let Some(r) = &rec {
            env.push(("RECEIVER", r));
        }
        env.push(("PARTS", &parts_env));
        jobs.push((
            name,
            parts,
            slurm.run_array(&array_script(), array, &env, extra),
        ));
    }
    for (name, parts, job) in jobs {
        slurm.wait(job, name, Duration::from_secs(300));
        let (receiver, extra) = cases
            .iter()
            .find(|c| c.0 == name)
            .map(|c| (c.1, c.3))
            .unwrap();
        assert_parts(&parts, cases.iter().find(|c| c.0 == name).unwrap().2);
        let merged = slurm.dir.join(format!("merged-{name}.json"));
        headhunt(&[
            "merge",
            parts.to_str().unwrap(),
            "--out",
            merged.to_str().unwrap(),
        ]);
        let unsharded = slurm.dir.join(format!("unsharded-{name}.json"));
        let mut args = vec![
            "patch",
            "--model",
            model.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
            "--quiet",
            "--out",
            unsharded.to_str().unwrap(),
        ];
        if let Some(r) = receiver {
            args.extend(["--receiver", r]);
        }
        args.extend(extra);
        headhunt(&args);
        assert_same_result(&merged, &unsharded);
    }
}
