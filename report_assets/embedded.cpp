// Views of the files that embed.S copies into the binary, between each file's begin and end
// symbols.
#include "report_assets/embedded.h"

#include <cstddef>

#define SWEEP_EMBEDDED(name)                                                                  \
  extern "C" const char sweep_asset_##name##_begin[];                                         \
  extern "C" const char sweep_asset_##name##_end[];                                           \
  std::string_view name() {                                                                   \
    return {sweep_asset_##name##_begin,                                                       \
            static_cast<std::size_t>(sweep_asset_##name##_end - sweep_asset_##name##_begin)}; \
  }

namespace sweep::report_assets {

SWEEP_EMBEDDED(vega)
SWEEP_EMBEDDED(vega_lite)
SWEEP_EMBEDDED(vega_embed)
SWEEP_EMBEDDED(licences)
SWEEP_EMBEDDED(page_script)
SWEEP_EMBEDDED(page_style)

}  // namespace sweep::report_assets
