// Object metadata rules shared by every kind: names, uids, timestamps, generateName.
#pragma once

#include <chrono>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "apiserver/api_error.h"

namespace mk8s::apiserver {

struct ResourceInfo;

// RFC 3339 UTC with second precision ("2026-11-26T23:30:54Z"), as metav1.Time serializes.
std::string FormatTime(std::chrono::system_clock::time_point time);
// RFC 3339 with microseconds, as metav1.MicroTime serializes.
std::string FormatMicroTime(std::chrono::system_clock::time_point time);
// Parses RFC 3339 ("...Z" or with an offset, optional fraction). False on bad input.
bool ParseTime(const std::string& text, std::chrono::system_clock::time_point* out);

std::string NewUid();  // random UUID v4
// generateName + 5 random characters from Kubernetes' alphabet.
std::string GenerateName(const std::string& prefix);

// Validates the object name for the resource's rules (DNS-1123 subdomain for most kinds,
// DNS-1035 label for services, DNS-1123 label for namespaces, path-segment names for RBAC).
// Appends causes (field "metadata.name").
void ValidateName(const ResourceInfo& resource, const std::string& name,
                  std::vector<StatusCause>* causes);
// Validates labels and annotations keys/values.
void ValidateMetadata(const nlohmann::json& metadata, std::vector<StatusCause>* causes);

}  // namespace mk8s::apiserver
