//! The `hydrant` binary: parse the command line, set up logging, run a subcommand.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use hydrant::config::{Config, ServeArgs};

/// mimalloc instead of glibc's malloc: measured in benches/README.md.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Caching hydration proxy and reverse gateway for the VideoGen media API.
#[derive(Parser, Debug)]
#[command(name = "hydrant", version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the proxy (the default).
    Serve(ServeArgs),
    /// Run the proxy in front of the built-in VideoGen simulator on loopback.
    Demo(hydrant::demo::DemoArgs),
    /// Print a signed public URL for a file.
    Sign(SignArgs),
    /// Run only the built-in VideoGen simulator (tests, benchmarks).
    Sim(hydrant::sim::SimArgs),
}

#[derive(clap::Args, Debug)]
struct SignArgs {
    /// The file id (vg_file_...).
    file_id: String,
    /// How long the URL stays valid (e.g. 30m, 1h, 7d).
    #[arg(long, default_value = "1h")]
    ttl: String,
    /// Rendition to link to: download, preview, thumbnail, hls or public.
    #[arg(long)]
    rendition: Option<String>,
    #[command(flatten)]
    serve: ServeArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        None => serve(cli.serve),
        Some(Command::Serve(args)) => serve(args),
        Some(Command::Demo(args)) => {
            runtime(None).and_then(|rt| rt.block_on(hydrant::demo::run(args)))
        }
        Some(Command::Sign(args)) => sign(args),
        Some(Command::Sim(args)) => runtime(None).and_then(|rt| {
            rt.block_on(hydrant::sim::run(args))
                .map_err(|e| format!("simulator: {e}"))
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("hydrant: {msg}");
            ExitCode::from(2)
        }
    }
}

/// The tokio runtime: `workers` threads, or tokio's default (one per CPU).
fn runtime(workers: Option<usize>) -> Result<tokio::runtime::Runtime, String> {
    let mut b = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = workers {
        b.worker_threads(n);
    }
    b.enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))
}

/// `hydrant serve`: the configuration is resolved first, since it says how many worker
/// threads the runtime gets.
fn serve(args: ServeArgs) -> Result<(), String> {
    let config = Config::resolve(args).map_err(|e| e.to_string())?;
    runtime(Some(config.workers))?.block_on(serve_on_runtime(config))
}

async fn serve_on_runtime(config: Config) -> Result<(), String> {
    let _guard = hydrant::telemetry::init_tracing(config.log_format);
    let mut options =
        hydrant::server::ServeOptions::from_config(&config).map_err(|e| e.to_string())?;
    options.max_connections = hydrant::server::fds::fit_connections(config.max_connections);
    let listen = config.listen;
    let upstream = config.upstream.authority.clone();
    let workers = config.workers;
    let app = hydrant::app::App::new(config)
        .map_err(|e| format!("cannot build the upstream client: {e}"))?;
    let listener = hydrant::server::bind(listen)
        .map_err(|e| format!("invalid configuration: --listen: cannot bind {listen}: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    tracing::info!(
        listen = %addr,
        upstream = %upstream,
        tls = options.tls.is_some(),
        workers,
        max_connections = options.max_connections,
        "hydrant serving"
    );
    hydrant::server::serve_with(app, listener, options, hydrant::server::shutdown_signal())
        .await
        .map_err(|e| e.to_string())
}

fn sign(args: SignArgs) -> Result<(), String> {
    let config = Config::resolve(args.serve).map_err(|e| e.to_string())?;
    let keys: Vec<String> = config
        .signing_keys
        .iter()
        .map(|k| k.expose().to_string())
        .collect();
    let signer = hydrant::signing::Signer::new(keys).ok_or(
        "invalid configuration: --signing-keys: required to sign (or HYDRANT_SIGNING_KEYS)",
    )?;
    if hydrant::file_id::FileId::parse(&args.file_id).is_none() {
        return Err(format!(
            "invalid file id {:?}: expected 1 to 128 characters of A-Z, a-z, 0-9, '_' or '-'",
            args.file_id
        ));
    }
    if let Some(r) = &args.rendition {
        if hydrant::hydration::file::Rendition::parse(r).is_none() {
            return Err(format!(
                "invalid --rendition {r:?}: expected download, preview, thumbnail, hls or public"
            ));
        }
    }
    let ttl: Duration = hydrant::config::units::parse_duration(&args.ttl)
        .map_err(|e| format!("invalid --ttl: {e}"))?;
    let exp = hydrant::clock::now_unix() as u64 + ttl.as_secs().max(1);
    println!(
        "{}",
        signer.redirect_url(
            &config.public_url,
            &args.file_id,
            args.rendition.as_deref(),
            exp
        )
    );
    Ok(())
}
