// TOML -> dotted-key JSON with validation against the key table. The grid accepts quoted
// dotted keys ("absorption.ratio_threshold" = [...]) and nested tables alike.
#include "config/sweep_file.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <regex>
#include <set>
#include <sstream>

#include <toml++/toml.h>

#include "config/config_error.h"
#include "config/config_schema.h"

namespace sweep::launcher {
namespace {

using nlohmann::json;

std::string where_in(const std::filesystem::path& file, const toml::node& node) {
  return file.filename().string() + ":" + std::to_string(node.source().begin.line);
}

[[noreturn]] void fail(const std::string& where, const std::string& message) {
  throw ConfigError(where + ": " + message);
}

std::string unknown_key_message(const std::string& key, const std::string& what) {
  std::string msg = what + " \"" + key + "\" names no setting";
  if (auto guess = closest_key(key); guess && *guess != key) msg += "; did you mean \"" + *guess + "\"?";
  return msg + " (`sweep keys` lists every setting)";
}

std::string unknown_section_message(const std::string& name) {
  std::string msg = "section [" + name + "] is not a sweep-file section";
  if (auto guess = closest_section(name)) msg += "; did you mean [" + *guess + "]?";
  return msg + " (sections: " + section_names() + ")";
}

std::string toml_type_name(const toml::node& node) {
  std::ostringstream s;
  s << node.type();
  return s.str();
}

// A finite number within float32's range (training runs in float32), or fails naming the key.
template <typename WrongType>
double float32_number(const toml::node& node, const KeySpec& spec, const std::string& where, WrongType wrong_type) {
  if (!node.is_number()) wrong_type();
  double v = node.is_integer() ? static_cast<double>(node.as_integer()->get()) : node.as_floating_point()->get();
  if (!std::isfinite(v)) fail(where, spec.key + ": expected a finite number, got " + std::to_string(v));
  if (std::abs(v) > std::numeric_limits<float>::max()) {
    std::ostringstream text;
    text << v;
    fail(where, spec.key + " = " + text.str() + " is beyond float32's range (about 3.4e38)");
  }
  return v;
}

// Converts one TOML value to JSON of the key's kind, or fails naming the key.
json to_value(const toml::node& node, const KeySpec& spec, const std::string& where) {
  auto wrong_type = [&] {
    fail(where, spec.key + ": expected " + kind_name(spec.kind) + ", got " + toml_type_name(node));
  };
  json value;
  switch (spec.kind) {
    case ValueKind::Int:
      if (!node.is_integer()) wrong_type();
      value = *node.value<int64_t>();
      break;
    case ValueKind::Float:
      value = float32_number(node, spec, where, wrong_type);
      break;
    case ValueKind::Bool:
      if (!node.is_boolean()) wrong_type();
      value = *node.value<bool>();
      break;
    case ValueKind::String:
      if (!node.is_string()) wrong_type();
      value = *node.value<std::string>();
      break;
    case ValueKind::StringList:
    case ValueKind::IntList:
    case ValueKind::FloatList: {
      if (!node.is_array()) wrong_type();
      value = json::array();
      for (const auto& item : *node.as_array()) {
        if (spec.kind == ValueKind::StringList) {
          if (!item.is_string()) wrong_type();
          value.push_back(*item.value<std::string>());
        } else if (spec.kind == ValueKind::IntList) {
          if (!item.is_integer()) wrong_type();
          value.push_back(*item.value<int64_t>());
        } else {
          value.push_back(float32_number(item, spec, where, wrong_type));
        }
      }
      break;
    }
  }
  if (auto problem = spec.check(value); !problem.empty()) {
    fail(where, spec.key + " = " + value.dump() + ": " + problem);
  }
  return value;
}

class SweepReader {
 public:
  explicit SweepReader(SweepSpec& spec) : spec_(spec) {}

  void read_table(const toml::table& root) {
    for (const auto& [k, node] : root) {
      std::string key(k.str());
      if (node.is_table()) {
        if (!is_section(key)) fail(where_in(spec_.file, node), unknown_section_message(key));
        if (key == "grid") {
          read_grid(*node.as_table(), "");
        } else {
          read_section(key, *node.as_table());
        }
      } else {
        set_value(key, node, where_in(spec_.file, node));
      }
    }
  }

  void set_value(const std::string& key, const toml::node& node, const std::string& where) {
    const auto* spec = find_key(key);
    if (!spec || key.rfind("grid.", 0) == 0) fail(where, unknown_key_message(key, "key"));
    (is_job_setting(key) ? spec_.base : key.rfind("report.", 0) == 0 ? spec_.report : spec_.slurm)[key] =
        to_value(node, *spec, where);
    spec_.where[key] = where;
  }

  void set_grid_axis(const std::string& key, const toml::node& node, const std::string& where) {
    if (key == "include_baseline") {
      if (!node.is_boolean()) fail(where, "grid.include_baseline: expected true or false, got " + toml_type_name(node));
      spec_.include_baseline = *node.value<bool>();
      return;
    }
    if (key == "replicas") {
      spec_.replicas = to_value(node, *find_key("grid.replicas"), where).get<std::vector<std::string>>();
      return;
    }
    if (key == "zip") {
      read_zips(node, where);
      return;
    }
    if (key == "name") fail(where, "name cannot be a grid axis: it names the whole sweep; set name = \"...\" once, at the top of the file");
    const auto* spec = find_key(key);
    if (!spec || key.rfind("grid.", 0) == 0) fail(where, unknown_key_message(key, "grid key"));
    if (!is_job_setting(key)) {
      fail(where, key + " cannot be a grid axis: it applies to the whole sweep, not to a job; set it once in [" +
                      key.substr(0, key.find('.')) + "]");
    }
    if (!node.is_array()) fail(where, "grid \"" + key + "\": expected a list of values, got " + toml_type_name(node));
    const auto& items = *node.as_array();
    if (items.empty()) fail(where, "grid \"" + key + "\" is an empty list: give at least one value or remove the key");
    GridAxis axis{key, {}, where};
    for (const auto& item : items) {
      auto value = to_value(item, *spec, where);
      if (std::find(axis.values.begin(), axis.values.end(), value) != axis.values.end()) {
        fail(where, "grid \"" + key + "\" lists " + value.dump() + " twice; each value is one job, so the repeat would "
                    "silently be the same job: remove it");
      }
      axis.values.push_back(value);
    }
    for (auto& existing : spec_.grid) {
      if (existing.key == key) {
        existing = axis;
        return;
      }
    }
    spec_.grid.push_back(axis);
  }

 private:
  // grid.zip = [["a", "b"], ...]: each group names two or more job settings, none twice.
  void read_zips(const toml::node& node, const std::string& where) {
    const std::string form = "grid.zip: expected a list of lists of setting names, such as [[\"sae.arch\", \"train.lr\"]]";
    if (!node.is_array()) fail(where, form + ", got " + toml_type_name(node));
    spec_.zips.clear();
    std::set<std::string> seen;
    for (const auto& group : *node.as_array()) {
      if (!group.is_array()) fail(where, form);
      std::vector<std::string> keys;
      for (const auto& item : *group.as_array()) {
        if (!item.is_string()) fail(where, form);
        const std::string key = *item.value<std::string>();
        if (!find_key(key) || !is_job_setting(key)) fail(where, unknown_key_message(key, "grid.zip: key"));
        if (!seen.insert(key).second) fail(where, "grid.zip names \"" + key + "\" twice; an axis walks in one group only");
        keys.push_back(key);
      }
      if (keys.size() < 2) {
        fail(where, "grid.zip: each group ties two or more axes together; a group of " + std::to_string(keys.size()) +
                        " ties nothing");
      }
      spec_.zips.push_back(keys);
    }
    spec_.zip_where = where;
  }

  void read_section(const std::string& section, const toml::table& table) {
    for (const auto& [k, node] : table) {
      std::string key = section + "." + std::string(k.str());
      if (node.is_table()) fail(where_in(spec_.file, node), unknown_key_message(key, "section"));
      set_value(key, node, where_in(spec_.file, node));
    }
  }

  // [[grid.points]]: each table's settings (dotted keys or nested tables) and optional label.
  void read_points(const toml::array& tables) {
    for (const auto& node : tables) {
      const std::string where = where_in(spec_.file, node);
      if (!node.is_table()) fail(where, "grid.points: each point is a table of settings ([[grid.points]])");
      GridPoint point;
      point.where = where;
      read_point(*node.as_table(), "", point);
      for (const auto& other : spec_.points) {
        if (other.settings == point.settings) {
          fail(where, "this grid point repeats the one at " + other.where + " (" + point.settings.dump() +
                          "); each point is one set of jobs: remove one");
        }
      }
      spec_.points.push_back(point);
    }
  }

  void read_point(const toml::table& table, const std::string& prefix, GridPoint& point) {
    for (const auto& [k, node] : table) {
      const std::string key = prefix + std::string(k.str()), where = where_in(spec_.file, node);
      if (prefix.empty() && key == "label") {
        if (!node.is_string()) fail(where, "grid.points: label: expected a string, got " + toml_type_name(node));
        point.label = *node.value<std::string>();
        continue;
      }
      if (node.is_table()) {
        read_point(*node.as_table(), key + ".", point);
        continue;
      }
      const auto* spec = find_key(key);
      if (!spec || !is_job_setting(key)) fail(where, unknown_key_message(key, "grid point key"));
      if (!spec->affects_results) {
        fail(where, key + " cannot differ between grid points: it changes how jobs run, not what they compute; set "
                          "it once in its section");
      }
      point.settings[key] = to_value(node, *spec, where);
    }
  }

  void read_grid(const toml::table& table, const std::string& prefix) {
    for (const auto& [k, node] : table) {
      std::string key = prefix + std::string(k.str());
      if (prefix.empty() && key == "points" && node.is_array_of_tables()) {
        read_points(*node.as_array());
        continue;
      }
      if (node.is_table()) {
        read_grid(*node.as_table(), key + ".");
      } else {
        set_grid_axis(key, node, where_in(spec_.file, node));
      }
    }
  }

  SweepSpec& spec_;
};

void apply_override(SweepReader& reader, const std::string& text) {
  std::string where = "--set " + text;
  auto eq = text.find('=');
  if (eq == std::string::npos || eq == 0) fail(where, "expected key=value, for example --set train.lr=1e-3");
  std::string key = text.substr(0, eq);
  std::string raw = text.substr(eq + 1);
  // The value is read as TOML ("1e-3", "[5, 10]", "true", "\"topk\""); anything else is a bare string.
  toml::table parsed;
  try {
    parsed = toml::parse("value = " + raw);
  } catch (const toml::parse_error& e) {
    // An integer TOML cannot hold (beyond 64 bits) is a number out of range, not a string.
    const auto* spec = find_key(key);
    if ((!spec || spec->kind != ValueKind::String) && std::regex_match(raw, std::regex("[+-]?[0-9][0-9_]*")))
      fail(where, key + " = " + raw + " is beyond the 64-bit integer range (" + std::string(e.description()) + ")");
    parsed = toml::table{{"value", raw}};
  }
  // A string setting takes the text as written (--set name=2024 names the sweep "2024").
  const auto* spec = find_key(key);
  if (spec && spec->kind == ValueKind::String && !parsed.get("value")->is_string()) parsed = toml::table{{"value", raw}};
  const toml::node& node = *parsed.get("value");
  if (key.rfind("grid.", 0) == 0) {
    reader.set_grid_axis(key.substr(5), node, where);
  } else {
    reader.set_value(key, node, where);
  }
}

bool from_set(const std::string& where) { return where.rfind("--set ", 0) == 0; }

// What the grid's parts say together: zip groups name axes of equal lengths, and no setting is both
// a single value and a grid axis, which would silently replace the value; only a grid axis given
// with --set may replace the file's value, as a --set replaces the file's.
void check_grid(const SweepSpec& spec) {
  std::map<std::string, const GridAxis*> axes;
  for (const auto& axis : spec.grid) axes[axis.key] = &axis;
  for (const auto& point : spec.points) {
    for (const auto& [key, value] : point.settings.items()) {
      if (axes.count(key)) {
        fail(point.where, "grid point sets " + key + ", which is also a grid axis (" + axes.at(key)->where +
                              "): give it in the points or in the axis, not both");
      }
    }
  }
  for (const auto& axis : spec.grid) {
    auto it = spec.where.find(axis.key);
    if (it == spec.where.end() || (from_set(axis.where) && !from_set(it->second))) continue;
    fail(it->second, axis.key + " is set both to one value here and as a grid axis (" + axis.where +
                         "), which would replace it; keep one of the two");
  }
  for (const auto& group : spec.zips) {
    const GridAxis* first = nullptr;
    for (const auto& key : group) {
      auto it = axes.find(key);
      if (it == axes.end()) {
        fail(spec.zip_where, "grid.zip names \"" + key + "\", which is no grid axis; give it its list of values in [grid]");
      }
      if (!first) first = it->second;
      if (it->second->values.size() != first->values.size()) {
        fail(spec.zip_where, "grid.zip walks \"" + first->key + "\" (" + std::to_string(first->values.size()) +
                                 " values, " + first->where + ") and \"" + key + "\" (" +
                                 std::to_string(it->second->values.size()) + " values, " + it->second->where +
                                 ") together, so they need the same number of values");
      }
    }
  }
}

}  // namespace

SweepSpec load_sweep(const std::filesystem::path& file, const std::vector<std::string>& overrides) {
  SweepSpec spec;
  spec.file = file;
  spec.base = default_config();
  spec.report = nlohmann::json::object();
  for (const auto& key_spec : config_schema()) {
    if (key_spec.key.rfind("report.", 0) == 0) spec.report[key_spec.key] = key_spec.default_value;
  }
  std::ifstream in(file);
  if (!in) throw ConfigError(file.string() + ": cannot read the sweep file (does it exist?)");
  std::stringstream text;
  text << in.rdbuf();
  spec.text = text.str();
  toml::table root;
  try {
    root = toml::parse(spec.text, file.string());
  } catch (const toml::parse_error& e) {
    throw ConfigError(file.filename().string() + ":" + std::to_string(e.source().begin.line) +
                      ": TOML syntax error: " + std::string(e.description()));
  }
  SweepReader reader(spec);
  reader.read_table(root);
  for (const auto& o : overrides) apply_override(reader, o);
  check_grid(spec);
  spec.name = spec.base["name"].get<std::string>();
  if (spec.name.empty()) spec.name = file.stem().string();
  spec.base["name"] = spec.name;
  return spec;
}

}  // namespace sweep::launcher
