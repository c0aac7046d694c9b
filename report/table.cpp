// Builds the report's tables from report.json: the same columns and numbers in report.md and
// report.html.
#include "report/table.h"

#include <algorithm>
#include <map>

#include "report/format.h"

namespace sweep::launcher {
namespace {

using nlohmann::json;

struct Column {
  const char* metric;
  const char* header;
  const char* format;
  bool delta;      // also show the difference to the baseline
  bool per_point;  // a column of the grid-point table too (the jobs table has every column)
};

const Column kColumns[] = {
    {"explained_variance", "EV", "%.4f", true, true},
    {"mse", "MSE", "%.3g", false, false},
    {"l0", "L0", "%.2f", true, true},
    {"dead_fraction", "dead", "%.3f", false, true},
    {"gt_mcc", "gt_mcc", "%.3f", true, true},
    {"gt_f1", "gt_f1", "%.3f", false, true},
    {"gt_absorption", "gt_absorption", "%.3f", true, true},
    {"probe_absorption_fraction", "probe absorption", "%.3f", true, true},
    {"probe_full_absorption", "probe full absorption", "%.3f", true, true},
    {"probe_f1", "probe F1", "%.3f", false, false},
    {"gt_pairs_in_region", "gt pairs in region", "%.2f", true, true},
    {"absorption_pairs_mean", "pairs/step", "%.2f", false, false},
    {"absorption_active_fraction", "steps fired", "%.3f", false, false},
};

std::optional<double> number_of(const json& value) {
  if (value.is_number()) return value.get<double>();
  return std::nullopt;
}

using Kind = TableCell::Kind;

TableCell text_cell(std::string text) { return {Kind::Text, std::move(text), "", std::nullopt}; }
TableCell number_cell(std::string text, const json& value) {
  return {Kind::Number, std::move(text), "", number_of(value)};
}

TableCell metric_cell(const json& job, const Column& col) {
  const json& m = job["metrics"];
  json value = m.contains(col.metric) ? m[col.metric] : json();
  TableCell cell = number_cell(format_number(col.format, value), value);
  const json& delta = job.value("delta", json::object());
  if (col.delta && delta.contains(col.metric)) cell.delta = "(" + format_signed(col.format, delta[col.metric]) + ")";
  return cell;
}

// "0.9100 ± 0.0100"; the mean alone for one replica.
TableCell summary_cell(const json& point, const Column& col) {
  const json& m = point["metrics"];
  if (!m.contains(col.metric)) return number_cell("n/a", json());
  const json& s = m[col.metric];
  std::string text = format_number(col.format, s["mean"]);
  if (s["n"].get<int>() >= 2) text += " ± " + format_number(col.format, s["sd"]);
  TableCell cell = number_cell(text, s["mean"]);
  if (col.delta && point.contains("paired") && point["paired"].contains(col.metric)) {
    const json& d = point["paired"][col.metric];
    cell.delta = "(" + format_signed(col.format, d["mean"]);
    if (d.contains("ci_high"))  // the t interval is symmetric: its half-width
      cell.delta += " ± " + format_number(col.format, d["ci_high"].get<double>() - d["mean"].get<double>());
    cell.delta += ")";
  }
  return cell;
}

// A baseline's share of matched pairs in the flagged region at the thresholds of the points
// compared with it (its own would be at the defaults, which no penalised point need use).
TableCell baseline_region_cell(const json& report, const json& point) {
  std::vector<std::string> lines;
  std::vector<double> shares;
  for (const auto& e : report["verdicts"]["coverage"]["points"]) {
    if (e["baseline_point"] != point["label"] || !e["baseline_share"].is_number()) continue;
    const std::string line = format_number("%.2f", e["baseline_share"]) + " at tau " + format_number("%g", e["tau"]) +
                             ", rho " + format_number("%g", e["rho"]);
    if (std::find(lines.begin(), lines.end(), line) != lines.end()) continue;
    lines.push_back(line);
    shares.push_back(e["baseline_share"].get<double>());
  }
  if (lines.empty()) return number_cell("n/a", json());
  if (lines.size() > 2) return number_cell("by threshold: see the rows", json());
  TableCell cell = number_cell(lines[0], shares[0]);
  if (lines.size() == 2) cell.delta = lines[1];
  return cell;
}

// The columns some row has a value for.
template <typename Rows>
std::vector<Column> measured_columns(const Rows& rows, bool per_point) {
  std::vector<Column> out;
  for (const auto& col : kColumns) {
    if (per_point && !col.per_point) continue;
    const bool any = std::any_of(rows.begin(), rows.end(), [&](const json& row) { return row["metrics"].contains(col.metric); });
    if (any) out.push_back(col);
  }
  return out;
}

}  // namespace

ReportTable job_table(const json& report) {
  ReportTable table;
  table.name = "jobs";
  table.title = "Jobs";
  table.headers.push_back("job");
  for (const auto& key : report["swept_keys"]) table.headers.push_back(key);
  for (const char* h : {"status", "attempts"}) table.headers.push_back(h);
  const auto columns = measured_columns(report["jobs"], false);
  for (const auto& col : columns) table.headers.push_back(col.header);
  for (const char* h : {"train s", "failure"}) table.headers.push_back(h);

  for (const auto& job : report["jobs"]) {
    std::vector<TableCell> row;
    row.push_back(text_cell(job["id"].get<std::string>() + (job["baseline"].get<bool>() ? " (baseline)" : "")));
    for (const auto& key : report["swept_keys"]) {
      const json& params = job["params"];
      if (!params.contains(key))
        row.push_back(number_cell("-", json()));
      else if (params[key].is_number())
        row.push_back(number_cell(param_value(params[key]), params[key]));
      else
        row.push_back(text_cell(param_value(params[key])));
    }
    row.push_back(text_cell(job["status"].get<std::string>()));
    row.push_back(number_cell(job["attempts"].dump(), job["attempts"]));
    for (const auto& col : columns) row.push_back(metric_cell(job, col));
    json seconds = job["train"].value("seconds", json());
    row.push_back(number_cell(format_number("%.1f", seconds), seconds));
    row.push_back({Kind::Prose,
                   job["status"] == "done" ? "" : one_line(job.value("error", job["status"].get<std::string>())), "",
                   std::nullopt});
    table.rows.push_back(std::move(row));
    table.row_classes.push_back(job["status"].get<std::string>() + (job["baseline"].get<bool>() ? " baseline" : ""));
  }
  table.notes =
      "Differences in parentheses are to the job's baseline (same settings, absorption.enabled = false). "
      "EV: explained variance; L0: active latents per token; probe absorption and probe full absorption: the "
      "probe-based absorption metric (SAEBench's absorption fraction and full-absorption rate, means over the "
      "labelled concepts), probe F1 the probes' own F1 on held-out rows; pairs/step: mean number of flagged latent pairs "
      "per step; steps fired: share of steps with at least one flagged pair; gt pairs in region: share of the "
      "latent pairs matched to true (parent, child) features inside the penalty's flagged region at the end (a "
      "baseline's at the default thresholds; a penalised job's difference is to its baseline's share at the job's own "
      "thresholds); train s: training seconds. Columns no job measured are left out.";
  return table;
}

ReportTable intervention_table(const json& report) {
  static const Column kClampColumns[] = {
      {"clamp_base_removal", "base: removal", "%.3f", false},
      {"clamp_base_preservation", "base: preservation", "%.4f", false},
      {"clamp_concept_removal", "concept: removal", "%.3f", false},
      {"clamp_concept_preservation", "concept: preservation", "%.4f", false},
      {"clamp_coordinated_removal", "coordinated: removal", "%.3f", false},
      {"clamp_coordinated_preservation", "coordinated: preservation", "%.4f", false},
  };
  ReportTable table;
  table.name = "interventions";
  table.title = "Clamping interventions";
  table.headers = {"grid point", "replicas"};
  for (const auto& col : kClampColumns) table.headers.push_back(col.header);
  for (const auto& point : report["points"]) {
    if (!point["metrics"].contains("clamp_coordinated_removal")) continue;
    std::vector<TableCell> row = {text_cell(point["label"].get<std::string>()), number_cell(point["n"].dump(), point["n"])};
    for (const auto& col : kClampColumns) row.push_back(summary_cell(point, col));
    table.rows.push_back(std::move(row));
    table.row_classes.push_back(point["baseline"].get<bool>() ? "done baseline" : "done");
  }
  table.notes =
      "For each target root feature (the most frequent first), its knowledge is removed by zeroing latents: "
      "base, those of its children; concept, its own (a Matryoshka SAE's concept level where it has one); "
      "coordinated, both. Removal: the share of the subtree's true contribution that leaves the "
      "reconstruction (1 = all of it). Preservation: explained variance of the rest of the signal relative "
      "to no intervention (1 = untouched; the analogue of keeping MMLU at 0.99). Means over the targets, "
      "then mean ± sd over replicas.";
  return table;
}

ReportTable concept_table(const json& report) {
  ReportTable table;
  table.name = "concepts";
  table.title = "Probe-based absorption per concept";
  std::vector<const json*> points;
  for (const auto& point : report["points"]) points.push_back(&point);
  // Per grid point and concept: the absorption fractions of its finished replicas.
  std::map<std::string, std::map<std::string, std::vector<double>>> fractions;
  const json* columns = nullptr;  // a job's per-concept block: the names, rows and probe F1 are the data's
  for (const auto& job : report["jobs"]) {
    if (job["status"] != "done" || !job.contains("probe_absorption")) continue;
    const json& c = job["probe_absorption"];
    if (!columns) columns = &c;
    for (size_t i = 0; i < c["name"].size(); ++i) {
      if (c["absorption_fraction"][i].is_number())
        fractions[job["point"].get<std::string>()][c["name"][i].get<std::string>()].push_back(c["absorption_fraction"][i].get<double>());
    }
  }
  if (!columns) return table;
  table.headers = {"concept", "held-out rows", "probe F1"};
  for (const json* point : points) table.headers.push_back((*point)["label"].get<std::string>());
  const json& c = *columns;
  for (size_t i = 0; i < c["name"].size(); ++i) {
    const std::string name = c["name"][i];
    std::vector<TableCell> row = {text_cell(name), number_cell(c["positives"][i].dump(), c["positives"][i]),
                                  number_cell(format_number("%.3f", c["probe_f1"][i]), c["probe_f1"][i])};
    for (const json* point : points) {
      const auto& values = fractions[(*point)["label"].get<std::string>()][name];
      if (values.empty()) {
        row.push_back(number_cell("n/a", json()));
        continue;
      }
      double sum = 0;
      for (double v : values) sum += v;
      const json mean = sum / static_cast<double>(values.size());
      row.push_back(number_cell(format_number("%.3f", mean), mean));
    }
    table.rows.push_back(std::move(row));
    table.row_classes.push_back(c["counted"][i].get<bool>() ? "done" : "done excluded");
  }
  table.notes = "Per concept (a class of data.labels): its held-out rows, its probe's F1 on them, and each grid "
                "point's absorption fraction (the mean over the rows where the concept is on and its probe agrees, "
                "then over the point's replicas). A concept whose probe F1 is below probe.min_f1 (" +
                c.value("min_f1", json()).dump() + ") is not scored (n/a); one with fewer than probe.min_rows (" +
                c["min_rows"].dump() + ") scored rows stays out of the probe_* means (grey).";
  return table;
}

ReportTable point_table(const json& report) {
  ReportTable table;
  table.name = "points";
  table.title = "Grid points";
  if (!report["verdicts"]["replication"]["replicated"].get<bool>()) return table;
  table.headers = {"grid point", "replicas (done / jobs)"};
  const auto columns = measured_columns(report["points"], true);
  for (const auto& col : columns) table.headers.push_back(col.header);
  for (const auto& point : report["points"]) {
    std::vector<TableCell> row = {text_cell(point["label"].get<std::string>()),
                                  number_cell(point["n"].dump() + " / " + std::to_string(point["jobs"].size()), point["n"])};
    for (const auto& col : columns) {
      const bool region_of_baseline = point["baseline"].get<bool>() && std::string(col.metric) == "gt_pairs_in_region";
      row.push_back(region_of_baseline ? baseline_region_cell(report, point) : summary_cell(point, col));
    }
    table.rows.push_back(std::move(row));
    table.row_classes.push_back(point["baseline"].get<bool>() ? "done baseline" : "done");
  }
  std::string keys;
  for (const auto& k : report["replica_keys"]) keys += (keys.empty() ? "" : ", ") + k.get<std::string>();
  table.notes = "Each grid point's finished replicas (jobs that differ only in " + keys +
                "): mean ± standard deviation. Below it, in parentheses: the mean difference to the baseline paired by "
                "replica ± the half-width of its 95% t interval; an interval that holds 0 is seed noise. gt pairs in "
                "region: a penalised point's share at the end of training, its difference to the baseline's share at the "
                "same thresholds; the baseline's row gives its share at the thresholds of the points compared with it. "
                "Columns no point measured are left out; MSE, the probes' F1 and the penalty's activity are in the jobs "
                "table.";
  return table;
}

}  // namespace sweep::launcher
