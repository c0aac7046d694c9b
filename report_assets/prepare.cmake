# Build step for report.html's inlined runtime: copies the Vega, Vega-Lite and vega-embed bundles
# without their source-map comments and gathers the licence of every package they are built from.
# Usage: cmake -DASSETS=<report_assets folder> -DMODULES=<folder holding node_modules> -DOUT=<output folder>
#        -P prepare.cmake
file(READ "${ASSETS}/package-lock.json" lock)

# node_modules must hold what package-lock.json pins, or the binary would embed other versions.
foreach(package vega vega-lite vega-embed)
  string(JSON pinned GET "${lock}" packages "node_modules/${package}" version)
  set(installed_json "${MODULES}/node_modules/${package}/package.json")
  if(NOT EXISTS "${installed_json}")
    message(FATAL_ERROR "${installed_json} is missing: run `npm ci` in report_assets/ (scripts/setup does)")
  endif()
  file(READ "${installed_json}" installed)
  string(JSON version GET "${installed}" version)
  if(NOT version STREQUAL pinned)
    message(FATAL_ERROR "${installed_json}: version ${version}, but report_assets/package-lock.json pins ${pinned}: "
                        "run `npm ci` in report_assets/")
  endif()
  file(READ "${MODULES}/node_modules/${package}/build/${package}.min.js" bundle)
  string(REGEX REPLACE "\n//# sourceMappingURL=[^\n]*" "" bundle "${bundle}")
  file(WRITE "${OUT}/${package}.min.js" "${bundle}")
endforeach()

# Every package the bundles may contain: the lock file's non-development packages.
set(notices "Third-party software inlined into this report (the Vega, Vega-Lite and vega-embed bundles and \
the packages they are built from), with their licences.\n")
string(JSON count LENGTH "${lock}" packages)
math(EXPR last "${count} - 1")
foreach(i RANGE ${last})
  string(JSON key MEMBER "${lock}" packages ${i})
  string(JSON dev ERROR_VARIABLE not_dev GET "${lock}" packages "${key}" dev)
  if(key STREQUAL "" OR dev)
    continue()
  endif()
  string(JSON version GET "${lock}" packages "${key}" version)
  string(JSON license ERROR_VARIABLE no_license GET "${lock}" packages "${key}" license)
  string(REGEX REPLACE ".*node_modules/" "" name "${key}")
  file(GLOB licence_files "${MODULES}/${key}/[Ll][Ii][Cc][Ee][Nn][CcSs][Ee]*")
  if(NOT licence_files)
    message(FATAL_ERROR "${MODULES}/${key}: no LICENSE file to embed for ${name} ${version}")
  endif()
  list(GET licence_files 0 licence_file)
  file(READ "${licence_file}" text)
  string(APPEND notices "\n======== ${name} ${version} (${license}) ========\n\n${text}\n")
endforeach()
file(WRITE "${OUT}/THIRD_PARTY_LICENCES.txt" "${notices}")
