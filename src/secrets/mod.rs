//! Pull-secret building blocks, both pure: dockerconfigjson rendering and the token refresh
//! schedule. The token cache itself is in [`crate::cache`].

pub mod dockerconfig;
pub mod schedule;
