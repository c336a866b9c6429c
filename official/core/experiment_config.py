"""The experiment schema: `ExperimentConfig(task, trainer, runtime)`."""

from __future__ import annotations

import dataclasses

from official.base.config import Config, ConfigError
from official.core.finetune_config import FinetuneConfig
from official.modeling.optimization.optimization_config import OptimizationConfig

# What a run does with an experiment (`official.train --mode`).
MODES = ("train", "eval", "train_and_eval", "continuous_eval")


@dataclasses.dataclass
class DataConfig(Config):
    """Where one split's examples come from and how they are batched.

    Set exactly one of `input_path` (a TFRecord glob pattern, or several
    separated by commas) and `tfds_name` (a TensorFlow Datasets name, read
    from `tfds_data_dir` with split `tfds_split`).
    """

    input_path: str = ""
    tfds_name: str = ""
    tfds_split: str = ""
    tfds_data_dir: str = ""
    global_batch_size: int = 32
    # Examples in one epoch of this split (0 = unknown). The training
    # split's turns the trainer's durations in epochs into steps
    # (official/core/durations.py).
    num_examples: int = 0
    is_training: bool = True
    shuffle_buffer_size: int = 1000
    cache: bool = False
    drop_remainder: bool = True
    seed: int | None = None
    # Source kind of `input_path`: `tfrecord` (TFRecord file globs) or
    # `image_folder` (directories whose subdirectories are the classes).
    input_format: str = "tfrecord"
    # Training only: one sampling weight per comma-separated `input_path`
    # pattern (dataset mixing); empty reads all patterns as one set.
    input_weights: list[float] = dataclasses.field(default_factory=list)
    # Files read at once (interleave cycle length) while training.
    cycle_length: int = 16
    # Element order: None = deterministic for evaluation and for seeded
    # training; True/False force it (False is faster, order may vary).
    deterministic: bool | None = None
    # How input pipelines split the data: auto (by files when there are
    # enough, else by records), file, data (by records) or off.
    auto_shard_policy: str = "auto"
    # tf.data service dispatcher (`grpc://host:port`); empty = local.
    tf_data_service_address: str = ""
    # Skip records that fail to decode or parse (logged and counted)
    # instead of stopping with an error naming the file and record.
    ignore_errors: bool = False

    def validate(self, where: str = "") -> None:
        super().validate(where)
        if self.input_path and self.tfds_name:
            raise ValueError(
                f"{where}: set exactly one of `input_path`, `tfds_name`. Received: "
                f"input_path={self.input_path!r}, tfds_name={self.tfds_name!r}."
            )
        if self.tfds_name and not self.tfds_split:
            raise ValueError(
                f"{where}.tfds_split must be set with tfds_name "
                f"(e.g. 'train' or 'validation')."
            )
        if self.global_batch_size <= 0:
            raise ValueError(
                f"{where}.global_batch_size must be > 0. Received: "
                f"{self.global_batch_size}."
            )
        if self.num_examples < 0:
            raise ValueError(
                f"{where}.num_examples must be >= 0 (0 = unknown). Received: "
                f"{self.num_examples}."
            )
        self._validate_reader_options(where)

    def _validate_reader_options(self, where: str) -> None:
        from official.core import input_files

        if self.input_format not in input_files.INPUT_FORMATS:
            raise ValueError(
                f"{where}.input_format must be one of "
                f"{', '.join(input_files.INPUT_FORMATS)}. Received: "
                f"{self.input_format!r}."
            )
        if self.input_format == "image_folder" and self.tfds_name:
            raise ValueError(
                f"{where}.input_format=image_folder reads directories from "
                f"{where}.input_path, not TFDS. Received: tfds_name={self.tfds_name!r}."
            )
        if self.input_weights:
            patterns = input_files.split_patterns(self.input_path)
            if self.tfds_name or not self.is_training:
                raise ValueError(
                    f"{where}.input_weights mix the patterns of a training "
                    f"input_path; clear it here (tfds_name={self.tfds_name!r}, "
                    f"is_training={self.is_training})."
                )
            if self.input_path and len(patterns) != len(self.input_weights):
                raise ValueError(
                    f"{where}.input_weights needs one weight per comma-separated "
                    f"input_path pattern: {len(patterns)} pattern(s), "
                    f"{len(self.input_weights)} weight(s). Received: "
                    f"input_weights={self.input_weights}."
                )
            if min(self.input_weights) < 0 or sum(self.input_weights) <= 0:
                raise ValueError(
                    f"{where}.input_weights must be >= 0 with a positive sum. "
                    f"Received: {self.input_weights}."
                )
        if self.cycle_length < 1:
            raise ValueError(
                f"{where}.cycle_length must be >= 1. Received: {self.cycle_length}."
            )
        if self.auto_shard_policy not in input_files.AUTO_SHARD_POLICIES:
            raise ValueError(
                f"{where}.auto_shard_policy must be one of "
                f"{', '.join(input_files.AUTO_SHARD_POLICIES)}. Received: "
                f"{self.auto_shard_policy!r}."
            )
        if self.tf_data_service_address and not input_files.is_service_address(
            self.tf_data_service_address
        ):
            raise ValueError(
                f"{where}.tf_data_service_address must look like "
                f"grpc://host:port. Received: {self.tf_data_service_address!r}."
            )

    def check_source(self, where: str) -> None:
        """Raises unless a source is set; called for the splits a run reads."""
        if not (self.input_path or self.tfds_name):
            raise ConfigError(
                f"{where}: no input. Set `{where}.input_path` (TFRecord glob "
                f"patterns, comma-separated) or `{where}.tfds_name`. Example: "
                f"--params_override={where}.input_path=/data/train-*.tfrecord"
            )


MIXED_PRECISION_DTYPES = ("float32", "mixed_float16", "mixed_bfloat16")
NONFINITE_POLICIES = ("stop", "skip")
INIT_CHECKPOINT_MODULES = ("all", "backbone")


@dataclasses.dataclass
class RuntimeConfig(Config):
    """Where the computation runs.

    `distribution_strategy` is one of `one_device`, `mirrored`,
    `multi_worker_mirrored` (workers from the TF_CONFIG environment variable;
    start-up waits at most `worker_start_timeout_seconds` for every peer) or
    `tpu` (at `tpu_address`). `num_devices` (0 = all visible accelerators, or
    the CPU) picks how many devices `mirrored` replicates over. `seed` seeds Python, NumPy and
    TensorFlow; `deterministic` also makes TensorFlow's ops deterministic
    (with a seed, a resumed run then ends with the same weights as an
    uninterrupted one). `mixed_precision_dtype` is one of float32,
    mixed_float16 (with dynamic loss scaling) or mixed_bfloat16.
    `conv1x1_as_matmul` lets bfloat16 training run 1x1 convolutions as matrix
    products while no GPU or TPU is visible (faster there on CPU).
    """

    distribution_strategy: str = "one_device"
    num_devices: int = 0
    seed: int | None = None
    deterministic: bool = False
    mixed_precision_dtype: str = "float32"
    conv1x1_as_matmul: bool = True
    worker_start_timeout_seconds: float = 120.0
    tpu_address: str = ""

    def validate(self, where: str = "") -> None:
        super().validate(where)
        from official.core import distribute

        if self.distribution_strategy not in distribute.STRATEGIES:
            raise ValueError(
                f"{where}.distribution_strategy must be one of "
                f"{', '.join(distribute.STRATEGIES)}. Received: "
                f"{self.distribution_strategy!r}."
            )
        if self.num_devices < 0:
            raise ValueError(f"{where}.num_devices must be >= 0.")
        if self.mixed_precision_dtype not in MIXED_PRECISION_DTYPES:
            raise ValueError(
                f"{where}.mixed_precision_dtype must be one of "
                f"{', '.join(MIXED_PRECISION_DTYPES)}. Received: "
                f"{self.mixed_precision_dtype!r}."
            )
        if self.deterministic and self.seed is None:
            raise ValueError(f"{where}.deterministic needs {where}.seed to be set.")


@dataclasses.dataclass
class TrainerConfig(Config):
    """The training loop. The trainer counts durations in steps.

    Recipes state durations in epochs instead: `train_epochs`,
    `checkpoint_interval_epochs`, `validation_interval_epochs` (and the
    optimizer's `warmup.warmup_epochs`, `learning_rate.decay_epochs`), with
    the training split's size in `task.train_data.num_examples`. An epochs
    field > 0 sets its step field when the config is loaded, from the global
    batch size (see `official/core/durations.py`); 0 leaves the step field
    as given. The intervals become whole loops of `steps_per_loop`.

    `validation_steps` = -1 evaluates on the whole validation split.
    `validation_interval` = 0 evaluates only at the end of training.
    `ema_decay` > 0 keeps an exponential moving average of the trainable
    weights, used by evaluation and export. `nonfinite_policy`: `stop` ends
    training at a non-finite loss (naming the step and the last good
    checkpoint); `skip` drops that step's update. `jit_compile` compiles the
    train step with XLA. `init_checkpoint` initializes a new run's weights
    (`init_checkpoint_modules`: all, or only the backbone) and logs what
    matched; it may be `store:NAME` (weights listed in a manifest: the
    built-in one, `GARDEN_MANIFESTS` and `init_checkpoint_manifests`) or the
    URL of a weights archive (official/core/model_store.py).
    `best_checkpoint_metric` keeps the checkpoint with the best value
    of that evaluation metric in `model_dir/best/` (`best_checkpoint_mode`:
    max or min, also used by early stopping). `early_stopping_metric` stops
    training after `early_stopping_patience` evaluations without improvement.
    `profile_steps` = [start, end] records a TensorFlow profile of those
    steps in `model_dir/profile`. `finetune` freezes variables, scales
    learning rates per variable, unfreezes late and adds LoRA adapters
    (`official/core/finetune_config.py`).
    """

    train_steps: int = 1000
    train_epochs: float = 0.0
    steps_per_loop: int = 100
    checkpoint_interval: int = 1000
    checkpoint_interval_epochs: float = 0.0
    max_to_keep: int = 5
    validation_interval: int = 1000
    validation_interval_epochs: float = 0.0
    validation_steps: int = -1
    optimizer_config: OptimizationConfig = dataclasses.field(
        default_factory=OptimizationConfig
    )
    ema_decay: float = 0.0
    nonfinite_policy: str = "stop"
    jit_compile: bool = False
    init_checkpoint: str = ""
    init_checkpoint_modules: str = "all"
    init_checkpoint_manifests: list[str] = dataclasses.field(default_factory=list)
    best_checkpoint_metric: str = ""
    best_checkpoint_mode: str = "max"
    early_stopping_metric: str = ""
    early_stopping_patience: int = 3
    profile_steps: list[int] = dataclasses.field(default_factory=list)
    finetune: FinetuneConfig = dataclasses.field(default_factory=FinetuneConfig)

    def validate(self, where: str = "") -> None:
        super().validate(where)
        for name in (
            "train_steps",
            "steps_per_loop",
            "checkpoint_interval",
            "max_to_keep",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(
                    f"{where}.{name} must be > 0. Received: {getattr(self, name)}."
                )
        if self.validation_interval < 0:
            raise ValueError(f"{where}.validation_interval must be >= 0.")
        for name in (
            "train_epochs",
            "checkpoint_interval_epochs",
            "validation_interval_epochs",
        ):
            if getattr(self, name) < 0:
                raise ValueError(
                    f"{where}.{name} must be >= 0 (0 = use the step field). "
                    f"Received: {getattr(self, name)}."
                )
        if self.validation_steps == 0 or self.validation_steps < -1:
            raise ValueError(
                f"{where}.validation_steps must be -1 (whole split) or > 0. "
                f"Received: {self.validation_steps}."
            )
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(
                f"{where}.ema_decay must be in [0, 1). Received: {self.ema_decay}."
            )
        if self.nonfinite_policy not in NONFINITE_POLICIES:
            raise ValueError(
                f"{where}.nonfinite_policy must be one of {', '.join(NONFINITE_POLICIES)}. "
                f"Received: {self.nonfinite_policy!r}."
            )
        if self.init_checkpoint_modules not in INIT_CHECKPOINT_MODULES:
            raise ValueError(
                f"{where}.init_checkpoint_modules must be one of "
                f"{', '.join(INIT_CHECKPOINT_MODULES)}. Received: "
                f"{self.init_checkpoint_modules!r}."
            )
        if self.best_checkpoint_mode not in ("max", "min"):
            raise ValueError(
                f"{where}.best_checkpoint_mode must be 'max' or 'min'. Received: "
                f"{self.best_checkpoint_mode!r}."
            )
        if self.early_stopping_metric and self.early_stopping_patience < 1:
            raise ValueError(
                f"{where}.early_stopping_patience must be >= 1. Received: "
                f"{self.early_stopping_patience}."
            )
        if self.profile_steps and (
            len(self.profile_steps) != 2
            or not 0 <= self.profile_steps[0] < self.profile_steps[1]
        ):
            raise ValueError(
                f"{where}.profile_steps must be [start, end] with 0 <= start < end. "
                f"Received: {self.profile_steps}."
            )
        for name in ("checkpoint_interval", "validation_interval"):
            value = getattr(self, name)
            if value and value % self.steps_per_loop:
                raise ValueError(
                    f"{where}.{name} ({value}) must be a multiple of "
                    f"{where}.steps_per_loop ({self.steps_per_loop})."
                )


@dataclasses.dataclass
class TaskConfig(Config):
    """Base of every task's config; the task factory is keyed by its type."""

    train_data: DataConfig = dataclasses.field(default_factory=DataConfig)
    validation_data: DataConfig = dataclasses.field(
        default_factory=lambda: DataConfig(is_training=False, drop_remainder=False)
    )

    def resolve_from_data(self) -> list[str]:
        """Fills fields left for the data to decide; returns one line per field.

        The config loader calls it after the YAML files and overrides and
        before epochs become steps (so it may set `train_data.num_examples`).
        A task whose configs let the data decide something (the class folders
        of an image folder) overrides it; the default fills nothing.
        """
        return []


@dataclasses.dataclass
class ExperimentConfig(Config):
    task: TaskConfig = dataclasses.field(default_factory=TaskConfig)
    trainer: TrainerConfig = dataclasses.field(default_factory=TrainerConfig)
    runtime: RuntimeConfig = dataclasses.field(default_factory=RuntimeConfig)
