//! kstatus-shaped conditions (pure) and the status writer (server-side apply, skipped when
//! unchanged).

mod conditions;
mod write;

pub use conditions::*;
pub use write::*;
