//! Pull-secret building blocks, both pure: dockerconfigjson rendering and the token refresh
//! schedule. The token cache itself lives in `src/cache/`.

pub mod dockerconfig;
pub mod schedule;
