"""Shared helpers for the benchmarks: real QuickDraw sample, padded packing, timing, memory, output.

Everything here is NumPy / standard library only (no JAX, no torch) so that a benchmark's
PyTorch subprocess can use it without importing JAX, and a training benchmark can reuse it.

Data: the QuickDraw *simplified* ndjson files under ``$SKETCHJAX_DATA/quickdraw/simplified``
(default ``<repo>/../shared/data``); read in place, never copied.
"""
from __future__ import annotations

import datetime
import glob
import json
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]


def _load_provenance():
    """``sketchjax/provenance.py`` loaded on its own (it needs only the standard library):
    importing the ``sketchjax`` package would import JAX, which the PyTorch worker must not."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("_sketchjax_provenance", REPO_ROOT / "sketchjax" / "provenance.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_PROVENANCE = _load_provenance()
command_line = _PROVENANCE.command_line  # the shell-quoted "python <script> <args>" a run records
#: the checkout when the benchmark started (programs import this module first): what ran
_GIT_AT_START = _PROVENANCE.git_state(str(REPO_ROOT))
#: the code at the start, uncommitted changes included: what a resumed journal must match
_CODE_AT_START = _PROVENANCE.code_state(str(REPO_ROOT))
DATA_ENV_VAR = "SKETCHJAX_DATA"
#: where a benchmark writes without --out: the committed results, or for a --quick smoke test a
#: scratch folder (so a smoke test never replaces the published figures)
RESULTS_DIR = REPO_ROOT / "benchmarks" / "results"
QUICK_RESULTS_DIR = REPO_ROOT / "out" / "benchmarks-quick"


def run_program(main: Callable[[], object], prog: str) -> int:
    """Runs an evaluation or benchmark program's ``main()``: the input errors it names (a missing run or file,
    a bad setting — ``ValueError``, ``OSError``, ``KeyError``) end it with one ``PROG: error: …``
    line and exit status 2, as the ``sketchjax`` command does (so do a training run's refusals: a
    workdir in use, a non-finite loss); any other exception keeps its
    traceback.  ``SKETCHJAX_TRACEBACK=1`` keeps the traceback of those too."""
    try:
        status = main()
    except Exception as e:
        if not isinstance(e, (ValueError, OSError, KeyError) + _training_refusals()):
            raise
        if os.environ.get("SKETCHJAX_TRACEBACK"):
            raise
        message = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"{prog}: error: {message} (SKETCHJAX_TRACEBACK=1 shows where it was raised)", file=sys.stderr)
        return 2
    # a benchmark's main returns its exit status; an evaluation's returns its results (status 0)
    return status if isinstance(status, int) and not isinstance(status, bool) else 0


def _training_refusals() -> tuple:
    """A training run's own refusals (a workdir in use, a diverged run) when a program started
    one (eval/iqa.py, eval/cleansing.py): looked up, not imported — a PyTorch-only benchmark
    worker must not load JAX for this."""
    training = sys.modules.get("sketchjax.training")
    return () if training is None else (training.WorkdirInUseError, training.TrainingDivergedError)


def default_out(quick: bool) -> str:
    return str(QUICK_RESULTS_DIR if quick else RESULTS_DIR)
QUICKDRAW_CANVAS = 256.0  # simplified QuickDraw coordinates lie in [0, 255]


# ----------------------------------------------------------------------------- data


def data_root() -> pathlib.Path:
    """``$SKETCHJAX_DATA`` if set, else ``<repo>/../shared/data``; raises if it does not exist."""
    env = os.environ.get(DATA_ENV_VAR)
    root = pathlib.Path(env) if env else REPO_ROOT.parent / "shared" / "data"
    if not root.is_dir():
        origin = f"${DATA_ENV_VAR}" if env else "the default <repo>/../shared/data"
        raise FileNotFoundError(f"sketch data directory {root} (from {origin}) does not exist; set ${DATA_ENV_VAR}")
    return root


@dataclass
class QuickDrawSample:
    """A seeded sample of real sketches: ``drawings[i]`` is a list of strokes ``[[xs], [ys]]``."""

    drawings: list
    words: list
    key_ids: list
    files: int  # category files available

    def __len__(self) -> int:
        return len(self.drawings)


def load_quickdraw_sample(n: int = 256, seed: int = 0, root: Optional[pathlib.Path] = None) -> QuickDrawSample:
    """``n`` sketches from distinct categories (when ``n`` <= #categories), one random line each.

    Deterministic for a given ``seed`` and file set: categories are drawn from the sorted file
    list, then one line per category; only the chosen lines are parsed (plain ``json``).
    """
    root = pathlib.Path(root) if root is not None else data_root()
    files = sorted(glob.glob(str(root / "quickdraw" / "simplified" / "*.ndjson")))
    if not files:
        raise FileNotFoundError(f"no *.ndjson under {root / 'quickdraw' / 'simplified'}")
    rng = np.random.default_rng(seed)
    if n <= len(files):
        cats = sorted(rng.choice(len(files), n, replace=False).tolist())
    else:  # more sketches than categories: several lines per category
        cats = sorted(rng.choice(len(files), n, replace=True).tolist())
    drawings, words, keys = [], [], []
    cache: dict = {}
    for c in cats:
        if c not in cache:
            with open(files[c], encoding="utf-8") as f:
                cache[c] = [line for line in f.read().splitlines() if line.strip()]
        lines = cache[c]
        line = lines[int(rng.integers(len(lines)))]
        rec = json.loads(line)
        drawings.append(rec["drawing"])
        words.append(rec.get("word", pathlib.Path(files[c]).stem))
        keys.append(str(rec.get("key_id", "")))
    return QuickDrawSample(drawings, words, keys, len(files))


@dataclass
class Packed:
    """Padded arrays (SPEC §1): ``xy float32[B,T,2]`` in canvas pixels, ``pen float32[B,T]``, ``valid bool[B,T]``."""

    xy: np.ndarray
    pen: np.ndarray
    valid: np.ndarray
    truncated: int  # sketches longer than T (cut to their first T points)
    single_point_strokes: int  # one-point strokes kept (pen = 0: they draw nothing)
    lengths: np.ndarray  # points per sketch before truncation


def pack_drawings(drawings, max_len: int = 128, canvas: int = 256) -> Packed:
    """Packs QuickDraw ``drawing`` lists into padded arrays scaled from 256 to ``canvas`` pixels.

    ``pen[t] = 1`` when point ``t`` and ``t+1`` belong to the same stroke; 0 on each stroke's
    last point and on the last kept point of a truncated sketch.
    """
    b = len(drawings)
    xy = np.zeros((b, max_len, 2), np.float32)
    pen = np.zeros((b, max_len), np.float32)
    valid = np.zeros((b, max_len), bool)
    scale = np.float32(canvas / QUICKDRAW_CANVAS)
    truncated = singles = 0
    lengths = np.zeros(b, np.int64)
    for i, drawing in enumerate(drawings):
        pts, pn = [], []
        for xs, ys in ((s[0], s[1]) for s in drawing):
            if len(xs) == 1:
                singles += 1
            pts.extend(zip(xs, ys))
            pn.extend([1.0] * (len(xs) - 1) + [0.0])
        lengths[i] = len(pts)
        if len(pts) > max_len:
            truncated += 1
            pts, pn = pts[:max_len], pn[:max_len]
        n = len(pts)
        xy[i, :n] = np.asarray(pts, np.float32) * scale
        pen[i, :n] = pn
        pen[i, n - 1] = 0.0
        valid[i, :n] = True
    return Packed(xy, pen, valid, truncated, singles, lengths)


def strokes_from_packed(xy: np.ndarray, pen: np.ndarray, valid: np.ndarray, min_points: int = 2) -> list:
    """Per sketch, the list of strokes as ``int32[n, 2]`` pixel coordinates (``floor`` of ``xy``).

    Rebuilt from the packed arrays so that peers draw exactly what the JAX renderers see
    (after scaling and truncation); strokes with fewer than ``min_points`` points are dropped
    (a one-point stroke draws nothing in the Bresenham raster).
    """
    out = []
    p = np.floor(xy).astype(np.int32)
    for i in range(xy.shape[0]):
        n = int(valid[i].sum())
        ends = np.flatnonzero(pen[i, :n] < 0.5)  # last point of each stroke
        strokes, start = [], 0
        for e in ends:
            if e + 1 - start >= min_points:
                strokes.append(np.ascontiguousarray(p[i, start : e + 1]))
            start = e + 1
        out.append(strokes)
    return out


# ----------------------------------------------------------------------------- timing


def timeit(fn: Callable[[], object], *, repeats: int = 7, warmup: int = 1, budget_s: Optional[float] = None,
           min_repeats: int = 3) -> dict:
    """Runs ``fn`` (which must block until its work is done) ``warmup`` times, then times it.

    With ``budget_s``, the number of timed repeats is cut (not below ``min_repeats``) so that
    the timed loop takes about ``budget_s`` judging from the last warm-up run.
    Returns seconds: ``median``, ``min``, ``max``, ``mean``, ``n``, ``times``.
    """
    last = None
    for _ in range(max(warmup, 0)):
        t0 = time.perf_counter()
        fn()
        last = time.perf_counter() - t0
    n = repeats
    if budget_s is not None and last is not None and last > 0:
        n = int(max(min_repeats, min(repeats, budget_s // last)))
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return _stats(times)


def _stats(times: list) -> dict:
    times = [round(t, 7) for t in times]  # 0.1 µs: keeps the JSON small
    return {
        "median": statistics.median(times),
        "min": min(times),
        "max": max(times),
        "mean": statistics.fmean(times),
        "n": len(times),
        "times": times,
    }


def run_block(fn: Callable[[], object], block_s: float, max_n: int = 50, warm: bool = True) -> list:
    """Back-to-back calls of ``fn`` for ``block_s`` seconds (at least one, at most ``max_n``).

    With ``warm`` an untimed call comes first: idle worker threads (XLA, OpenMP) take time to
    wake after another library ran.  Returns the call times in seconds.
    """
    if warm:
        fn()
    times, start = [], time.perf_counter()
    while len(times) < max_n:
        s = time.perf_counter()
        fn()
        times.append(time.perf_counter() - s)
        if time.perf_counter() - start >= block_s:
            break
    return times


def interleaved(fns: dict, *, cycles: int = 5, block_s: float = 0.6, max_per_block: int = 50,
                warm_below_s: float = 0.5) -> dict:
    """Times several implementations in alternating blocks: ``A A A, B B B, C C C, B B B, ...``.

    This machine's speed drifts (a shared VM), so timing A for a minute and then B compares
    different machine states.  Here each cycle runs one block (:func:`run_block`) of
    back-to-back calls per implementation (order rotated between cycles), ``block_s`` seconds
    long, and :func:`paired_ratio` compares the per-cycle block medians.  A block starts with an
    untimed call where a call takes less than ``warm_below_s``.

    ``fns`` maps names to blocking callables or to objects with ``run_block(block_s, max_n,
    warm)`` (e.g. a :class:`Worker` case in another process).  Returns ``{name: stats}`` in
    seconds (as :func:`timeit`, over all timed calls) plus ``block_medians``.
    """
    def block(n, block_s, max_n, warm):
        f = fns[n]
        if hasattr(f, "run_block"):
            return f.run_block(block_s, max_n, warm)
        return run_block(f, block_s, max_n, warm)

    names = list(fns)
    first = {n: block(n, 0.0, 1, False)[0] for n in names}  # warm-up, and the call time
    times: dict = {n: [] for n in names}
    blocks: dict = {n: [] for n in names}
    for c in range(cycles):
        k = c % len(names)
        for n in names[k:] + names[:k]:
            bt = block(n, block_s, max_per_block, first[n] < warm_below_s)
            times[n] += bt
            blocks[n].append(statistics.median(bt))
    return {n: {**_stats(times[n]), "block_medians": blocks[n]} for n in names}


class Worker:
    """A child process answering one JSON command per line (see ``benchmarks/render.py --worker``)."""

    def __init__(self, argv: list, env: Optional[dict] = None):
        import tempfile

        self.err = tempfile.TemporaryFile("w+")
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.err,
                                     env=env, text=True, bufsize=1)

    def call(self, **msg) -> dict:
        self.proc.stdin.write(json.dumps(msg) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            self.err.seek(0)
            tail = "\n".join(self.err.read().strip().splitlines()[-10:])
            raise RuntimeError(f"worker exited (code {self.proc.poll()}): {tail}")
        reply = json.loads(line)
        if "error" in reply:
            raise RuntimeError(reply["error"])
        return reply

    def case(self, name: str) -> "WorkerCase":
        return WorkerCase(self, name)

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
                self.proc.stdin.close()
                self.proc.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        self.err.close()


@dataclass
class WorkerCase:
    """A prepared case inside a :class:`Worker`, timed block by block by :func:`interleaved`."""

    worker: Worker
    name: str

    def run_block(self, block_s: float, max_n: int, warm: bool) -> list:
        return self.worker.call(cmd="block", name=self.name, block_s=block_s, max_n=max_n, warm=warm)["times"]


def serve_worker(prepare: Callable[[dict, dict], Optional[Callable[[], object]]]) -> int:
    """The child side of :class:`Worker`: JSON commands on stdin, one JSON reply per line on stdout.

    ``{"cmd": "setup", "name", **spec}`` calls ``prepare(spec, res)``, which returns a blocking
    callable (or None when the case is skipped; ``res`` says why) and fills ``res`` (sent
    back); ``{"cmd": "block", "name", "block_s", "max_n", "warm"}`` runs one timing block and
    returns its call times; ``{"cmd": "drop", "name"}`` frees a case; anything else ends the
    worker.  Each framework gets its own worker so that neither's threads, allocator or caches
    disturb the other's timings.
    """
    import gc

    cases = {}
    for line in sys.stdin:
        msg = json.loads(line)
        try:
            if msg["cmd"] == "setup":
                res: dict = {}
                cases[msg["name"]] = prepare(msg, res)
                reply = {"ok": cases[msg["name"]] is not None, **res}
            elif msg["cmd"] == "block":
                reply = {"times": run_block(cases[msg["name"]], msg["block_s"], msg["max_n"], msg["warm"])}
            elif msg["cmd"] == "drop":
                cases.pop(msg["name"], None)
                gc.collect()
                reply = {"ok": True}
            else:
                break
        except Exception as e:  # noqa: BLE001  reported to the parent, which skips the case
            reply = {"error": f"{type(e).__name__}: {e}"}
        print(json.dumps(reply), flush=True)
    return 0


def paired_ratio(a: dict, b: dict) -> float:
    """Median over cycles of ``block_median_a / block_median_b`` for two :func:`interleaved` results."""
    return statistics.median(x / y for x, y in zip(a["block_medians"], b["block_medians"]))


def noise_probe(repeats: int = 30) -> dict:
    """Milliseconds of a fixed single-threaded pure-Python workload: how steady this machine is now.

    Pure Python on purpose: a threaded library (BLAS) would also measure its contention with
    the idle threads of the libraries under test.
    """
    t = []
    for _ in range(repeats):
        s = time.perf_counter()
        acc = 0
        for i in range(200_000):
            acc += i * i
        t.append(1e3 * (time.perf_counter() - s))
    p10, p50, p90 = np.percentile(t, [10, 50, 90])
    return {"ms_min": min(t), "ms_p10": float(p10), "ms_median": float(p50), "ms_p90": float(p90), "ms_max": max(t)}


class PhaseTimer:
    """Wall-clock time per named phase of a script, for 'where does the time go'."""

    def __init__(self):
        self.t0 = time.perf_counter()
        self.phases: dict = {}

    def __call__(self, name: str):
        timer = self

        class _Ctx:
            def __enter__(self):
                self.s = time.perf_counter()

            def __exit__(self, *exc):
                timer.phases[name] = timer.phases.get(name, 0.0) + time.perf_counter() - self.s

        return _Ctx()

    def total(self) -> float:
        return time.perf_counter() - self.t0


# ----------------------------------------------------------------------------- memory


def proc_status_kib(field: str) -> Optional[int]:
    """A ``/proc/self/status`` field in KiB (``VmRSS``, ``VmHWM``), or None where unavailable."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def reset_peak_rss() -> bool:
    """Resets this process's ``VmHWM`` to its current RSS (Linux >= 4.0); False if not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def run_json_subprocess(argv: list, *, env: Optional[dict] = None, rss_limit_bytes: Optional[int] = None,
                        timeout_s: float = 600.0) -> dict:
    """Runs ``argv``; its last stdout line must be a JSON object, which is returned.

    Adds ``child_ru_maxrss_bytes`` (from ``os.wait4`` for this child alone) and ``wall_s``.
    With ``rss_limit_bytes`` the child's RSS is polled and the child killed past the limit
    (the result then says ``killed``), so that a mis-estimated case cannot exhaust the host.
    """
    import tempfile

    import psutil  # only needed by the orchestrating process

    t0 = time.perf_counter()
    # Files, not pipes: a chatty child cannot block on a full pipe while we poll it.
    with tempfile.TemporaryFile("w+") as fout, tempfile.TemporaryFile("w+") as ferr:
        p = subprocess.Popen(argv, stdout=fout, stderr=ferr, env=env, text=True)
        proc = psutil.Process(p.pid)
        killed, maxrss, status = None, None, None
        while True:
            # wait4 (not Popen.poll) so that the rusage of this child alone is kept.
            pid, status, usage = os.wait4(p.pid, os.WNOHANG)
            if pid == p.pid:
                maxrss = usage.ru_maxrss * 1024  # KiB on Linux
                break
            if rss_limit_bytes is not None:
                try:
                    rss = proc.memory_info().rss
                except psutil.Error:
                    rss = 0
                if rss > rss_limit_bytes and killed is None:
                    p.kill()
                    killed = f"RSS {rss / 2**30:.1f} GiB passed the {rss_limit_bytes / 2**30:.1f} GiB guard"
            if time.perf_counter() - t0 > timeout_s and killed is None:
                p.kill()
                killed = f"timeout after {timeout_s:.0f} s"
            time.sleep(0.05)
        p.returncode = os.waitstatus_to_exitcode(status)
        fout.seek(0)
        ferr.seek(0)
        out, err = fout.read(), ferr.read()
    wall = time.perf_counter() - t0
    if killed:
        return {"error": f"killed: {killed}", "wall_s": wall}
    lines = [line for line in out.splitlines() if line.strip()]
    if p.returncode != 0 or not lines:
        tail = "\n".join(err.strip().splitlines()[-15:])
        return {"error": f"exit code {p.returncode}: {tail}", "wall_s": wall}
    try:
        res = json.loads(lines[-1])
    except json.JSONDecodeError:
        return {"error": f"no JSON on the last stdout line: {lines[-1][:200]}", "wall_s": wall}
    res["wall_s"] = wall
    if maxrss is not None:
        res["child_ru_maxrss_bytes"] = maxrss
    return res


# ----------------------------------------------------------------------------- machine / output


def _version(module: str) -> Optional[str]:
    try:
        mod = __import__(module)
    except Exception:  # noqa: BLE001  missing or broken: report as absent
        return None
    return getattr(mod, "__version__", None)


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity; ``os.cpu_count()`` where there is none)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def machine_info(extra_modules=("jax", "jaxlib", "numpy", "torch", "cv2", "PIL")) -> dict:
    """CPU model, cores, memory, library versions, date and git commit (when there is one)."""
    cpu = None
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = None
    try:
        with open("/proc/meminfo") as f:
            mem = int(f.readline().split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    # one definition of "dirty" for evals and benchmarks; the commit is the one the run started
    # at, and a checkout changed while it ran counts as dirty (git_changed_during_run says so)
    commit, dirty = _GIT_AT_START
    changed = _PROVENANCE.git_state(str(REPO_ROOT)) != _GIT_AT_START
    return {
        "cpu_model": cpu,
        "cpu_count": os.cpu_count(),
        "cpu_affinity": usable_cpus() if hasattr(os, "sched_getaffinity") else None,
        "memory_bytes": mem,
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "versions": {m: _version(m) for m in extra_modules},
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "git_commit": commit,
        "git_dirty": None if dirty is None else bool(dirty or changed),
        "git_changed_during_run": changed,
    }


def atomic_write_text(path: os.PathLike, text: str) -> None:
    """Writes ``text`` to ``path`` atomically (:func:`sketchjax.formats._io.atomic_write`: a
    temporary file in the same folder, synced, then ``os.replace``)."""
    from sketchjax.formats._io import atomic_write

    with atomic_write(path) as f:
        f.write(text)


def atomic_write_json(path: os.PathLike, obj) -> None:
    """Strict JSON (NaN and infinities written as ``null``: Python's bare ``NaN`` is not JSON,
    and other readers refuse the file), written atomically."""
    text = json.dumps(_finite_or_none(obj), indent=2, sort_keys=False, default=_json_default, allow_nan=False)
    atomic_write_text(path, text + "\n")


class RowJournal:
    """The finished rows of a long evaluation, kept in ``<out>.partial.json`` as each finishes,
    so that a killed run resumes where it stopped.

    A re-run with the same ``settings`` (and the same code: the commit the program started at
    and, on a dirty checkout, the same uncommitted changes —
    :func:`sketchjax.provenance.code_state`) takes its finished rows from the journal and computes only the others; a journal of other
    settings is set aside (said, then replaced).  :meth:`done` removes it once the program has
    written its final JSON — until then an earlier ``out`` is left as it was.
    """

    def __init__(self, out: os.PathLike, settings: dict):
        self.path = pathlib.Path(str(out) + ".partial.json")
        self.settings = json.loads(json.dumps({**settings, "code": _CODE_AT_START}, default=_json_default))
        self._rows: dict[str, dict] = {}
        if self.path.exists():
            try:
                doc = json.loads(self.path.read_text())
            except (OSError, ValueError) as e:
                print(f"note: {self.path} is unreadable ({e}); starting over", file=sys.stderr)
                doc = None
            if isinstance(doc, dict) and doc.get("settings") == self.settings and isinstance(doc.get("rows"), dict):
                self._rows = doc["rows"]
                print(f"resuming: {len(self._rows)} finished row(s) from {self.path}", file=sys.stderr)
            elif doc is not None:
                print(f"note: {self.path} holds rows of other settings or code; starting over", file=sys.stderr)

    @staticmethod
    def _key(key) -> str:
        return json.dumps(key, default=_json_default)

    def get(self, key) -> Optional[dict]:
        """The finished row under ``key`` (any JSON-able value), or None."""
        return self._rows.get(self._key(key))

    def add(self, key, row: dict) -> None:
        """Keep ``row`` under ``key`` (the journal is rewritten atomically)."""
        self._rows[self._key(key)] = row
        atomic_write_json(self.path, {"settings": self.settings, "rows": self._rows})

    def __len__(self) -> int:
        return len(self._rows)

    def done(self) -> None:
        self.path.unlink(missing_ok=True)


def _finite_or_none(o):
    if isinstance(o, dict):
        return {k: _finite_or_none(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_finite_or_none(v) for v in o]
    if isinstance(o, np.ndarray):
        return _finite_or_none(o.tolist())
    if isinstance(o, (float, np.floating)):
        return float(o) if np.isfinite(o) else None
    return o


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, pathlib.Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def targets_line(targets: dict) -> str:
    """The markdown line of a benchmark's ``{target: {"met": bool, "detail": str}}``."""
    return "Targets: " + "; ".join(f"{k}: **{'met' if v['met'] else 'MISSED'}** ({v['detail']})"
                                   for k, v in targets.items()) + "."


def fmt_bytes(n: Optional[float]) -> str:
    """``1.23 GB`` style (decimal units, as the targets are stated)."""
    if n is None:
        return "–"
    for unit, div in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(n) >= div:
            return f"{n / div:.2f} {unit}" if unit == "GB" else f"{n / div:.0f} {unit}"
    return f"{n:.0f} B"
