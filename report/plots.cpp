// Builds the Vega-Lite specs of report.html from report.json; every number they show is in
// report.json (metrics, pareto flags, curves), so other tools can redraw them.
#include "report/plots.h"

#include <cmath>
#include <string>
#include <vector>

#include "report/format.h"

namespace sweep::launcher {
namespace {

using nlohmann::json;

const char* const kKeyMetrics[] = {"explained_variance", "gt_absorption", "gt_mcc", "absorption_pairs_mean"};
const char* const kCurveSeries[] = {"loss", "recon", "sparse", "aux", "absorption", "l0", "flagged_pairs"};

bool finite(const json& metrics, const std::string& key) {
  return metrics.contains(key) && metrics[key].is_number() && std::isfinite(metrics[key].get<double>());
}

class Plots {
 public:
  explicit Plots(const json& report) : report_(report) {
    for (const auto& job : report["jobs"]) labels_.push_back(job_label(job));
  }

  // Colour by the swept params, the same colour for a job in every plot.
  json colour() const {
    return {{"field", "params"},
            {"type", "nominal"},
            {"title", "swept params"},
            {"scale", {{"domain", labels_}}},
            {"legend", {{"labelLimit", 400}}}};
  }

  json pareto() const {
    json rows = json::array();
    for (const auto& job : report_["jobs"]) {
      const auto& m = job["metrics"];
      if (job["status"] != "done" || !finite(m, "l0") || !finite(m, "explained_variance")) continue;
      rows.push_back({{"job", job["id"]},
                      {"params", job_label(job)},
                      {"l0", m["l0"]},
                      {"explained_variance", m["explained_variance"]},
                      {"pareto", job.value("pareto", false)},
                      {"role", job["baseline"].get<bool>() ? "baseline" : "penalised"}});
    }
    if (rows.empty()) return nullptr;
    json x = {{"field", "l0"},
              {"type", "quantitative"},
              {"title", "L0 (active latents per token)"},
              {"scale", {{"zero", false}}}};
    json y = {{"field", "explained_variance"},
              {"type", "quantitative"},
              {"title", "explained variance"},
              {"scale", {{"zero", false}}}};
    json front = {{"filter", "datum.pareto"}};
    json spec = {{"width", 460},
                 {"height", 320},
                 {"data", {{"values", rows}}},
                 {"layer",
                  {{{"transform", {front}},
                    {"mark", {{"type", "line"}, {"color", "#888"}, {"strokeDash", {5, 3}}}},
                    {"encoding", {{"x", x}, {"y", y}, {"order", {{"field", "l0"}, {"type", "quantitative"}}}}}},
                   {{"transform", {front}},
                    {"mark", {{"type", "point"}, {"size", 260}, {"color", "#222"}}},
                    {"encoding", {{"x", x}, {"y", y}}}},
                   {{"mark", {{"type", "point"}, {"filled", true}, {"size", 90}}},
                    {"encoding",
                     {{"x", x},
                      {"y", y},
                      {"color", colour()},
                      {"shape", {{"field", "role"}, {"type", "nominal"}, {"title", "job"}}},
                      {"tooltip", tooltip({"job", "params", "l0", "explained_variance", "pareto"})}}}}}}};
    return {{"id", "plot-pareto"},
            {"title", "L0 against explained variance"},
            {"caption",
             "Every finished job. Circled points joined by the dashed line form the Pareto front: no other "
             "job has both a lower L0 and a higher explained variance."},
            {"spec", spec}};
  }

  // One plot of `metric` against swept param `key`, with each baseline as a dashed reference line.
  json metric_against_param(const std::string& metric, const std::string& key, size_t index) const {
    json points = json::array(), baselines = json::array();
    bool numeric = true;
    for (const auto& job : report_["jobs"]) {
      const auto& m = job["metrics"];
      if (job["status"] != "done" || !finite(m, metric)) continue;
      if (job["baseline"].get<bool>()) {
        baselines.push_back({{"job", job["id"]}, {"params", job_label(job)}, {"value", m[metric]}});
      }
      if (!job["params"].contains(key)) continue;
      numeric = numeric && job["params"][key].is_number();
      points.push_back(
          {{"job", job["id"]}, {"params", job_label(job)}, {"x", job["params"][key]}, {"value", m[metric]}});
    }
    if (points.empty()) return nullptr;
    json y = {{"field", "value"}, {"type", "quantitative"}, {"title", metric}, {"scale", {{"zero", false}}}};
    json layers = {{{"data", {{"values", points}}},
                    {"mark", {{"type", "point"}, {"filled", true}, {"size", 90}}},
                    {"encoding",
                     {{"x", {{"field", "x"}, {"type", numeric ? "quantitative" : "nominal"}, {"title", key}}},
                      {"y", y},
                      {"color", colour()},
                      {"tooltip", tooltip({"job", "params", "x", "value"})}}}}};
    if (!baselines.empty()) {
      layers.push_back({{"data", {{"values", baselines}}},
                        {"mark", {{"type", "rule"}, {"color", "#555"}, {"strokeDash", {6, 4}}}},
                        {"encoding", {{"y", y}, {"tooltip", tooltip({"job", "params", "value"})}}}});
    }
    return {{"id", "plot-metric-" + std::to_string(index)},
            {"title", metric + " against " + key},
            {"caption", "Finished jobs that set " + key +
                            "; the dashed line is the baseline (absorption.enabled = "
                            "false) with the same other settings."},
            {"spec", {{"width", 300}, {"height", 220}, {"layer", layers}}}};
  }

  // Training curves from metrics.jsonl: one panel per series, one line per job.
  json curves() const {
    std::vector<std::string> series;
    for (const char* s : kCurveSeries) {
      bool everywhere = true, anywhere = false;
      for (const auto& job : report_["jobs"]) {
        if (!job["curve"].contains("step")) continue;
        anywhere = true;
        everywhere = everywhere && job["curve"].contains(s);
      }
      if (anywhere && everywhere) series.push_back(s);
    }
    if (series.empty()) return nullptr;
    json rows = json::array();
    std::vector<std::string> flatten = {"step"};
    flatten.insert(flatten.end(), series.begin(), series.end());
    for (const auto& job : report_["jobs"]) {
      if (!job["curve"].contains("step")) continue;
      json row = {{"job", job["id"]}, {"params", job_label(job)}};
      for (const auto& field : flatten) row[field] = job["curve"][field];
      rows.push_back(row);
    }
    json spec = {{"data", {{"values", rows}}},
                 {"transform", {{{"flatten", flatten}}, {{"fold", series}, {"as", {"series", "value"}}}}},
                 {"facet", {{"field", "series"}, {"type", "nominal"}, {"sort", series}, {"title", nullptr}}},
                 {"columns", 3},
                 {"resolve", {{"scale", {{"y", "independent"}}}}},
                 {"spec",
                  {{"width", 250},
                   {"height", 150},
                   {"mark", {{"type", "line"}}},
                   {"encoding",
                    {{"x", {{"field", "step"}, {"type", "quantitative"}}},
                     {"y", {{"field", "value"}, {"type", "quantitative"}, {"title", nullptr}}},
                     {"color", colour()},
                     {"detail", {{"field", "job"}, {"type", "nominal"}}},
                     {"tooltip", tooltip({"job", "params", "series", "step", "value"})}}}}}};
    return {{"id", "plot-curves"},
            {"title", "Training curves"},
            {"caption",
             "From each job's metrics.jsonl, at every logging step: the loss and its terms (recon, sparse, "
             "aux, absorption), L0 and the number of latent pairs the penalty flagged."},
            {"spec", spec}};
  }

 private:
  static json tooltip(std::initializer_list<const char*> fields) {
    json out = json::array();
    for (const char* f : fields) out.push_back({{"field", f}});
    return out;
  }

  const json& report_;
  std::vector<std::string> labels_;
};

}  // namespace

json plot_specs(const json& report) {
  Plots plots(report);
  json out = json::array();
  auto add = [&](json plot) {
    if (!plot.is_null()) out.push_back(std::move(plot));
  };
  add(plots.pareto());
  size_t index = 0;
  for (const char* metric : kKeyMetrics) {
    for (const auto& key : report["swept_keys"]) {
      if (key != "absorption.enabled") add(plots.metric_against_param(metric, key, index++));
    }
  }
  add(plots.curves());
  return out;
}

}  // namespace sweep::launcher
