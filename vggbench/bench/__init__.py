"""`vggbench bench`: what each net, protocol and option costs on this machine. `measure` times
(torch), `run` runs the parts into one record, `tables` renders records (torch-free, for the report).

Parts (each a list of rows in one JSON record saved under results/bench/):
- train / infer: images/s of a training step (forward, loss, backward, SGD step) and of an
  inference forward pass, per net, width, crop and batch; warm-up steps, then timed steps,
  synchronised on GPUs. Out of memory halves the batch, and the row and the record's notes say so.
- overhead: our training step (vggbench.train) against a bare PyTorch loop on pre-made tensors
  (forward, cross-entropy, backward, step, zero_grad), same model, batch and options; and our step
  fed by the in-memory fast path (TrainLoader: gather + TrainAugment on the device) against the same
  bare loop. Single steps are interleaved (bare, ours, ours+data, ours+data, ours, bare, ...), each
  timed alone (synchronised on GPUs), steps x repeats of each; the ratio is the median over the
  adjacent pairs of bare time / our time, so a drift of the machine's speed (other work on a shared
  machine) hits both sides alike.
- data: the loader alone (images/s: batches read, decoded and augmented, no model) against the model's
  training throughput, and data time as a share of a training step (data and step one after the
  other, as in `train`'s loop): the in-memory fast path, then image folders streamed through
  DataLoader workers that decode every JPEG, decoded once into the cache (the first decode's time
  in its row) and, on a GPU, streamed with nvJPEG decoding against the CPU-worker path. The
  folders are generated JPEGs (10,000 at 32 px, 2,000 at 256-500 px) unless --data-folder names some.
- eval: dense vs multi-crop vs both over the jitter test scales, per image, as wall time and MACs,
  through evaluate.engine.evaluate_batches.

MFU (model FLOPs utilisation) = images/s x 6 x MACs per image / the device's dense bf16 peak
(a training step costs about 3 forward passes and a forward pass 2 FLOPs per MAC). It is
reported for known GPUs only; on CPUs it does not apply (None).
"""
