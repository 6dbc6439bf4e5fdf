"""bpcli export: a trained network as a PyTorch model.py or a plain-numpy predict.py, with its weights in an .npz.

Exporting needs neither torch nor anything else beyond numpy: the model files are text written from an
ExportSpec (export_spec), and the weights are plain arrays that the generated loader reads with allow_pickle=False.
"""

from __future__ import annotations

import errno
import json
import os
import secrets
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

from bpcli.errors import BpcliError, SaveError
from bpcli.bridge.export_numpy import numpy_source
from bpcli.bridge.export_spec import ExportSpec, name_mapping, numpy_arrays, torch_arrays  # noqa: F401
from bpcli.bridge.export_torch import torch_source
from bpcli.files import npz_bytes

FORMATS = ("pytorch", "numpy", "onnx")
ONNX_LEFT = ("--to onnx is not built yet: export --to pytorch, then torch.onnx.export(load(), x, "
             "'model.onnx') turns the module into ONNX")


# --- the command's result -------------------------------------------------------------------


@dataclass(frozen=True)
class ExportResult:
    name: str
    source: str
    to: str
    out_dir: str
    files: tuple[tuple[str, int], ...]  # (file name, bytes)
    sizes: str
    activations: tuple[str, ...]
    n_params: int
    dtype: str
    scaled: bool
    classes: tuple[str, ...] | None
    usage: str  # how to load it, one line of Python

    def to_dict(self) -> dict:
        return {"command": "export", "name": self.name, "source": self.source, "to": self.to,
                "out_dir": self.out_dir, "files": [{"name": n, "bytes": b} for n, b in self.files],
                "sizes": self.sizes, "activations": list(self.activations), "params": self.n_params,
                "dtype": self.dtype, "scaled": self.scaled, "classes": list(self.classes) if self.classes else None,
                "usage": self.usage}


def export_files(spec: ExportSpec, to: str) -> dict[str, bytes]:
    """The files of an export, by name (nothing written)."""
    if to == "pytorch":
        return {"model.py": torch_source(spec).encode(), "weights.npz": npz_bytes(torch_arrays(spec)),
                "names.json": (json.dumps(name_mapping(spec, to), indent=2) + "\n").encode()}
    if to == "numpy":
        return {"predict.py": numpy_source(spec).encode(), "weights.npz": npz_bytes(numpy_arrays(spec)),
                "names.json": (json.dumps(name_mapping(spec, to), indent=2) + "\n").encode()}
    if to == "onnx":
        raise BpcliError(ONNX_LEFT)
    from bpcli.errors import did_you_mean, one_of
    raise BpcliError(f"--to: unknown format '{to}'{did_you_mean(to, FORMATS)}; expected one of {one_of(FORMATS)}")


# what an export folder may hold for --force to replace it whole: the files of either format, Python's cache
EXPORT_NAMES = frozenset({"model.py", "predict.py", "weights.npz", "names.json", "__pycache__",
                          "optimizer.json", "optimizer_state.npz"})


def check_export_target(out_dir: Path, force: bool) -> bool:
    """Refuse --out before any work; True when it holds an earlier export that --force replaces.

    A folder that does not exist yet or is empty is fine; a file, a device, a symbolic link is refused (never
    followed); a folder holding anything only with force, and then only when all it holds is an earlier export's
    files (never a user's own).
    """
    try:
        st = os.lstat(out_dir)
    except FileNotFoundError:
        return False
    except OSError as err:
        raise BpcliError(f"--out: {out_dir} cannot be written ({err.strerror})") from None
    if stat.S_ISLNK(st.st_mode):
        raise BpcliError(f"--out: {out_dir} is a symbolic link; bpcli never writes through one nor replaces it: "
                         "give the path of the folder itself")
    if not stat.S_ISDIR(st.st_mode):
        from bpcli.files import describe_mode
        what = "a file" if stat.S_ISREG(st.st_mode) else describe_mode(st.st_mode)
        raise BpcliError(f"--out: {out_dir} is {what}; give a folder")
    held = sorted(p.name for p in out_dir.iterdir())
    if not held:
        return False
    if not force:
        clash = [n for n in held if n in EXPORT_NAMES]
        what = f"holds {', '.join(clash)}" if clash else "is not empty"
        raise BpcliError(f"--out: {out_dir} {what}; choose another folder or add --force to overwrite")
    foreign = [n for n in held if n not in EXPORT_NAMES]
    if foreign:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise BpcliError(f"--out: {out_dir} holds files an export does not write ({shown}); --force replaces only "
                         "an earlier export, whole: choose another folder")
    return True


def write_export(files: dict[str, bytes], out_dir: Path, force: bool = False) -> None:
    """The export folder appears whole with one rename, like a run folder: staged in a hidden sibling folder
    (claim.stage: locked while written, swept once a killed process left it), each file fsynced, then renamed
    into place; an earlier export (force) is renamed aside first and deleted after. A process killed at any
    point leaves the old export or the new one, never part of one, and no temporary file in either."""
    from bpcli.runs.claim import ASIDE, stage
    from bpcli.files import fsync_dir, write_new_files

    replace = check_export_target(out_dir, force)
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise SaveError(f"{out_dir}: cannot write the export ({err.strerror or err})") from None
    staged, lock = stage(out_dir.parent, out_dir)
    aside = None
    try:
        write_new_files(staged / "export", files)
        if replace:
            aside = out_dir.parent / f"{ASIDE}{secrets.token_hex(6)}"
            os.rename(out_dir, aside)
        try:
            os.rename(staged / "export", out_dir)
        except OSError as err:
            if aside is not None:
                os.rename(aside, out_dir)  # the earlier export back where it was
                aside = None
            if err.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
                raise BpcliError(f"--out: {out_dir} was just written by another process; choose another folder "
                                 "or add --force") from None
            raise
        fsync_dir(out_dir.parent)
    except OSError as err:
        raise SaveError(f"{out_dir}: cannot write the export ({err.strerror or err})") from None
    finally:
        shutil.rmtree(staged, ignore_errors=True)
        lock.release()
        if aside is not None:
            shutil.rmtree(aside, ignore_errors=True)


def export(spec: ExportSpec, to: str, out_dir: Path, force: bool = False,
           state: dict[str, bytes] | None = None) -> ExportResult:
    """Write the export into out_dir, which appears whole or not at all (write_export); an existing non-empty
    folder only with force, and only an earlier export's. state: the optimiser's files (export_state), with
    load_optimizer added to model.py."""
    files = export_files(spec, to)
    if state is not None:
        from bpcli.bridge.export_state import LOADER
        if to != "pytorch":
            raise BpcliError("--optimizer-state: the optimiser's state is for PyTorch; give --to pytorch")
        files = {**files, "model.py": files["model.py"] + LOADER.encode(), **state}
    out_dir = Path(out_dir)
    write_export(files, out_dir, force)
    n_params = sum(layer.W.size + (0 if layer.b is None else layer.b.size) for layer in spec.layers)
    usage = ("from model import load; net = load(); y_hat = net(torch.tensor(x))" if to == "pytorch"
             else "from predict import predict; y_hat = predict(x)")
    if state is not None:
        usage += "; opt = load_optimizer(net)"
    return ExportResult(spec.name, spec.source, to, str(out_dir), tuple((n, len(b)) for n, b in files.items()),
                        spec.sizes, tuple(layer.activation for layer in spec.layers), int(n_params), spec.dtype,
                        spec.mean is not None, spec.classes, usage)
