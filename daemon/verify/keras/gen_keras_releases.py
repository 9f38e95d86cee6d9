#!/usr/bin/python3
"""Generates keras_releases_data.cc: the built-in class names and module paths of each Keras
release, read from the Keras sources themselves (git tags of keras-team/keras and
keras-team/tf-keras), so that "is this class in the Keras that will load the file" is answered
from what that release shipped, not from a list typed by hand.

  daemon/verify/keras/gen_keras_releases.py --keras KERAS_GIT_DIR --tf-keras TF_KERAS_GIT_DIR \
      > daemon/verify/keras/keras_releases_data.cc

Each release is read with `git ls-tree`/`git show` at its tag (no checkout). What counts as a
built-in name, per release, in the packages a model config resolves classes from (layers, engine
or models, initializers, regularizers, constraints, optimizers and schedules, losses, metrics,
activations, mixed precision / dtype policies, premade models, feature columns, Keras 3 ops):
  - every public top-level class (Keras 1 and 2 resolve a config's class_name among these
    modules); for Keras 3 layers, only exported ones (it resolves layer names through its public
    API: its internal base class Merge is no Keras 1 Merge), while its models (Functional) and
    ops are found through the module a config names;
  - every public top-level function in activations, losses, metrics, initializers,
    regularizers and constraints (a config names them where a class would go);
  - every top-level alias `Name = Other` in those modules (Convolution2D = Conv2D, mse = ...);
  - the last component of every `keras_export("keras.<package>....")` name (tf.keras 2.6+ and
    Keras 3 export aliases such as keras.layers.Convolution2D).
Erring towards more names is deliberate: a missing built-in would predict a load failure that
does not happen. Module paths are the dotted names those files import as once installed: the
2.13+ and 3.x wheels move the sources under keras/src (tf_keras/src for tf-keras).
"""

import argparse
import ast
import re
import subprocess
import sys

# (repository, tag, version, line). Lines: 1 = Keras 1, 2 = multi-backend Keras 2.0-2.3,
# 20 = tf.keras 2.4+ and tf_keras, 3 = Keras 3. At most 32 releases (a uint32 mask).
RELEASES = [
    ("keras", "1.2.2", "1.2.2", 1),
    ("keras", "2.0.0", "2.0.0", 2),
    ("keras", "2.1.6", "2.1.6", 2),
    ("keras", "2.2.4", "2.2.4", 2),
    ("keras", "2.3.1", "2.3.1", 2),
    ("keras", "v2.6.0", "2.6.0", 20),
    ("keras", "v2.9.0", "2.9.0", 20),
    ("keras", "v2.12.0", "2.12.0", 20),
    ("keras", "v2.15.0", "2.15.0", 20),
    ("tf-keras", "v2.21.0", "2.21.0", 20),
    ("keras", "v3.0.0", "3.0.0", 3),
    ("keras", "v3.3.3", "3.3.3", 3),
    ("keras", "v3.6.0", "3.6.0", 3),
    ("keras", "v3.9.0", "3.9.0", 3),
    ("keras", "v3.12.0", "3.12.0", 3),
    ("keras", "v3.15.1", "3.15.1", 3),
]

CLASS_PACKAGES = ["layers", "legacy", "engine", "models", "initializers", "initializations",
                  "regularizers", "constraints", "optimizers", "optimizer_v2",
                  "optimizer_experimental", "losses", "objectives", "metrics", "activations",
                  "mixed_precision", "dtype_policies", "premade", "premade_models",
                  "feature_column", "ops", "quantizers"]
FUNCTION_PACKAGES = {"initializers", "initializations", "regularizers", "constraints", "losses",
                     "objectives", "metrics", "activations"}
EXPORT_PREFIXES = ("keras.layers.", "keras.models.", "keras.initializers.", "keras.regularizers.",
                   "keras.constraints.", "keras.optimizers.", "keras.losses.", "keras.metrics.",
                   "keras.activations.", "keras.mixed_precision.", "keras.dtype_policies.",
                   "keras.experimental.", "keras.premade.", "keras.Model", "keras.Sequential",
                   "keras.Input", "keras.DTypePolicy", "keras.Layer", "keras.Loss",
                   "keras.Metric", "keras.Optimizer", "keras.Initializer", "keras.Regularizer",
                   "keras.Constraint", "keras.ops.", "keras.quantizers.")
SKIP = re.compile(r"(^|/)(tests?|testing|testing_infra|benchmarks?|integration_tests|api)(/|$)|"
                  r"_test\.py$|(^|/)test_[^/]*\.py$|(^|/)conftest\.py$")


def git(repo, *args):
    return subprocess.run(["git", "-C", repo, *args], check=True, capture_output=True).stdout


def package_root(files, repo_name):
    """The directory the package's sources sit in at this tag, and its installed module name."""
    top = "tf_keras" if repo_name == "tf-keras" else "keras"
    src = top + "/src/"
    if any(f.startswith(src) for f in files):
        return src, top + ".src."
    return top + "/", None


def module_prefix(repo_name, version, root):
    if root[1]:
        return root[1]
    top = "tf_keras" if repo_name == "tf-keras" else "keras"
    major, minor = (int(x) for x in version.split(".")[:2])
    # The 2.13+ and 3.x wheels moved the repository's keras/ under keras/src.
    if major >= 3 or (major == 2 and minor >= 13) or top == "tf_keras":
        return top + ".src."
    return top + "."


def exported_names(node):
    names = []
    for deco in getattr(node, "decorator_list", []):
        if isinstance(deco, ast.Call) and getattr(deco.func, "id", getattr(deco.func, "attr", "")) in (
                "keras_export", "keras_core_export"):
            for arg in deco.args:
                values = arg.elts if isinstance(arg, (ast.List, ast.Tuple)) else [arg]
                for v in values:
                    if isinstance(v, ast.Constant) and isinstance(v.value, str):
                        names.append(v.value)
    return names


def names_in(source, package, exports_only):
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        # Python 2 only syntax in an old release: fall back to top-level definitions by pattern.
        text = source.decode("utf-8", "replace")
        found = set(re.findall(r"^class\s+([A-Za-z]\w*)", text, re.M))
        if package in FUNCTION_PACKAGES:
            found |= set(re.findall(r"^def\s+([A-Za-z]\w*)", text, re.M))
        return found
    found = set()
    for node in tree.body:
        exports = exported_names(node)
        for name in exports:
            if name.startswith(EXPORT_PREFIXES):
                found.add(name.rsplit(".", 1)[-1])
        if exports_only and not exports:
            continue
        if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
            found.add(node.name)
        elif isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
            if package in FUNCTION_PACKAGES or any(e.startswith(EXPORT_PREFIXES) for e in exports):
                found.add(node.name)
        elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Name):
            for target in node.targets:
                if isinstance(target, ast.Name) and not target.id.startswith("_"):
                    found.add(target.id)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
            # keras_export("keras.layers.X")(Y): an export of an existing object.
            call = node.value
            if isinstance(call.func, ast.Call):
                for name in exported_names(ast.ClassDef(decorator_list=[call.func], name="",
                                                        bases=[], keywords=[], body=[])):
                    if name.startswith(EXPORT_PREFIXES):
                        found.add(name.rsplit(".", 1)[-1])
    return found


def read_release(repos, repo_name, tag, version, line):
    repo = repos[repo_name]
    files = git(repo, "ls-tree", "-r", "--name-only", tag).decode().splitlines()
    root = package_root(files, repo_name)
    prefix = module_prefix(repo_name, version, root)
    names, modules = set(), set()
    for path in files:
        if not path.startswith(root[0]) or not path.endswith(".py") or SKIP.search(path):
            continue
        rel = path[len(root[0]):]
        package = rel.split("/")[0].removesuffix(".py")
        if package not in CLASS_PACKAGES and rel not in ("models.py",):
            continue
        source = git(repo, "show", f"{tag}:{path}")
        # Keras 3 resolves a bare class_name through its public API (keras_export); an operation
        # class is found through the module its config names, so every class there counts.
        names |= names_in(source, package, exports_only=line == 3 and package == "layers")
        module = prefix + rel.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
        modules.add(module)
    flags = []
    text_of = lambda suffix: b"".join(git(repo, "show", f"{tag}:{p}") for p in files
                                      if p.endswith(suffix) and not SKIP.search(p))
    if any(p.endswith("saving_lib.py") and "experimental" not in p for p in files):
        flags.append("kReadsKerasArchive")
    if any(p.endswith("legacy/interfaces.py") for p in files):
        flags.append("kConvertsKeras1Configs")
    # Where each release keeps preprocess_weights_for_loading(..., original_backend), which
    # flips convolution kernels saved by another backend (Theano) in the releases that do.
    loaders = b"".join(text_of(s) for s in ("hdf5_format.py", "legacy_h5_format.py",
                                               "engine/saving.py", "engine/topology.py"))
    if re.search(rb"convert_kernel\(", loaders):
        flags.append("kConvertsTheanoKernels")
    if b"safe_mode" in text_of("lambda_layer.py"):
        flags.append("kLambdaSafeMode")
    return names, modules, flags


def cc_string_table(entries):
    lines = []
    for name, mask in entries:
        lines.append(f'    {{"{name}", 0x{mask:05x}u}},')
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keras", required=True, help="git dir of keras-team/keras")
    parser.add_argument("--tf-keras", required=True, help="git dir of keras-team/tf-keras")
    args = parser.parse_args()
    repos = {"keras": args.keras, "tf-keras": args.tf_keras}
    if len(RELEASES) > 32:
        sys.exit("at most 32 releases fit the masks")
    name_masks, module_masks, release_rows = {}, {}, []
    for index, (repo_name, tag, version, line) in enumerate(RELEASES):
        names, modules, flags = read_release(repos, repo_name, tag, version, line)
        commit = git(repos[repo_name], "rev-list", "-n", "1", tag).decode().strip()
        for n in names:
            if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", n):
                name_masks[n] = name_masks.get(n, 0) | (1 << index)
        for m in modules:
            module_masks[m] = module_masks.get(m, 0) | (1 << index)
        major, minor, patch = (int(x) for x in version.split("."))
        flag_text = " | ".join(f"KerasRelease::{f}" for f in flags) or "0"
        release_rows.append(
            f'    {{"{version}", "keras-team/{repo_name} {tag} ({commit[:12]})", {major}, {minor}, '
            f'{patch}, KerasLine::k{ {1: "Keras1", 2: "Keras2", 20: "TfKeras", 3: "Keras3"}[line]}, '
            f'{flag_text}, {len(names)}}},')
        print(f"{repo_name} {tag}: {len(names)} names, {len(modules)} modules, {flags}",
              file=sys.stderr)
    tags = ", ".join(f"{r} {t}" for r, t, _, _ in RELEASES)
    out = [
        "// Generated by daemon/verify/keras/gen_keras_releases.py; do not edit. Regenerate with:",
        "//   daemon/verify/keras/gen_keras_releases.py --keras KERAS_GIT --tf-keras TF_KERAS_GIT"
        " > daemon/verify/keras/keras_releases_data.cc",
        "// (KERAS_GIT, TF_KERAS_GIT: git directories of keras-team/keras and keras-team/tf-keras.)",
        "// Tags read: " + tags + ".",
        "// clang-format off",
        '#include <cstddef>',
        "",
        '#include "verify/keras/keras_releases.h"',
        "",
        "namespace ckptwatch::keras_releases_data {",
        "",
        f"extern const std::size_t kReleaseCount = {len(RELEASES)};",
        f"extern const std::size_t kNameCount = {len(name_masks)};",
        f"extern const std::size_t kModuleCount = {len(module_masks)};",
        "",
        f"extern constinit const KerasRelease kReleases[{len(RELEASES)}] = {{",
        *release_rows,
        "};",
        "",
        "// Built-in names, sorted; bit i: in kReleases[i].",
        f"extern constinit const KerasNameMask kNames[{len(name_masks)}] = {{",
        cc_string_table(sorted(name_masks.items())),
        "};",
        "",
        "// Module paths of the packages above, sorted; bit i: importable in kReleases[i].",
        f"extern constinit const KerasNameMask kModules[{len(module_masks)}] = {{",
        cc_string_table(sorted(module_masks.items())),
        "};",
        "",
        "}  // namespace ckptwatch::keras_releases_data",
        "// clang-format on",
        "",
    ]
    sys.stdout.write("\n".join(out))


if __name__ == "__main__":
    main()
