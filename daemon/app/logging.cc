#include "app/logging.h"

#include <spdlog/sinks/rotating_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <filesystem>
#include <vector>

namespace mk8s::app {

Status SetUpLogging(const std::string& log_file, const std::string& level, bool to_stderr) {
  const spdlog::level::level_enum parsed = spdlog::level::from_str(level);
  if (parsed == spdlog::level::off && level != "off") {
    return Status(Code::kInvalidArgument,
                  "unknown log level '" + level + "': use trace, debug, info, warn or error");
  }
  try {
    std::filesystem::create_directories(std::filesystem::path(log_file).parent_path());
    std::vector<spdlog::sink_ptr> sinks;
    // 10 MiB per file, 3 files: enough for `mk8s inspect`, bounded on disk.
    sinks.push_back(
        std::make_shared<spdlog::sinks::rotating_file_sink_mt>(log_file, 10 << 20, 3));
    if (to_stderr) sinks.push_back(std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
    auto logger = std::make_shared<spdlog::logger>("mk8sd", sinks.begin(), sinks.end());
    logger->set_level(parsed);
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %^%L%$ [%t] %v");
    logger->flush_on(spdlog::level::info);
    spdlog::set_default_logger(logger);
  } catch (const std::exception& error) {
    return Status(Code::kInternal, std::string("cannot open log file ") + log_file + ": " +
                                       error.what());
  }
  return Status::Ok();
}

}  // namespace mk8s::app
