use napi_derive::napi;
#[napi]
pub fn ping() -> u32 { tunekit_core::placeholder(); 1 }
