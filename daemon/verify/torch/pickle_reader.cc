#include "verify/torch/pickle_reader.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <set>
#include <string_view>
#include <unordered_map>

namespace ckptwatch {
namespace {

// Strings are kept only as far as a dict key, a storage key or a class name needs.
constexpr std::size_t kKeptStringBytes = 256;
constexpr std::size_t kMaxLineBytes = 1u << 20;
constexpr std::size_t kBufferBytes = 1u << 20;

// Keys under which checkpoints keep training state rather than model weights. Lightning's
// ModelCheckpoint keeps kth_value = inf and best scores under "callbacks".
constexpr std::string_view kBookkeepingKeys[] = {
    "callbacks",     "loops",        "optimizer_states", "optimizer_state_dict", "optimizer",
    "optimizers",    "lr_schedulers", "lr_scheduler",    "scheduler",            "scheduler_state_dict",
    "scaler",        "amp_scaler",   "rng_state",        "hyper_parameters",     "hparams"};

// Modules whose globals torch.load(weights_only=True) and an ordinary environment provide.
bool IsOwnGlobal(std::string_view module) {
  auto under = [&](std::string_view root) {
    return module == root || (module.size() > root.size() && module.substr(0, root.size()) == root &&
                              module[root.size()] == '.');
  };
  return under("torch") || under("__torch__") || module == "collections" || module == "builtins" ||
         module == "__builtin__" || module == "_codecs" || module == "copyreg" || module == "copy_reg";
}

// "32 GiB", "1.5 GiB": a size in reasons.
std::string Gib(std::uint64_t bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.3g GiB", static_cast<double>(bytes) / (1u << 30));
  return text;
}

bool AllDigits(const std::string& s) {
  return std::all_of(s.begin(), s.end(), [](char ch) { return ch >= '0' && ch <= '9'; });
}

// A value on the stack: scalars inline, strings and containers by index.
struct Val {
  enum Kind : std::uint8_t { kNone, kInt, kOther, kStr, kBigInt, kGlobal, kContainer, kStorage, kMark };
  Kind kind = kNone;
  std::uint64_t v = 0;  // Int value; or index into strings / containers / storages.
};

struct Container {
  enum Kind : std::uint8_t { kTuple, kList, kDict, kSet, kObject };
  Kind kind;
  std::uint32_t aux = 0;  // 1 + index of a dict holding SETITEMS on a non-dict (OrderedDict).
  std::vector<Val> items; // Dicts: key, value, key, value, ...
};

class Input {
 public:
  Input(const ReadAt& read_at, std::uint64_t offset, std::uint64_t end)
      : read_at_(read_at), pos_(offset), end_(end) {}

  bool Byte(std::uint8_t* out) { return Take(out, 1); }
  bool Take(void* out, std::size_t n) {
    auto* dst = static_cast<std::uint8_t*>(out);
    while (n > 0) {
      if (!Fill()) return false;
      const std::size_t k = std::min(n, buf_.size() - at_);
      if (dst) std::memcpy(dst, buf_.data() + at_, k), dst += k;
      at_ += k;
      pos_ += k;
      n -= k;
    }
    return true;
  }
  bool Skip(std::uint64_t n) {
    // Within the buffer, advance; beyond it, seek without reading.
    const std::uint64_t in_buffer = buf_.size() - at_;
    if (n <= in_buffer) {
      at_ += n;
      pos_ += n;
      return true;
    }
    if (n > end_ - pos_) {
      short_ = true;
      return false;
    }
    pos_ += n;
    buf_.clear();
    at_ = 0;
    return true;
  }
  std::uint64_t Uint(int bytes, bool* ok) {
    std::uint8_t b[8] = {};
    *ok = Take(b, static_cast<std::size_t>(bytes));
    std::uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | b[i];
    return v;
  }
  // A text line without its '\n'; kept up to kKeptStringBytes * 4.
  bool Line(std::string* out) {
    out->clear();
    for (std::size_t n = 0;; ++n) {
      std::uint8_t c;
      if (!Byte(&c)) return false;
      if (c == '\n') return true;
      if (n >= kMaxLineBytes) return (too_long_ = true, false);
      if (out->size() < kKeptStringBytes * 4) out->push_back(static_cast<char>(c));
    }
  }
  // `n` bytes as a string, keeping at most kKeptStringBytes of them.
  bool String(std::uint64_t n, std::string* out) {
    const std::size_t keep = static_cast<std::size_t>(std::min<std::uint64_t>(n, kKeptStringBytes));
    out->resize(keep);
    return Take(out->data(), keep) && Skip(n - keep);
  }
  std::uint64_t pos() const { return pos_; }
  bool short_read() const { return short_; }
  bool too_long() const { return too_long_; }
  bool io_error() const { return io_error_; }

 private:
  bool Fill() {
    if (at_ < buf_.size()) return true;
    if (pos_ >= end_) return (short_ = true, false);
    const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(kBufferBytes, end_ - pos_));
    buf_.resize(n);
    std::size_t got = 0;
    while (got < n) {
      const long r = read_at_(pos_ + got, buf_.data() + got, n - got);
      if (r < 0) return (io_error_ = true, false);
      if (r == 0) break;
      got += static_cast<std::size_t>(r);
    }
    buf_.resize(got);
    at_ = 0;
    if (got == 0) return (short_ = true, false);
    return true;
  }

  const ReadAt& read_at_;
  std::uint64_t pos_, end_;
  std::vector<std::uint8_t> buf_;
  std::size_t at_ = 0;
  bool short_ = false, too_long_ = false, io_error_ = false;
};

class Machine {
 public:
  Machine(Input* in, const PickleLimits& limits, PickleSummary* out) : in_(*in), limits_(limits), out_(*out) {}

  bool Run();
  void Classify(Val root);
  std::vector<std::string> RootStrings() {
    std::vector<std::string> out;
    if (Container* c = AsContainer(root); c && (c->kind == Container::kList || c->kind == Container::kTuple))
      for (const Val& v : c->items)
        if (const std::string* s = AsStr(v)) out.push_back(*s);
    return out;
  }
  void Records(const std::vector<std::string>& classes, std::vector<PickleRecord>* out);
  bool RootIsBigInt(const std::string& text) const { return root.kind == Val::kBigInt && strings_[root.v] == text; }

  Val root;

 private:
  bool Fail(std::string why) {
    if (out_.error.empty()) out_.error = std::move(why);
    return false;
  }
  bool Charge(std::uint64_t bytes) {
    used_ += bytes;
    if (used_ <= limits_.memory_bytes) return true;
    out_.status = PickleSummary::Status::kTooLarge;
    return Fail("the pickle holds more objects than the verifier analyses (" +
                std::to_string(limits_.memory_bytes >> 20) + " MiB of skeleton)");
  }
  bool Push(Val v) {
    if (!Charge(sizeof(Val))) return false;
    stack_.push_back(v);
    return true;
  }
  bool Pop(Val* v) {
    if (stack_.empty() || (!marks_.empty() && stack_.size() <= marks_.back()))
      return Fail("pops an empty stack");
    *v = stack_.back();
    stack_.pop_back();
    return true;
  }
  bool Top(Val** v) {
    if (stack_.empty() || (!marks_.empty() && stack_.size() <= marks_.back()))
      return Fail("reads an empty stack");
    *v = &stack_.back();
    return true;
  }
  bool PopMark(std::vector<Val>* items) {
    if (marks_.empty()) return Fail("has no MARK to pop to");
    const std::size_t at = marks_.back();
    marks_.pop_back();
    items->assign(stack_.begin() + static_cast<long>(at), stack_.end());
    stack_.resize(at);
    return true;
  }
  Val Str(std::string s, Val::Kind kind = Val::kStr) {
    Charge(s.size() + sizeof(std::string));
    strings_.push_back(std::move(s));
    return {kind, strings_.size() - 1};
  }
  Val NewContainer(Container::Kind kind, std::vector<Val> items = {}) {
    Charge(sizeof(Container) + items.size() * sizeof(Val));
    containers_.push_back({kind, 0, std::move(items)});
    return {Val::kContainer, containers_.size() - 1};
  }
  Container* AsContainer(Val v) { return v.kind == Val::kContainer ? &containers_[v.v] : nullptr; }
  const std::string* AsStr(Val v) const { return v.kind == Val::kStr ? &strings_[v.v] : nullptr; }
  bool SetItems(Val target, const std::vector<Val>& kv);
  bool Reduce(Val callable, Val args);
  Val PersistentLoad(Val pid);
  bool Memo(std::uint64_t key) {
    Val* top;
    if (!Top(&top)) return false;
    // CPython's _Unpickler_MemoPut: an index at or past the array's size grows it to twice the
    // index, and _Unpickler_ResizeMemoList writes every new slot, so the memory is real.
    if (key >= cpython_memo_slots_) {
      if (key > limits_.memo_bytes / (2 * sizeof(void*)))
        return Fail("puts memo entry " + std::to_string(key) +
                    ", for which CPython's unpickler allocates and fills a memo of " +
                    std::to_string(2 * key) + " pointers (" + Gib(2 * key * sizeof(void*)) +
                    ", MemoryError where that is not free; no pickler writes such an index)");
      cpython_memo_slots_ = 2 * key;
    }
    if (!Charge(48)) return false;
    memo_[key] = *top;
    return true;
  }
  bool Get(std::uint64_t key) {
    auto it = memo_.find(key);
    if (it == memo_.end()) return Fail("reads memo entry " + std::to_string(key) + ", which was never stored");
    return Push(it->second);
  }

  Input& in_;
  const PickleLimits& limits_;
  PickleSummary& out_;
  std::vector<Val> stack_;
  std::vector<std::size_t> marks_;
  std::vector<std::string> strings_;
  std::vector<Container> containers_;
  std::unordered_map<std::uint64_t, Val> memo_;
  std::unordered_map<std::string, std::size_t> storage_index_;
  std::set<std::string> foreign_;
  std::uint64_t used_ = 0;
  std::uint64_t cpython_memo_slots_ = 32;  // _Unpickler_New's first memo size.
};

bool Machine::SetItems(Val target, const std::vector<Val>& kv) {
  if (kv.size() % 2) return Fail("sets a dict item without a value");
  Container* c = AsContainer(target);
  if (!c) return true;  // Items of something we do not model: dropped.
  if (c->kind != Container::kDict) {
    if (c->aux == 0) {
      Val d = NewContainer(Container::kDict);
      c = AsContainer(target);  // NewContainer may have moved it.
      c->aux = static_cast<std::uint32_t>(d.v + 1);
    }
    c = &containers_[c->aux - 1];
  }
  if (!Charge(kv.size() * sizeof(Val))) return false;
  c->items.insert(c->items.end(), kv.begin(), kv.end());
  return true;
}

Val Machine::PersistentLoad(Val pid) {
  // ('storage', <class torch.FloatStorage>, key, location, numel[, view metadata])
  const Container* t = AsContainer(pid);
  if (!t || t->items.size() < 5) return {Val::kOther, 0};
  const std::string* tag = AsStr(t->items[0]);
  const std::string* key = AsStr(t->items[2]);
  if (!tag || *tag != "storage" || !key || t->items[1].kind != Val::kGlobal || t->items[4].kind != Val::kInt)
    return {Val::kOther, 0};
  std::string type = strings_[t->items[1].v];
  type = type.substr(type.rfind('.') + 1);
  auto [it, added] = storage_index_.emplace(*key, out_.storages.size());
  if (added) out_.storages.push_back({*key, type, t->items[4].v, false});
  return {Val::kStorage, it->second};
}

bool Machine::Reduce(Val callable, Val args) {
  if (callable.kind == Val::kGlobal && strings_[callable.v].rfind("torch._utils._rebuild_tensor", 0) == 0)
    ++out_.tensors;
  return Push(NewContainer(Container::kObject, {callable, args}));
}

bool Machine::Run() {
  std::string text;
  std::vector<Val> items;
  bool ok = true;
  while (true) {
    std::uint8_t op;
    if (!in_.Byte(&op)) return false;
    Val a, b, c;
    switch (op) {
      case 0x80:  // PROTO
        out_.protocol = static_cast<int>(in_.Uint(1, &ok));
        if (!ok) return false;
        if (out_.protocol > 5) return Fail("has protocol " + std::to_string(out_.protocol) + ", newer than any Python writes");
        break;
      case 0x95:  // FRAME: a length hint only.
        in_.Uint(8, &ok);
        if (!ok) return false;
        break;
      case '.':  // STOP
        if (!Pop(&root)) return false;
        return true;
      case '(':
        if (!Charge(sizeof(std::size_t))) return false;
        marks_.push_back(stack_.size());
        break;
      case '0':
        if (!Pop(&a)) return false;
        break;
      case '1':
        if (!PopMark(&items)) return false;
        break;
      case '2': {
        Val* top;
        if (!Top(&top) || !Push(*top)) return false;
        break;
      }
      case 'N': if (!Push({Val::kNone, 0})) return false; break;
      case 0x88: case 0x89: if (!Push({Val::kOther, 0})) return false; break;
      case 'K': { std::uint64_t v = in_.Uint(1, &ok); if (!ok || !Push({Val::kInt, v})) return false; break; }
      case 'M': { std::uint64_t v = in_.Uint(2, &ok); if (!ok || !Push({Val::kInt, v})) return false; break; }
      case 'J': {
        const auto v = static_cast<std::int32_t>(in_.Uint(4, &ok));
        if (!ok || !Push(v >= 0 ? Val{Val::kInt, static_cast<std::uint64_t>(v)} : Val{Val::kOther, 0})) return false;
        break;
      }
      case 0x8a: case 0x8b: {  // LONG1, LONG4: little-endian two's complement
        const std::uint64_t n = in_.Uint(op == 0x8a ? 1 : 4, &ok);
        if (!ok) return false;
        if (n <= 8) {
          std::uint8_t bytes[8] = {};
          if (!in_.Take(bytes, static_cast<std::size_t>(n))) return false;
          std::uint64_t v = 0;
          for (int i = static_cast<int>(n) - 1; i >= 0; --i) v = (v << 8) | bytes[i];
          const bool negative = n > 0 && (bytes[n - 1] & 0x80);
          if (!Push(negative ? Val{Val::kOther, 0} : Val{Val::kInt, v})) return false;
        } else {
          if (!in_.String(n, &text) || !Push(Str(text, Val::kBigInt))) return false;
        }
        break;
      }
      case 'I': case 'L': {  // INT, LONG as text
        if (!in_.Line(&text)) return false;
        if (!text.empty() && text.back() == 'L') text.pop_back();
        const bool digits = !text.empty() && text.size() <= 18 &&
                            AllDigits(text);
        if (!Push(digits ? Val{Val::kInt, std::stoull(text)} : Str(text, Val::kBigInt))) return false;
        break;
      }
      case 'F': if (!in_.Line(&text) || !Push({Val::kOther, 0})) return false; break;
      case 'G': in_.Uint(8, &ok); if (!ok || !Push({Val::kOther, 0})) return false; break;
      case 'S': case 'V': case 'P': {  // STRING, UNICODE, PERSID: text lines
        if (!in_.Line(&text)) return false;
        if (op == 'S' && text.size() >= 2 && (text[0] == '\'' || text[0] == '"')) text = text.substr(1, text.size() - 2);
        if (op == 'P') {
          ++out_.text_persistent_ids;
          if (!Push(PersistentLoad(Str(text)))) return false;
        } else if (!Push(Str(text))) {
          return false;
        }
        break;
      }
      case 'T': case 'X': case 'B': case 'U': case 'C': case 0x8c: case 0x8d: case 0x8e: case 0x96: {
        const int width = op == 'U' || op == 'C' || op == 0x8c ? 1 : op == 0x8d || op == 0x8e || op == 0x96 ? 8 : 4;
        const std::uint64_t n = in_.Uint(width, &ok);
        if (!ok || !in_.String(n, &text)) return false;
        if (!Push(op == 0x96 ? Val{Val::kOther, 0} : Str(text))) return false;
        break;
      }
      case 'c': case 'i': {  // GLOBAL, INST: module and name on two lines
        std::string module, name;
        if (!in_.Line(&module) || !in_.Line(&name)) return false;
        if (!IsOwnGlobal(module)) foreign_.insert(module + "." + name);
        Val g = Str(module + "." + name, Val::kGlobal);
        if (op == 'i') {
          if (!PopMark(&items) || !Push(NewContainer(Container::kObject, {g, NewContainer(Container::kTuple, items)})))
            return false;
        } else if (!Push(g)) {
          return false;
        }
        break;
      }
      case 0x93: {  // STACK_GLOBAL
        if (!Pop(&b) || !Pop(&a)) return false;
        const std::string* module = AsStr(a);
        const std::string* name = AsStr(b);
        if (!module || !name) return Fail("imports a global whose name is not a string");
        if (!IsOwnGlobal(*module)) foreign_.insert(*module + "." + *name);
        if (!Push(Str(*module + "." + *name, Val::kGlobal))) return false;
        break;
      }
      case 0x82: case 0x83: case 0x84:  // EXT1/2/4: the copyreg extension registry
        in_.Uint(op == 0x82 ? 1 : op == 0x83 ? 2 : 4, &ok);
        if (!ok) return false;
        foreign_.insert("copyreg extension code");
        if (!Push({Val::kOther, 0})) return false;
        break;
      case 'Q':  // BINPERSID
        if (!Pop(&a) || !Push(PersistentLoad(a))) return false;
        break;
      case 'R':  // REDUCE
        if (!Pop(&b) || !Pop(&a) || !Reduce(a, b)) return false;
        break;
      case 0x81:  // NEWOBJ
        if (!Pop(&b) || !Pop(&a) || !Push(NewContainer(Container::kObject, {a, b}))) return false;
        break;
      case 0x92:  // NEWOBJ_EX
        if (!Pop(&c) || !Pop(&b) || !Pop(&a) || !Push(NewContainer(Container::kObject, {a, b, c}))) return false;
        break;
      case 'o':  // OBJ: class and args after the mark
        if (!PopMark(&items)) return false;
        if (items.empty()) return Fail("builds an object without a class");
        if (!Push(NewContainer(Container::kObject, items))) return false;
        break;
      case 'b': {  // BUILD: state into the object
        Val* obj;
        if (!Pop(&a) || !Top(&obj)) return false;
        if (Container* o = AsContainer(*obj)) {
          if (!Charge(sizeof(Val))) return false;
          o->items.push_back(a);
        }
        break;
      }
      case ')': if (!Push(NewContainer(Container::kTuple))) return false; break;
      case ']': if (!Push(NewContainer(Container::kList))) return false; break;
      case '}': if (!Push(NewContainer(Container::kDict))) return false; break;
      case 0x8f: if (!Push(NewContainer(Container::kSet))) return false; break;
      case 0x85: case 0x86: case 0x87: {  // TUPLE1..3
        const std::size_t n = op - 0x84u;
        if (stack_.size() < n + (marks_.empty() ? 0 : marks_.back())) return Fail("builds a tuple from an empty stack");
        items.assign(stack_.end() - static_cast<long>(n), stack_.end());
        stack_.resize(stack_.size() - n);
        if (!Push(NewContainer(Container::kTuple, items))) return false;
        break;
      }
      case 't': case 'l': case 'd': case 0x91: {  // TUPLE, LIST, DICT, FROZENSET from the mark
        if (!PopMark(&items)) return false;
        if (op == 'd' && items.size() % 2) return Fail("builds a dict from an odd number of items");
        const Container::Kind kind = op == 't' ? Container::kTuple : op == 'l' ? Container::kList
                                   : op == 'd' ? Container::kDict : Container::kSet;
        if (!Push(NewContainer(kind, items))) return false;
        break;
      }
      case 'a': {  // APPEND
        Val* list;
        if (!Pop(&a) || !Top(&list)) return false;
        if (Container* l = AsContainer(*list)) {
          if (!Charge(sizeof(Val))) return false;
          l->items.push_back(a);
        }
        break;
      }
      case 'e': case 0x90: {  // APPENDS, ADDITEMS
        if (!PopMark(&items)) return false;
        Val* list;
        if (!Top(&list)) return false;
        if (Container* l = AsContainer(*list)) {
          if (!Charge(items.size() * sizeof(Val))) return false;
          l->items.insert(l->items.end(), items.begin(), items.end());
        }
        break;
      }
      case 's': {  // SETITEM
        Val* d;
        if (!Pop(&b) || !Pop(&a) || !Top(&d) || !SetItems(*d, {a, b})) return false;
        break;
      }
      case 'u': {  // SETITEMS
        if (!PopMark(&items)) return false;
        Val* d;
        if (!Top(&d) || !SetItems(*d, items)) return false;
        break;
      }
      case 'p':  // PUT
        if (!in_.Line(&text)) return false;
        if (text.empty() || text.size() > 18 || !AllDigits(text))
          return Fail("has a malformed PUT");
        if (!Memo(std::stoull(text))) return false;
        break;
      case 'q': case 'r': {
        const std::uint64_t key = in_.Uint(op == 'q' ? 1 : 4, &ok);
        if (!ok || !Memo(key)) return false;
        break;
      }
      case 0x94:  // MEMOIZE
        if (!Memo(memo_.size())) return false;
        break;
      case 'g':
        if (!in_.Line(&text)) return false;
        if (text.empty() || text.size() > 18 || !AllDigits(text))
          return Fail("has a malformed GET");
        if (!Get(std::stoull(text))) return false;
        break;
      case 'h': case 'j': {
        const std::uint64_t key = in_.Uint(op == 'h' ? 1 : 4, &ok);
        if (!ok || !Get(key)) return false;
        break;
      }
      case 0x97: case 0x98:  // NEXT_BUFFER, READONLY_BUFFER: out-of-band data torch never uses
        return Fail("uses out-of-band buffers (pickle protocol 5), which torch.save never writes");
      default: {
        char hex[8];
        std::snprintf(hex, sizeof hex, "0x%02x", op);
        return Fail(std::string("has an unknown opcode ") + hex + " at offset " + std::to_string(in_.pos() - 1));
      }
    }
  }
}

// Marks each storage reached from the root other than only through bookkeeping keys. Iterative:
// a hostile pickle may nest a million levels deep, and memo references make a graph, not a tree.
void Machine::Classify(Val start) {
  std::vector<std::uint8_t> seen(containers_.size(), 0);  // bit 0: seen as weight; bit 1: not
  std::vector<std::pair<Val, bool>> todo{{start, true}};
  while (!todo.empty()) {
    auto [v, weight] = todo.back();
    todo.pop_back();
    if (v.kind == Val::kStorage) {
      if (weight) out_.storages[v.v].weight = true;
      continue;
    }
    Container* c = AsContainer(v);
    if (!c) continue;
    const std::uint8_t bit = weight ? 1 : 2;
    if (seen[v.v] & bit) continue;
    seen[v.v] |= bit;
    if (c->kind == Container::kDict) {
      for (std::size_t i = 0; i + 1 < c->items.size(); i += 2) {
        const std::string* key = AsStr(c->items[i]);
        bool bookkeeping = false;
        for (std::string_view k : kBookkeepingKeys) bookkeeping = bookkeeping || (key && *key == k);
        todo.push_back({c->items[i + 1], weight && !bookkeeping});
      }
    } else {
      for (const Val& item : c->items) todo.push_back({item, weight});
    }
    if (c->aux) todo.push_back({Val{Val::kContainer, c->aux - 1}, weight});
  }
  out_.foreign_globals.assign(foreign_.begin(), foreign_.end());
}

// The objects of the given classes, with the scalar fields of their state: a NEWOBJ object is
// (class, args[, state]); a state that is no dict got its SETITEMS in the aux dict.
void Machine::Records(const std::vector<std::string>& classes, std::vector<PickleRecord>* out) {
  for (const Container& c : containers_) {
    if (c.kind != Container::kObject || c.items.empty() || c.items[0].kind != Val::kGlobal) continue;
    const std::string& cls = strings_[c.items[0].v];
    const std::string name = cls.substr(cls.rfind('.') + 1);
    if (std::find(classes.begin(), classes.end(), name) == classes.end()) continue;
    PickleRecord record{cls, {}, {}};
    const Container* state = c.items.size() >= 3 ? AsContainer(c.items.back()) : nullptr;
    if (state && state->kind != Container::kDict) state = state->aux ? &containers_[state->aux - 1] : nullptr;
    for (std::size_t i = 0; state && i + 1 < state->items.size(); i += 2) {
      const std::string* key = AsStr(state->items[i]);
      const Val value = state->items[i + 1];
      if (!key) continue;
      if (const std::string* s = AsStr(value)) record.strings.emplace_back(*key, *s);
      else if (value.kind == Val::kInt) record.ints.emplace_back(*key, value.v & 0x7fffffffffffffff);
    }
    out->push_back(std::move(record));
  }
}

}  // namespace

std::size_t StorageElementSize(const std::string& type) {
  static const std::unordered_map<std::string, std::size_t> kSizes = {
      {"DoubleStorage", 8},   {"FloatStorage", 4},        {"HalfStorage", 2},
      {"BFloat16Storage", 2}, {"LongStorage", 8},         {"IntStorage", 4},
      {"ShortStorage", 2},    {"CharStorage", 1},         {"ByteStorage", 1},
      {"BoolStorage", 1},     {"ComplexFloatStorage", 8}, {"ComplexDoubleStorage", 16},
      {"QInt8Storage", 1},    {"QUInt8Storage", 1},       {"QInt32Storage", 4},
      {"QUInt4x2Storage", 1}, {"QUInt2x4Storage", 1},     {"UntypedStorage", 1}};
  auto it = kSizes.find(type);
  return it == kSizes.end() ? 0 : it->second;
}

PickleSummary ReadPickle(const ReadAt& read_at, std::uint64_t offset, std::uint64_t end,
                         const PickleLimits& limits, const std::vector<std::string>& record_classes) {
  PickleSummary out;
  Input in(read_at, offset, end);
  Machine m(&in, limits, &out);
  const bool stopped = m.Run();
  out.end = in.pos();
  if (!stopped) {
    if (out.status == PickleSummary::Status::kTooLarge) return out;
    if (in.io_error()) {
      out.status = PickleSummary::Status::kMalformed;
      out.error = "a read failed at offset " + std::to_string(in.pos());
    } else if (in.short_read() && out.error.empty()) {
      out.status = PickleSummary::Status::kTruncated;
      out.error = "ends at offset " + std::to_string(in.pos()) + " before its STOP opcode";
    } else {
      out.status = PickleSummary::Status::kMalformed;
      if (in.too_long()) out.error = "has a text line longer than 1 MiB";
      if (out.error.empty()) out.error = "is malformed";
    }
    out.storages.clear();
    return out;
  }
  out.status = PickleSummary::Status::kOk;
  // The legacy format's magic number 0x1950a86a20f9469cfc6c: LONG1 bytes or LONG text.
  out.root_is_torch_magic = m.RootIsBigInt(std::string("\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19", 10)) ||
                            m.RootIsBigInt("119547037146038801333356");
  if (m.root.kind == Val::kInt) out.root_int = static_cast<std::int64_t>(m.root.v & 0x7fffffffffffffff);
  out.root_strings = m.RootStrings();
  m.Classify(m.root);
  if (!record_classes.empty()) m.Records(record_classes, &out.records);
  return out;
}

}  // namespace ckptwatch
