use clap::Parser;
use ecr_operator::cli::{Cli, Command};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Crd(args) => ecr_operator::cli::crd(&args)?,
        Command::Version => println!("ecr-operator {}", env!("CARGO_PKG_VERSION")),
        Command::Run(args) => ecr_operator::runtime::run(*args).await?,
    }
    Ok(())
}
