// Activation normalization (data.normalize = "expected_norm"), as SAELens's
// normalize_activations = "expected_average_only_in" and dictionary_learning's
// normalize_activations do it: every row is multiplied by one factor, sqrt(d_in) over the mean row
// norm of a fixed sample of training rows, so that rows have mean norm sqrt(d_in) whatever the
// model and layer. The launcher estimates the factor once per data source and stores it in
// plan.json; jobs train on the scaled rows and fold the factor back into their weights
// (sae/fold_scale.h), so metrics and exports are on the raw scale.
#pragma once

#include <memory>

#include "sharding/dataset.h"

namespace sweep::sharding {

// Rows the factor is estimated from: the first of the training rows in their fixed order
// (Dataset::train_rows), all of them when there are fewer.
constexpr int64_t kNormSampleRows = 65536;

// sqrt(d_in) / the mean norm of the sample; throws DataError when the sample's rows are all zero.
double expected_norm_factor(const Dataset& data);

// `data` with every row's activations (and true feature activations) multiplied by `factor`;
// `data` must outlive it.
std::unique_ptr<Dataset> scaled_view(const Dataset& data, double factor);

}  // namespace sweep::sharding
