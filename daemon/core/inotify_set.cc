#include "core/inotify_set.h"

#include <algorithm>
#include <utility>

namespace ckptwatch {

struct InotifyWatchSet::Instance {
  std::unique_ptr<InotifyWatcher> watcher;
  uv_poll_t poll{};
  InotifyWatchSet* set = nullptr;
  int watches = 0;  // AddWatch() ids it serves
};

InotifyWatchSet::InotifyWatchSet(uv_loop_t* loop, OnEvents on_events, OnPollError on_poll_error)
    : loop_(loop), on_events_(std::move(on_events)), on_poll_error_(std::move(on_poll_error)) {}

std::unique_ptr<InotifyWatchSet> InotifyWatchSet::Create(uv_loop_t* loop, OnEvents on_events,
                                                         OnPollError on_poll_error,
                                                         WatchError* err) {
  std::unique_ptr<InotifyWatchSet> set(
      new InotifyWatchSet(loop, std::move(on_events), std::move(on_poll_error)));
  set->spare_ = set->Open(err);
  if (!set->spare_) return nullptr;
  return set;
}

InotifyWatchSet::~InotifyWatchSet() { Close(); }

InotifyWatchSet::Instance* InotifyWatchSet::Open(WatchError* err) {
  std::unique_ptr<InotifyWatcher> watcher = InotifyWatcher::Create(err);
  if (!watcher) return nullptr;
  auto* instance = new Instance;
  instance->set = this;
  instance->watcher = std::move(watcher);
  int rc = uv_poll_init(loop_, &instance->poll, instance->watcher->fd());
  if (rc != 0) {
    err->error = -rc;
    err->message = std::string("cannot poll an inotify instance: ") + uv_strerror(rc);
    delete instance;
    return nullptr;
  }
  instance->poll.data = instance;
  rc = uv_poll_start(&instance->poll, UV_READABLE, [](uv_poll_t* handle, int status, int) {
    auto* self = static_cast<Instance*>(handle->data);
    if (status == 0) return self->set->Read(self);
    if (self->set->on_poll_error_) self->set->on_poll_error_(status);
  });
  if (rc != 0) {
    err->error = -rc;
    err->message = std::string("cannot poll an inotify instance: ") + uv_strerror(rc);
    uv_close(reinterpret_cast<uv_handle_t*>(&instance->poll),
             [](uv_handle_t* handle) { delete static_cast<Instance*>(handle->data); });
    return nullptr;
  }
  instances_.push_back(instance);
  return instance;
}

int InotifyWatchSet::AddWatch(const std::string& root, bool recursive, WatchError* err) {
  Instance* instance = std::exchange(spare_, nullptr);
  if (!instance) {
    WatchError open_err;
    instance = Open(&open_err);
    // Out of instances (EMFILE: fs.inotify.max_user_instances): share the last
    // one, as every watch did before; only this watch loses its own queue.
    if (!instance && !instances_.empty()) instance = instances_.back();
    if (!instance) {
      *err = open_err;
      return -1;
    }
  }
  const int local = instance->watcher->AddWatch(root, recursive, err);
  if (local < 0) {
    CloseIfUnused(instance);
    return -1;
  }
  ++instance->watches;
  const int id = next_id_++;
  watches_[id] = {instance, local};
  return id;
}

void InotifyWatchSet::RemoveWatch(int id) {
  auto it = watches_.find(id);
  if (it == watches_.end()) return;
  Instance* instance = it->second.instance;
  instance->watcher->RemoveWatch(it->second.local_id);
  watches_.erase(it);
  --instance->watches;
  CloseIfUnused(instance);
}

void InotifyWatchSet::CloseIfUnused(Instance* instance) {
  if (instance->watches > 0) return;
  std::erase(instances_, instance);
  uv_close(reinterpret_cast<uv_handle_t*>(&instance->poll),
           [](uv_handle_t* handle) { delete static_cast<Instance*>(handle->data); });
}

void InotifyWatchSet::Read(Instance* instance) {
  std::vector<WatchEvent> events;
  instance->watcher->ReadEvents(&events);
  // Local ids to the ids AddWatch() returned; events of a watch removed meanwhile are dropped.
  std::erase_if(events, [&](WatchEvent& event) {
    for (const auto& [id, where] : watches_) {
      if (where.instance == instance && where.local_id == event.watch_id) {
        event.watch_id = id;
        return false;
      }
    }
    return true;
  });
  if (!events.empty()) on_events_(events);
}

void InotifyWatchSet::Close() {
  watches_.clear();
  spare_ = nullptr;
  for (Instance* instance : instances_) {
    instance->watches = 0;
    uv_close(reinterpret_cast<uv_handle_t*>(&instance->poll),
             [](uv_handle_t* handle) { delete static_cast<Instance*>(handle->data); });
  }
  instances_.clear();
}

}  // namespace ckptwatch
