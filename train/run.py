"""Generic training entry point: one config file in, a resumable run out.

  python train/run.py --config train/configs/<name>.py --workdir DIR [--set key=value ...]

The config file defines ``get_config()`` and the experiment builder (``build_experiment`` in
the same file, or the config key ``"experiment": "package.module:function"``). ``--set``
overrides config keys (dotted for nested ones: ``--set optimizer.learning_rate=3e-4``), with
the value converted to the type of the value it replaces. Re-running the same command on the
same ``--workdir`` resumes from the newest complete checkpoint (with other settings it is
refused, except for a longer ``num_epochs``, the logging / checkpoint / evaluation intervals,
``keep_checkpoints`` and ``progress_bar``, unless ``--allow-config-change``). ``--distributed`` calls
``jax.distributed.initialize()`` first (multi-host; run the same command on every host).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import pathlib
import sys

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))  # configs may import `train.*`; sketchjax need not be installed


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="path of a config file with get_config()")
    parser.add_argument("--workdir", required=True, help="output directory (config, metrics.jsonl, checkpoints)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value (repeatable; dotted keys for nested values)")
    parser.add_argument("--allow-config-change", action="store_true",
                        help="resume a workdir whose checkpoint was trained with other settings (refused "
                             "otherwise, except for a longer num_epochs, keep_checkpoints, progress_bar and the "
                             "logging/checkpoint/evaluation intervals)")
    parser.add_argument("--distributed", action="store_true", help="call jax.distributed.initialize() first")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    # The loop's progress at INFO; other libraries' (orbax's per-save chatter) at WARNING.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s", datefmt="%H:%M:%S", stream=sys.stdout)
    logging.getLogger("sketchjax").setLevel(logging.INFO)

    import jax

    if args.distributed:
        jax.distributed.initialize()

    from sketchjax.training import apply_overrides, load_config, resolve_object, train_and_evaluate

    try:
        config, module = load_config(args.config)  # a mistyped path was a FileNotFoundError traceback
        config = apply_overrides(config, args.set)
    except (KeyError, ValueError, OSError) as e:  # --set: an unknown key, a value of the wrong type; a config
        # file without get_config()
        raise SystemExit(f"run.py: error: {e.args[0] if isinstance(e, KeyError) and e.args else e}") from None
    builder = getattr(module, "build_experiment", None)
    spec = config.get("experiment") if isinstance(config, dict) else getattr(config, "experiment", None)
    if spec:
        try:  # a mistyped experiment was a traceback naming no setting
            builder = resolve_object(spec)
        except ValueError as e:  # a malformed spec, a missing module or attribute (errors inside it keep their traceback)
            raise SystemExit(f"run.py: error: config 'experiment' {spec!r}: {e}") from None
    if builder is None:
        raise SystemExit(f"{args.config}: define build_experiment(config) or set config 'experiment' to 'module:function'")

    workdir = pathlib.Path(args.workdir).absolute()
    if jax.process_index() == 0:
        print(f"config      {pathlib.Path(args.config).absolute()}" + (f" with {' '.join(args.set)}" if args.set else ""))
        print(f"devices     {jax.device_count()} x {jax.devices()[0].platform} over {jax.process_count()} process(es)")
        print(f"workdir     {workdir}")
        print(f"  metrics   {workdir / 'metrics.jsonl'}")
        print(f"  ckpts     {workdir / 'checkpoints'}  (re-run the same command to resume)")
        sys.stdout.flush()

    from sketchjax.training import (IncompatibleCheckpointError, ResumeRefusedError, TrainingDivergedError,
                                    WorkdirInUseError)

    try:
        result = train_and_evaluate(config, workdir, builder, allow_config_change=args.allow_config_change)
    except (WorkdirInUseError, ResumeRefusedError, IncompatibleCheckpointError, TrainingDivergedError,
            NotADirectoryError, PermissionError) as e:  # the run's own refusals: the message says it all
        print(f"run.py: error: {e}", file=sys.stderr)
        return 1
    except (ValueError, KeyError) as e:
        # a setting or an input the library refused, by name (an optimiser setting, a corrupt
        # sketch file): one line, as the eval programs print it; checkpoints already written stay
        if os.environ.get("SKETCHJAX_TRACEBACK"):
            raise
        message = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"run.py: error: {message} (SKETCHJAX_TRACEBACK=1 shows where it was raised)", file=sys.stderr)
        return 2

    if jax.process_index() == 0:
        if result.resumed_from is not None:
            print(f"resumed from step {result.resumed_from}")
        print("final train " + json.dumps({k: round(v, 6) for k, v in result.train_metrics.items()}))
        if result.eval_metrics:
            print("final eval  " + json.dumps({k: round(v, 6) for k, v in result.eval_metrics.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
