//! `berth`: argument parsing only; the work is in the library.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use berth_init::pid1::Power;
use clap::{Parser, Subcommand, ValueEnum};

#[global_allocator]
static ALLOCATOR: berth_init::alloc::Alloc = berth_init::alloc::Alloc;

#[derive(Parser, Debug)]
#[command(
    name = "berth",
    version,
    about = "A declarative host for containers",
    long_about = "berth reads a KDL description of a host — containers, networks, volumes, limits — \
evaluates it into a dependency graph and runs it.\n\n\
Exit status: 0 success, 1 invalid input (diagnostics on stderr), 2 usage error.",
    after_help = "Run `berth help VERB` or `berth VERB --help` for the details of a verb."
)]
struct Cli {
    /// When to colour diagnostics.
    #[arg(long, global = true, value_enum, default_value_t = Color::Auto)]
    color: Color,
    #[command(subcommand)]
    verb: Verb,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum Color {
    Auto,
    Always,
    Never,
}

#[derive(Subcommand, Debug)]
// Each verb's arguments are built only when that verb is parsed or its help shown: a
// short command (`berth run`, `berth status`) does not build the other 30 verbs' (about
// a tenth of `berth --version`'s time).
#[command(defer = true)]
enum Verb {
    /// Start every container of a host in dependency order and supervise them in the
    /// foreground until SIGTERM/SIGINT or `berth down`, then stop them in reverse order.
    #[command(
        after_help = "berth makes itself a child subreaper; under systemd (Type=notify) it sends READY=1 \
once every container is up. Logs go to STATE_DIR/logs/NAME.log; see `berth status`, `berth logs`.\n\n\
SIGHUP reads FILE again and switches to it as `berth switch FILE` would (a new generation, reason \
`sighup`; unchanged containers keep running). With --watch (or `host { watch #true }`) every save of \
FILE or of a file it imports does the same (reason `watch`), 50 ms after the files are quiet. An \
invalid FILE changes nothing: its diagnostics go to berth's log and `berth status` shows them until \
a valid edit.\n\n\
Examples:\n  berth up examples/demo.kdl\n  berth up --watch /etc/berth/host.kdl"
    )]
    Up {
        /// The host file (with its imports).
        file: PathBuf,
        /// Where generations, volumes, logs and checkpoints live.
        #[arg(long, value_name = "DIR", default_value = "/var/lib/berth")]
        state_dir: PathBuf,
        /// The control socket the CLI talks to.
        #[arg(long, value_name = "PATH", default_value = "/run/berth/control.sock")]
        socket: PathBuf,
        /// Watch FILE and its imports (inotify) and switch to each valid edit.
        #[arg(long)]
        watch: bool,
    },
    /// Run as the machine's init: mount the API file systems, load the host's kernel
    /// modules, mount its file systems, then supervise its containers until a reboot,
    /// power-off or halt. berth does this by itself when started as PID 1.
    #[command(
        after_help = "Never exits: a panic reboots (or starts the rescue shell, `on-panic \"shell\"`); an \
invalid host starts the rescue shell of the image's boot record, if any.\n\n\
Kernel command line: berth.config=PATH boots another host file of the image."
    )]
    Init {
        /// The host file (default: the one `berth build` put in the image).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Build a bootable image of a host: an initramfs with berth as /init, the host
    /// file, its kernel modules and the containers' root file systems.
    #[command(
        after_help = "Writes DIR/initramfs.gz, DIR/vmlinuz and, with --disk, DIR/disk.img (ext4, \
kept if it exists). The berth running this command is the one in the image, unless --berth names another.\n\n\
Example:\n  berth build host.kdl --kernel /boot/vmlinuz-$(uname -r) -o image/"
    )]
    Build {
        file: PathBuf,
        #[command(flatten)]
        image: ImageArgs,
        /// Where to write the image.
        #[arg(short = 'o', long = "out", value_name = "DIR")]
        out: PathBuf,
    },
    /// Build the image of a host and boot it in qemu, the console on this terminal
    /// (KVM where /dev/kvm works, software emulation otherwise or with --tcg).
    #[command(
        after_help = "Quit qemu with ctrl-a x. Example:\n  berth vm host.kdl --kernel /boot/vmlinuz-$(uname -r) --add /bin/busybox"
    )]
    Vm {
        file: PathBuf,
        #[command(flatten)]
        image: ImageArgs,
        /// Where to write the image (default: a directory per host file in the
        /// temporary directory, so the state disk survives between runs).
        #[arg(short = 'o', long = "out", value_name = "DIR")]
        out: Option<PathBuf>,
        /// Memory of the machine, in MiB.
        #[arg(long, default_value_t = 1024)]
        memory: u32,
        /// Number of CPUs.
        #[arg(long, default_value_t = 2)]
        cpus: u32,
        /// Extra kernel command line.
        #[arg(long, value_name = "ARGS", default_value = "")]
        append: String,
        /// Software emulation (TCG) even where KVM works (by default KVM is used when
        /// /dev/kvm opens and the CPU has vmx or svm).
        #[arg(long)]
        tcg: bool,
        /// Exit qemu when the guest reboots instead of booting again.
        #[arg(long)]
        no_reboot: bool,
    },
    /// Stop every container and restart the machine (berth as PID 1).
    Reboot {
        /// The control socket of the running berth.
        #[arg(long, value_name = "PATH", default_value = berth_init::control::DEFAULT_SOCKET)]
        socket: PathBuf,
    },
    /// Stop every container and power the machine off (berth as PID 1).
    Poweroff {
        /// The control socket of the running berth.
        #[arg(long, value_name = "PATH", default_value = berth_init::control::DEFAULT_SOCKET)]
        socket: PathBuf,
    },
    /// Stop every container and halt the machine (berth as PID 1).
    Halt {
        /// The control socket of the running berth.
        #[arg(long, value_name = "PATH", default_value = berth_init::control::DEFAULT_SOCKET)]
        socket: PathBuf,
    },
    /// Run one container of a host once, in the foreground, with this terminal's stdio.
    #[command(
        long_about = "Run one container of a host once, in the foreground.\n\n\
The container is created exactly as `berth up` creates it — namespaces, rootfs, mounts, user, \
capabilities, cgroup limits — but gets berth's stdin, stdout and stderr, is not supervised \
(no restart, readiness, health checks or log file) and is not started after its dependencies. \
SIGINT, SIGTERM, SIGHUP and SIGQUIT are passed on to the container's init. It takes no lock, \
so it can run beside a `berth up` of the same host (its cgroup is NAME.run-PID).\n\n\
Exit status: the container's exit code, 128+N if signal N killed it, 1 if it could not be created.",
        after_help = "Examples:\n  berth run examples/demo.kdl web\n  berth run examples/demo.kdl web -- /bin/busybox ls /tmp"
    )]
    Run {
        /// The host file (with its imports).
        file: PathBuf,
        /// The container to run.
        name: String,
        /// Run this instead of the container's `exec`.
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "CMD"
        )]
        command: Vec<String>,
        /// Where volumes live (as for `berth up`).
        #[arg(long, value_name = "DIR", default_value = "/var/lib/berth")]
        state_dir: PathBuf,
    },
    /// List the generations (every configuration applied) under a state dir.
    #[command(
        after_help = "Each generation keeps the evaluated host, its hash, copies of the source files, \
the time, the reason (boot, switch, rollback) and the git commit when the host file is in a git \
checkout. `current` marks what runs, `booted` what starts at boot.\n\n\
Examples:\n  berth generations\n  berth generations --json | jq '.[-1].hash'"
    )]
    Generations {
        /// JSON: an array of {number, hash, time, reason, root, origin, git, current, booted,
        /// confirm_deadline (seconds since the epoch, only on a switch waiting for `berth confirm`)}.
        #[arg(long)]
        json: bool,
        #[arg(long, value_name = "DIR", default_value = "/var/lib/berth")]
        state_dir: PathBuf,
    },
    /// Delete old generations, keeping the newest N (never the current or booted one).
    Gc {
        /// How many of the newest generations to keep.
        #[arg(long, value_name = "N")]
        keep: usize,
        #[arg(long, value_name = "DIR", default_value = "/var/lib/berth")]
        state_dir: PathBuf,
    },
    /// Show what applying a host file would change, against the current generation.
    #[command(
        long_about = "Show what applying a host file would change, against the current generation.\n\n\
Each step names a node, its action and the option paths that changed (old -> new) with the apply \
class that decided the action: live (written in place, no restart), reload (the reload signal), \
restart, recreate (new namespaces or root file system), reboot (applied at the next boot); create \
and remove for nodes that appear or go. Dependents follow: members of a recreated network or \
volume are recreated, containers that `requires` a restarted one restart. Unchanged nodes do not \
appear. Steps are in the order they apply; steps of one layer are independent.\n\n\
The JSON form is stable: {\"v\": 1, \"from\": HASH|null, \"to\": HASH, \"steps\": [{\"kind\", \
\"name\", \"action\", \"layer\", \"reasons\", \"changes\": [{\"path\", \"old\", \"new\", \"class\"}]}]}.",
        after_help = "Examples:\n  berth plan examples/demo.kdl\n  berth plan --json host.kdl | jq '.steps[].action'"
    )]
    Plan {
        /// The host file (with its imports).
        file: PathBuf,
        #[arg(long)]
        json: bool,
        #[arg(long, value_name = "DIR", default_value = "/var/lib/berth")]
        state_dir: PathBuf,
    },
    /// Apply a host file to the running berth with as little disruption as the changes allow.
    #[command(
        long_about = "Apply a host file to the running berth (`berth up` or PID 1) with as little disruption \
as the changes allow.\n\n\
berth evaluates FILE, plans against the current generation (what `berth plan` shows), records FILE \
as a new generation and applies the plan: unchanged containers keep running untouched (same pid); \
live changes (limits, restart policy, readiness, …) are written in place; reload sends the reload \
signal; restart and recreate stop the container and start it again with its new definition, after \
the containers it starts after; new containers start; removed ones stop. An invalid FILE changes \
nothing. Networks follow too: a network whose subnet, gateway or bridge changes is adjusted \
in place and only its members are recreated; port forwards, NAT and MTU are live. Volumes get \
their directory, owner and mode (a removed volume's data is kept). Host settings of class \
reboot are reported and wait for the next boot.\n\n\
A plain switch also makes FILE the boot default (`booted`), so a restarted berth or a reboot starts \
it. --test applies FILE now but keeps the boot default. --confirm-within applies FILE now and waits \
for `berth confirm`: if it does not come in time (the change cut you off, say), berth switches back \
to the generation before by itself; a restart or reboot in between starts the generation before too.\n\n\
Every switch is journaled (STATE/journal): a berth that dies mid-switch finishes it when it starts \
again (or rolls it back, for --test and --confirm-within), and says which in its log.",
        after_help = "Examples:\n  berth switch host.kdl --dry-run\n  berth switch host.kdl\n  \
berth switch host.kdl --confirm-within 2m && berth confirm"
    )]
    Switch {
        /// The host file (with its imports).
        file: PathBuf,
        /// Print the plan and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Apply now, but keep the boot default as it is.
        #[arg(long, conflicts_with = "boot")]
        test: bool,
        /// Make it the boot default without applying it now.
        #[arg(long)]
        boot: bool,
        /// Switch back to the generation before unless `berth confirm` comes within
        /// DURATION (e.g. 30s, 5m).
        #[arg(long, value_name = "DURATION", value_parser = parse_duration, conflicts_with_all = ["boot", "test"])]
        confirm_within: Option<std::time::Duration>,
        /// The control socket of the running berth.
        #[arg(long, value_name = "PATH", default_value = berth_init::control::DEFAULT_SOCKET)]
        socket: PathBuf,
    },
    /// Switch back to the previous generation, or to generation N.
    #[command(
        long_about = "Switch back to the previous generation, or to generation N, with the same \
minimal-disruption rules as `berth switch` (only what differs is touched).\n\n\
The previous generation is the newest one before the current one whose hash differs from it. The \
generation is evaluated again from the sources stored with it, so the host gets back exactly that \
graph (same hash), whatever happened to the files since. A rollback is recorded as a new generation \
(reason `rollback`) and becomes the boot default. It also ends a switch waiting for `berth confirm`.",
        after_help = "Examples:\n  berth rollback\n  berth rollback 3 --dry-run\n  berth generations"
    )]
    Rollback {
        /// The generation to go back to (default: the previous one).
        generation: Option<u64>,
        /// Print the plan and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// The control socket of the running berth.
        #[arg(long, value_name = "PATH", default_value = berth_init::control::DEFAULT_SOCKET)]
        socket: PathBuf,
    },
    /// Keep a switch made with `berth switch --confirm-within`.
    #[command(
        long_about = "Keep a switch made with `berth switch --confirm-within`: it becomes the boot \
default and berth no longer switches back.",
        after_help = "Exit status: 0 confirmed, 1 nothing was waiting for a confirmation or berth is not running."
    )]
    Confirm {
        /// The control socket of the running berth.
        #[arg(long, value_name = "PATH", default_value = berth_init::control::DEFAULT_SOCKET)]
        socket: PathBuf,
    },
    /// Show the option-level differences between two generations.
    Diff {
        /// The older generation.
        a: u64,
        /// The newer generation.
        b: u64,
        #[arg(long)]
        json: bool,
        #[arg(long, value_name = "DIR", default_value = "/var/lib/berth")]
        state_dir: PathBuf,
    },
    /// Set an option in a host file, keeping its comments and formatting.
    #[command(
        long_about = "Set an option in a host file, keeping its comments and formatting.\n\n\
PATH is what `berth why` takes: host.OPTION or KIND.NAME.OPTION, e.g. container.web.limits.memory. \
An existing definition in FILE keeps its place and gets the new value; otherwise the option is \
added to the entity's block (the entity is appended when FILE has none). Each VALUE is one KDL \
value: 256M and other words become strings, numbers and #true/#false stay as they are, KEY=value \
is a property. The whole host (FILE with its imports) is evaluated with the edit; only a valid \
result is written, atomically. Otherwise the diagnostics are printed and FILE is untouched.",
        after_help = "Examples:\n  berth set host.kdl container.web.limits.memory 512M\n  \
berth set host.kdl container.web.exec /bin/busybox httpd -f\n  berth set host.kdl container.web.env MODE=prod"
    )]
    Set {
        /// The host file to edit (evaluated with its imports).
        file: PathBuf,
        /// The option, e.g. container.web.limits.memory.
        path: String,
        /// The new value (several for lists and command lines).
        #[arg(required = true, allow_hyphen_values = true)]
        values: Vec<String>,
    },
    /// Remove an option's definitions from a host file, keeping everything else.
    #[command(
        after_help = "The host is evaluated without them first; an invalid result (a required option \
removed) is refused and the file left untouched.\n\nExample:\n  berth unset host.kdl container.web.limits.memory"
    )]
    Unset {
        /// The host file to edit (evaluated with its imports).
        file: PathBuf,
        /// The option, e.g. container.web.limits.memory.
        path: String,
    },
    /// Validate host files: prints `ok` per valid file, every error with its place.
    Check {
        /// Host files (each with its imports).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Print the evaluated host: every option's effective value, defaults included.
    Eval {
        file: PathBuf,
        /// Canonical JSON with the generation hash, per-node hashes and the graph.
        #[arg(long)]
        json: bool,
    },
    /// Print the dependency graph and its start layers.
    Graph {
        file: PathBuf,
        /// Graphviz dot instead of text.
        #[arg(long)]
        dot: bool,
    },
    /// Print the option schema: types, defaults, apply classes and docs.
    #[command(
        after_help = "Examples:\n  berth options container.limits\n  berth options network --json"
    )]
    Options {
        /// Only options whose path starts with this, e.g. `container` or `container.limits`.
        prefix: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Explain a value: the final value and every definition that contributed, with its
    /// file, line and priority, and which won and why.
    #[command(
        after_help = "Examples:\n  berth why host.kdl container.web.limits.memory\n  berth why host.kdl container.web.env.PGDATA\n  berth why host.kdl container.web   (every option of web)"
    )]
    Why {
        file: PathBuf,
        /// KIND.NAME.OPTION, e.g. container.web.limits.memory, or host.OPTION.
        path: String,
    },
    /// Rewrite host files in canonical format, keeping comments.
    Fmt {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Change nothing; list unformatted files and exit 1 if there are any.
        #[arg(long)]
        check: bool,
    },
    /// Show the containers of the running berth: state, pid, uptime, restarts, readiness,
    /// memory and warnings.
    #[command(
        after_help = "Exit status: 0 ok, 1 error (e.g. berth is not running).\n\n\
Examples:\n  berth status\n  berth status --json\n  berth status --rejected --json"
    )]
    Status {
        /// A JSON array of objects (name, state, pid, uptime, restarts, ready, memory,
        /// last_exit, status_text, warnings) instead of the table.
        #[arg(long)]
        json: bool,
        /// Only the host file `berth up` last refused (watching, SIGHUP), with its
        /// diagnostics; with --json an object (file, time, trigger, generation,
        /// message) or null.
        #[arg(long)]
        rejected: bool,
        /// The control socket of the running berth.
        #[arg(long, value_name = "PATH", default_value = berth_init::control::DEFAULT_SOCKET)]
        socket: PathBuf,
    },
    /// Show the networks of the running berth: bridges, subnets, each container's
    /// address and veth, and the port forwards.
    #[command(
        after_help = "Exit status: 0 ok, 1 error (e.g. berth is not running).\n\n\
Examples:\n  berth net\n  berth net --json"
    )]
    Net {
        /// An object with `networks` (name, bridge, subnet, gateway, mtu, nat, allow,
        /// leases) and `forwards` (container, host_port, container_port, protocol,
        /// host_address, to) instead of text.
        #[arg(long)]
        json: bool,
        /// The control socket of the running berth.
        #[arg(long, value_name = "PATH", default_value = berth_init::control::DEFAULT_SOCKET)]
        socket: PathBuf,
    },
    /// Start a stopped or failed container (clears `failed`).
    #[command(after_help = "Exit status: 0 ok, 1 error (no such container, berth not running).")]
    Start {
        /// The container's name.
        name: String,
        /// The control socket of the running berth.
        #[arg(long, value_name = "PATH", default_value = berth_init::control::DEFAULT_SOCKET)]
        socket: PathBuf,
    },
    /// Stop a container; it stays stopped until `berth start`.
    #[command(after_help = "Exit status: 0 ok, 1 error (no such container, berth not running).")]
    Stop {
        /// The container's name.
        name: String,
        /// The control socket of the running berth.
        #[arg(long, value_name = "PATH", default_value = berth_init::control::DEFAULT_SOCKET)]
        socket: PathBuf,
    },
    /// Stop a container and start it again; clears `failed` and the start limit.
    #[command(after_help = "Exit status: 0 ok, 1 error (no such container, berth not running).")]
    Restart {
        /// The container's name.
        name: String,
        /// The control socket of the running berth.
        #[arg(long, value_name = "PATH", default_value = berth_init::control::DEFAULT_SOCKET)]
        socket: PathBuf,
    },
    /// Stop every container in reverse dependency order and make berth exit; waits until
    /// it has.
    #[command(after_help = "Exit status: 0 berth stopped, 1 error or timeout.")]
    Down {
        /// Give up waiting after this many seconds (berth keeps stopping). Default: no limit.
        #[arg(long, value_name = "SECONDS")]
        timeout: Option<u64>,
        /// The control socket of the running berth.
        #[arg(long, value_name = "PATH", default_value = berth_init::control::DEFAULT_SOCKET)]
        socket: PathBuf,
    },
    /// Print a container's log (`TIMESTAMP STREAM text` lines; STREAM is out, err or
    /// berth), the last lines first, then with -f what follows.
    #[command(
        after_help = "The log directory is asked from the running berth; with --log-dir the \
files are read directly (also when berth is not running). Rotated files (NAME.log.1, …) \
are read when the current one has fewer lines than asked for.\n\n\
Examples:\n  berth logs web\n  berth logs -f -n 20 db\n  berth logs --log-dir /var/lib/berth/logs web"
    )]
    Logs {
        /// The container's name.
        name: String,
        /// Keep printing what is appended (across rotations) until interrupted.
        #[arg(short = 'f', long)]
        follow: bool,
        /// How many of the last lines to print.
        #[arg(short = 'n', long, value_name = "N", default_value_t = berth_init::cmd::logs::DEFAULT_LINES)]
        lines: usize,
        /// Read the log files in DIR instead of asking berth where they are.
        #[arg(long, value_name = "DIR")]
        log_dir: Option<PathBuf>,
        /// The control socket of the running berth.
        #[arg(long, value_name = "PATH", default_value = berth_init::control::DEFAULT_SOCKET)]
        socket: PathBuf,
    },
    /// Run a command inside a running container: its namespaces, cgroup, root directory,
    /// working directory, user, capabilities and environment.
    #[command(
        after_help = "With stdin a terminal, the command gets a pty of the container (raw \
mode, window size passed on); otherwise (or with --no-tty) it shares berth's stdin, stdout \
and stderr.\n\n\
Exit status: the command's (128+N if killed by signal N), 126 if it cannot be run, 127 if \
it is not found, 1 if the container cannot be entered.\n\n\
Examples:\n  berth exec web sh\n  berth exec db -- psql -c 'select 1'"
    )]
    Exec {
        /// The container's name.
        name: String,
        /// The command and its arguments (looked up in the container's PATH).
        #[arg(
            required = true,
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "CMD"
        )]
        command: Vec<String>,
        /// No pty, even when stdin is a terminal.
        #[arg(long, short = 'T')]
        no_tty: bool,
        /// The control socket of the running berth.
        #[arg(long, value_name = "PATH", default_value = berth_init::control::DEFAULT_SOCKET)]
        socket: PathBuf,
    },
}

// What goes into an image (`berth build`, `berth vm`). Not a doc comment: clap would
// make it the description of both verbs (with the verbs' arguments built only when
// parsed, it is applied after theirs).
#[derive(clap::Args, Debug)]
struct ImageArgs {
    /// The kernel (a bzImage, e.g. /boot/vmlinuz-VERSION); `berth vm` defaults to the
    /// running kernel's.
    #[arg(long, value_name = "PATH")]
    kernel: Option<PathBuf>,
    /// The kernel's modules directory (default: ROOT/lib/modules/VERSION next to
    /// ROOT/boot/vmlinuz-VERSION, then /lib/modules/VERSION).
    #[arg(long, value_name = "DIR")]
    modules: Option<PathBuf>,
    /// Also create an ext4 state disk of this size (e.g. 64M), attached as /dev/vda.
    #[arg(long, value_name = "SIZE")]
    disk: Option<String>,
    /// Put a file or directory of this machine into the image (at DST, default the
    /// same path); executables get their shared libraries too.
    #[arg(long, value_name = "SRC[:DST]")]
    add: Vec<String>,
    /// The berth executable to put in the image as /init (default: this one), e.g. the
    /// release build of scripts/build-static.
    #[arg(long, value_name = "PATH")]
    berth: Option<PathBuf>,
}

impl ImageArgs {
    fn options(
        self,
        file: PathBuf,
        out: PathBuf,
    ) -> Result<berth_init::cmd::build::BuildOptions, String> {
        let disk = self
            .disk
            .map(|d| berth_modules::units::size(&d).map_err(|e| format!("--disk {d}: {}", e.label)))
            .transpose()?;
        let add = self
            .add
            .iter()
            .map(|a| berth_init::cmd::build::parse_add(a))
            .collect::<Result<_, _>>()?;
        let kernel = match self.kernel {
            Some(k) => k,
            None => berth_init::cmd::vm::default_kernel()
                .ok_or("no kernel: give --kernel PATH (a bzImage)")?,
        };
        Ok(berth_init::cmd::build::BuildOptions {
            file,
            kernel,
            modules: self.modules,
            out,
            disk,
            add,
            berth: self.berth,
        })
    }
}

fn usage_error(err: &mut dyn std::io::Write, message: &str) -> u8 {
    let _ = writeln!(err, "error: {message}");
    2
}

/// Runs before `main` and before the first allocation (glibc passes argc and argv to
/// `.init_array` entries) and sets the heap up for the verb:
///
/// - A berth that stays resident (`berth up`, PID 1) keeps huge pages away from its
///   small heap, which would otherwise pin 2 MiB pages under a few hundred KiB of live
///   data, and has mimalloc return freed pages at once.
/// - The verbs that may evaluate a big host (`eval`, `check`, …) get mimalloc with its
///   defaults, huge pages included: `eval` of 10,000 containers fills 100+ MiB of heap.
/// - Every other verb (`run`, `exec`, `status`, …) does little work and must start
///   fast: it gets the C library's malloc, which costs nothing to start
///   ([`berth_init::alloc`]).
///
/// The verb is the first argument that names one; an option's value that happens to be
/// a verb's name costs some speed, nothing else.
#[used]
#[unsafe(link_section = ".init_array")]
static BEFORE_MAIN: extern "C" fn(libc::c_int, *const *const libc::c_char) = before_main;

extern "C" fn before_main(argc: libc::c_int, argv: *const *const libc::c_char) {
    const RESIDENT: &[&[u8]] = &[b"up", b"init"];
    const EVALUATING: &[&[u8]] = &[
        b"eval", b"check", b"graph", b"why", b"fmt", b"plan", b"switch", b"diff", b"set", b"unset",
        b"build", b"vm", b"options",
    ];
    // SAFETY: argv holds argc valid C strings (the exec ABI).
    let verb = (1..argc.max(0) as usize)
        .map(|i| unsafe { std::ffi::CStr::from_ptr(*argv.add(i)) }.to_bytes())
        .find(|a| RESIDENT.contains(a) || EVALUATING.contains(a));
    // SAFETY: getpid cannot fail.
    if unsafe { libc::getpid() } == 1 || verb.is_some_and(|v| RESIDENT.contains(&v)) {
        // A failure costs memory, nothing else.
        let _ = berth_init::runtime::disable_thp();
        // Pages mimalloc no longer uses go back to the system at once instead of after
        // its default delay (10 ms, or whenever it next allocates): a resident berth
        // allocates rarely, so without this a freed page may stay resident for hours.
        unsafe extern "C" {
            // mimalloc's public API (mimalloc.h), linked in with the global allocator.
            fn mi_option_set(option: libc::c_int, value: libc::c_long);
        }
        // `mi_option_purge_delay` in mimalloc.h's `mi_option_e` (v2 and v3).
        const MI_OPTION_PURGE_DELAY: libc::c_int = 15;
        // SAFETY: sets an integer option; valid at any time, also before mimalloc's own
        // initialisation (it then keeps the value instead of reading MIMALLOC_PURGE_DELAY).
        unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, 0) };
    } else if verb.is_none() {
        // Nothing has allocated yet; if something had, mimalloc stays.
        berth_init::alloc::use_system();
    }
}

fn main() -> ExitCode {
    // Started by the kernel as PID 1, the arguments are the kernel's leftovers, not a
    // command line: be the init. (A berth verb as PID 1 of a container's pid namespace,
    // `sh -c "berth status"`, is still that verb.)
    let cli = if std::process::id() == 1 {
        // Booted with no arguments (the usual case), the parser is not even built: the
        // code it runs would stay mapped for the machine's lifetime.
        if std::env::args_os().len() <= 1 {
            berth_init::pid1::main(None);
        }
        match Cli::try_parse() {
            Ok(cli) => cli,
            Err(_) => berth_init::pid1::main(None),
        }
    } else {
        Cli::parse()
    };
    let color = match cli.color {
        Color::Always => true,
        Color::Never => false,
        Color::Auto => std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
    };
    let (mut out, mut err) = (std::io::stdout().lock(), std::io::stderr().lock());
    use berth_init::cmd;
    let code = match cli.verb {
        Verb::Up {
            file,
            state_dir,
            socket,
            watch,
        } => cmd::up(&file, &state_dir, &socket, watch, &mut err, color),
        Verb::Init { config } => {
            if std::process::id() != 1 {
                usage_error(
                    &mut err,
                    "`berth init` runs only as PID 1 (of the machine, or of a pid namespace): it mounts \
                     /proc, /dev, /run and /tmp and ends with reboot(2); use `berth up` under another init",
                )
            } else {
                berth_init::pid1::main(config)
            }
        }
        Verb::Build {
            file,
            image,
            out: dir,
        } => match image.options(file, dir) {
            Ok(opts) => cmd::build(&opts, &mut out, &mut err, color),
            Err(e) => usage_error(&mut err, &e),
        },
        Verb::Vm {
            file,
            image,
            out: dir,
            memory,
            cpus,
            append,
            tcg,
            no_reboot,
        } => {
            let dir = dir.unwrap_or_else(|| {
                let abs = std::fs::canonicalize(&file).unwrap_or_else(|_| file.clone());
                let h = blake3::hash(abs.as_os_str().as_encoded_bytes());
                std::env::temp_dir().join(format!("berth-vm-{}", &h.to_hex()[..12]))
            });
            match image.options(file, dir) {
                Ok(opts) => {
                    let vm = cmd::vm::VmOptions {
                        memory,
                        cpus,
                        append,
                        no_reboot,
                        tcg,
                    };
                    cmd::vm(&opts, &vm, &mut out, &mut err, color)
                }
                Err(e) => usage_error(&mut err, &e),
            }
        }
        Verb::Reboot { socket } => cmd::power(&socket, Power::Reboot, &mut out, &mut err),
        Verb::Poweroff { socket } => cmd::power(&socket, Power::Poweroff, &mut out, &mut err),
        Verb::Halt { socket } => cmd::power(&socket, Power::Halt, &mut out, &mut err),
        Verb::Run {
            file,
            name,
            command,
            state_dir,
        } => {
            drop(out);
            cmd::run(&file, &name, &command, &state_dir, &mut err, color)
        }
        Verb::Generations { json, state_dir } => {
            cmd::generations(&state_dir, json, &mut out, &mut err)
        }
        Verb::Gc { keep, state_dir } => cmd::gc(&state_dir, keep, &mut out, &mut err),
        Verb::Plan {
            file,
            json,
            state_dir,
        } => cmd::plan(&file, &state_dir, json, &mut out, &mut err, color),
        Verb::Switch {
            file,
            dry_run,
            test,
            boot,
            confirm_within,
            socket,
        } => cmd::switch(
            &socket,
            &file,
            berth_init::supervisor::SwitchMode {
                dry_run,
                test,
                boot,
                confirm_within,
            },
            &mut out,
            &mut err,
        ),
        Verb::Rollback {
            generation,
            dry_run,
            socket,
        } => cmd::rollback(&socket, generation, dry_run, &mut out, &mut err),
        Verb::Confirm { socket } => cmd::confirm(&socket, &mut out, &mut err),
        Verb::Diff {
            a,
            b,
            json,
            state_dir,
        } => cmd::diff(&state_dir, a, b, json, &mut out, &mut err, color),
        Verb::Set { file, path, values } => {
            cmd::set(&file, &path, &values, &mut out, &mut err, color)
        }
        Verb::Unset { file, path } => cmd::set(&file, &path, &[], &mut out, &mut err, color),
        Verb::Check { files } => cmd::check(&files, &mut out, &mut err, color),
        Verb::Eval { file, json } => cmd::eval(&file, json, &mut cmd::RawStdout, &mut err, color),
        Verb::Graph { file, dot } => cmd::graph(&file, dot, &mut out, &mut err, color),
        Verb::Options { prefix, json } => cmd::options(prefix.as_deref(), json, &mut out, &mut err),
        Verb::Why { file, path } => cmd::why(&file, &path, &mut out, &mut err, color),
        Verb::Fmt { files, check } => cmd::fmt(&files, check, &mut out, &mut err, color),
        Verb::Status {
            json,
            rejected,
            socket,
        } => cmd::status(&socket, json, rejected, &mut out, &mut err),
        Verb::Net { json, socket } => cmd::net(&socket, json, &mut out, &mut err),
        Verb::Start { name, socket } => cmd::start(&socket, &name, &mut out, &mut err),
        Verb::Stop { name, socket } => cmd::stop(&socket, &name, &mut out, &mut err),
        Verb::Restart { name, socket } => cmd::restart(&socket, &name, &mut out, &mut err),
        Verb::Down { timeout, socket } => cmd::down(
            &socket,
            timeout.map(std::time::Duration::from_secs),
            &mut out,
            &mut err,
        ),
        Verb::Logs {
            name,
            follow,
            lines,
            log_dir,
            socket,
        } => cmd::logs(
            &socket,
            log_dir.as_deref(),
            &name,
            follow,
            lines,
            &mut out,
            &mut err,
        ),
        Verb::Exec {
            name,
            command,
            no_tty,
            socket,
        } => {
            drop(out);
            cmd::exec(&socket, &name, &command, no_tty, &mut err)
        }
    };
    ExitCode::from(code)
}

/// A duration as the host language writes it (`30s`, `5m`, `1h30m`).
fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    berth_modules::units::duration(s)
        .map(std::time::Duration::from_nanos)
        .map_err(|e| format!("{}: {}", e.label, e.help))
}
