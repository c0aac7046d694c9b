// Renders report.json as report.html: the page's structure and text here, the plots from
// report_plots, the runtime, script and style from the embedded report_assets.
#include "report/html.h"

#include <cctype>
#include <sstream>
#include <string_view>

#include "report/plots.h"
#include "report/summary.h"
#include "report/table.h"
#include "report/verdict_text.h"
#include "report_assets/embedded.h"

namespace sweep::launcher {
namespace {

// No request may leave the page: inline scripts and styles only, nothing fetched.
const char* const kContentSecurityPolicy =
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:";

std::string escape(std::string_view text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// JSON inside <script>: "<" only occurs in strings, where \u003c means the same and cannot end
// the element or open a comment.
std::string inline_json(const nlohmann::json& value) {
  std::string out;
  for (char c : value.dump()) out += c == '<' ? std::string("\\u003c") : std::string(1, c);
  return out;
}

// JavaScript inside <script>: "</script" (any case) would end the element; it can only stand in a
// string, regular expression or comment, where "<\/" means the same.
std::string inline_js(std::string_view js) {
  std::string out(js);
  for (size_t pos = out.find("</"); pos != std::string::npos; pos = out.find("</", pos + 1)) {
    std::string tag = out.substr(pos + 2, 6);
    for (char& c : tag) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (tag == "script") out.insert(pos + 1, "\\");
  }
  return out;
}

const char* verdict_class(Verdict::Kind kind) {
  switch (kind) {
    case Verdict::Kind::Warning:
      return "warning";
    case Verdict::Kind::Failure:
      return "failure";
    case Verdict::Kind::Finding:
      break;
  }
  return "finding";
}

void write_summary(std::ostream& html, const nlohmann::json& report) {
  html << "<dl class=\"summary\">\n";
  for (const auto& [label, value] : summary_items(report)) {
    html << "<div><dt>" << escape(label) << "</dt><dd>" << escape(value) << "</dd></div>\n";
  }
  html << "</dl>\n";
}

void write_headline(std::ostream& html, const nlohmann::json& report) {
  const auto lines = headline_lines(report);
  if (lines.empty()) return;
  html << "<h2>Headline</h2>\n<ul class=\"headline\">\n";
  for (const auto& line : lines) html << "<li>" << escape(line) << "</li>\n";
  html << "</ul>\n";
}

void write_verdicts(std::ostream& html, const nlohmann::json& report) {
  html << "<h2>Verdicts</h2>\n<ul class=\"verdicts\">\n";
  for (const auto& v : verdict_sentences(report)) {
    html << "<li class=\"" << verdict_class(v.kind) << "\">" << (v.kind == Verdict::Kind::Warning ? "WARNING: " : "")
         << escape(v.text) << "</li>\n";
  }
  html << "</ul>\n";
}

void write_table(std::ostream& html, const ReportTable& table) {
  if (table.rows.empty()) return;
  // The table scrolls inside its own box, so a wide one never widens the page.
  html << "<h2>" << escape(table.title) << "</h2>\n<p>Click a column header to sort by it.</p>\n"
       << "<div class=\"table-box\"><table class=\"" << table.name << " sortable\">\n<thead><tr>";
  for (const auto& h : table.headers) html << "<th>" << escape(h) << "</th>";
  html << "</tr></thead>\n<tbody>\n";
  for (size_t i = 0; i < table.rows.size(); ++i) {
    html << "<tr class=\"" << escape(table.row_classes[i]) << "\">";
    for (const auto& cell : table.rows[i]) {
      html << "<td";
      if (cell.kind == TableCell::Kind::Text) html << " class=\"text\"";
      if (cell.kind == TableCell::Kind::Prose) html << " class=\"reason\"";
      if (cell.sort) html << " data-sort=\"" << nlohmann::json(*cell.sort).dump() << "\"";
      html << ">" << escape(cell.text);
      if (!cell.delta.empty()) html << "<br><span class=\"delta\">" << escape(cell.delta) << "</span>";
      html << "</td>";
    }
    html << "</tr>\n";
  }
  html << "</tbody>\n</table></div>\n<p class=\"notes\">" << escape(table.notes) << "</p>\n";
}

void write_plots(std::ostream& html, const nlohmann::json& plots) {
  html << "<h2>Plots</h2>\n<div class=\"plots\">\n";
  for (const auto& plot : plots) {
    html << "<figure><div class=\"plot\" id=\"" << escape(plot["id"].get<std::string>())
         << "\"></div><figcaption><strong>" << escape(plot["title"].get<std::string>()) << ".</strong> "
         << escape(plot["caption"].get<std::string>()) << "</figcaption></figure>\n";
  }
  html << "</div>\n";
}

}  // namespace

std::string render_html(const nlohmann::json& report) {
  namespace assets = sweep::report_assets;
  const std::string name = report["sweep"].get<std::string>();
  const nlohmann::json plots = plot_specs(report);
  nlohmann::json embeds = nlohmann::json::array();
  for (const auto& plot : plots) embeds.push_back({{"id", plot["id"]}, {"spec", plot["spec"]}});

  std::ostringstream html;
  html << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
       << "<meta http-equiv=\"Content-Security-Policy\" content=\"" << kContentSecurityPolicy << "\">\n"
       << "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
       << "<title>Sweep " << escape(name) << "</title>\n<style>\n"
       << assets::page_style() << "</style>\n</head>\n<body>\n"
       << "<h1>Sweep <code>" << escape(name) << "</code></h1>\n";
  write_summary(html, report);
  write_headline(html, report);
  write_verdicts(html, report);
  write_table(html, point_table(report));
  write_table(html, intervention_table(report));
  write_table(html, concept_table(report));
  write_table(html, job_table(report));
  write_plots(html, plots);
  html << "<details class=\"licences\"><summary>Third-party licences (Vega, Vega-Lite, vega-embed and the "
          "packages they are built from, inlined in this page)</summary><pre>"
       << escape(assets::licences()) << "</pre></details>\n"
       << "<script type=\"application/json\" id=\"sweep-plots\">" << inline_json(embeds) << "</script>\n";
  for (std::string_view js : {assets::vega(), assets::vega_lite(), assets::vega_embed(), assets::page_script()}) {
    html << "<script>" << inline_js(js) << "</script>\n";
  }
  html << "</body>\n</html>\n";
  return html.str();
}

}  // namespace sweep::launcher
