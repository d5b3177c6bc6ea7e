//! `berth`: argument parsing only; the work is in the library.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

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
enum Verb {
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
    #[command(after_help = "Examples:\n  berth options container.limits\n  berth options network --json")]
    Options {
        /// Only options whose path starts with this, e.g. `container` or `container.limits`.
        prefix: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Explain a value: the final value and every definition that contributed, with its
    /// file, line and priority, and which won and why.
    #[command(after_help = "Examples:\n  berth why host.kdl container.web.limits.memory\n  berth why host.kdl container.web.env.PGDATA\n  berth why host.kdl container.web   (every option of web)")]
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let color = match cli.color {
        Color::Always => true,
        Color::Never => false,
        Color::Auto => std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
    };
    let (mut out, mut err) = (std::io::stdout().lock(), std::io::stderr().lock());
    use berth_init::cmd;
    let code = match cli.verb {
        Verb::Check { files } => cmd::check(&files, &mut out, &mut err, color),
        Verb::Eval { file, json } => cmd::eval(&file, json, &mut out, &mut err, color),
        Verb::Graph { file, dot } => cmd::graph(&file, dot, &mut out, &mut err, color),
        Verb::Options { prefix, json } => cmd::options(prefix.as_deref(), json, &mut out, &mut err),
        Verb::Why { file, path } => cmd::why(&file, &path, &mut out, &mut err, color),
        Verb::Fmt { files, check } => cmd::fmt(&files, check, &mut out, &mut err, color),
    };
    ExitCode::from(code)
}
