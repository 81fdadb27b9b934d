"""Training configs: ``python train/run.py --config train/configs/<name>.py --workdir DIR``.

Each file defines ``get_config()`` (a plain dict, or a dataclass) and either
``build_experiment(config) -> sketchjax.training.Experiment`` or a config key
``"experiment": "package.module:build_experiment"``. Its docstring states the command, the
expected runtime and the expected metric, measured.
"""
