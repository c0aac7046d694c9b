// What the tables of architectures and penalties share: adding a row under a name not yet taken.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

namespace sweep::sae {

// Appends `entry` to `table`; throws std::invalid_argument when its name is there already.
template <typename Entry>
void add_named(std::vector<Entry>& table, Entry entry, const std::string& what) {
  for (const auto& e : table) {
    if (e.name == entry.name) throw std::invalid_argument("a " + what + " named \"" + entry.name + "\" is registered already");
  }
  table.push_back(std::move(entry));
}

}  // namespace sweep::sae
