"""Training machinery, the same for every objective in the notebooks.

- `trainer`: the loop. `Phase`, `TrainerConfig` and `Trainer`, and the optimizer helpers.
- `callbacks`: what runs around each step: speed and MFU, early stopping, the progress
  bar, TensorBoard, and the `Callback` base class for your own.
- `checkpoint`: checkpoint folders, what they hold, and exact resume.
- `batches`: where batches come from, how they are counted and split across processes.
- `hardware`: device, precision, torchrun and peak FLOPs.
"""
