// The table of SAE architectures (sae/architecture.h): one line each. Each is built once, on first
// use, and shared by every SAE of its name.
#include <map>
#include <mutex>
#include <stdexcept>

#include "sae/architecture.h"
#include "sae/named_table.h"

namespace sweep::sae {

ArchitectureEntry relu_architecture();
ArchitectureEntry topk_architecture();
ArchitectureEntry jumprelu_architecture();
ArchitectureEntry batchtopk_architecture();
ArchitectureEntry matryoshka_architecture();

namespace {

std::vector<ArchitectureEntry>& table() {
  static std::vector<ArchitectureEntry> entries = {
      relu_architecture(),
      topk_architecture(),
      jumprelu_architecture(),
      batchtopk_architecture(),
      matryoshka_architecture(),
  };
  return entries;
}

}  // namespace

const std::vector<ArchitectureEntry>& architectures() { return table(); }

void register_architecture(ArchitectureEntry entry) { add_named(table(), std::move(entry), "architecture"); }

const Architecture& architecture(const std::string& name) {
  static std::map<std::string, std::unique_ptr<Architecture>> built;  // stable addresses
  static std::mutex mutex;  // jobs side by side in one process build SAEs at once
  std::lock_guard<std::mutex> lock(mutex);
  auto it = built.find(name);
  if (it != built.end()) return *it->second;
  for (const auto& entry : table()) {
    if (entry.name == name) return *built.emplace(name, entry.make()).first->second;
  }
  throw std::invalid_argument("no SAE architecture named \"" + name + "\"");
}

std::vector<std::string> architecture_names() {
  std::vector<std::string> names;
  for (const auto& entry : table()) names.push_back(entry.name);
  return names;
}

}  // namespace sweep::sae
