// The table of training penalties (sae/penalty.h): one line each, in the order their losses are
// added and their activity laid out in a step's terms.
#include <stdexcept>

#include "sae/named_table.h"

#include "sae/penalties/absorption.h"
#include "sae/penalties/orthogonality.h"

namespace sweep::sae {
namespace {

std::vector<PenaltyEntry>& table() {
  static std::vector<PenaltyEntry> entries = {
      absorption_penalty_entry(),
      orthogonality_penalty_entry(),
  };
  return entries;
}

// Every row's activity names, kept with the table (a step reads them several times).
std::vector<std::string> activity_names_of_table() {
  std::vector<std::string> names;
  for (const auto& entry : table()) names.insert(names.end(), entry.activity.begin(), entry.activity.end());
  return names;
}
std::vector<std::string>& activity_names() {
  static std::vector<std::string> names = activity_names_of_table();
  return names;
}

}  // namespace

const std::vector<PenaltyEntry>& penalties() { return table(); }

void register_penalty(PenaltyEntry entry) {
  add_named(table(), std::move(entry), "penalty");
  activity_names() = activity_names_of_table();
}

Penalties make_penalties(const PenaltyContext& context) {
  Penalties out;
  for (const auto& entry : table()) out.push_back(entry.make(context));
  return out;
}

Penalties clone_penalties(const Penalties& penalties) {
  Penalties out;
  for (const auto& p : penalties) out.push_back(p ? p->clone() : nullptr);
  return out;
}

bool penalty_is_off(const PenaltyEntry& entry, const nlohmann::json& settings) {
  if (!settings.is_object() || !settings.contains(entry.switch_key)) return true;
  const auto& value = settings[entry.switch_key];
  if (value.is_number() && entry.off.is_number()) return value.get<double>() == entry.off.get<double>();
  return value == entry.off;
}

const PenaltyEntry* penalty_of_setting(const std::string& key) {
  for (const auto& entry : table()) {
    if (key.size() > entry.section.size() && key.compare(0, entry.section.size(), entry.section) == 0 &&
        key[entry.section.size()] == '.')
      return &entry;
  }
  return nullptr;
}

double penalties_checkpoint_bytes(const PenaltyContext& context, int64_t d_in) {
  double bytes = 0;
  for (const auto& entry : table()) bytes += entry.checkpoint_bytes ? entry.checkpoint_bytes(context, d_in) : 0.0;
  return bytes;
}

const std::vector<std::string>& penalty_activity_names() { return activity_names(); }

}  // namespace sweep::sae
