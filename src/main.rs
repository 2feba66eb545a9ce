use clap::Parser;
use ecr_operator::cli::{Cli, Command};

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Crd(args) => ecr_operator::cli::crd(&args)?,
        Command::Version => println!("ecr-operator {}", env!("CARGO_PKG_VERSION")),
    }
    Ok(())
}
