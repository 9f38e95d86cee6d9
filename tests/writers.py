"""Real writers of HDF5/Keras weight files for ckptwatch's end-to-end tests and bench.

Every file here is written by the real h5py (Debian's /usr/bin/python3 has h5py and numpy), in the
layouts Keras writes: Keras 2 `model.save("*.h5")` (full model), Keras 2 `save_weights("*.h5")`
(weights only) and Keras 3 `model.save("*.keras")` (a zip). Helpers damage files the way real
failures do: a cut (full disk, killed copy), a flipped byte (bad sector, bit rot), a writer that
never closed the file.

Also a small CLI, used by the tests (writer processes) and by bench/:
  writers.py sample DIR             a small full-model .h5 and a .keras in DIR
  writers.py sized PATH BYTES       a Keras-layout checkpoint of about BYTES bytes
  writers.py hold-open PATH         libver='latest' file, prints "opened", closes it at stdin EOF
  writers.py abandon PATH           libver='latest' file, flushed, then os._exit without closing
  writers.py flush-layers PATH N [latest]
                                    full model, f.flush() after each layer; after N layers prints
                                    "flushed" and waits (the test SIGKILLs it there)
  writers.py saver PATH BYTES       per stdin line "save": Keras-style save over PATH; replies
                                    "saved" or "error <exception>"
"""

import dataclasses
import io
import json
import os
import sys
import zipfile

import h5py
import numpy as np

KERAS2_VERSION = "2.4.0"
KERAS3_VERSION = "3.3.3"
BACKEND = "tensorflow"

# What `create_dataset` gets for "chunked + gzip + shuffle + fletcher32" checkpoints.
FILTERED = dict(chunks=True, compression="gzip", compression_opts=4, shuffle=True, fletcher32=True)


@dataclasses.dataclass
class Layer:
    """One Keras layer: its name, its class and its weights in Keras order."""

    name: str
    class_name: str
    weights: list  # [(weight name like "dense_1/kernel:0", np.ndarray)]
    config: dict = dataclasses.field(default_factory=dict)
    # Initializers, regularizers... in model_config, as Keras writes them. Off for huge models:
    # an HDF5 attribute must fit its 64 KiB object header message.
    verbose_config: bool = True


def dense_stack(units=(16, 32, 32, 10), seed=0, custom_class=None):
    """A Sequential MLP: Dense layers of `units`, a Dropout, optionally a `custom_class` layer."""
    rng = np.random.default_rng(seed)
    layers = []
    fan_in = units[0]
    for i, width in enumerate(units[1:], start=1):
        name = f"dense_{i}"
        layers.append(
            Layer(
                name,
                "Dense",
                [
                    (f"{name}/kernel:0", rng.standard_normal((fan_in, width), dtype=np.float32)),
                    (f"{name}/bias:0", rng.standard_normal((width,), dtype=np.float32)),
                ],
                {"units": width, "activation": "relu", "use_bias": True},
            )
        )
        fan_in = width
        if i == 1:
            layers.append(Layer("dropout_1", "Dropout", [], {"rate": 0.5}))
            if custom_class:
                layers.append(
                    Layer(
                        "my_custom_layer",
                        custom_class,
                        [("my_custom_layer/scale:0", rng.standard_normal(width, dtype=np.float32))],
                        {"scale_init": 1.0},
                    )
                )
    return layers


def sized_stack(total_bytes, layer_bytes=4 << 20, width=1024, seed=0):
    """Dense float32 layers totalling about `total_bytes`, about `layer_bytes` per layer."""
    n_layers = max(1, total_bytes // layer_bytes)
    per_layer_floats = max(2 * width, total_bytes // n_layers // 4)
    rows = max(1, per_layer_floats // width - 1)
    rng = np.random.default_rng(seed)
    # One random block shifted per layer: realistic values without generating every byte.
    base = rng.standard_normal((rows, width), dtype=np.float32)
    layers = []
    for i in range(1, n_layers + 1):
        name = f"dense_{i}"
        layers.append(
            Layer(
                name,
                "Dense",
                [
                    (f"{name}/kernel:0", base + np.float32(i * 1e-3)),
                    (f"{name}/bias:0", np.full((width,), i * 1e-3, dtype=np.float32)),
                ],
                {"units": width, "activation": "relu", "use_bias": True},
                verbose_config=False,
            )
        )
    return layers


def _keras2_layer_config(layer):
    config = {"name": layer.name, "trainable": True, "dtype": "float32", **layer.config}
    if layer.class_name == "Dense" and layer.verbose_config:
        config.update(
            kernel_initializer={"class_name": "GlorotUniform", "config": {"seed": None}},
            bias_initializer={"class_name": "Zeros", "config": {}},
            kernel_regularizer=None,
            bias_regularizer=None,
            activity_regularizer=None,
            kernel_constraint=None,
            bias_constraint=None,
        )
    return {"class_name": layer.class_name, "config": config}


def keras2_model_config(layers):
    """The `model_config` JSON of a Keras 2 Sequential model of `layers`."""
    first_kernel = next(w for layer in layers for _, w in layer.weights)
    input_layer = {
        "class_name": "InputLayer",
        "config": {
            "batch_input_shape": [None, int(first_kernel.shape[0])],
            "dtype": "float32",
            "sparse": False,
            "ragged": False,
            "name": "dense_1_input",
        },
    }
    return {
        "class_name": "Sequential",
        "config": {
            "name": "sequential",
            "layers": [input_layer] + [_keras2_layer_config(layer) for layer in layers],
        },
    }


TRAINING_CONFIG = {
    "loss": "categorical_crossentropy",
    "metrics": ["accuracy"],
    "weighted_metrics": None,
    "loss_weights": None,
    "optimizer_config": {
        "class_name": "Adam",
        "config": {
            "name": "Adam", "learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-07
        },
    },
}


def _string_attr(value, as_str):
    """Fixed-length bytes, as Keras 2 with h5py 2 wrote `str.encode()`; or, with `as_str`, a
    variable-length UTF-8 str, as Keras 3's legacy h5 writer does."""
    return value if as_str else np.bytes_(value.encode("utf-8"))


def _string_list_attr(values, as_str):
    if as_str:
        return np.array(values, dtype=h5py.string_dtype())
    if not values:
        return np.array([], dtype="S1")
    return np.array([v.encode("utf-8") for v in values])


def _inject_nonfinite(array, values):
    array = array.copy()
    array.reshape(-1)[: len(values)] = values
    return array


def _write_layer_groups(parent, layers, as_str, dataset_options, nonfinite, after_layer=None):
    """Keras 2 `save_weights_to_hdf5_group`: layer_names, one group per layer with weight_names;
    `after_layer(i)` is called once layer i is written."""
    parent.attrs["layer_names"] = _string_list_attr([layer.name for layer in layers], as_str)
    parent.attrs["backend"] = _string_attr(BACKEND, as_str)
    parent.attrs["keras_version"] = _string_attr(KERAS2_VERSION, as_str)
    for i, layer in enumerate(layers):
        group = parent.create_group(layer.name)
        group.attrs["weight_names"] = _string_list_attr([n for n, _ in layer.weights], as_str)
        for weight_name, value in layer.weights:
            if weight_name in nonfinite:
                value = _inject_nonfinite(value, nonfinite[weight_name])
            group.create_dataset(weight_name, data=value, **dataset_options)
        if after_layer:
            after_layer(i)


def _write_optimizer_weights(f, layers, as_str, dataset_options):
    """Keras 2 `optimizer_weights`: Adam's iteration counter and first moments."""
    group = f.create_group("optimizer_weights")
    names = ["Adam/iter:0"]
    group.create_dataset("Adam/iter:0", data=np.int64(100))
    for layer in layers:
        for weight_name, value in layer.weights:
            moment = weight_name.replace(":0", "/m:0")
            names.append(f"Adam/{moment}")
            group.create_dataset(f"Adam/{moment}", data=np.zeros_like(value), **dataset_options)
    group.attrs["weight_names"] = _string_list_attr(names, as_str)


def _open_for_write(path, libver, userblock_size):
    kwargs = {}
    if libver:
        kwargs["libver"] = libver
    if userblock_size:
        kwargs["userblock_size"] = userblock_size
    return h5py.File(path, "w", **kwargs)


def write_full_model(
    path,
    layers=None,
    *,
    libver=None,
    userblock_size=0,
    dataset_options=None,
    nonfinite=None,
    str_attrs=False,
    optimizer=True,
    keras_version=None,
    model_config=None,
):
    """Keras 2 `model.save("*.h5")`: model_config, training_config, model_weights and
    optimizer_weights.

    `nonfinite` maps weight names ("dense_2/kernel:0") to values (NaN/Inf) written at the start of
    that dataset. `str_attrs` writes string attributes as variable-length str (Keras 3's legacy
    h5 writer) instead of fixed-length bytes (Keras 2). `keras_version` and `model_config` (a
    dict) replace the Keras 2 defaults: another Keras release's config with the same layout.
    """
    layers = dense_stack() if layers is None else layers
    with _open_for_write(path, libver, userblock_size) as f:
        _write_full_model_into(
            f, layers, dataset_options or {}, nonfinite or {}, str_attrs, optimizer
        )
        if keras_version is not None:
            f.attrs["keras_version"] = _string_attr(keras_version, str_attrs)
        if model_config is not None:
            f.attrs["model_config"] = _string_attr(json.dumps(model_config), str_attrs)
    if userblock_size:
        _fill_user_block(path, userblock_size)


def _write_full_model_into(f, layers, dataset_options, nonfinite, str_attrs, optimizer):
    f.attrs["keras_version"] = _string_attr(KERAS2_VERSION, str_attrs)
    f.attrs["backend"] = _string_attr(BACKEND, str_attrs)
    f.attrs["model_config"] = _string_attr(json.dumps(keras2_model_config(layers)), str_attrs)
    f.attrs["training_config"] = _string_attr(json.dumps(TRAINING_CONFIG), str_attrs)
    weights = f.create_group("model_weights")
    _write_layer_groups(weights, layers, str_attrs, dataset_options, nonfinite)
    if optimizer:
        _write_optimizer_weights(f, layers, str_attrs, dataset_options)


def write_weights_only(path, layers=None, *, str_attrs=False, dataset_options=None):
    """Keras 2 `model.save_weights("*.h5")`: layer_names and one group per layer at the root."""
    layers = dense_stack() if layers is None else layers
    with h5py.File(path, "w") as f:
        _write_layer_groups(f, layers, str_attrs, dataset_options or {}, {})


def write_latest(path, layers=None):
    """A full model written with libver='latest' (superblock version 3)."""
    write_full_model(path, layers, libver="latest")


def write_filtered(path, layers=None):
    """A full model whose datasets are chunked, gzip-compressed, shuffled and fletcher32-checked."""
    write_full_model(path, layers, dataset_options=FILTERED)


def write_fletcher32_only(path, layers=None):
    """A full model with chunked, fletcher32-checked, uncompressed datasets: a flipped data byte
    is found by the checksum alone, not by a decompressor."""
    write_full_model(path, layers, dataset_options=dict(chunks=True, fletcher32=True))


def write_custom_layer_model(path, class_name="MyCustomLayer"):
    """A full model whose model_config holds a layer class Keras does not ship."""
    write_full_model(path, dense_stack(custom_class=class_name))


def write_nonfinite(path):
    """A full model with NaN/Inf weights. Returns (count, first offending weight name)."""
    nonfinite = {"dense_2/kernel:0": [np.nan, np.nan, np.inf], "dense_3/bias:0": [-np.inf, np.nan]}
    write_full_model(path, nonfinite=nonfinite)
    return sum(len(v) for v in nonfinite.values()), "dense_2/kernel:0"


def write_weights_tensor(path, dtype, count, nonfinite=None, dataset_options=None):
    """A weights-only Keras file holding one (count,) tensor of `dtype` (e.g. "float16") with
    finite random values, except `nonfinite` {element index: value} (a negative index counts
    from the end)."""
    array = np.random.default_rng(count).standard_normal(count).astype(dtype)
    for at, value in (nonfinite or {}).items():
        array[at] = value
    layer = Layer("dense_1", "Dense", [("dense_1/kernel:0", array)])
    write_weights_only(path, [layer], dataset_options=dataset_options)


def write_userblock(path, size=1024):
    """A full model after a `size`-byte user block (which holds some text)."""
    write_full_model(path, userblock_size=size)


def _fill_user_block(path, size):
    text = b"ckptwatch test user block\n"
    with open(path, "r+b") as f:
        f.write(text[:size])


def write_sized_model(path, total_bytes, layers=None):
    """A Keras-layout full model whose float32 weights total about `total_bytes`."""
    write_full_model(path, sized_stack(total_bytes) if layers is None else layers, optimizer=False)


# Keras 3 `.keras`: a zip of metadata.json, config.json and model.weights.h5.


def _keras3_layer_config(layer):
    config = {"name": layer.name, "trainable": True, **layer.config}
    if layer.class_name == "Dense":
        config.update(
            kernel_initializer={
                "module": "keras.initializers",
                "class_name": "GlorotUniform",
                "config": {"seed": None},
                "registered_name": None,
            },
            bias_initializer={
                "module": "keras.initializers",
                "class_name": "Zeros",
                "config": {},
                "registered_name": None,
            },
        )
    return {
        "module": "keras.layers",
        "class_name": layer.class_name,
        "config": config,
        "registered_name": None,
    }


def keras3_config(layers):
    """config.json of a Keras 3 Sequential model of `layers`."""
    first_kernel = next(w for layer in layers for _, w in layer.weights)
    input_shape = [None, int(first_kernel.shape[0])]
    input_layer = {
        "module": "keras.layers",
        "class_name": "InputLayer",
        "config": {
            "batch_shape": input_shape, "dtype": "float32", "sparse": False, "name": "input_layer"
        },
        "registered_name": None,
    }
    return {
        "module": "keras",
        "class_name": "Sequential",
        "config": {
            "name": "sequential",
            "trainable": True,
            "layers": [input_layer] + [_keras3_layer_config(layer) for layer in layers],
        },
        "registered_name": None,
        "build_config": {"input_shape": input_shape},
        "compile_config": {"loss": "categorical_crossentropy", "metrics": ["accuracy"]},
    }


def keras3_weights_h5(layers):
    """model.weights.h5 in Keras 3's layout (layers/<name>/vars/<i>, optimizer/vars, vars)."""
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as f:
        for layer in layers:
            group = f.create_group(f"layers/{layer.name}/vars")
            for i, (_, value) in enumerate(layer.weights):
                group.create_dataset(str(i), data=value)
        optimizer = f.create_group("optimizer/vars")
        optimizer.create_dataset("0", data=np.int64(100))
        f.create_group("vars")
    return buffer.getvalue()


def write_keras3_zip(path, layers=None, *, keras_version=KERAS3_VERSION, config=None):
    """Keras 3 `model.save("*.keras")`; with `keras_version` and `config`, the same archive
    layout as tf.keras 2.12-2.15 writes it."""
    layers = dense_stack() if layers is None else layers
    metadata = {"keras_version": keras_version, "date_saved": "2024-05-01@12:00:00"}
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("metadata.json", json.dumps(metadata))
        zf.writestr("config.json", json.dumps(config or keras3_config(layers)))
        zf.writestr("model.weights.h5", keras3_weights_h5(layers))


# Damage and inspection.


def truncate(path, size):
    """Cuts `path` to `size` bytes, as a full disk or a killed copy leaves it."""
    os.truncate(path, size)


def flip_byte(path, offset):
    """Inverts every bit of the byte at `offset`."""
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0xFF]))


def dataset_offset(path, name):
    """File offset of a contiguous dataset's raw data."""
    with h5py.File(path, "r") as f:
        return f[name].id.get_offset()


def chunk_extent(path, name, index=0):
    """(file offset, stored size) of chunk `index` of a chunked dataset."""
    with h5py.File(path, "r") as f:
        info = f[name].id.get_chunk_info(index)
        return info.byte_offset, info.size


def superblock_end(path):
    """Where the superblock ends (versions 0 and 2/3 with 8-byte offsets, no user block)."""
    with open(path, "rb") as f:
        head = f.read(12)
    version = head[8]
    if version == 0:
        return 96  # 56 bytes of fields, then the root group's 40-byte symbol table entry.
    if version in (2, 3):
        return 48
    raise ValueError(f"{path}: superblock version {version} not handled")


def data_extents(path):
    """(file offset, stored size) of all raw data (contiguous datasets, chunks), sorted."""
    extents = []

    def visit(_, obj):
        if not isinstance(obj, h5py.Dataset):
            return
        if obj.chunks:
            for i in range(obj.id.get_num_chunks()):
                info = obj.id.get_chunk_info(i)
                extents.append((info.byte_offset, info.size))
        elif obj.id.get_storage_size() and obj.id.get_offset() is not None:
            extents.append((obj.id.get_offset(), obj.id.get_storage_size()))

    with h5py.File(path, "r") as f:
        f.visititems(visit)
    return sorted(extents)


def h5py_counts(path):
    """(datasets, total elements over all datasets) as h5py sees `path`."""
    counts = [0, 0]

    def visit(_, obj):
        if isinstance(obj, h5py.Dataset):
            counts[0] += 1
            counts[1] += obj.size

    with h5py.File(path, "r") as f:
        f.visititems(visit)
    return tuple(counts)


def dataset_names(path):
    """Every dataset path of `path`, in h5py's visit order."""
    names = []
    with h5py.File(path, "r") as f:
        f.visititems(
            lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None
        )
    return names


# CLI for writer processes.


def _hold_open(path):
    f = h5py.File(path, "w", libver="latest")
    _write_full_model_into(f, dense_stack(), {}, {}, False, True)
    f.flush()
    print("opened", flush=True)
    sys.stdin.read()
    f.close()


def _abandon(path):
    f = h5py.File(path, "w", libver="latest")
    _write_full_model_into(f, dense_stack(), {}, {}, False, True)
    f.flush()
    os._exit(0)


def _flush_layers(path, stop_after, libver):
    """A trainer that flushes after each layer (so a crash keeps what was written) and is
    killed after `stop_after` layers: the test SIGKILLs it once it prints "flushed"."""
    f = h5py.File(path, "w", libver=libver)
    layers = dense_stack(units=(16, 64, 64, 64, 64, 64, 10))
    f.attrs["keras_version"] = _string_attr(KERAS2_VERSION, False)
    f.attrs["backend"] = _string_attr(BACKEND, False)
    f.attrs["model_config"] = _string_attr(json.dumps(keras2_model_config(layers)), False)

    def after_layer(i):
        f.flush()
        if i + 1 == stop_after:
            print("flushed", flush=True)
            sys.stdin.read()

    _write_layer_groups(f.create_group("model_weights"), layers, False, {}, {}, after_layer)
    f.close()


def _saver(path, total_bytes):
    layers = sized_stack(total_bytes)
    print("ready", flush=True)
    for line in sys.stdin:
        if line.strip() != "save":
            continue
        try:
            # What Keras 2 `model.save(path)` does: h5py.File(path, "w") over the old checkpoint.
            write_sized_model(path, total_bytes, layers)
            print("saved", flush=True)
        except Exception as e:  # Reported to the test, which fails on it.
            print(f"error {e!r}", flush=True)


def main(argv):
    usage = (
        "usage: writers.py sample DIR | sized PATH BYTES | hold-open PATH | abandon PATH"
        " | flush-layers PATH N [latest] | saver PATH BYTES"
    )
    if len(argv) < 3:
        sys.exit(usage)
    command, path = argv[1], argv[2]
    if command == "sample":
        os.makedirs(path, exist_ok=True)
        write_full_model(os.path.join(path, "model.h5"))
        write_keras3_zip(os.path.join(path, "model.keras"))
    elif command == "sized" and len(argv) == 4:
        write_sized_model(path, int(argv[3]))
    elif command == "hold-open":
        _hold_open(path)
    elif command == "abandon":
        _abandon(path)
    elif command == "flush-layers" and len(argv) in (4, 5):
        _flush_layers(path, int(argv[3]), "latest" if argv[4:] == ["latest"] else "earliest")
    elif command == "saver" and len(argv) == 4:
        _saver(path, int(argv[3]))
    else:
        sys.exit(usage)


if __name__ == "__main__":
    main(sys.argv)
