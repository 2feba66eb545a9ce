//! The command line (clap types only, plus the small `crd` command).

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Manage Amazon ECR with Kubernetes resources.
#[derive(Debug, Parser)]
#[command(name = "ecr-operator", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the CustomResourceDefinitions as YAML, or write one file per CRD with --out-dir.
    Crd(CrdArgs),
    /// Print the version.
    Version,
}

/// Arguments of `ecr-operator crd`.
#[derive(Debug, clap::Args)]
pub struct CrdArgs {
    /// Write `<plural>.<group>.yaml` files into this directory instead of printing to stdout.
    #[arg(long)]
    pub out_dir: Option<PathBuf>,
}

/// Errors of `ecr-operator crd`.
#[derive(Debug, thiserror::Error)]
pub enum CrdError {
    #[error("failed to render CRD YAML")]
    Render(#[from] serde_saphyr::ser::Error),
    #[error("failed to write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Runs `ecr-operator crd`.
pub fn crd(args: &CrdArgs) -> Result<(), CrdError> {
    let Some(dir) = &args.out_dir else {
        print!("{}", crate::api::render_all()?);
        return Ok(());
    };
    std::fs::create_dir_all(dir).map_err(|source| CrdError::Write {
        path: dir.clone(),
        source,
    })?;
    for crd in crate::api::crds() {
        let path = dir.join(crate::api::crd_file_name(&crd));
        let yaml = crate::api::render_crd(&crd)?;
        std::fs::write(&path, yaml).map_err(|source| CrdError::Write { path, source })?;
    }
    Ok(())
}
