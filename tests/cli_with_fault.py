"""The ``bertdistill`` command line with one write fault installed; run by tests/test_checkpoint_faults.py.

    python cli_with_fault.py KIND WRITER N COMMAND [ARGS...]

``WRITER`` is what fails: ``checkpoint`` (safetensors' ``save_file`` as the checkpoint writer
calls it, for a checkpoint's model.safetensors) or ``model`` (the weights ``save_pretrained``
writes, for a saved student or best model). Its ``N``-th call (1-based) fails, as ``KIND``:

* ``kill``: half of the file is written, then the process sends itself SIGKILL;
* ``enospc``: ``OSError(ENOSPC)``, as a full disk raises it.

``N = 0`` installs nothing: the plain command, started the same way.
"""

from __future__ import annotations

import errno
import os
import signal
import sys
from pathlib import Path


def install(kind: str, writer: str, nth: int) -> None:
    if writer == "checkpoint":
        from bertdistill.training import checkpoint as module

        name = "save_file"
    else:
        from transformers import modeling_utils as module

        name = "safe_save_file"
    real, calls = getattr(module, name), [0]

    def faulty(tensors, path, *args, **kwargs):
        calls[0] += 1
        if calls[0] != nth:
            return real(tensors, path, *args, **kwargs)
        if kind == "enospc":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(tensors, path, *args, **kwargs)
        data = Path(path).read_bytes()
        Path(path).write_bytes(data[: len(data) // 2])  # the write was half done
        os.kill(os.getpid(), signal.SIGKILL)

    setattr(module, name, faulty)


def main() -> int:
    kind, writer, nth, *argv = sys.argv[1:]
    if kind not in ("kill", "enospc") or writer not in ("checkpoint", "model"):
        raise SystemExit(__doc__)
    if int(nth) > 0:
        install(kind, writer, int(nth))
    from bertdistill.cli import main as cli

    return cli(argv)


if __name__ == "__main__":
    sys.exit(main())
