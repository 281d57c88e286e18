// DNS for the names that stand for several workers (a headless Service, a
// compose service scaled up): every address a name has right now.
#pragma once

#include <optional>
#include <set>
#include <string>

namespace llmesh::rpc {

// Every address `host:port` resolves to, as "ip:port" ("[ip6]:port");
// nullopt when it has no port or the lookup fails.
std::optional<std::set<std::string>> ResolveAll(const std::string& host_port);

}  // namespace llmesh::rpc
