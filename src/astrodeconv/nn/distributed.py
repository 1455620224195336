"""Data-parallel training with PyTorch DistributedDataParallel (``torchrun``).

:func:`astrodeconv.nn.train` calls :func:`setup` first: under ``torchrun`` (``WORLD_SIZE`` > 1
in the environment) it joins the process group (``gloo`` on CPU, ``nccl`` when the process
has a GPU), otherwise it does nothing and training runs as one process. Under DDP:

* every rank builds the same data set and initial weights from the seed, and draws the same
  shuffled order; rank ``r`` of ``R`` takes minibatches ``r, r + R, r + 2 R ...`` of it
  (each rank runs ``steps // R`` steps of ``batch`` pairs, so one step is ``R x batch``
  pairs and an epoch sees the training set once);
* gradients are averaged over the ranks (DDP's all-reduce), so all ranks keep identical
  weights; every rank evaluates the full validation set, so early stopping decides alike;
* only rank 0 writes files (checkpoint, ``history.csv``, the model folder); at the end the
  SHA-256 of every rank's final weights is gathered, checked equal and recorded in
  ``meta.json`` (``ddp``).

Example, two processes on one machine, or two machines of one process each::

    torchrun --nproc_per_node 2 -m astrodeconv.cli train --images *.fits -o model
    torchrun --nnodes 2 --node_rank 0 --nproc_per_node 1 --master_addr HOST0 --master_port 29500 \\
        -m astrodeconv.cli train --images *.fits -o /shared/model     # on HOST0; node_rank 1 on HOST1
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Any

__all__ = ["Context", "setup", "weights_digest"]


@dataclass(frozen=True)
class Context:
    """This process's place in the job: ``rank`` of ``world`` (``0`` of ``1`` without DDP)."""

    rank: int = 0
    world: int = 1
    backend: str = ""
    owns_group: bool = False

    @property
    def main(self) -> bool:
        """True on the rank that writes files."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1

    def barrier(self) -> None:
        if self.active:
            import torch.distributed as dist

            dist.barrier()

    def wrap(self, model: Any) -> Any:
        """The model to run forward/backward with: DDP-wrapped when distributed."""
        if not self.active:
            return model
        from torch.nn.parallel import DistributedDataParallel

        return DistributedDataParallel(model)

    def gather(self, value: Any) -> list[Any]:
        """``value`` from every rank, in rank order (``[value]`` alone)."""
        if not self.active:
            return [value]
        import torch.distributed as dist

        out: list[Any] = [None] * self.world
        dist.all_gather_object(out, value)
        return out

    def close(self) -> None:
        """Leave the process group if :func:`setup` joined it."""
        if self.owns_group:
            import torch.distributed as dist

            dist.destroy_process_group()


def setup(backend: str | None = None) -> Context:
    """Join the ``torchrun`` process group if there is one (``WORLD_SIZE`` > 1).

    Parameters
    ----------
    backend : str, optional
        ``"gloo"`` or ``"nccl"``; default ``nccl`` when CUDA is available, else ``gloo``.

    Examples
    --------
    >>> setup().world if "WORLD_SIZE" not in os.environ else 1
    1
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Context()
    import torch
    import torch.distributed as dist

    owns = not dist.is_initialized()
    if owns:
        backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
        dist.init_process_group(backend=backend)
    return Context(dist.get_rank(), dist.get_world_size(), dist.get_backend(), owns)


def weights_digest(model: Any) -> str:
    """SHA-256 of a model's ``state_dict`` (names, shapes and float values, in order)."""
    h = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()
