// Tests for the activation-file readers: safetensors and .npy round trips, FileActivationSource
// row gathering across mixed shards, and the message of every data error it can raise.
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <unistd.h>

#include <cmath>
#include <fstream>
#include <functional>
#include <initializer_list>

#include "sharding/data_error.h"
#include "sharding/file_source.h"
#include "sharding/npy.h"
#include "sharding/safetensors.h"

namespace fs = std::filesystem;
using namespace sweep::sharding;

namespace {

// Writes a safetensors file byte by byte: length prefix, the given header text, then `data`.
void write_raw_safetensors(const fs::path& file, const std::string& header, const std::string& data = "") {
  std::ofstream out(file, std::ios::binary);
  for (int i = 0; i < 8; ++i) out.put(static_cast<char>((header.size() >> (8 * i)) & 0xff));
  out << header << data;
}

// Writes a .npy file with the given version and header dict followed by `data_bytes` zero bytes.
void write_raw_npy(const fs::path& file, int major, const std::string& dict, size_t data_bytes) {
  std::ofstream out(file, std::ios::binary);
  out << "\x93NUMPY" << static_cast<char>(major) << '\0';
  const int length_bytes = major == 1 ? 2 : 4;
  for (int i = 0; i < length_bytes; ++i) out.put(static_cast<char>((dict.size() >> (8 * i)) & 0xff));
  out << dict << std::string(data_bytes, '\0');
}

// Runs `action`, expecting a DataError whose message contains every one of `parts`.
void expect_data_error(const std::function<void()>& action, std::initializer_list<std::string> parts) {
  try {
    action();
    ADD_FAILURE() << "expected a DataError";
  } catch (const DataError& e) {
    const std::string message = e.what();
    for (const std::string& part : parts) EXPECT_NE(message.find(part), std::string::npos) << message;
  }
}

class FileFormats : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string test = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    dir_ = fs::temp_directory_path() / ("sweep_test_file_formats_" + std::to_string(::getpid()) + "_" + test);
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path path(const std::string& name) const { return dir_ / name; }

  // Constructs a FileActivationSource over one file and expects a DataError naming it,
  // containing `parts` and a HINT line.
  void expect_source_error(const fs::path& file, std::initializer_list<std::string> parts,
                           const std::string& tensor_name = "acts") const {
    expect_data_error([&] { FileActivationSource({file.string()}, tensor_name); }, parts);
    expect_data_error([&] { FileActivationSource({file.string()}, tensor_name); },
                      {file.string(), "\nHINT: "});
  }

  fs::path dir_;
};

TEST_F(FileFormats, SafetensorsRoundTripAllDtypes) {
  const std::vector<std::pair<std::string, torch::Tensor>> tensors = {
      {"f32", torch::randn({3, 4})},
      {"f16", torch::randn({2, 5}).to(torch::kHalf)},
      {"bf16", torch::randn({7}).to(torch::kBFloat16)},
      {"i64", torch::arange(6, torch::kLong).reshape({2, 3})},
      {"f64", torch::randn({2, 2}, torch::kDouble)},
      {"i32", torch::arange(5, torch::kInt)},
      {"i16", torch::arange(3, torch::kShort)},
      {"i8", torch::arange(-2, 2, torch::kChar)},
      {"u8", torch::arange(4, torch::kByte)},
      {"bool", torch::tensor({true, false, true})},
      {"strided", torch::randn({4, 3}).t()},
      {"empty", torch::empty({0, 3})},
  };
  const std::map<std::string, std::string> metadata = {{"model", "gpt2"}, {"layer", "6"}};
  const fs::path file = path("all.safetensors");
  write_safetensors(file, tensors, metadata);
  EXPECT_FALSE(fs::exists(path("all.safetensors.tmp")));

  const SafetensorsHeader header = read_safetensors_header(file);
  EXPECT_EQ(header.metadata, metadata);
  EXPECT_EQ(header.data_start % 8, 0u);
  EXPECT_EQ(header.tensors.at("bf16").dtype, "BF16");
  EXPECT_EQ(header.tensors.at("i64").shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(header.tensors.at("f32").begin, 0u);  // written in the given order

  const std::map<std::string, torch::Tensor> loaded = read_safetensors(file);
  ASSERT_EQ(loaded.size(), tensors.size());
  for (const auto& [name, tensor] : tensors) {
    const torch::Tensor& back = loaded.at(name);
    EXPECT_EQ(back.scalar_type(), tensor.scalar_type()) << name;
    EXPECT_TRUE(back.is_contiguous()) << name;
    EXPECT_TRUE(torch::equal(back, tensor)) << name;
  }
}

TEST_F(FileFormats, SafetensorsOverwritesAndSkipsMetadataWhenEmpty) {
  const fs::path file = path("x.safetensors");
  write_safetensors(file, {{"a", torch::ones({2})}}, {{"k", "v"}});
  write_safetensors(file, {{"b", torch::zeros({3})}});
  const SafetensorsHeader header = read_safetensors_header(file);
  EXPECT_TRUE(header.metadata.empty());
  ASSERT_EQ(header.tensors.size(), 1u);
  EXPECT_EQ(header.tensors.count("b"), 1u);
}

TEST_F(FileFormats, NpyRoundTrip) {
  for (const torch::Tensor& tensor :
       {torch::randn({5, 3}), torch::randn({4, 6}).to(torch::kHalf), torch::arange(7, torch::kLong)}) {
    const fs::path file = path("a.npy");
    write_npy(file, tensor);
    const NpyHeader header = read_npy_header(file);
    EXPECT_FALSE(header.fortran_order);
    EXPECT_EQ(header.shape, tensor.sizes().vec());
    EXPECT_EQ(header.data_start % 64, 0u);
    EXPECT_EQ(fs::file_size(file), header.data_start + tensor.nbytes());
  }
  EXPECT_EQ(read_npy_header(path("a.npy")).descr, "<i8");

  const torch::Tensor f32 = torch::randn({5, 3});
  const torch::Tensor f16 = torch::randn({4, 3}).to(torch::kHalf);
  write_npy(path("a.npy"), f32);
  write_npy(path("b.npy"), f16);
  EXPECT_EQ(read_npy_header(path("a.npy")).descr, "<f4");
  EXPECT_EQ(read_npy_header(path("b.npy")).descr, "<f2");
  const FileActivationSource source({path("*.npy").string()}, "");
  EXPECT_TRUE(torch::equal(source.rows({0, 1, 2, 3, 4}), f32));
  EXPECT_TRUE(torch::equal(source.rows({5, 6, 7, 8}), f16.to(torch::kFloat)));
}

TEST_F(FileFormats, NpyHeaderVersionsAndSpellings) {
  const std::string v2_dict = "{\"shape\": (2L, 3), \"fortran_order\": False, \"descr\": \"|f4\"}\n";
  write_raw_npy(path("v2.npy"), 2, v2_dict, 24);
  const NpyHeader v2 = read_npy_header(path("v2.npy"));
  EXPECT_EQ(v2.descr, "|f4");
  EXPECT_EQ(v2.shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(v2.data_start, 12u + v2_dict.size());

  write_raw_npy(path("v3.npy"), 3, "{'descr': '=f2', 'fortran_order': False, 'shape': (4, 3,), }\n", 24);
  EXPECT_EQ(read_npy_header(path("v3.npy")).shape, (std::vector<int64_t>{4, 3}));

  const FileActivationSource source({path("v*.npy").string()}, "acts");
  EXPECT_EQ(source.num_rows(), 6);
  EXPECT_EQ(source.shards()[0].dtype, RowDtype::F32);
  EXPECT_EQ(source.shards()[1].dtype, RowDtype::F16);
}

TEST_F(FileFormats, SourceGathersScatteredRowsAcrossMixedShards) {
  const int64_t d_in = 8;
  const torch::Tensor a = torch::randn({5, d_in});
  const torch::Tensor b = torch::randn({3, d_in}).to(torch::kHalf);
  const torch::Tensor c = torch::randn({4, d_in}).to(torch::kBFloat16);
  const torch::Tensor d = torch::randn({6, d_in});
  write_safetensors(path("a.safetensors"), {{"other", torch::randn({2, d_in})}, {"acts", a}});
  write_npy(path("b.npy"), b);
  write_safetensors(path("c.safetensors"), {{"tokens", torch::arange(4, torch::kLong)}, {"x", c}});
  write_npy(path("d.npy"), d);
  // In the globs' order, each glob's matches sorted; a.safetensors, matched twice, read once.
  const torch::Tensor all = torch::cat({b.to(torch::kFloat), d, a, c.to(torch::kFloat)});

  const FileActivationSource source(
      {path("*.npy").string(), path("*.safetensors").string(), path("a.safetensors").string()}, "acts");
  ASSERT_EQ(source.shards().size(), 4u);
  EXPECT_EQ(source.shards()[0].path, path("b.npy"));
  EXPECT_EQ(source.shards()[1].rows, 6);
  EXPECT_EQ(source.shards()[2].path, path("a.safetensors"));
  EXPECT_EQ(source.shards()[3].dtype, RowDtype::BF16);
  EXPECT_EQ(source.num_rows(), 18);
  EXPECT_EQ(source.d_in(), d_in);

  const std::vector<int64_t> indices = {17, 0, 5, 4, 7, 8, 11, 12, 17, 3, 9, 6};
  const torch::Tensor rows = source.rows(indices);
  EXPECT_EQ(rows.sizes(), (std::vector<int64_t>{12, d_in}));
  EXPECT_EQ(rows.scalar_type(), torch::kFloat);
  EXPECT_TRUE(torch::equal(rows, all.index_select(0, torch::tensor(indices))));
  EXPECT_TRUE(torch::equal(source.rows({9, 10}), a.slice(0, 0, 2)));  // b 0-2, d 3-8, a 9-13, c 14-17
  EXPECT_EQ(source.rows({}).sizes(), (std::vector<int64_t>{0, d_in}));

  EXPECT_EQ(source.locate(0), (std::pair<size_t, int64_t>{0, 0}));
  EXPECT_EQ(source.locate(5), (std::pair<size_t, int64_t>{1, 2}));
  EXPECT_EQ(source.locate(11), (std::pair<size_t, int64_t>{2, 2}));
  EXPECT_EQ(source.locate(17), (std::pair<size_t, int64_t>{3, 3}));
  EXPECT_THROW(source.locate(18), std::out_of_range);
  EXPECT_THROW(source.rows({-1}), std::out_of_range);
}

TEST_F(FileFormats, SafetensorsHeaderErrors) {
  const fs::path file = path("bad.safetensors");
  std::ofstream(file, std::ios::binary) << "abcd";
  expect_data_error([&] { read_safetensors_header(file); }, {file.string(), "too short", "truncated header"});
  expect_source_error(file, {"truncated header"});

  write_raw_safetensors(file, "{}");
  std::fstream patch(file, std::ios::binary | std::ios::in | std::ios::out);
  patch.put(static_cast<char>(0xe8)).put(0x03);  // header length 1000
  patch.close();
  expect_source_error(file, {"header length 1000 exceeds the file size (10 bytes)"});

  write_raw_safetensors(file, "{\"acts\": {\"dtype\": \"F32\",");
  expect_source_error(file, {"not valid JSON"});

  write_raw_safetensors(file, "[1, 2]");
  expect_source_error(file, {"not an object"});

  write_raw_safetensors(file, R"({"acts": {"dtype": "F32", "shape": [2, 3]}})", std::string(24, '\0'));
  expect_source_error(file, {"tensor 'acts'", "missing \"data_offsets\""});

  write_raw_safetensors(file, R"({"acts": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 20]}})",
                        std::string(20, '\0'));
  expect_source_error(file,
                      {"tensor 'acts'", "data_offsets [0,20] span 20 bytes but F32 shape [2, 3] needs 24"});

  write_raw_safetensors(file, R"({"acts": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}})",
                        std::string(12, '\0'));
  expect_source_error(file, {"tensor 'acts'", "past the end of the file"});

  write_raw_safetensors(file, R"({"acts": {"dtype": "Q4", "shape": [2], "data_offsets": [0, 2]}})",
                        std::string(2, '\0'));
  expect_source_error(file, {"tensor 'acts'", "unsupported dtype 'Q4'"});

  write_raw_safetensors(file, R"({"acts": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}})",
                        std::string(8, '\0'));
  expect_source_error(file, {"tensor 'acts'", "non-negative integers"});

  write_raw_safetensors(file, R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                                  "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})",
                        std::string(12, '\0'));
  expect_source_error(file, {"tensors \"a\" and \"b\" overlap", "[0, 8) and [4, 12)"});

  write_raw_safetensors(file, R"({"__metadata__": {"layer": 6}})");
  expect_source_error(file, {"__metadata__ value for 'layer' is not a string"});
}

TEST_F(FileFormats, SafetensorsTensorChoiceErrors) {
  const fs::path file = path("t.safetensors");
  write_safetensors(file, {{"acts", torch::zeros({4, 8}, torch::kInt)}});
  expect_source_error(file, {"tensor 'acts' has dtype I32", "F32, F16 or BF16"});

  write_safetensors(file, {{"acts", torch::zeros({8})}});
  expect_source_error(file, {"tensor 'acts' has shape [8]", "must be 2-D"});

  write_safetensors(file, {{"acts", torch::zeros({2, 3, 4})}});
  expect_source_error(file, {"tensor 'acts' has shape [2, 3, 4]", "must be 2-D"});

  write_safetensors(file, {{"tokens", torch::zeros({8})}});
  expect_source_error(file, {"no tensor named 'acts' and 0 2-D tensors", "'tokens' [8]"});

  write_safetensors(file, {{"resid", torch::zeros({4, 8})}, {"mlp", torch::zeros({4, 8})}});
  expect_source_error(file, {"no tensor named 'acts' and 2 2-D tensors", "'mlp' [4, 8]", "'resid' [4, 8]"});

  write_safetensors(file, {{"acts", torch::zeros({0, 8})}});
  expect_source_error(file, {"tensor 'acts' has shape [0, 8]", "no activations"});
}

TEST_F(FileFormats, SourceFileSetErrors) {
  write_safetensors(path("a.safetensors"), {{"acts", torch::zeros({4, 8})}});
  write_npy(path("b.npy"), torch::zeros({3, 8}));
  write_npy(path("c.npy"), torch::zeros({3, 6}));
  expect_data_error([&] { FileActivationSource({path("*").string()}, "acts"); },
                    {path("c.npy").string(),
                     "d_in 6 disagrees with d_in 8 of " + path("a.safetensors").string(), "HINT: "});

  const std::string pattern = path("*.nothing").string();
  expect_data_error(
      [&] {
        FileActivationSource({path("a.safetensors").string(), pattern}, "acts");
      },
      {pattern, "matches no file", "HINT: "});

  std::ofstream(path("acts.bin")) << "data";
  expect_source_error(path("acts.bin"), {"unknown extension '.bin'"});
}

TEST_F(FileFormats, NpyErrors) {
  const fs::path file = path("bad.npy");
  std::ofstream(file, std::ios::binary) << "PK\x03\x04 not numpy";
  expect_data_error([&] { read_npy_header(file); }, {file.string(), "bad magic"});
  expect_source_error(file, {"bad magic"});

  write_raw_npy(file, 4, "{}", 0);
  expect_source_error(file, {"unsupported .npy version 4.0"});

  write_raw_npy(file, 1, "{'descr': '<f4', 'fortran_order': True, 'shape': (4, 8), }\n", 128);
  expect_source_error(file, {"Fortran"});

  write_raw_npy(file, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (4, 8), }\n", 64);
  expect_source_error(file, {"does not match the", "shape [4, 8]", "truncated"});

  write_raw_npy(file, 1, "{'descr': '<f4', 'shape': (4, 8), }\n", 128);
  expect_source_error(file, {"needs the keys"});

  write_raw_npy(file, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (4, 8), 'extra': 1}\n", 128);
  expect_source_error(file, {"unexpected key 'extra'"});

  write_raw_npy(file, 1, "{'descr': '>f4', 'fortran_order': False, 'shape': (4, 8), }\n", 128);
  expect_source_error(file, {"descr '>f4'", "little-endian"});

  write_raw_npy(file, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 4, 4), }\n", 128);
  expect_source_error(file, {"array has shape [2, 4, 4]", "must be 2-D"});
}

TEST_F(FileFormats, NonFiniteRowsNameShardAndRow) {
  torch::Tensor clean = torch::randn({4, 8});
  torch::Tensor dirty = torch::randn({5, 8});
  dirty[2][3] = std::nanf("");
  dirty[4][0] = INFINITY;
  write_npy(path("a.npy"), clean);
  write_safetensors(path("b.safetensors"), {{"acts", dirty.to(torch::kHalf)}});
  const FileActivationSource source({path("*").string()}, "acts");

  EXPECT_NO_THROW(source.rows({0, 1, 4, 5, 7}));
  expect_data_error(
      [&] {
        source.rows({1, 6, 0});
      },
      {path("b.safetensors").string(), "row 2 (global row 6) contains NaN", "HINT: "});
  expect_data_error([&] { source.rows({8}); },
                    {path("b.safetensors").string(), "row 4 (global row 8) contains Inf"});
}

}  // namespace
