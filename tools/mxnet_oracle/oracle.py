#!/usr/bin/env python3
"""MXNet 1.9.1 oracle for modelsurgeon tests.

This script drives *real* Apache MXNet (1.9.1, legacy Gluon API) so that our
tests can compare modelsurgeon's pure-numpy engine, readers and writers
against the reference implementation.  It is NOT part of the modelsurgeon
package and must be run with the interpreter of the MXNet virtual env::

    /work/mxnet-venv/bin/python tools/mxnet_oracle/oracle.py <command> ...

Only the standard library, numpy and mxnet are used.

Commands
--------
keys MODEL [--classes N] [--size S] [--with-names]
    Print a JSON list ``[[structural_key, shape], ...]`` of the model's
    parameters in ``save_parameters`` order (the ``_collect_params_with_prefix``
    order, which is checked against the key order that ``mx.nd.load`` returns
    for a real ``save_parameters`` file).  ``--with-names`` prints
    ``[structural_key, shape, dtype, export_key]`` rows instead, where
    export_key is the ``arg:``/``aux:`` key ``HybridBlock.export`` writes.

export MODEL OUTDIR [--classes N] [--size S] [--batch B] [--seed K] [--prefix P]
    Build MODEL, initialise it deterministically (Xavier/He-normal weights,
    random non-trivial BatchNorm gamma/beta/running_mean/running_var and
    random biases), hybridize, run it on a seeded random input and write::

        P-symbol.json  P-0000.params   (HybridBlock.export)
        P.params                        (Block.save_parameters)
        input.npy  output.npy           (float32; inference mode)
        info.json                       (versions, settings, keys, timings)

    P defaults to MODEL.  After writing, the exported pair is re-imported
    with SymbolBlock.imports and its output compared (``selfcheck`` in
    info.json).

run SYMBOL_JSON PARAMS INPUT OUTPUT [--input-name data ...] [--allow-missing] [--ignore-extra]
    Load SYMBOL_JSON + PARAMS with ``gluon.SymbolBlock.imports`` (strict
    unless --allow-missing/--ignore-extra), run it in inference mode on INPUT
    (.npy, or .npz keyed by input name) and write OUTPUT: .npy, or .npz with
    keys out0, out1, ... (required when the graph has several outputs).
    Prints a JSON summary (input/output shapes, imported parameter names).

save-params OUT_PARAMS NPZ_IN [--list] [--np-shape] [--bfloat16 KEY ...]
    Write the arrays of NPZ_IN with ``mx.nd.save`` (legacy binary container),
    keys and order kept exactly.  ``--list`` writes an unnamed list,
    ``--np-shape`` writes NDArray V3 records (numpy shape semantics; needed
    for 0-d and zero-size arrays), ``--bfloat16 KEY`` stores the uint16 array
    KEY (bfloat16 bit patterns, as load-params writes them) as bfloat16.
    Supported dtypes: float32/64/16, uint8, int8/32/64, bool.

load-params PARAMS OUT_NPZ
    Read PARAMS with ``mx.nd.load`` (V3/np-shape files are detected and
    re-read under np-shape semantics) and write every array to OUT_NPZ,
    keys and order kept (unnamed lists become arr_0, arr_1, ...).  Sparse
    arrays are densified and bfloat16 arrays stored as their uint16 bits.
    Prints a JSON summary of the file.

dtypes OUTDIR
    Write small .params files covering every dtype ``mx.nd.save`` accepts,
    list/empty/named/sparse/np-shape(V3) variants, each with an .npz of the
    same contents, plus ``manifest.json`` describing them.

Models
------
The eight Gluon model-zoo models we test against are listed in ZOO_DEFAULT_SIZE
with the default input size used by ``export`` (``keys`` uses 224 unless
--size is given).  Any other ``get_model`` name works with size 224.  Three
small hand-written models are also available: ``tutorial`` (the v1.x
"Parameter and Block Naming" tutorial model: three Dense(20) + relu, input
(1, 20)), ``mlp`` (Dense(16, relu), Dense(8, relu), Dense(3); input (2, 10))
and ``convbn`` (Conv2D(4, 3, padding=1), BatchNorm, relu, MaxPool2D, Flatten,
Dense(3); input (2, 3, 8, 8)).

Exit status: 0 ok, 1 runtime error (message on stderr), 2 usage error.
"""

import argparse
import json
import os
import platform
import sys
import tempfile
import time
import warnings

import numpy as np

# Silence "Subgraph backend MKLDNN is activated." printed for every executor.
os.environ.setdefault("MXNET_SUBGRAPH_VERBOSE", "0")

try:
    import mxnet as mx
    from mxnet import gluon
except ImportError as _exc:  # pragma: no cover - environment problem
    sys.stderr.write(
        f"oracle.py: cannot import mxnet ({_exc}).\n"
        "Run this script with the MXNet venv interpreter, e.g.\n"
        "  /work/mxnet-venv/bin/python tools/mxnet_oracle/oracle.py ...\n")
    sys.exit(1)

EXPECTED_MXNET_VERSION = "1.9.1"

# Default input size (S for an input of shape (B, 3, S, S)) used by `export`.
# See ZOO_SIZE_NOTES for why each value was chosen.
ZOO_DEFAULT_SIZE = {
    "alexnet": 63,
    "resnet18_v1": 64,
    "resnet34_v1": 64,
    "resnet18_v2": 64,
    "vgg11": 32,
    "squeezenet1.1": 209,
    "mobilenet0.25": 64,
    "mobilenet1.0": 64,
}

ZOO_SIZE_NOTES = {
    "alexnet": "smallest size that runs (three 3x3/2 max-pools need 15x15 after "
               "conv0); features end at 256x1x1 so features.9 is Dense(4096, in_units=256)",
    "resnet18_v1": "total stride 32 then GlobalAvgPool; runs down to 1x1 but 64 keeps a "
                   "2x2 map in the last stage so 3x3 padding is exercised everywhere; "
                   "parameter file size does not depend on the input size",
    "resnet34_v1": "as resnet18_v1",
    "resnet18_v2": "as resnet18_v1",
    "vgg11": "smallest size that runs (five 2x2/2 max-pools); features end at 512x1x1 "
             "so the first Dense is Dense(4096, in_units=512)",
    "squeezenet1.1": "smallest size that runs: the head ends with AvgPool2D(13) which "
                     "needs a 13x13 map; at 209 the ceil-mode max-pools have partial "
                     "windows (pooling_convention='full' is exercised)",
    "mobilenet0.25": "total stride 32 then GlobalAvgPool; runs down to 1x1, 64 keeps a 2x2 "
                     "map in the last stage; file size does not depend on input size",
    "mobilenet1.0": "as mobilenet0.25",
}

CUSTOM_MODELS = ("tutorial", "mlp", "convbn")


class UsageError(Exception):
    """Bad command-line usage detected after argparse (exit status 2)."""


# ----------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------

def _log(msg):
    sys.stderr.write(f"oracle.py: {msg}\n")
    sys.stderr.flush()


def _dtype_name(dtype):
    """Readable dtype name; MXNet's bfloat16 is a numpy structured dtype."""
    dt = np.dtype(dtype)
    if dt.names == ("bfloat16",):
        return "bfloat16"
    return dt.name


def _check_version():
    if mx.__version__ != EXPECTED_MXNET_VERSION:
        _log(f"warning: running MXNet {mx.__version__}, fixtures are defined for {EXPECTED_MXNET_VERSION}")


def _is_flat(obj):
    """True for scalars and lists nesting only scalars/lists (printed on one line)."""
    if isinstance(obj, list):
        return all(_is_flat(o) for o in obj)
    return not isinstance(obj, dict)


def _dumps(obj, indent=0):
    """json.dumps with one line per dict item / per row of a list of rows."""
    pad, pad1 = " " * indent, " " * (indent + 1)
    if isinstance(obj, dict):
        if not obj:
            return "{}"
        items = [f"{pad1}{json.dumps(k)}: {_dumps(v, indent + 1)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(obj, list) and obj and not all(
            not isinstance(o, (list, dict)) for o in obj):
        if all(_is_flat(o) for o in obj):
            rows = [pad1 + json.dumps(o) for o in obj]
        else:
            rows = [pad1 + _dumps(o, indent + 1) for o in obj]
        return "[\n" + ",\n".join(rows) + "\n" + pad + "]"
    return json.dumps(obj)


def _write_json(path, obj):
    with open(path, "w") as f:
        f.write(_dumps(obj) + "\n")


def _ensure_dir(path):
    if os.path.exists(path) and not os.path.isdir(path):
        raise UsageError(f"{path} exists and is not a directory")
    os.makedirs(path, exist_ok=True)


# ----------------------------------------------------------------------------
# models
# ----------------------------------------------------------------------------

class Model(gluon.HybridBlock):
    """The model of the v1.x Gluon tutorial "Parameter and Block Naming".

    Three Dense(20) layers with a relu after each; children are created in
    the block's name scope and the last one gets an explicit prefix, so the
    v1 parameter names are model0_dense0_weight, model0_dense1_weight and
    model0_mydense_weight (when it is the first such model in the process).
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.dense0 = gluon.nn.Dense(20)
            self.dense1 = gluon.nn.Dense(20)
            self.mydense = gluon.nn.Dense(20, prefix="mydense_")

    def hybrid_forward(self, F, x):  # pylint: disable=arguments-differ
        x = F.relu(self.dense0(x))
        x = F.relu(self.dense1(x))
        return F.relu(self.mydense(x))


def _build_custom(name):
    nn = gluon.nn
    if name == "tutorial":
        return Model(), (1, 20)
    if name == "mlp":
        net = nn.HybridSequential()
        with net.name_scope():
            net.add(nn.Dense(16, activation="relu"))
            net.add(nn.Dense(8, activation="relu"))
            net.add(nn.Dense(3))
        return net, (2, 10)
    if name == "convbn":
        net = nn.HybridSequential()
        with net.name_scope():
            net.add(nn.Conv2D(4, 3, padding=1))
            net.add(nn.BatchNorm())
            net.add(nn.Activation("relu"))
            net.add(nn.MaxPool2D())
            net.add(nn.Flatten())
            net.add(nn.Dense(3))
        return net, (2, 3, 8, 8)
    raise AssertionError(name)


def build_model(name, classes, size, batch):
    """Return (net, input_shape) for a zoo or custom model name."""
    if name in CUSTOM_MODELS:
        net, shape = _build_custom(name)
        if batch:
            shape = (batch, *tuple(shape[1:]))
        return net, shape
    try:
        net = gluon.model_zoo.vision.get_model(name, classes=classes)
    except ValueError:
        raise UsageError(f"unknown model {name!r}: not a gluon.model_zoo.vision model nor one of "
                         f"{', '.join(CUSTOM_MODELS)} (tested zoo models: {', '.join(ZOO_DEFAULT_SIZE)})") from None
    return net, (batch or 1, 3, size, size)


def default_size(name):
    return ZOO_DEFAULT_SIZE.get(name, 224)


def _symbol_of(net):
    """Symbolic graph of a (Hybrid)Block with a single input named 'data'."""
    out = net(mx.sym.var("data"))
    if isinstance(out, (list, tuple)):
        out = mx.sym.Group(list(out))
    return out


def _export_key_map(net):
    """structural key -> 'arg:<name>' / 'aux:<name>' as written by export."""
    sym = _symbol_of(net)
    args = set(sym.list_arguments())
    aux = set(sym.list_auxiliary_states())
    result = {}
    for key, param in net._collect_params_with_prefix().items():
        if param.name in args:
            result[key] = "arg:" + param.name
        elif param.name in aux:
            result[key] = "aux:" + param.name
        else:
            result[key] = None  # parameter not used by the graph
    return result


def collect_keys_checked(net):
    """(key, Parameter) pairs in _collect_params_with_prefix order.

    Also saves the parameters with ``save_parameters`` and verifies that
    ``mx.nd.load`` returns the same keys, in the same order, with the same
    shapes.  A differing order is reported on stderr (the collect order is
    the structural order and is what we return); differing sets are an error.
    """
    collected = list(net._collect_params_with_prefix().items())
    fd, tmp = tempfile.mkstemp(suffix=".params")
    os.close(fd)
    try:
        net.save_parameters(tmp)
        loaded = mx.nd.load(tmp)
    finally:
        os.unlink(tmp)
    file_keys = list(loaded.keys())
    coll_keys = [k for k, _ in collected]
    if set(file_keys) != set(coll_keys):
        only_file, only_collected = sorted(set(file_keys) - set(coll_keys)), sorted(set(coll_keys) - set(file_keys))
        raise RuntimeError("save_parameters keys differ from _collect_params_with_prefix: "
                           f"only in file {only_file}, only collected {only_collected}")
    if file_keys != coll_keys:
        _log("warning: mx.nd.load key order differs from _collect_params_with_prefix "
             "order; reporting the collect (structural) order")
    for key, param in collected:
        if tuple(loaded[key].shape) != tuple(param.shape):
            raise RuntimeError(f"shape mismatch for {key}: file {loaded[key].shape}, parameter {param.shape}")
    return collected


# ----------------------------------------------------------------------------
# deterministic initialisation
# ----------------------------------------------------------------------------

INIT_DESCRIPTION = {
    "weights": "mx.init.Xavier(rnd_type='gaussian', factor_type='in', magnitude=2) "
               "(He-normal) after mx.random.seed(seed) and np.random.seed(seed); layers "
               "that set their own weight_initializer (e.g. vgg) keep it",
    "bias": "numpy RandomState(seed+1).normal(0, 0.1)",
    "gamma": "uniform(0.5, 1.5) (also for BatchNorm(scale=False), whose op has fix_gamma=True "
             "and must ignore it)",
    "beta": "normal(0, 0.2)",
    "running_mean/running_var": "calibrated per BatchNorm node in graph order on the input "
                                "batch: running_mean = channel mean + normal(0, 0.1)*channel std, "
                                "running_var = max(channel var, 0.01) * uniform(0.5, 2.0); "
                                "keeps activations O(1) while the statistics are non-trivial",
    "input": "numpy RandomState(seed).standard_normal(shape).astype(float32)",
}


def randomize_non_weights(net, seed):
    """Give biases and BatchNorm gamma/beta non-trivial random values."""
    rng = np.random.RandomState(seed + 1)
    for key, param in net._collect_params_with_prefix().items():
        shape = param.shape
        if key.endswith("bias"):
            val = rng.normal(0.0, 0.1, shape)
        elif key.endswith("gamma"):
            val = rng.uniform(0.5, 1.5, shape)
        elif key.endswith("beta"):
            val = rng.normal(0.0, 0.2, shape)
        else:
            continue
        param.set_data(mx.nd.array(val, dtype=param.dtype))


def calibrate_batchnorm(net, x, seed):
    """Set every BatchNorm's running statistics from the data it actually sees.

    BatchNorm nodes are visited in graph (topological) order; for each, the
    graph up to its data input is run with the current parameters and the
    per-channel mean/variance of that input (over all axes except the BN
    axis) are perturbed and stored as running_mean/running_var.  Returns the
    number of BatchNorm nodes calibrated.
    """
    rng = np.random.RandomState(seed + 2)
    sym = _symbol_of(net)
    graph = json.loads(sym.tojson())
    nodes = graph["nodes"]
    internals = sym.get_internals()
    # get_internals lists the *visible* outputs of every node in node order
    # (BatchNorm has 3 outputs but only 1 visible), so map them by name.
    entry_names = internals.list_outputs()
    positions, pos = {}, 0
    for nid, node in enumerate(nodes):
        name = node["name"]
        while pos < len(entry_names) and (
                entry_names[pos] == name or entry_names[pos].startswith(name + "_output")):
            positions.setdefault(nid, []).append(pos)
            pos += 1
    if pos != len(entry_names):
        raise RuntimeError("cannot match get_internals outputs to graph nodes")
    params = {p.name: p for p in net.collect_params().values()}
    count = 0
    for node in nodes:
        if node["op"] != "BatchNorm":
            continue
        src, idx = node["inputs"][0][0], node["inputs"][0][1]
        if idx >= len(positions.get(src, ())):
            raise RuntimeError("cannot locate the data input of {}".format(node["name"]))
        entry = internals[positions[src][idx]]
        args = {n: (x if n == "data" else params[n].data()) for n in entry.list_arguments()}
        aux = {n: params[n].data() for n in entry.list_auxiliary_states()}
        exe = entry.bind(mx.cpu(), args=args, aux_states=aux, grad_req="null")
        y = exe.forward(is_train=False)[0].asnumpy().astype(np.float64)
        axis = int(node.get("attrs", {}).get("axis", "1")) % y.ndim
        red = tuple(a for a in range(y.ndim) if a != axis)
        mean, var = y.mean(axis=red), y.var(axis=red)
        mean_p = params[nodes[node["inputs"][3][0]]["name"]]
        var_p = params[nodes[node["inputs"][4][0]]["name"]]
        mean_p.set_data(mx.nd.array(mean + rng.normal(0.0, 0.1, mean.shape) * np.sqrt(var)))
        var_p.set_data(mx.nd.array(np.maximum(var, 0.01) * rng.uniform(0.5, 2.0, var.shape)))
        count += 1
    return count


def _init_net(net, seed):
    mx.random.seed(seed)
    np.random.seed(seed)
    net.initialize(mx.init.Xavier(rnd_type="gaussian", factor_type="in", magnitude=2),
                   ctx=mx.cpu())


# ----------------------------------------------------------------------------
# commands
# ----------------------------------------------------------------------------

def cmd_keys(args):
    size = args.size or 224
    net, shape = build_model(args.model, args.classes, size, None)
    _init_net(net, 0)
    net(mx.nd.zeros(shape))
    collected = collect_keys_checked(net)
    if args.with_names:
        names = _export_key_map(net)
        rows = [[k, list(p.shape), _dtype_name(p.dtype), names[k]] for k, p in collected]
    else:
        rows = [[k, list(p.shape)] for k, p in collected]
    sys.stdout.write(_dumps(rows) + "\n")
    return 0


def _params_summary(path):
    """[[key, shape, dtype], ...] in file order for a legacy .params file."""
    loaded, _ = _load_any(path)
    items = loaded.items() if isinstance(loaded, dict) else \
        ((f"arr_{i}", v) for i, v in enumerate(loaded))
    return [[k, list(v.shape), _dtype_name(v.dtype)] for k, v in items]


def cmd_export(args):
    _check_version()
    name = args.model
    size = args.size or default_size(name)
    prefix = args.prefix or name
    _ensure_dir(args.outdir)
    base = os.path.join(args.outdir, prefix)
    timings = {}

    t0 = time.time()
    net, shape = build_model(name, args.classes, size, args.batch)
    _init_net(net, args.seed)
    net.hybridize()
    x = np.random.RandomState(args.seed).standard_normal(shape).astype(np.float32)
    xin = mx.nd.array(x, dtype="float32")
    net(xin).wait_to_read()  # builds the cached graph and finishes deferred init
    randomize_non_weights(net, args.seed)
    n_bn = calibrate_batchnorm(net, xin, args.seed)
    timings["build_init_s"] = round(time.time() - t0, 3)

    t0 = time.time()
    out = net(xin)  # not under autograd.record(): inference mode
    if isinstance(out, (list, tuple)):
        raise RuntimeError(f"model {name} has several outputs; not supported by export")
    y = out.asnumpy()
    timings["forward_s"] = round(time.time() - t0, 3)
    if not np.all(np.isfinite(y)):
        raise RuntimeError(f"non-finite output for {name}")

    t0 = time.time()
    net.export(base)
    net.save_parameters(base + ".params")
    np.save(os.path.join(args.outdir, "input.npy"), x)
    np.save(os.path.join(args.outdir, "output.npy"), y)
    timings["write_s"] = round(time.time() - t0, 3)

    # self-check: re-import the exported pair with real MXNet
    t0 = time.time()
    sym_file = base + "-symbol.json"
    par_file = base + "-0000.params"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        imported = gluon.SymbolBlock.imports(sym_file, ["data"], par_file, ctx=mx.cpu())
    y2 = imported(xin).asnumpy()
    timings["selfcheck_s"] = round(time.time() - t0, 3)
    diff = float(np.max(np.abs(y2 - y))) if y.size else 0.0
    if diff > 1e-4 * max(1.0, float(np.max(np.abs(y)))):
        raise RuntimeError(f"self-check failed: imported export differs by {diff:g}")

    with open(sym_file) as f:
        graph = json.load(f)
    ops = sorted({n["op"] for n in graph["nodes"]})
    key_map = _export_key_map_from_names(net)
    files = [prefix + "-symbol.json", prefix + "-0000.params", prefix + ".params",
             "input.npy", "output.npy"]
    info = {
        "mxnet_version": mx.__version__,
        "numpy_version": np.__version__,
        "python_version": platform.python_version(),
        "model": name,
        "classes": args.classes if name not in CUSTOM_MODELS else None,
        "size": size if name not in CUSTOM_MODELS else None,
        "batch": shape[0],
        "seed": args.seed,
        "input_name": "data",
        "input_shape": list(shape),
        "output_shape": list(y.shape),
        "output_stats": {"mean": float(y.mean()), "std": float(y.std()),
                         "min": float(y.min()), "max": float(y.max())},
        "init": INIT_DESCRIPTION,
        "batchnorm_nodes_calibrated": n_bn,
        "mode": "hybridized, inference (no autograd.record): Dropout is identity, "
                "BatchNorm uses running statistics",
        "files": {f: os.path.getsize(os.path.join(args.outdir, f)) for f in files},
        "symbol_ops": ops,
        "exported_keys": _params_summary(par_file),
        "saved_keys": _params_summary(base + ".params"),
        "structural_to_export": key_map,
        "selfcheck_max_abs_diff": diff,
        "command": (f"oracle.py export {name} OUTDIR"
                    + ("" if name in CUSTOM_MODELS else f" --classes {args.classes:d} --size {size:d}")
                    + f" --batch {shape[0]:d} --seed {args.seed:d}"
                    + (f" --prefix {prefix}" if prefix != name else "")),
    }
    if name in ZOO_SIZE_NOTES:
        info["default_size_note"] = f"default size {default_size(name):d}: {ZOO_SIZE_NOTES[name]}"
    _write_json(os.path.join(args.outdir, "info.json"), info)
    _log("exported {} (input {}) to {}: {}; timings {}".format(name, "x".join(map(str, shape)), args.outdir,
            ", ".join(f"{f} {s:d} B" for f, s in info["files"].items()),
            ", ".join("{} {:.3f}".format(*kv) for kv in timings.items())))
    return 0


def _export_key_map_from_names(net):
    """[[structural_key, export_key], ...] from the hybridized block's params."""
    mapping = _export_key_map(net)
    return [[k, v] for k, v in mapping.items()]


def _read_inputs(path, input_names):
    if path.endswith(".npz"):
        with np.load(path) as z:
            missing = [n for n in input_names if n not in z.files]
            if missing:
                raise UsageError(f"{path} has no arrays named {missing} (has {z.files})")
            return [z[n] for n in input_names]
    if len(input_names) != 1:
        raise UsageError("several --input-name given: INPUT must be an .npz keyed by them")
    return [np.load(path)]


def cmd_run(args):
    _check_version()
    input_names = args.input_name or ["data"]
    arrays = _read_inputs(args.input, input_names)
    for path in (args.symbol_json, args.params):
        if not os.path.isfile(path):
            raise UsageError(f"no such file: {path}")
    with warnings.catch_warnings():
        # imports() warns that the untyped input var's dtype is unknown; harmless
        warnings.filterwarnings("ignore", message="Cannot decide type")
        net = gluon.SymbolBlock.imports(args.symbol_json, input_names, args.params,
                                        ctx=mx.cpu(), allow_missing=args.allow_missing,
                                        ignore_extra=args.ignore_extra)
    inputs = [mx.nd.array(a, dtype=a.dtype) for a in arrays]
    out = net(*inputs)  # inference mode
    outs = list(out) if isinstance(out, (list, tuple)) else [out]
    results = [o.asnumpy() for o in outs]
    if len(results) == 1 and not args.output.endswith(".npz"):
        np.save(args.output, results[0])
    elif args.output.endswith(".npz"):
        np.savez(args.output, **{f"out{i}": r for i, r in enumerate(results)})
    else:
        raise UsageError(f"graph has {len(results):d} outputs: OUTPUT must end in .npz")
    summary = {
        "inputs": [[n, list(a.shape), a.dtype.name] for n, a in zip(input_names, arrays)],
        "outputs": [[list(r.shape), r.dtype.name] for r in results],
        "params": sorted(net.collect_params().keys()),
    }
    sys.stdout.write(json.dumps(summary) + "\n")
    return 0


def _load_any(path):
    """mx.nd.load, retrying under np-shape semantics for V3 files.

    Returns (dict-or-list, np_shape_used).
    """
    if not os.path.isfile(path):
        raise UsageError(f"no such file: {path}")
    try:
        return mx.nd.load(path), False
    except mx.base.MXNetError as exc:
        if "np shape semantics" not in str(exc):
            raise
    with mx.util.np_shape(True):
        return mx.nd.load(path), True


def cmd_load_params(args):
    loaded, np_shape = _load_any(args.params)
    if isinstance(loaded, dict):
        items, kind = list(loaded.items()), "dict"
    else:
        items, kind = [(f"arr_{i}", v) for i, v in enumerate(loaded)], "list"
    out, rows = {}, []
    for key, arr in items:
        stype = arr.stype
        if stype != "default":
            arr = arr.tostype("default")
        dname = _dtype_name(arr.dtype)
        val = arr.asnumpy()
        if dname == "bfloat16":
            val = val.view(np.uint16)
        out[key] = val
        rows.append([key, list(arr.shape), dname, stype])
    np.savez(args.out_npz, **out)
    sys.stdout.write(json.dumps({"format": kind, "np_shape": np_shape, "arrays": rows}) + "\n")
    return 0


def cmd_save_params(args):
    if not os.path.isfile(args.npz_in):
        raise UsageError(f"no such file: {args.npz_in}")
    with np.load(args.npz_in) as z:
        items = [(k, z[k]) for k in z.files]

    bf16_keys = set(args.bfloat16 or ())
    unknown = bf16_keys - {k for k, _ in items}
    if unknown:
        raise UsageError(f"--bfloat16 keys not in {args.npz_in}: {sorted(unknown)}")

    def convert():
        res = []
        for key, val in items:
            if not args.np_shape and (val.ndim == 0 or val.size == 0):
                raise UsageError(f"array {key!r} has shape {val.shape}: the legacy (V2) format cannot store "
                                 "0-d or zero-size arrays; use --np-shape")
            if key in bf16_keys:
                if val.dtype != np.uint16:
                    raise UsageError(f"--bfloat16 array {key!r} must hold uint16 bit patterns, got {val.dtype}")
                as_f32 = (val.astype(np.uint32) << 16).view(np.float32)
                res.append((key, mx.nd.array(as_f32, dtype="float32").astype(_BF16)))
                continue
            if val.dtype.type not in _SAVEABLE:
                raise UsageError(f"array {key!r} has dtype {val.dtype}, which mx.nd.save cannot write "
                                 f"(supported: {', '.join(sorted(_TYPE_FLAG))}; bfloat16 via --bfloat16 KEY)")
            res.append((key, mx.nd.array(val, dtype=val.dtype)))
        return res

    if args.np_shape:
        with mx.util.np_shape(True):
            nds = convert()
            mx.nd.save(args.out_params, [v for _, v in nds] if args.list else dict(nds))
    else:
        nds = convert()
        mx.nd.save(args.out_params, [v for _, v in nds] if args.list else dict(nds))
    return 0


# --- dtypes -----------------------------------------------------------------

def _dtype_samples():
    """One small array per dtype mx.nd.save accepts in MXNet 1.9.1."""
    return [
        ("float32", np.array([[-1.5, 0.0, 2.25], [1e-3, 3.4e38, -7.0]], dtype=np.float32)),
        ("float64", np.array([[-1.5, 0.0, 2.25], [1e-300, 1.7e308, np.pi]], dtype=np.float64)),
        ("float16", np.array([[-1.5, 0.0, 2.25], [6.1e-5, 65504.0, -0.333]], dtype=np.float16)),
        ("uint8", np.array([[0, 1, 127], [128, 254, 255]], dtype=np.uint8)),
        ("int32", np.array([[-2147483648, -1, 0], [1, 65536, 2147483647]], dtype=np.int32)),
        ("int8", np.array([[-128, -1, 0], [1, 100, 127]], dtype=np.int8)),
        ("int64", np.array([[-(2 ** 62), -1, 0], [1, 2 ** 40 + 3, 2 ** 63 - 1]], dtype=np.int64)),
        ("bool", np.array([[True, False, True], [False, False, True]], dtype=np.bool_)),
    ]


def cmd_dtypes(args):
    _check_version()
    out = args.outdir
    _ensure_dir(out)
    manifest = {"mxnet_version": mx.__version__, "files": {}}

    def record(stem, desc, arrays, kind="dict", np_shape=False, npz_arrays=None):
        params = os.path.join(out, stem + ".params")
        npz = os.path.join(out, stem + ".npz")
        np.savez(npz, **(npz_arrays if npz_arrays is not None else dict(arrays)))
        with open(params, "rb") as f:
            head = f.read(28)  # u64 list magic, u64 reserved, u64 count, u32 record magic
        magic = "0x{:08x}".format(int.from_bytes(head[24:28], "little")) if arrays else None
        manifest["files"][stem + ".params"] = {
            "description": desc,
            "container": kind,
            "np_shape": np_shape,
            "first_record_magic": magic,
            "size": os.path.getsize(params),
            "arrays": [[k, list(v.shape), _dtype_name(v.dtype)] for k, v in arrays],
            "npz": stem + ".npz",
        }

    samples = _dtype_samples()
    for dname, val in samples:
        stem = "dtype_" + dname
        mx.nd.save(os.path.join(out, stem + ".params"), {dname: mx.nd.array(val, dtype=val.dtype)})
        record(stem, f"one {dname} array (type_flag {_TYPE_FLAG[dname]:d})", [(dname, val)])

    # bfloat16 (type flag 12): created by casting on CPU; npz holds the raw uint16 bits.
    src = np.array([[-1.5, 0.0, 2.25], [1.0, 3.0e38, -7.0]], dtype=np.float32)
    nd_bf = mx.nd.array(src).astype(_BF16)
    mx.nd.save(os.path.join(out, "dtype_bfloat16.params"), {"bfloat16": nd_bf})
    bits = nd_bf.asnumpy().view(np.uint16)
    record("dtype_bfloat16", "one bfloat16 array (type_flag 12); the .npz stores its raw "
           "uint16 bit patterns under the same key", [("bfloat16", nd_bf.asnumpy())],
           npz_arrays={"bfloat16": bits})

    # all dtypes in one dict file, in this order
    mx.nd.save(os.path.join(out, "all_dtypes.params"),
               {d: mx.nd.array(v, dtype=v.dtype) for d, v in samples})
    record("all_dtypes", "all eight numpy-representable dtypes in one dict file", samples)

    # unnamed list container (num_names == 0)
    lst = [np.arange(6, dtype=np.float32).reshape(2, 3), np.array([7, 8], dtype=np.int64)]
    mx.nd.save(os.path.join(out, "list_nonames.params"), [mx.nd.array(v, dtype=v.dtype) for v in lst])
    record("list_nonames", "mx.nd.save of a list: two arrays, empty names list; npz keys arr_0, arr_1",
           [(f"arr_{i}", v) for i, v in enumerate(lst)], kind="list")

    # single NDArray (saved as a one-element list)
    single = np.array([[1.0, 2.0]], dtype=np.float32)
    mx.nd.save(os.path.join(out, "single_array.params"), mx.nd.array(single))
    record("single_array", "mx.nd.save of a bare NDArray (one-element list, no names)",
           [("arr_0", single)], kind="list")

    # empty containers
    mx.nd.save(os.path.join(out, "empty_dict.params"), {})
    record("empty_dict", "mx.nd.save({}): 0 arrays, 0 names (32 bytes); identical to an "
           "empty list", [], kind="empty")

    # names that need care: prefixes, dots, spaces, non-ASCII utf-8
    named = [("arg:net0_dense0_weight", np.ones((2, 2), np.float32)),
             ("aux:net0_batchnorm0_running_mean", np.zeros((2,), np.float32)),
             ("features.0.weight", np.full((1, 1, 1, 1), 0.5, np.float32)),
             ("name with spaces", np.array([3.0], np.float32)),
             ("\u00fcn\u00efc\u00f8d\u00e9_\u4e2d", np.array([4.0], np.float32))]
    mx.nd.save(os.path.join(out, "names.params"), {k: mx.nd.array(v) for k, v in named})
    record("names", "keys with arg:/aux: prefixes, dots, spaces and non-ASCII UTF-8", named)

    # np-shape semantics: NDArray V3 records, incl. a 0-d scalar and a zero-size array
    v3 = [("matrix", np.arange(6, dtype=np.float32).reshape(2, 3)),
          ("scalar", np.array(3.5, dtype=np.float32)),
          ("empty_rows", np.zeros((0, 3), dtype=np.float32)),
          ("vector_i64", np.array([1, -2, 3], dtype=np.int64))]
    with mx.util.np_shape(True):
        mx.nd.save(os.path.join(out, "np_shape_v3.params"),
                   {k: (mx.nd.zeros(v.shape, dtype=v.dtype) if v.size == 0
                        else mx.nd.array(v, dtype=v.dtype)) for k, v in v3})
    record("np_shape_v3", "saved under mx.util.np_shape(True): V3 magic 0xF993FACA, 0-d scalar "
           "(ndim 0) and zero-size (0, 3) array; legacy-mode mx.nd.load refuses this file",
           v3, np_shape=True)

    # sparse storage types (row_sparse, csr); npz holds the dense equivalents
    rs = mx.nd.sparse.row_sparse_array(
        (np.array([[1, 2], [3, 4]], dtype=np.float32), np.array([0, 2], dtype=np.int64)), shape=(4, 2))
    csr = mx.nd.sparse.csr_matrix(
        (np.array([1, 2, 3], dtype=np.float32), np.array([0, 2, 1], dtype=np.int64),
         np.array([0, 2, 3], dtype=np.int64)), shape=(2, 3))
    mx.nd.save(os.path.join(out, "sparse.params"), {"row_sparse": rs, "csr": csr})
    record("sparse", "row_sparse (stype 1) and csr (stype 2) arrays; the .npz holds their "
           "dense equivalents", [("row_sparse", rs.asnumpy()), ("csr", csr.asnumpy())])

    _write_json(os.path.join(out, "manifest.json"), manifest)
    _log(f"wrote {len(manifest['files']):d} .params files to {out}")
    return 0


_TYPE_FLAG = {"float32": 0, "float64": 1, "float16": 2, "uint8": 3, "int32": 4,
              "int8": 5, "int64": 6, "bool": 7}
_SAVEABLE = {np.dtype(name).type for name in _TYPE_FLAG}
_BF16 = np.dtype([("bfloat16", np.uint16)])  # MXNet's numpy spelling of bfloat16


# ----------------------------------------------------------------------------
# CLI
# ----------------------------------------------------------------------------

def _size_help():
    return "; ".join(f"{k}={v:d}" for k, v in ZOO_DEFAULT_SIZE.items())


def make_parser():
    p = argparse.ArgumentParser(
        prog="oracle.py",
        description="Real-MXNet oracle for modelsurgeon tests (run with the MXNet venv python).",
        epilog=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    k = sub.add_parser("keys", help="print [structural_key, shape] in save_parameters order")
    k.add_argument("model", metavar="MODEL")
    k.add_argument("--classes", type=int, default=1000)
    k.add_argument("--size", type=int, default=None, help="input size (default 224)")
    k.add_argument("--with-names", action="store_true",
                   help="print [key, shape, dtype, export_key] rows")
    k.set_defaults(func=cmd_keys)

    e = sub.add_parser("export", help="export a seeded model with input/output",
                       description="Default --size per model: " + _size_help() +
                       "; 224 for other zoo models.")
    e.add_argument("model", metavar="MODEL")
    e.add_argument("outdir", metavar="OUTDIR")
    e.add_argument("--classes", type=int, default=1000)
    e.add_argument("--size", type=int, default=None)
    e.add_argument("--batch", type=int, default=None,
                   help="batch size (default 1; custom models: their own default)")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--prefix", default=None, help="file name stem (default MODEL)")
    e.set_defaults(func=cmd_export)

    r = sub.add_parser("run", help="SymbolBlock.imports a symbol/params pair and run it")
    r.add_argument("symbol_json", metavar="SYMBOL_JSON")
    r.add_argument("params", metavar="PARAMS")
    r.add_argument("input", metavar="INPUT", help=".npy (or .npz keyed by input name)")
    r.add_argument("output", metavar="OUTPUT", help=".npy (.npz for several outputs)")
    r.add_argument("--input-name", action="append", default=None,
                   help="graph input name (repeatable; default: data)")
    r.add_argument("--allow-missing", action="store_true")
    r.add_argument("--ignore-extra", action="store_true")
    r.set_defaults(func=cmd_run)

    s = sub.add_parser("save-params", help="npz -> MXNet legacy .params (mx.nd.save)")
    s.add_argument("out_params", metavar="OUT_PARAMS")
    s.add_argument("npz_in", metavar="NPZ_IN")
    s.add_argument("--list", action="store_true", help="save an unnamed list")
    s.add_argument("--np-shape", action="store_true", help="write V3 (np-shape) records")
    s.add_argument("--bfloat16", action="append", metavar="KEY",
                   help="store uint16 array KEY (bit patterns) as bfloat16 (repeatable)")
    s.set_defaults(func=cmd_save_params)

    load = sub.add_parser("load-params", help="MXNet .params -> npz (mx.nd.load)")
    load.add_argument("params", metavar="PARAMS")
    load.add_argument("out_npz", metavar="OUT_NPZ")
    load.set_defaults(func=cmd_load_params)

    d = sub.add_parser("dtypes", help="write dtype/format coverage .params + .npz files")
    d.add_argument("outdir", metavar="OUTDIR")
    d.set_defaults(func=cmd_dtypes)
    return p


def main(argv=None):
    parser = make_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except UsageError as exc:
        parser.error(str(exc))
    except (mx.base.MXNetError, RuntimeError, ValueError, AssertionError, OSError) as exc:
        _log(f"{args.command}: error: {type(exc).__name__}: {str(exc).strip()}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
