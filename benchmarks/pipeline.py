"""Throughput of the data pipeline (:mod:`sketchjax.data`): build, random-access read, batching.

Target (the issue): load 1M sketches through the pipeline faster than training consumes them.

Only ~8,600 real QuickDraw sketches exist here, so the benchmark first writes a **synthetic
1M-sketch corpus**: every simplified ndjson file (344 categories × 25 real sketches) is
repeated, line by line, into a temporary folder until it holds ``--n / 344`` sketches, each
copy with a new unique ``key_id`` (drawings, words and metadata are the real ones; only the
key differs).  Then:

1. **build** — ``QuickdrawStrokes.prepare`` (TFDS ``download_and_prepare`` → array_record,
   no TensorFlow) over the synthetic files: sketches/s, size on disk, peak RSS;
2. **read** — random batches of 256 indices from the train split through
   ``tfds.data_source`` (TFDS's generic decoder) and :class:`sketchjax.data.SketchSource`;
3. **batch** — :class:`sketchjax.data.SketchBatchIterator` (batch 256, T = 128, unit
   coordinates, background prefetch) with and without augmentation and rasters; the
   consumer does nothing, so this is the pipeline's own ceiling on this machine;
4. **one full epoch** of the augmented iterator over the whole train split (~900k sketches);
5. **training reference** — steps/s of a GACL-style BiLSTM encoder (hidden 256, 2 layers, a
   stand-in loss) on this CPU, fed (a) one fixed in-memory batch and (b) the augmented
   iterator: if (b) keeps up with (a), the pipeline is not the bottleneck.

Run from the repository root::

    python benchmarks/pipeline.py                 # 1M sketches (~10 min on 2 CPU cores)
    python benchmarks/pipeline.py --quick         # 50k sketches, short timings (~2 min)

Writes ``pipeline.json`` and ``pipeline.md`` to ``--out`` (default ``benchmarks/results/``;
with ``--quick`` ``out/benchmarks-quick/``, so a smoke test never replaces the published results).
The synthetic corpus and the TFDS files go to a temporary folder (``--workdir``) that is
deleted afterwards (``--keep`` keeps it).
"""
from __future__ import annotations

import argparse
import glob
import json
import pathlib
import shutil
import signal
import statistics
import sys
import tempfile
import time

import numpy as np

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from benchmarks.common import (  # noqa: E402
    command_line,
    default_out,
    PhaseTimer,
    atomic_write_json,
    atomic_write_text,
    data_root,
    fmt_bytes,
    machine_info,
    proc_status_kib,
    reset_peak_rss,
    run_program,
)

BATCH = 256
MAX_LEN = 128
KEY_MARK = b'"key_id":"'


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def write_synthetic_corpus(n: int, out: pathlib.Path) -> dict:
    """``n`` sketches as per-category simplified ndjson under ``out``: the real lines repeated
    round-robin, each copy with a new unique 16-digit ``key_id``."""
    files = sorted(glob.glob(str(data_root() / "quickdraw" / "simplified" / "*.ndjson")))
    if not files:
        raise FileNotFoundError("no quickdraw/simplified/*.ndjson under the data root")
    out.mkdir(parents=True, exist_ok=True)
    per_cat, extra = divmod(n, len(files))
    next_key = 10**15
    written = total_bytes = real = 0
    for c, path in enumerate(files):
        with open(path, "rb") as f:
            lines = [line.rstrip(b"\n") for line in f if line.strip()]
        real += len(lines)
        want = per_cat + (1 if c < extra else 0)
        chunks = []
        for i in range(want):
            line = lines[i % len(lines)]
            start = line.index(KEY_MARK) + len(KEY_MARK)
            end = line.index(b'"', start)
            chunks.append(line[:start] + str(next_key).encode() + line[end:] + b"\n")
            next_key += 1
        data = b"".join(chunks)
        (out / pathlib.Path(path).name).write_bytes(data)
        written += want
        total_bytes += len(data)
    return {"sketches": written, "categories": len(files), "real_sketches": real, "bytes": total_bytes}


def _dir_bytes(path: pathlib.Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def bench_read(builder, seconds: float, rng: np.random.Generator) -> dict:
    """Random batches of 256 train indices through TFDS's data source and SketchSource."""
    import tensorflow_datasets as tfds  # noqa: PLC0415

    from sketchjax.data import open_split  # noqa: PLC0415

    tfds_source = tfds.data_source(
        f"quickdraw_strokes/{builder.builder_config.name}", split="train", data_dir=builder.data_dir_root
    )
    fast = open_split(builder, "train", fields=("points", "pen", "label"))
    cases = {
        "tfds.data_source (TFDS decoder, all fields)": (tfds_source, BATCH),
        "SketchSource (all fields)": (open_split(builder, "train"), BATCH),
        "SketchSource (points, pen, label)": (fast, BATCH),
        "SketchSource (points, pen, label), 8 batches per call": (fast, 8 * BATCH),
    }
    out = {}
    for name, (src, per_call) in cases.items():
        n = len(src)
        src.__getitems__(rng.integers(0, n, per_call).tolist())  # warm the file handles
        count, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            src.__getitems__(rng.integers(0, n, per_call).tolist())
            count += per_call
        dt = time.perf_counter() - t0
        out[name] = {"sketches": count, "seconds": dt, "sketches_per_s": count / dt, "per_call": per_call}
        _log(f"  read {name}: {count / dt:,.0f} sketches/s")
    return out


def bench_iterator(source, cases: dict, seconds: float) -> dict:
    """Sketches/s of each iterator setting, consuming batches as fast as they come."""
    from sketchjax.data import SketchBatchIterator  # noqa: PLC0415

    out = {}
    for name, kw in cases.items():
        it = SketchBatchIterator(source, batch_size=BATCH, max_len=MAX_LEN, seed=0, **kw)
        t0 = time.perf_counter()
        it.batch(0, 0)  # compiles the jitted step
        compile_s = time.perf_counter() - t0
        times, t_start = [], time.perf_counter()
        last = t_start
        for _ in it.epoch_batches(0, start=1):
            now = time.perf_counter()
            times.append(now - last)
            last = now
            if now - t_start > seconds:
                break
        dt = last - t_start
        count = len(times) * BATCH
        out[name] = {
            "settings": {k: repr(v) for k, v in kw.items()},
            "batches": len(times),
            "sketches_per_s": count / dt,
            "ms_per_batch_median": 1e3 * statistics.median(times),
            "first_batch_s_incl_compile": compile_s,
        }
        _log(f"  iterate {name}: {count / dt:,.0f} sketches/s ({1e3 * statistics.median(times):.1f} ms/batch, "
             f"first batch {compile_s:.1f} s)")
    return out


def bench_full_epoch(source, augment) -> dict:
    """One whole epoch of the augmented iterator (what a training run would read)."""
    from sketchjax.data import SketchBatchIterator  # noqa: PLC0415

    it = SketchBatchIterator(source, batch_size=BATCH, max_len=MAX_LEN, seed=1, augment=augment)
    it.batch(0, 0)
    t0 = time.perf_counter()
    rows = 0
    for b in it.epoch_batches(0):
        rows += len(b["mask"])
    dt = time.perf_counter() - t0
    _log(f"  full epoch: {rows:,} sketches in {dt:.1f} s = {rows / dt:,.0f} sketches/s")
    return {"sketches": rows, "steps": it.steps_per_epoch, "seconds": dt, "sketches_per_s": rows / dt}


def bench_training(source, augment, steps: int) -> dict:
    """BiLSTM train steps/s fed a fixed batch vs fed the augmented iterator."""
    import jax  # noqa: PLC0415
    import jax.numpy as jnp  # noqa: PLC0415

    from sketchjax.data import SketchBatchIterator  # noqa: PLC0415
    from sketchjax.models.bilstm import BiLSTMEncoder  # noqa: PLC0415
    from sketchjax.sketch import Sketch  # noqa: PLC0415

    model = BiLSTMEncoder(hidden=256, num_layers=2, head=(256,))
    it = SketchBatchIterator(source, batch_size=BATCH, max_len=MAX_LEN, seed=2, augment=augment)
    fixed = it.batch(0, 0)

    def as_sketch(b):
        return Sketch(xy=b["xy"], pen=b["pen"], valid=b["valid"])

    params = model.init(jax.random.key(0), as_sketch(fixed))

    @jax.jit
    def step(params, xy, pen, valid):
        def loss(p):  # a stand-in objective: the cost is the encoder's forward and backward
            feats = model.apply(p, Sketch(xy=xy, pen=pen, valid=valid))
            return jnp.mean(jnp.square(feats))

        value, grads = jax.value_and_grad(loss)(params)
        return jax.tree_util.tree_map(lambda w, g: w - 1e-3 * g, params, grads), value

    def run(batches) -> float:
        nonlocal params
        t0 = time.perf_counter()
        for b in batches:
            params, value = step(params, b["xy"], b["pen"], b["valid"])
        jax.block_until_ready(value)
        return time.perf_counter() - t0

    run([fixed])  # compile
    fixed_s = run([fixed] * steps)
    fed_s = run(b for _, b in zip(range(steps), it.epoch_batches(1)))
    res = {
        "model": "BiLSTMEncoder(hidden=256, num_layers=2, head=(256,)), batch 256, T = 128, stand-in loss, SGD",
        "steps": steps,
        "fixed_batch_sketches_per_s": steps * BATCH / fixed_s,
        "with_pipeline_sketches_per_s": steps * BATCH / fed_s,
    }
    res["slowdown_from_pipeline"] = fed_s / fixed_s
    _log(f"  training: fixed batch {res['fixed_batch_sketches_per_s']:,.0f} sketches/s, fed by the pipeline "
         f"{res['with_pipeline_sketches_per_s']:,.0f} sketches/s (x{res['slowdown_from_pipeline']:.2f} time)")
    return res


def markdown(res: dict) -> str:
    m, s, b = res["machine"], res["synthetic"], res["build"]
    lines = [
        f"### Data pipeline benchmark ({'quick' if res['quick'] else 'full'} run)",
        "",
        f"`{res['command']}` — {res['total_s']:.0f} s on {m['cpu_model']} ({m['cpu_affinity']} cores, "
        f"{fmt_bytes(m['memory_bytes'])} RAM); jax {m['versions'].get('jax')}, "
        f"tensorflow-datasets {res['tfds_version']}, TensorFlow imported: {res['tensorflow_imported']}; "
        f"{m['date']}, commit `{(m['git_commit'] or 'none')[:10]}`{' (dirty)' if m['git_dirty'] else ''}.",
        "",
        f"**Data: synthetic.** {s['sketches']:,} sketches = the {s['real_sketches']:,} real simplified QuickDraw "
        f"sketches ({s['categories']} categories) repeated with new `key_id`s ({fmt_bytes(s['bytes'])} of ndjson, "
        f"written in {s['seconds']:.0f} s). Split 90/5/5 by key_id hash.",
        "",
        "| stage | sketches | time | sketches/s | notes |",
        "|---|---|---|---|---|",
        f"| build (`QuickdrawStrokes.prepare`, array_record) | {b['sketches']:,} | {b['seconds']:.0f} s | "
        f"**{b['sketches_per_s']:,.0f}** | {fmt_bytes(b['dataset_bytes'])} on disk; peak RSS "
        f"{fmt_bytes(b['peak_rss_bytes'])}; splits {b['splits']} |",
    ]
    for name, r in res["read"].items():
        lines.append(f"| random read, {name} | {r['sketches']:,} | {r['seconds']:.1f} s | "
                     f"**{r['sketches_per_s']:,.0f}** | {r['per_call']:,} random indices per call |")
    for name, r in res["iterate"].items():
        ms = 1e3 * BATCH / r["sketches_per_s"]  # mean: with grouped reads the intervals alternate
        lines.append(f"| iterator: {name} | {r['batches'] * BATCH:,} | {r['batches'] * ms / 1e3:.1f} s"
                     f" | **{r['sketches_per_s']:,.0f}** | {ms:.1f} ms/batch (mean); first batch "
                     f"incl. compile {r['first_batch_s_incl_compile']:.1f} s |")
    e = res["full_epoch"]
    lines.append(f"| one full epoch, augmented iterator | {e['sketches']:,} | {e['seconds']:.0f} s | "
                 f"**{e['sketches_per_s']:,.0f}** | {e['steps']:,} batches of {BATCH} |")
    t = res["training"]
    lines += [
        "",
        f"**Training reference** ({t['model']}): {t['fixed_batch_sketches_per_s']:,.0f} sketches/s on one fixed "
        f"in-memory batch, {t['with_pipeline_sketches_per_s']:,.0f} sketches/s fed by the augmented iterator "
        f"({t['slowdown_from_pipeline']:.2f}× the time, {t['steps']} steps; the iterator's thread shares the "
        f"{m['cpu_affinity']} cores with training).",
        "",
        "Iterator settings: batch 256, T = 128 (longer sketches truncated), unit coordinates, background "
        "prefetch of 2 batches, the records of 8 batches read per call (`read_group`); 'augment' = scale 0.8–1.2, log-aspect ±0.3, jitter 1% of the longer side, "
        "stroke dropout 10%; rasters are Bresenham (`sketchjax.render.raster`, thick lines by "
        "`sketchjax.render.dilate`) on the CPU. The consumer of the iterator does nothing, so these are the "
        "pipeline's own ceilings on this machine. Times: wall clock (whether other jobs shared the machine is "
        "not recorded: say so where the figures are quoted).",
    ]
    return "\n".join(lines)


def _exit_on_sigterm(signum, frame):
    raise SystemExit(128 + signum)


def main(argv=None) -> int:
    from sketchjax.formats._io import argparse_output  # checks --out before any work

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=None, help="synthetic sketches (default 1,000,000; --quick 50,000)")
    p.add_argument("--quick", action="store_true", help="50k sketches and short timings")
    p.add_argument("--seconds", type=float, default=None, help="timing window per read/iterator case")
    p.add_argument("--train-steps", type=int, default=None)
    p.add_argument("--workdir", default=None, help="a new or empty folder for the synthetic corpus and TFDS files "
                                                   "(deleted afterwards unless --keep; default: a temporary folder)")
    p.add_argument("--keep", action="store_true", help="keep the workdir")
    p.add_argument("--out", type=argparse_output(directory=True), default=None,
                   help="results folder (default benchmarks/results; with --quick out/benchmarks-quick)")
    p.add_argument("--markdown-only", action="store_true", help="rewrite pipeline.md from pipeline.json and exit")
    args = p.parse_args(argv)
    if args.out is None:
        args.out = argparse_output(directory=True)(default_out(args.quick))
    if args.markdown_only:
        md = markdown(json.loads((pathlib.Path(args.out) / "pipeline.json").read_text()))
        atomic_write_text(pathlib.Path(args.out) / "pipeline.md", md + "\n")
        print(md)
        return 0
    # a value given is used as given (0 was replaced by the default while the command said 0)
    if args.n is not None and args.n < 4 * BATCH:  # every category file gets a line; the iterator cases
        p.error(f"--n must be >= {4 * BATCH} (a few batches of {BATCH} in the train split), got {args.n}")
    if args.seconds is not None and not 0 < args.seconds < float("inf"):
        p.error(f"--seconds must be a positive number, got {args.seconds}")
    if args.train_steps is not None and args.train_steps < 1:
        p.error(f"--train-steps must be >= 1, got {args.train_steps}")
    n = (50_000 if args.quick else 1_000_000) if args.n is None else args.n
    seconds = (4.0 if args.quick else 15.0) if args.seconds is None else args.seconds
    train_steps = (2 if args.quick else 3) if args.train_steps is None else args.train_steps  # ~12 s per step, 2 cores

    import jax  # noqa: PLC0415
    import tensorflow_datasets as tfds  # noqa: PLC0415

    from sketchjax.data import Augment, QuickdrawStrokes, open_split, quickdraw_config  # noqa: PLC0415

    tfds.disable_progress_bar()
    timer = PhaseTimer()
    command = command_line("benchmarks/pipeline.py", argv)
    res = {"command": command.strip(), "quick": args.quick, "machine": machine_info(("jax", "jaxlib", "numpy")),
           "backend": jax.default_backend(), "devices": [str(d) for d in jax.devices()],
           "tfds_version": tfds.__version__}
    # A killed run (SIGTERM: timeout, a job scheduler) still deletes its folder: the signal
    # becomes SystemExit, so the `finally` below runs.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    if args.workdir:  # deleted afterwards (unless --keep): never a folder holding anything else
        work = pathlib.Path(args.workdir)
        if work.exists() and (not work.is_dir() or any(work.iterdir())):
            p.error(f"--workdir {work} exists and is not an empty folder; give a new or empty one "
                    "(it is deleted afterwards unless --keep)")
        work.mkdir(parents=True, exist_ok=True)
    else:
        work = pathlib.Path(tempfile.mkdtemp(prefix="sketchjax-pipeline-"))
    try:
        _log(f"[1] synthetic corpus: {n:,} sketches -> {work / 'ndjson'}")
        with timer("synthetic"):
            t0 = time.perf_counter()
            res["synthetic"] = write_synthetic_corpus(n, work / "ndjson")
            res["synthetic"]["seconds"] = time.perf_counter() - t0

        _log("[2] build quickdraw_strokes (array_record)")
        config = quickdraw_config("simplified", category_dir=work / "ndjson")
        reset_peak_rss()
        with timer("build"):
            t0 = time.perf_counter()
            builder = QuickdrawStrokes.prepare(config, work / "tfds", manual_dir=work / "ndjson")
            build_s = time.perf_counter() - t0
        splits = {k: v.num_examples for k, v in builder.info.splits.items()}
        hwm = proc_status_kib("VmHWM")
        res["build"] = {"sketches": sum(splits.values()), "seconds": build_s,
                        "sketches_per_s": sum(splits.values()) / build_s, "splits": splits,
                        "dataset_bytes": _dir_bytes(pathlib.Path(builder.data_dir)),
                        "peak_rss_bytes": None if hwm is None else hwm * 1024}
        _log(f"  built {sum(splits.values()):,} in {build_s:.0f} s = {res['build']['sketches_per_s']:,.0f} sketches/s")

        _log("[3] random-access read")
        with timer("read"):
            res["read"] = bench_read(builder, seconds, np.random.default_rng(0))

        _log("[4] batching iterator")
        source = open_split(builder, "train", fields=("points", "pen", "label"))
        augment = Augment(scale=(0.8, 1.2), aspect=0.3, jitter=0.01, stroke_dropout=0.1)
        cases = {
            "plain": {},
            "augment": {"augment": augment},
            "augment + raster 64² (line 2 px)": {"augment": augment, "raster_size": 64, "line_width": 2},
            "augment + raster 28² (drawn at 112², line 7 px, area-downsampled)": {
                "augment": augment, "raster_size": 28, "render_size": 112, "line_width": 7},
            "augment + raster 28² (drawn at 256², line 16 px, area-downsampled)": {
                "augment": augment, "raster_size": 28, "render_size": 256, "line_width": 16},
        }
        with timer("iterate"):
            res["iterate"] = bench_iterator(source, cases, seconds)

        _log("[5] one full epoch, augmented")
        with timer("full epoch"):
            res["full_epoch"] = bench_full_epoch(source, augment)

        _log("[6] training reference")
        with timer("training"):
            res["training"] = bench_training(source, augment, train_steps)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    res["tensorflow_imported"] = "tensorflow" in sys.modules
    res["phases_s"] = timer.phases
    res["total_s"] = timer.total()
    out = pathlib.Path(args.out)
    atomic_write_json(out / "pipeline.json", res)
    md = markdown(res)
    atomic_write_text(out / "pipeline.md", md + "\n")
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(run_program(main, "benchmarks/pipeline.py"))
