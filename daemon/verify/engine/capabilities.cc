#include "verify/engine/capabilities.h"

#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace ckptwatch {

bool DropCapabilities(std::string* err) {
  // The bounding set needs CAP_SETPCAP to shrink (root has it; the daemon's
  // user does not, and then it does not matter: nothing can be regained
  // without exec, and no_new_privs plus the filter forbid that).
  for (int cap = 0; cap <= CAP_LAST_CAP; ++cap) prctl(PR_CAPBSET_DROP, cap, 0, 0, 0);
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL)
    return (*err = std::string("clearing the ambient capabilities: ") + std::strerror(errno), false);
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  if (syscall(SYS_capset, &header, data) != 0) return (*err = std::string("capset: ") + std::strerror(errno), false);
  return true;
}

}  // namespace ckptwatch
