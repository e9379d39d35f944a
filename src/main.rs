//! The `hydrant` binary: parse the command line, set up logging, run a subcommand.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use hydrant::config::{Config, ServeArgs};

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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("hydrant: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        None => rt.block_on(serve(cli.serve)),
        Some(Command::Serve(args)) => rt.block_on(serve(args)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("hydrant: {msg}");
            ExitCode::from(2)
        }
    }
}

async fn serve(args: ServeArgs) -> Result<(), String> {
    let config = Config::resolve(args).map_err(|e| e.to_string())?;
    let _guard = hydrant::telemetry::init_tracing(config.log_format);
    let listen = config.listen;
    let app = hydrant::app::App::new(config)
        .map_err(|e| format!("cannot build the upstream client: {e}"))?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| format!("invalid configuration: --listen: cannot bind {listen}: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    tracing::info!(listen = %addr, upstream = %app.config.upstream.authority, "hydrant serving");
    hydrant::server::serve(app, listener, hydrant::server::shutdown_signal())
        .await
        .map_err(|e| e.to_string())
}
