"""CIFAR-10 without torchvision: find it, read it (two layouts), cache it, and download it safely.

Layouts read, as a folder or as a ``.tar.gz`` holding one:

- ``official``: the ``cifar-10-batches-py`` pickles (``data_batch_1..5``, ``test_batch``) of
  https://www.cs.toronto.edu/~kriz/cifar.html, unpickled with a restricted unpickler that only
  rebuilds numpy arrays (a tampered file cannot run code);
- ``image-folder``: ``train/<class>/*.jpg|png`` and ``test/<class>/...`` (the JPEG mirror that
  development and CI use, ``../shared/data/cifar10-jpeg.tar.gz``).

Both give uint8 images ``(N, 32, 32, 3)`` (HWC, RGB) and int64 labels in the official class order
(:data:`CLASSES`). Every load says which layout and which source it used (:attr:`Cifar10.info`), and
:func:`source_kind` names it for a results table: "official archive", "JPEG mirror" (an image folder of JPEG
files: the pixels were re-encoded, so it is not the official set) or "PNG image folder".
Decoded arrays are cached as ``.npy`` under ``$FLATBIAS_CACHE`` (default ``~/.cache/flatbias``), so a
second load takes well under a second.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
MD5 = "c58f30108f718f92721af3b95e74349a"
ENV_DATA = "FLATBIAS_CIFAR10"
ENV_CACHE = "FLATBIAS_CACHE"
OFFICIAL_DIR = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
CACHE_VERSION = 1


class DataNotFoundError(FileNotFoundError):
    """CIFAR-10 is not where we looked; the message says where to put it."""


class UnsafePickleError(pickle.UnpicklingError):
    """A batch file asked to load something other than a numpy array."""


class ChecksumError(ValueError):
    """A downloaded archive does not have the published checksum."""


@dataclass
class Cifar10:
    """The decoded data set plus where it came from."""

    x_train: np.ndarray  # (50000, 32, 32, 3) uint8
    y_train: np.ndarray  # (50000,) int64
    x_test: np.ndarray
    y_test: np.ndarray
    layout: str  # "official" | "image-folder"
    source: str  # the path read
    cached: bool = False  # True when the arrays came from the decoded-array cache
    extra: dict = field(default_factory=dict)

    @property
    def info(self) -> dict:
        """What a result record stores about the data (``source_kind``: see :func:`source_kind`)."""
        info = {"dataset": "CIFAR-10", "layout": self.layout, "source": self.source, "n_train": int(len(self.y_train)),
                "n_test": int(len(self.y_test)), "from_cache": self.cached, **self.extra}
        return {**info, "source_kind": source_kind(info)}


def source_kind(info: dict) -> str:
    """'official archive', 'JPEG mirror', 'PNG image folder' or 'image folder' (a record written before the image
    format was recorded) for a :attr:`Cifar10.info` dict; 'synthetic (tests)' for anything else."""
    layout = info.get("layout")
    if layout == "official":
        return "official archive"
    if layout == "image-folder":
        return {"jpeg": "JPEG mirror", "png": "PNG image folder"}.get(info.get("image_format"), "image folder")
    return f"{layout} (tests)" if layout else "unknown"


# --- where the data is ---------------------------------------------------------------------------

def cache_dir(path: str | os.PathLike | None = None) -> Path:
    """The cache folder: ``path``, else ``$FLATBIAS_CACHE``, else ``~/.cache/flatbias``."""
    if path is not None:
        return Path(path)
    env = os.environ.get(ENV_CACHE)
    return Path(env) if env else Path.home() / ".cache" / "flatbias"


def _repo_root() -> Path | None:
    from .records import repo_root

    try:
        return repo_root()
    except FileNotFoundError:
        return None


def candidates() -> list[Path]:
    """The default search order (first existing wins): the development/CI mirror next to the repository,
    then ``data/`` in the repository, then what a download left in the cache folder."""
    out: list[Path] = []
    root = _repo_root()
    if root is not None:
        out.append(root.parent / "shared" / "data" / "cifar10-jpeg.tar.gz")
        data = root / "data"
        out += [data / OFFICIAL_DIR, data / "cifar-10-python.tar.gz", data / "cifar10", data / "cifar10-jpeg.tar.gz"]
    out.append(cache_dir() / OFFICIAL_DIR)
    return out


def _where_to_put_it(looked: list[Path]) -> str:
    lines = "\n".join(f"  - {p}" for p in looked)
    return (f"CIFAR-10 not found. Looked at:\n{lines}\n"
            f"Put the official archive (cifar-10-python.tar.gz from {URL}) or its extracted folder "
            f"'{OFFICIAL_DIR}' in data/ of the repository, or point ${ENV_DATA} (or the `path` argument) at it; "
            f"an image-folder tree (train/<class>/*.png, test/<class>/...) or its .tar.gz works too. "
            f"With network access, load(download=True) fetches the official archive into {cache_dir()}.")


def locate(path: str | os.PathLike | None = None) -> Path:
    """The data location: ``path``, else ``$FLATBIAS_CIFAR10``, else the first existing of :func:`candidates`."""
    if path is None and os.environ.get(ENV_DATA):
        path = os.environ[ENV_DATA]
    if path is not None:
        p = Path(path).expanduser()
        if not p.exists():
            raise DataNotFoundError(_where_to_put_it([p]))
        return p
    looked = candidates()
    for p in looked:
        if p.exists():
            return p
    raise DataNotFoundError(_where_to_put_it(looked))


# --- official layout: restricted unpickling ------------------------------------------------------

_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("_codecs", "encode"),  # how protocol-2 pickles written by Python 3 store bytes
}


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED_GLOBALS:
            raise UnsafePickleError(f"refusing to unpickle {module}.{name}: a CIFAR-10 batch only holds numpy "
                                    "arrays, lists and strings. The file is not an official batch (or was tampered with).")
        return super().find_class(module, name)


def load_batch(raw: bytes, name: str = "batch") -> tuple[np.ndarray, np.ndarray]:
    """Decode one official batch (pickle bytes) into uint8 ``(N, 32, 32, 3)`` images and int64 labels."""
    obj = _RestrictedUnpickler(io.BytesIO(raw), encoding="bytes").load()
    if not isinstance(obj, dict):
        raise ValueError(f"{name}: expected a dict in a CIFAR-10 batch, got {type(obj).__name__}")
    obj = {k.decode() if isinstance(k, bytes) else k: v for k, v in obj.items()}
    if "data" not in obj or "labels" not in obj:
        raise ValueError(f"{name}: a CIFAR-10 batch needs 'data' and 'labels', found {sorted(obj)}")
    data = np.asarray(obj["data"])
    labels = np.asarray(obj["labels"], dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
        raise ValueError(f"{name}: data must be uint8 (N, 3072) with N labels, got {data.dtype} {data.shape} "
                         f"and {len(labels)} labels")
    if labels.size and (labels.min() < 0 or labels.max() >= len(CLASSES)):
        raise ValueError(f"{name}: labels outside 0..9")
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy(), labels


def _read_official(path: Path) -> dict[str, np.ndarray]:
    names = (*TRAIN_BATCHES, TEST_BATCH)
    raw: dict[str, bytes] = {}
    if path.is_dir():
        base = path / OFFICIAL_DIR if (path / OFFICIAL_DIR).is_dir() else path
        for n in names:
            f = base / n
            if not f.is_file():
                raise DataNotFoundError(f"{path}: official CIFAR-10 layout is missing {n}")
            raw[n] = f.read_bytes()
    else:
        with tarfile.open(path, "r:*") as tar:  # read members in memory: nothing is written to disk
            for m in tar:
                base = Path(m.name).name
                if m.isfile() and base in names:
                    raw[base] = tar.extractfile(m).read()
        missing = [n for n in names if n not in raw]
        if missing:
            raise DataNotFoundError(f"{path}: official CIFAR-10 archive is missing {', '.join(missing)}")
    train = [load_batch(raw[n], n) for n in TRAIN_BATCHES]
    x_test, y_test = load_batch(raw[TEST_BATCH], TEST_BATCH)
    return {"x_train": np.concatenate([t[0] for t in train]), "y_train": np.concatenate([t[1] for t in train]),
            "x_test": x_test, "y_test": y_test}


# --- image-folder layout -------------------------------------------------------------------------

def _decode(raw: bytes, name: str) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(raw)) as im:
        arr = np.asarray(im.convert("RGB"), dtype=np.uint8)
    if arr.shape != (32, 32, 3):
        raise ValueError(f"{name}: CIFAR-10 images are 32x32 RGB, got shape {arr.shape}")
    return arr


def _folder_key(rel: str) -> tuple[str, str, str] | None:
    """('train'|'test', class, file) for ``[prefix/]split/class/file.ext``, else None."""
    parts = Path(rel).parts
    if len(parts) < 3 or Path(parts[-1]).suffix.lower() not in IMAGE_SUFFIXES or parts[-1].startswith("."):
        return None
    split, cls, fname = parts[-3], parts[-2], parts[-1]
    return (split, cls, fname) if split in ("train", "test") else None


def _read_image_folder(path: Path) -> dict[str, np.ndarray]:
    items: list[tuple[tuple[str, str, str], bytes]] = []
    if path.is_dir():
        for f in sorted(path.rglob("*")):
            key = _folder_key(str(f.relative_to(path))) if f.is_file() else None
            if key:
                items.append((key, f.read_bytes()))
    else:
        with tarfile.open(path, "r:*") as tar:
            for m in tar:
                key = _folder_key(m.name) if m.isfile() else None
                if key:
                    items.append((key, tar.extractfile(m).read()))
    out = {}
    for split in ("train", "test"):
        sel = sorted((k, raw) for k, raw in items if k[0] == split)
        if not sel:
            raise DataNotFoundError(f"{path}: image-folder layout has no {split}/<class>/*.jpg|png images")
        unknown = sorted({k[1] for k, _ in sel} - set(CLASSES))
        if unknown:
            raise ValueError(f"{path}: unknown class folders {unknown}; expected the CIFAR-10 classes {list(CLASSES)}")
        sel.sort(key=lambda kr: (CLASSES.index(kr[0][1]), kr[0][2]))  # official label order, then file name
        out[f"x_{split}"] = np.stack([_decode(raw, "/".join(k)) for k, raw in sel])
        out[f"y_{split}"] = np.array([CLASSES.index(k[1]) for k, _ in sel], dtype=np.int64)
    return out


def image_format(path: str | os.PathLike) -> str | None:
    """'jpeg' or 'png': the format of the first image of an image-folder tree or archive (cheap: one member)."""
    path = Path(path)
    if path.is_dir():
        first = next((f for f in sorted(path.rglob("*")) if f.is_file() and _folder_key(str(f.relative_to(path)))),
                     None)
        suffix = first.suffix.lower() if first else None
    else:
        with tarfile.open(path, "r:*") as tar:
            suffix = next((Path(m.name).suffix.lower() for m in tar if m.isfile() and _folder_key(m.name)), None)
    return {".jpg": "jpeg", ".jpeg": "jpeg", ".png": "png"}.get(suffix)


def detect_layout(path: str | os.PathLike) -> str:
    """``"official"`` or ``"image-folder"`` for a folder or a tar archive; anything else is a clear error."""
    path = Path(path)
    if path.is_dir():
        if (path / TEST_BATCH).is_file() or (path / OFFICIAL_DIR / TEST_BATCH).is_file():
            return "official"
        if (path / "train").is_dir() and (path / "test").is_dir():
            return "image-folder"
        raise ValueError(f"{path} is neither '{OFFICIAL_DIR}' (data_batch_1..5, test_batch) nor an image folder "
                         "(train/<class>/..., test/<class>/...)")
    if not tarfile.is_tarfile(path):
        raise ValueError(f"{path} is not a folder or a tar archive of CIFAR-10")
    with tarfile.open(path, "r:*") as tar:
        for m in tar:
            if Path(m.name).name == TEST_BATCH or Path(m.name).name == TRAIN_BATCHES[0]:
                return "official"
            if m.isfile() and _folder_key(m.name):
                return "image-folder"
    raise ValueError(f"{path}: the archive holds neither the official batches nor train/<class>/<image> files")


# --- cache ---------------------------------------------------------------------------------------

_ARRAYS = ("x_train", "y_train", "x_test", "y_test")


def _cache_key(path: Path) -> str:
    st = path.stat()
    sig = f"{CACHE_VERSION}|{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    if path.is_dir():  # a folder's own mtime misses edits inside; add the newest file's
        sig += "|" + str(max((f.stat().st_mtime_ns for f in path.rglob("*") if f.is_file()), default=0))
    return hashlib.sha256(sig.encode()).hexdigest()[:16]


def _cache_read(folder: Path) -> dict | None:
    meta = folder / "meta.json"
    if not meta.is_file():
        return None
    try:
        arrays = {k: np.load(folder / f"{k}.npy", allow_pickle=False) for k in _ARRAYS}
        return {"meta": json.loads(meta.read_text()), **arrays}
    except (OSError, ValueError):
        return None


def _cache_write(folder: Path, arrays: dict, meta: dict) -> None:
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        for k in _ARRAYS:
            np.save(tmp / f"{k}.npy", arrays[k], allow_pickle=False)
        (tmp / "meta.json").write_text(json.dumps(meta))  # written last: its presence marks a complete entry
        try:
            os.replace(tmp, folder)
        except OSError:  # another process won the race: keep theirs
            pass
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# --- download ------------------------------------------------------------------------------------

def md5sum(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.md5()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def download(dest: str | os.PathLike | None = None, url: str = URL, md5: str = MD5, timeout: float = 30.0,
             progress: bool | None = None) -> Path:
    """Download the official archive, check its MD5, extract it safely, and return ``dest/cifar-10-batches-py``.

    The archive goes to a temporary file and is extracted (``tarfile`` ``filter="data"``: no absolute paths, no
    ``..``, no links out) into a temporary folder next to the target, which is renamed into place only when
    everything succeeded; on any failure nothing is left behind.
    """
    from tqdm import tqdm  # plain tqdm: stderr bars, off when not a terminal (no widget warnings in the book)

    dest = cache_dir(dest)
    target = dest / OFFICIAL_DIR
    if (target / TEST_BATCH).is_file():
        return target
    dest.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".cifar10-download.", dir=dest))
    try:
        archive = work / "cifar-10-python.tar.gz"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as resp, open(archive, "wb") as fh:
                total = int(resp.headers.get("Content-Length") or 0) or None
                with tqdm(total=total, unit="B", unit_scale=True, desc="CIFAR-10", disable=None if progress is None else not progress) as bar:
                    while block := resp.read(1 << 20):
                        fh.write(block)
                        bar.update(len(block))
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            raise DataNotFoundError(f"could not download CIFAR-10 from {url} ({exc}).\n"
                                    + _where_to_put_it([target])) from None
        got = md5sum(archive)
        if got != md5:
            raise ChecksumError(f"downloaded {url} has MD5 {got}, expected {md5}: the file is corrupt or not the "
                                "official archive. Nothing was extracted; try again or download it by hand.")
        out = work / "extract"
        with tarfile.open(archive, "r:gz") as tar:
            tar.extractall(out, filter="data")
        found = [p for p in out.rglob(TEST_BATCH)]
        if not found:
            raise ValueError(f"{url}: the archive has no {TEST_BATCH}; it is not the official CIFAR-10 python archive")
        os.replace(found[0].parent, target)
        return target
    finally:
        shutil.rmtree(work, ignore_errors=True)


# --- the entry point -----------------------------------------------------------------------------

def load(path: str | os.PathLike | None = None, *, cache: bool = True, cache_folder: str | os.PathLike | None = None,
         download_if_missing: bool = False, url: str = URL, md5: str = MD5) -> Cifar10:
    """Load CIFAR-10 from ``path`` / ``$FLATBIAS_CIFAR10`` / the default search order (see :func:`candidates`).

    With ``download_if_missing`` the official archive is downloaded (MD5-checked) into the cache folder when
    nothing is found. The decoded arrays are cached (``cache=True``) keyed on the source path, size and mtime.
    """
    try:
        src = locate(path)
    except DataNotFoundError:
        if not download_if_missing:
            raise
        src = download(cache_folder, url=url, md5=md5)
    layout = detect_layout(src)
    extra = {"image_format": image_format(src)} if layout == "image-folder" else {}
    folder = cache_dir(cache_folder) / "cifar10-decoded" / _cache_key(src)
    if cache:
        hit = _cache_read(folder)
        if hit is not None:
            return Cifar10(*(hit[k] for k in _ARRAYS), layout=hit["meta"]["layout"], source=str(src), cached=True,
                           extra=extra)
    arrays = _read_official(src) if layout == "official" else _read_image_folder(src)
    for split in ("train", "test"):
        if arrays[f"x_{split}"].shape[1:] != (32, 32, 3) or len(arrays[f"x_{split}"]) != len(arrays[f"y_{split}"]):
            raise ValueError(f"{src}: inconsistent {split} arrays")
    if cache:
        _cache_write(folder, arrays, {"layout": layout, "source": str(src)})
    return Cifar10(**arrays, layout=layout, source=str(src), cached=False, extra=extra)


def first_per_class(labels: np.ndarray, k: int) -> np.ndarray:
    """Indices of the first ``k`` examples of each class in data-set order (class-major: class 0's first)."""
    labels = np.asarray(labels)
    idx = [np.flatnonzero(labels == c)[:k] for c in range(len(CLASSES))]
    short = [CLASSES[c] for c, i in enumerate(idx) if len(i) < k]
    if short:
        raise ValueError(f"fewer than {k} examples of class(es) {short}; use a smaller k")
    return np.concatenate(idx)
