#include "llmesh/gateway/errors.h"

#include "absl/strings/match.h"
#include "nlohmann/json.hpp"

namespace llmesh::gateway {

int HttpStatusOf(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk: return 200;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kOutOfRange: return 400;
    case absl::StatusCode::kUnauthenticated: return 401;
    case absl::StatusCode::kPermissionDenied: return 403;
    case absl::StatusCode::kNotFound: return 404;
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kAborted: return 409;
    case absl::StatusCode::kResourceExhausted: return 429;
    case absl::StatusCode::kCancelled: return 499;
    case absl::StatusCode::kUnimplemented: return 501;
    case absl::StatusCode::kUnavailable: return 503;
    case absl::StatusCode::kDeadlineExceeded: return 504;
    case absl::StatusCode::kInternal:
    case absl::StatusCode::kDataLoss:
    case absl::StatusCode::kUnknown: return 502;
    default: return 500;
  }
}

std::string OpenAiErrorType(absl::StatusCode code) {
  switch (HttpStatusOf(code)) {
    case 400:
    case 404:
    case 409: return "invalid_request_error";
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 429: return "rate_limit_exceeded";
    case 504: return "timeout";
    default: return "server_error";
  }
}

std::string OpenAiErrorBody(const absl::Status& status, const std::string& param) {
  nlohmann::json err = {{"message", std::string(status.message())},
                        {"type", OpenAiErrorType(status.code())},
                        {"param", param.empty() ? nlohmann::json(nullptr) : nlohmann::json(param)},
                        {"code", nullptr}};
  if (status.code() == absl::StatusCode::kUnauthenticated) err["code"] = "invalid_api_key";
  // Unknown models are what OpenAI clients look for; collections and routes get the plain code.
  if (status.code() == absl::StatusCode::kNotFound)
    err["code"] = absl::StartsWith(status.message(), "model '") ? "model_not_found" : "not_found";
  if (status.code() == absl::StatusCode::kResourceExhausted) err["code"] = "rate_limit_exceeded";
  return nlohmann::json({{"error", err}}).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace llmesh::gateway
