"""The paper's training recipe (Section 3.1): the loop, the plateau schedule, checkpoint/resume,
distributed data parallel, and one stored record per run.

`train(config, results_dir=...)` is the library entry point (the CLI and the ablation code call it);
it returns the run's `store.RunRecord`:
- A run is identified by its `TrainConfig`, resolved once against its data (`resolve`: the data's
  fingerprint, limits that take a whole split dropped, S and Q in pixels); its id is a hash of the
  resolved fields that define the result (`run_id`). Asking for a stored run again returns its
  record instead of retraining, unless `force`.
- Recipe: SGD with momentum 0.9 and weight decay 5e-4, dropout 0.5, lr 1e-2 divided by 10 when the
  validation top-1 error has not improved for `patience` epochs, at most 3 times; batch 256, split
  into micro-batches (gradient accumulation) when it exceeds `max_device_batch`.
- Init: `glorot` (the default: see recipe.DEFAULT_INIT), `paper` (normal, std `init_std`), `kaiming`,
  `preinit` (A's first four convs and three FC layers copied from a stored run of net A), or
  `init_from` a stored run (fine-tuning, e.g. S=384 from S=256; lr 1e-3 unless given).
- A checkpoint after every epoch (and on Ctrl-C) holds model, optimizer, schedule, epoch, step, RNG
  states and the config; `resume` continues bit-exactly on CPU.
- Validation each epoch: top-1/top-5 error of the center crop of the val images rescaled to the
  single test scale Q (Q = S, or the jitter midpoint), FC net in eval mode, with the evaluation
  protocols' center crop and top-k. The full test protocols (dense, multi-crop) live there.
- torchrun: RANK / WORLD_SIZE / LOCAL_RANK in the environment start a process group (NCCL on GPUs,
  gloo on CPU); each rank takes its slice of every global batch and DDP averages the gradients, so
  the result equals one process on the same global batch. Only rank 0 prints and writes.

Files: <results>/runs/<id>.json (the record), <results>/checkpoints/<id>/last.pt (resume state,
removed when the run completes) and model.pt (final weights, a plain FC-form state dict).

Modules: config (TrainConfig, resolve, run_id) · loop (train_step, StepLoop, PlateauSchedule,
validate) · checkpoint (Checkpoint, RNG state, Ctrl-C) · events (StepProgress, EpochEnd, the log)
· trainer (train, Trainer).
"""

from vggbench.recipe import DEFAULT_EPOCHS, DEFAULT_INIT, DEFAULT_INIT_STD, DEFAULT_PATIENCE, INIT_CHOICES
from vggbench.train.checkpoint import (
    Checkpoint,
    TrainingInterrupted,
    checkpoint_dir,
    code_version,
    has_checkpoint,
)
from vggbench.train.config import ResolvedConfig, TrainConfig, identity, resolve, run_id
from vggbench.train.loop import (
    PlateauSchedule,
    StepLoop,
    micro_batches,
    train_step,
    validate,
)
from vggbench.train.trainer import NOT_LEARNING, EpochEnd, StepProgress, Trainer, train

__all__ = [
    "DEFAULT_EPOCHS",
    "DEFAULT_INIT",
    "DEFAULT_INIT_STD",
    "DEFAULT_PATIENCE",
    "INIT_CHOICES",
    "NOT_LEARNING",
    "Checkpoint",
    "EpochEnd",
    "PlateauSchedule",
    "ResolvedConfig",
    "StepLoop",
    "StepProgress",
    "TrainConfig",
    "Trainer",
    "TrainingInterrupted",
    "checkpoint_dir",
    "code_version",
    "has_checkpoint",
    "identity",
    "micro_batches",
    "resolve",
    "run_id",
    "train",
    "train_step",
    "validate",
]
