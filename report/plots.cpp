// Builds the Vega-Lite specs of report.html from report.json; every number they show is in
// report.json (points' means and sds, jobs' metrics, pareto flags, curves), so other tools can
// redraw them. Replicas are drawn faint behind their grid point's mean, never as an x-axis.
#include "report/plots.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <string>
#include <vector>


namespace sweep::launcher {
namespace {

using nlohmann::json;

const char* const kKeyMetrics[] = {"explained_variance", "gt_absorption",         "probe_absorption_fraction",
                                   "probe_full_absorption", "gt_mcc", "absorption_pairs_mean"};
const char* const kCurveSeries[] = {"loss", "recon", "sparse", "aux", "absorption", "l0", "flagged_pairs"};

bool finite(const json& metrics, const std::string& key) {
  return metrics.contains(key) && metrics[key].is_number() && std::isfinite(metrics[key].get<double>());
}

// Faint points: one per finished replica, behind the means.
json replica_layer(const json& rows, const json& x, const json& y, const json& colour) {
  return {{"data", {{"values", rows}}},
          {"mark", {{"type", "point"}, {"filled", true}, {"size", 40}, {"opacity", 0.25}}},
          {"encoding", {{"x", x}, {"y", y}, {"color", colour}}}};
}

class Plots {
 public:
  explicit Plots(const json& report) : report_(report) {
    for (const auto& point : report["points"]) labels_.push_back(point["label"]);
    for (const auto& job : report["jobs"]) job_by_id_[job["id"].get<std::string>()] = &job;
  }

  // Colour by grid point, the same colour for a point (and its replicas) in every plot.
  json colour() const {
    return {{"field", "params"},
            {"type", "nominal"},
            {"title", "grid point"},
            {"scale", {{"domain", labels_}}},
            {"legend", {{"labelLimit", 400}}}};
  }

  // One row per finished job with `fields` of its metrics, keyed by its point's label.
  json replica_rows(std::initializer_list<const char*> fields) const {
    json rows = json::array();
    for (const auto& job : report_["jobs"]) {
      const auto& m = job["metrics"];
      if (job["status"] != "done") continue;
      json row = {{"job", job["id"]}, {"params", job["point"]}};
      bool complete = true;
      for (const char* f : fields) {
        complete = complete && finite(m, f);
        if (complete) row[f] = m[f];
      }
      if (complete) rows.push_back(row);
    }
    return rows;
  }

  json pareto() const {
    json rows = json::array();
    for (const auto& point : report_["points"]) {
      const auto& m = point["metrics"];
      if (!m.contains("l0") || !m.contains("explained_variance")) continue;
      rows.push_back({{"params", point["label"]},
                      {"n", point["n"]},
                      {"l0", m["l0"]["mean"]},
                      {"explained_variance", m["explained_variance"]["mean"]},
                      {"pareto", point.value("pareto", false)},
                      {"role", point["baseline"].get<bool>() ? "baseline" : "penalised"}});
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
                   replica_layer(replica_rows({"l0", "explained_variance"}), x, y, colour()),
                   {{"mark", {{"type", "point"}, {"filled", true}, {"size", 90}}},
                    {"encoding",
                     {{"x", x},
                      {"y", y},
                      {"color", colour()},
                      {"shape", {{"field", "role"}, {"type", "nominal"}, {"title", "role"}}},
                      {"tooltip", tooltip({"params", "n", "l0", "explained_variance", "pareto"})}}}}}}};
    return {{"id", "plot-pareto"},
            {"title", "L0 against explained variance"},
            {"caption",
             "Each grid point's mean over its finished replicas; its replicas are the faint points. Circled "
             "points joined by the dashed line form the Pareto front: no other point has both a lower mean L0 "
             "and a higher mean explained variance."},
            {"spec", spec}};
  }

  // An absorption metric against explained variance: each point's means with error bars of one sd
  // both ways (the replicas faint), the baseline's shape apart, and the trade-off front of the
  // means (report.json's verdicts.best[].front) joined by a dashed line.
  json tradeoff(const std::string& metric) const {
    std::set<std::string> on_front;
    for (const auto& b : report_["verdicts"]["best"]) {
      if (b["metric"] != metric || !b.contains("front")) continue;
      for (const auto& f : b["front"]) on_front.insert(f["point"].get<std::string>());
    }
    json means = json::array();
    for (const auto& point : report_["points"]) {
      const auto& m = point["metrics"];
      if (!m.contains(metric) || !m.contains("explained_variance")) continue;
      const json &a = m[metric], &ev = m["explained_variance"];
      const double a_mean = a["mean"], a_sd = a["sd"], ev_mean = ev["mean"], ev_sd = ev["sd"];
      means.push_back({{"params", point["label"]}, {"n", point["n"]}, {"absorption", a_mean}, {"absorption_sd", a_sd},
                       {"absorption_low", a_mean - a_sd}, {"absorption_high", a_mean + a_sd},
                       {"explained_variance", ev_mean}, {"explained_variance_sd", ev_sd},
                       {"ev_low", ev_mean - ev_sd}, {"ev_high", ev_mean + ev_sd},
                       {"front", on_front.count(point["label"].get<std::string>()) > 0},
                       {"role", point["baseline"].get<bool>() ? "baseline" : "penalised"}});
    }
    if (means.size() < 2) return nullptr;
    json replicas = json::array();
    for (const auto& row : replica_rows({"explained_variance", metric.c_str()})) {
      replicas.push_back({{"params", row["params"]}, {"explained_variance", row["explained_variance"]}, {"absorption", row[metric]}});
    }
    json x = {{"field", "explained_variance"}, {"type", "quantitative"}, {"title", "explained variance"}, {"scale", {{"zero", false}}}};
    json y = {{"field", "absorption"}, {"type", "quantitative"}, {"title", metric}, {"scale", {{"zero", false}}}};
    json front = {{"filter", "datum.front"}};
    json layers = {
        {{"data", {{"values", means}}}, {"transform", {front}},
         {"mark", {{"type", "line"}, {"color", "#888"}, {"strokeDash", {5, 3}}}},
         {"encoding", {{"x", x}, {"y", y}, {"order", {{"field", "explained_variance"}, {"type", "quantitative"}}}}}},
        replica_layer(replicas, x, y, colour()),
        {{"data", {{"values", means}}},
         {"mark", {{"type", "errorbar"}, {"ticks", true}}},
         {"encoding", {{"x", x}, {"y", {{"field", "absorption_low"}, {"type", "quantitative"}, {"title", metric}}},
                       {"y2", {{"field", "absorption_high"}}}, {"color", colour()}}}},
        {{"data", {{"values", means}}},
         {"mark", {{"type", "errorbar"}, {"ticks", true}}},
         {"encoding", {{"y", y}, {"x", {{"field", "ev_low"}, {"type", "quantitative"}, {"title", "explained variance"}}},
                       {"x2", {{"field", "ev_high"}}}, {"color", colour()}}}},
        {{"data", {{"values", means}}}, {"transform", {front}},
         {"mark", {{"type", "point"}, {"size", 260}, {"color", "#222"}}},
         {"encoding", {{"x", x}, {"y", y}}}},
        {{"data", {{"values", means}}},
         {"mark", {{"type", "point"}, {"filled", true}, {"size", 90}}},
         {"encoding", {{"x", x}, {"y", y}, {"color", colour()},
                       {"shape", {{"field", "role"}, {"type", "nominal"}, {"title", "role"},
                                  {"scale", {{"domain", {"baseline", "penalised"}}, {"range", {"square", "circle"}}}}}},
                       {"tooltip", tooltip({"params", "n", "absorption", "absorption_sd", "explained_variance",
                                            "explained_variance_sd", "front"})}}}}};
    return {{"id", "plot-tradeoff-" + metric},
            {"title", metric + " against explained variance"},
            {"caption",
             "The trade-off a researcher decides on: each grid point's mean over its finished replicas with error "
             "bars of one standard deviation both ways (the replicas faint; the baseline a square). Circled points "
             "joined by the dashed line form the front: no other point has both a lower mean " + metric +
             " and a higher mean explained variance. Best is bottom right."},
            {"spec", {{"width", 460}, {"height", 320}, {"layer", layers}}}};
  }

  // One plot of `metric` against swept param `key`: each point's mean with an error bar of one sd
  // over its replicas (the replicas faint), and each baseline's mean as a dashed reference line.
  json metric_against_param(const std::string& metric, const std::string& key, size_t index) const {
    json means = json::array(), baselines = json::array(), replicas = json::array();
    bool numeric = true;
    for (const auto& point : report_["points"]) {
      const auto& m = point["metrics"];
      if (!m.contains(metric)) continue;
      const double mean = m[metric]["mean"], sd = m[metric]["sd"];
      if (point["baseline"].get<bool>()) {
        baselines.push_back({{"params", point["label"]}, {"n", point["n"]}, {"value", mean}});
      }
      if (!point["params"].contains(key)) continue;
      const json& x = point["params"][key];
      numeric = numeric && x.is_number();
      means.push_back({{"params", point["label"]}, {"n", point["n"]}, {"x", x}, {"value", mean}, {"sd", sd},
                       {"low", mean - sd}, {"high", mean + sd}});
      for (const auto& id : point["jobs"]) {
        const json& job = *job_by_id_.at(id.get<std::string>());
        if (job["status"] == "done" && finite(job["metrics"], metric))
          replicas.push_back({{"params", point["label"]}, {"x", x}, {"value", job["metrics"][metric]}});
      }
    }
    if (means.empty()) return nullptr;
    json x = {{"field", "x"}, {"type", numeric ? "quantitative" : "nominal"}, {"title", key}};
    json y = {{"field", "value"}, {"type", "quantitative"}, {"title", metric}, {"scale", {{"zero", false}}}};
    json layers = {replica_layer(replicas, x, y, colour()),
                   {{"data", {{"values", means}}},
                    {"mark", {{"type", "errorbar"}, {"ticks", true}}},
                    {"encoding",
                     {{"x", x},
                      {"y", {{"field", "low"}, {"type", "quantitative"}, {"title", metric}}},
                      {"y2", {{"field", "high"}}},
                      {"color", colour()}}}},
                   {{"data", {{"values", means}}},
                    {"mark", {{"type", "point"}, {"filled", true}, {"size", 90}}},
                    {"encoding",
                     {{"x", x}, {"y", y}, {"color", colour()}, {"tooltip", tooltip({"params", "n", "x", "value", "sd"})}}}}};
    if (!baselines.empty()) {
      layers.push_back({{"data", {{"values", baselines}}},
                        {"mark", {{"type", "rule"}, {"color", "#555"}, {"strokeDash", {6, 4}}}},
                        {"encoding", {{"y", y}, {"tooltip", tooltip({"params", "n", "value"})}}}});
    }
    return {{"id", "plot-metric-" + std::to_string(index)},
            {"title", metric + " against " + key},
            {"caption", "Grid points that set " + key +
                            ": the mean over finished replicas, with an error bar of one standard deviation and "
                            "the replicas faint; the dashed line is the baseline's mean (absorption.enabled = "
                            "false) with the same other settings."},
            {"spec", {{"width", 300}, {"height", 220}, {"layer", layers}}}};
  }

  // The clamping interventions: removal against preservation, a mark per grid point and strategy
  // (the mean over its replicas; the replicas faint).
  json interventions() const {
    struct Scores {
      std::string strategy, removal, kept;  // the strategy and its two metrics' names
    };
    std::vector<Scores> strategies;
    for (std::string s : {"base", "concept", "coordinated"}) {
      strategies.push_back({s, "clamp_" + s + "_removal", "clamp_" + s + "_preservation"});
    }
    json means = json::array(), replicas = json::array();
    for (const auto& point : report_["points"]) {
      const auto& m = point["metrics"];
      for (const auto& [s, removal, kept] : strategies) {
        if (!m.contains(removal) || !m.contains(kept)) continue;
        means.push_back({{"params", point["label"]}, {"n", point["n"]}, {"strategy", s},
                         {"removal", m[removal]["mean"]}, {"preservation", m[kept]["mean"]}});
      }
    }
    if (means.empty()) return nullptr;
    for (const auto& job : report_["jobs"]) {
      if (job["status"] != "done") continue;
      const auto& m = job["metrics"];
      for (const auto& [s, removal, kept] : strategies) {
        if (!finite(m, removal) || !finite(m, kept)) continue;
        replicas.push_back({{"params", job["point"]}, {"job", job["id"]}, {"strategy", s},
                            {"removal", m[removal]}, {"preservation", m[kept]}});
      }
    }
    json x = {{"field", "removal"}, {"type", "quantitative"}, {"title", "removal (share of the target's contribution)"}};
    json y = {{"field", "preservation"}, {"type", "quantitative"}, {"title", "preservation (rest of the signal)"},
              {"scale", {{"zero", false}}}};
    json shape = {{"field", "strategy"}, {"type", "nominal"}, {"title", "clamped"}};
    json spec = {{"width", 460},
                 {"height", 320},
                 {"layer",
                  {{{"data", {{"values", replicas}}},
                    {"mark", {{"type", "point"}, {"filled", true}, {"size", 40}, {"opacity", 0.25}}},
                    {"encoding", {{"x", x}, {"y", y}, {"color", colour()}, {"shape", shape}}}},
                   {{"data", {{"values", means}}},
                    {"mark", {{"type", "point"}, {"filled", true}, {"size", 110}}},
                    {"encoding",
                     {{"x", x},
                      {"y", y},
                      {"color", colour()},
                      {"shape", shape},
                      {"tooltip", tooltip({"params", "n", "strategy", "removal", "preservation"})}}}}}}};
    return {{"id", "plot-interventions"},
            {"title", "Clamping interventions: removal against preservation"},
            {"caption",
             "Per grid point and strategy, the mean over its replicas (the replicas faint) of the clamping "
             "interventions' scores, averaged over the target root features: the ideal is removal 1 at "
             "preservation 1 (top right)."},
            {"spec", spec}};
  }

  // Decoder cosine against co-activation ratio at the end of training, one panel per grid point (its
  // first finished replica): the highest-cosine latent pairs and, with ground truth, the pairs
  // matched to true (parent, child) features, marked; tau and rho drawn.
  json coverage() const {
    json rows = json::array();
    std::set<std::string> drawn;
    for (const auto& job : report_["jobs"]) {
      if (job["status"] != "done" || !job.contains("absorption_coverage")) continue;
      const std::string point = job["point"];
      if (!drawn.insert(point).second) continue;
      const json& c = job["absorption_coverage"];
      for (size_t k = 0; k < c["cosine"].size(); ++k) {
        rows.push_back({{"params", point},
                        {"job", job["id"]},
                        {"i", c["i"][k]},
                        {"j", c["j"][k]},
                        {"cosine", c["cosine"][k]},
                        {"ratio", c["ratio"][k]},
                        {"pair", c["matched"][k].get<bool>() ? "matched (parent, child)" : "highest cosine"},
                        {"tau", c["tau"]},
                        {"rho", c["rho"]}});
      }
    }
    if (rows.empty()) return nullptr;
    json x = {{"field", "cosine"}, {"type", "quantitative"}, {"title", "decoder cosine"}};
    json y = {{"field", "ratio"}, {"type", "quantitative"}, {"title", "co-activation ratio"}, {"scale", {{"type", "symlog"}}}};
    json spec = {{"data", {{"values", rows}}},
                 {"facet", {{"field", "params"}, {"type", "nominal"}, {"title", nullptr}}},
                 {"columns", 3},
                 {"spec",
                  {{"width", 250},
                   {"height", 180},
                   {"layer",
                    {{{"mark", {{"type", "point"}, {"filled", true}, {"size", 30}}},
                      {"encoding",
                       {{"x", x},
                        {"y", y},
                        {"color", {{"field", "pair"}, {"type", "nominal"}, {"title", "latent pair"}}},
                        {"opacity", {{"condition", {{"test", "datum.pair === 'highest cosine'"}, {"value", 0.35}}}, {"value", 0.9}}},
                        {"tooltip", tooltip({"job", "i", "j", "cosine", "ratio", "pair"})}}}},
                     {{"mark", {{"type", "rule"}, {"color", "#b00"}, {"strokeDash", {6, 4}}}},
                      {"encoding", {{"x", {{"aggregate", "min"}, {"field", "tau"}, {"type", "quantitative"}}}}}},
                     {{"mark", {{"type", "rule"}, {"color", "#b00"}, {"strokeDash", {6, 4}}}},
                      {"encoding", {{"y", {{"aggregate", "min"}, {"field", "rho"}, {"type", "quantitative"}}}}}}}}}}};
    return {{"id", "plot-coverage"},
            {"title", "Which pairs the penalty can reach"},
            {"caption",
             "Per grid point (its first finished replica), at the end of training: the decoder cosine and the "
             "co-activation ratio on held-out rows of the 200 highest-cosine latent pairs (faint) and of every "
             "pair of latents matched to a true (parent, child) pair of features. The dashed lines are tau and "
             "rho: the penalty flags only pairs above and to the right of both (with both latents active)."},
            {"spec", spec}};
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
      json row = {{"job", job["id"]}, {"params", job["point"]}};
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
  std::map<std::string, const json*> job_by_id_;
};

}  // namespace

json plot_specs(const json& report) {
  Plots plots(report);
  json out = json::array();
  auto add = [&](json plot) {
    if (!plot.is_null()) out.push_back(std::move(plot));
  };
  add(plots.pareto());
  for (const char* metric : {"gt_absorption", "probe_absorption_fraction"}) add(plots.tradeoff(metric));
  size_t index = 0;
  const json& replicas = report["replica_keys"];
  for (const char* metric : kKeyMetrics) {
    for (const auto& key : report["swept_keys"]) {
      const bool replica = std::find(replicas.begin(), replicas.end(), key) != replicas.end();
      if (key != "absorption.enabled" && !replica) add(plots.metric_against_param(metric, key, index++));
    }
  }
  add(plots.coverage());
  add(plots.interventions());
  add(plots.curves());
  return out;
}

}  // namespace sweep::launcher
