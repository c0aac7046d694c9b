// The files inlined into report.html, embedded into the binary at build time (embed.S.in): the
// Vega, Vega-Lite and vega-embed bundles, their licences, and the page's own script and style.
#pragma once

#include <string_view>

namespace sweep::report_assets {

std::string_view vega();
std::string_view vega_lite();
std::string_view vega_embed();
std::string_view licences();     // every bundled package's licence, as plain text
std::string_view page_script();  // report.js: sortable table, plot rendering
std::string_view page_style();   // report.css

}  // namespace sweep::report_assets
