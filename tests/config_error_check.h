// Test helper for invalid input: runs an action that must throw ConfigError and checks that the
// message holds every expected part (where, key, value, what to do).
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <initializer_list>
#include <string>

#include "config/config_error.h"

namespace sweep::testing {

inline void expect_config_error(const std::function<void()>& action, std::initializer_list<std::string> parts) {
  try {
    action();
    ADD_FAILURE() << "expected a ConfigError";
  } catch (const launcher::ConfigError& e) {
    const std::string message = e.what();
    for (const std::string& part : parts) {
      EXPECT_NE(message.find(part), std::string::npos) << "missing \"" << part << "\" in: " << message;
    }
  }
}

}  // namespace sweep::testing
