// Renders report.json as Markdown: summary line, headline (each penalised point's effect), verdicts (warnings loud), unfinished jobs with
// their reasons, the grid-point table (with replicas) and the job table, with what their columns mean.
#include "report/markdown.h"

#include <sstream>

#include "report/summary.h"
#include "report/table.h"
#include "report/verdict_text.h"

namespace sweep::launcher {
namespace {

// A table cell: '|' would end it early.
std::string escape_cell(const std::string& text) {
  std::string out;
  for (char c : text) out += c == '|' ? std::string("\\|") : std::string(1, c);
  return out;
}

void write_table(std::ostream& md, const ReportTable& table) {
  if (table.rows.empty()) return;
  md << "\n## " << table.title << "\n\n|";
  for (const auto& h : table.headers) md << " " << h << " |";
  md << "\n|";
  for (size_t i = 0; i < table.headers.size(); ++i) md << "---|";
  md << "\n";
  for (const auto& row : table.rows) {
    md << "|";
    for (const auto& cell : row)
      md << " " << escape_cell(cell.text) << (cell.delta.empty() ? "" : "<br>" + escape_cell(cell.delta)) << " |";
    md << "\n";
  }
  md << "\n" << table.notes << "\n";
}

}  // namespace

std::string render_markdown(const nlohmann::json& report) {
  std::ostringstream md;
  md << "# Sweep `" << report["sweep"].get<std::string>() << "`\n\n";
  std::string sep;
  for (const auto& [label, value] : summary_items(report)) {
    md << sep << label << ": **" << value << "**";
    sep = " · ";
  }
  md << "\n\n";
  const auto headline = headline_lines(report);
  if (!headline.empty()) {
    md << "## Headline\n\n";
    for (const auto& line : headline) md << "- **" << line << "**\n";
    md << "\n";
  }

  const auto verdicts = verdict_sentences(report);
  md << "## Verdicts\n\n";
  for (const auto& v : verdicts) {
    if (v.kind == Verdict::Kind::Warning) md << "> **WARNING: " << v.text << "**\n\n";
  }
  for (const auto& v : verdicts) {
    if (v.kind == Verdict::Kind::Finding) md << "- " << v.text << "\n";
  }
  bool heading = false;
  for (const auto& v : verdicts) {
    if (v.kind != Verdict::Kind::Failure) continue;
    if (!heading) md << "\n## Failed jobs\n\n";
    heading = true;
    md << "- " << v.text << "\n";
  }

  write_table(md, point_table(report));
  write_table(md, intervention_table(report));
  write_table(md, concept_table(report));
  write_table(md, job_table(report));
  return md.str();
}

}  // namespace sweep::launcher
