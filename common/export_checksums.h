// The checksums of a job's exported SAE (its SAELens files under jobs/<id>/sae/), recorded in
// result.json when the job finishes and checked by the report, `sweep status` and a re-run: a done
// job whose export is missing or damaged is damaged, and trained again.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace sweep {

// {"sae/cfg.json": {"bytes": N, "hash": "..."}, ...} of the job directory's export (sampled contents:
// common/file_sample.h).
nlohmann::json export_checksums(const std::filesystem::path& job_dir);
// What is wrong with the export against `recorded` (result.json's "export"), naming the file;
// nullopt when it is whole.
std::optional<std::string> export_damage(const std::filesystem::path& job_dir, const nlohmann::json& recorded);

}  // namespace sweep
