#include "cli/engine_path.h"

#include <unistd.h>

#include "verify/engine/verifier_child.h"

namespace ckptwatch {

std::string FindEngine() {
  const std::string self = SelfExecutable();
  const std::string dir = self.substr(0, self.rfind('/') + 1);
  const std::string beside = dir + kEngineName;
  if (access(beside.c_str(), X_OK) == 0) return beside;
  return dir + "../lib/ckptwatch/" + kEngineName;
}

}  // namespace ckptwatch
