//! The HTTP/JSON contract, derived from the descriptor set: the AIP-127 bindings of every RPC
//! (`bindings`: one per RPC, paths that name request fields, nothing two bindings could both
//! match on the one address the suite serves) and the OpenAPI document generated from them
//! (`openapi`: committed and current, its schemas accepting what the server writes).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod bindings;
mod openapi;

use prost_reflect::DescriptorPool;

/// The descriptor set the servers embed.
pub fn pool() -> DescriptorPool {
    DescriptorPool::decode(qilu_proto::FILE_DESCRIPTOR_SET).unwrap()
}
