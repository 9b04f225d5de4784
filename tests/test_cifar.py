"""CIFAR-10 reader: both layouts, the cache, the checked download, restricted unpickling, clear errors.

Every archive here is tiny and synthetic, written by the tests themselves: no CIFAR-10 image is used.
"""

import functools
import hashlib
import http.server
import io
import os
import pickle
import tarfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from flatbias import cifar

PER_BATCH = 3  # images per official batch


def _images(n, seed):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, n).astype(np.int64)


def _batch_bytes(x, y):
    # as the official files: a dict with bytes keys, 'data' uint8 (N, 3072) in R,G,B planes, 'labels' a list
    data = x.transpose(0, 3, 1, 2).reshape(len(x), 3072)
    return pickle.dumps({b"batch_label": b"synthetic", b"labels": [int(v) for v in y], b"data": data,
                         b"filenames": [b"f%d.png" % i for i in range(len(y))]}, protocol=2)


def _add(tar, name, raw):
    info = tarfile.TarInfo(name)
    info.size = len(raw)
    tar.addfile(info, io.BytesIO(raw))


def write_official(root: Path, archive: bool):
    """Synthetic official layout; returns (path, x_train, y_train, x_test, y_test)."""
    xs, ys = zip(*[_images(PER_BATCH, i) for i in range(5)])
    x_test, y_test = _images(PER_BATCH, 99)
    files = {n: _batch_bytes(x, y) for n, x, y in zip(cifar.TRAIN_BATCHES, xs, ys)}
    files[cifar.TEST_BATCH] = _batch_bytes(x_test, y_test)
    files["batches.meta"] = pickle.dumps({b"label_names": [c.encode() for c in cifar.CLASSES]}, protocol=2)
    if archive:
        path = root / "cifar-10-python.tar.gz"
        with tarfile.open(path, "w:gz") as tar:
            for n, raw in files.items():
                _add(tar, f"{cifar.OFFICIAL_DIR}/{n}", raw)
    else:
        path = root / cifar.OFFICIAL_DIR
        path.mkdir(parents=True)
        for n, raw in files.items():
            (path / n).write_bytes(raw)
    return path, np.concatenate(xs), np.concatenate(ys), x_test, y_test


def _png(x):
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(x).save(buf, format="PNG")
    return buf.getvalue()


def write_image_folder(root: Path, archive: bool):
    """Synthetic image folder (PNG: lossless), 2 train and 1 test image for each of 3 classes."""
    classes = ["truck", "airplane", "cat"]  # not in label order: the reader must order by the official labels
    out = {}
    entries = []
    for split, k in (("train", 2), ("test", 1)):
        xs, ys = [], []
        for c in sorted(classes, key=cifar.CLASSES.index):
            x, _ = _images(k, 10 * cifar.CLASSES.index(c) + (split == "test"))
            for i in range(k):
                entries.append((f"cifar10/{split}/{c}/{i:04d}.png", _png(x[i])))
                xs.append(x[i])
                ys.append(cifar.CLASSES.index(c))
        out[split] = (np.stack(xs), np.array(ys))
    if archive:
        path = root / "cifar10-images.tar.gz"
        with tarfile.open(path, "w:gz") as tar:
            for name, raw in entries:
                _add(tar, name, raw)
    else:
        path = root / "cifar10"
        for name, raw in entries:
            f = root / name
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_bytes(raw)
    return path, *out["train"], *out["test"]


@pytest.mark.parametrize("archive", [False, True])
def test_official_layout(tmp_path, archive):
    path, x_tr, y_tr, x_te, y_te = write_official(tmp_path, archive)
    assert cifar.detect_layout(path) == "official"
    d = cifar.load(path, cache_folder=tmp_path / "cache")
    assert (d.layout, d.source, d.cached) == ("official", str(path), False)
    assert d.x_train.shape == (5 * PER_BATCH, 32, 32, 3) and d.x_train.dtype == np.uint8
    assert d.y_train.dtype == np.int64
    np.testing.assert_array_equal(d.x_train, x_tr)  # plane-major rows decoded to HWC correctly
    np.testing.assert_array_equal(d.y_train, y_tr)
    np.testing.assert_array_equal(d.x_test, x_te)
    np.testing.assert_array_equal(d.y_test, y_te)
    assert d.info["layout"] == "official" and d.info["source"] == str(path)
    assert d.info["source_kind"] == "official archive"


@pytest.mark.parametrize("archive", [False, True])
def test_image_folder_layout(tmp_path, archive):
    path, x_tr, y_tr, x_te, y_te = write_image_folder(tmp_path, archive)
    assert cifar.detect_layout(path) == "image-folder"
    d = cifar.load(path, cache=False)
    assert d.layout == "image-folder"
    np.testing.assert_array_equal(d.y_train, [0, 0, 3, 3, 9, 9])  # official label order: airplane, cat, truck
    np.testing.assert_array_equal(d.x_train, x_tr)
    np.testing.assert_array_equal(d.y_test, y_te)
    np.testing.assert_array_equal(d.x_test, x_te)
    assert d.info["image_format"] == "png" and d.info["source_kind"] == "PNG image folder"


def test_source_kind_names_the_jpeg_mirror_and_old_records():
    assert cifar.source_kind({"layout": "image-folder", "image_format": "jpeg"}) == "JPEG mirror"
    assert cifar.source_kind({"layout": "image-folder"}) == "image folder"  # a record from before image_format
    assert cifar.source_kind({"layout": "official"}) == "official archive"


def test_image_folder_rejects_unknown_class(tmp_path):
    for split in ("train", "test"):
        f = tmp_path / "bad" / split / "unicorn" / "0.png"
        f.parent.mkdir(parents=True)
        f.write_bytes(_png(np.zeros((32, 32, 3), np.uint8)))
    with pytest.raises(ValueError, match="unknown class folders"):
        cifar.load(tmp_path / "bad", cache=False)


def test_cache_second_load_is_fast_and_equal(tmp_path):
    path, *_ = write_image_folder(tmp_path, archive=True)
    first = cifar.load(path, cache_folder=tmp_path / "cache")
    t0 = time.perf_counter()
    second = cifar.load(path, cache_folder=tmp_path / "cache")
    assert time.perf_counter() - t0 < 1.0
    assert second.cached and not first.cached and second.layout == "image-folder"
    for k in ("x_train", "y_train", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(first, k), getattr(second, k))
    # a changed source invalidates the cache entry
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))
    assert not cifar.load(path, cache_folder=tmp_path / "cache").cached


def test_env_var_and_missing_data(tmp_path, monkeypatch):
    path, *_ = write_official(tmp_path, archive=True)
    monkeypatch.setenv(cifar.ENV_DATA, str(path))
    assert cifar.load(cache=False).source == str(path)
    monkeypatch.setenv(cifar.ENV_DATA, str(tmp_path / "nowhere"))
    with pytest.raises(cifar.DataNotFoundError, match="Put the official archive") as exc:
        cifar.load(cache=False)
    assert "nowhere" in str(exc.value) and cifar.ENV_DATA in str(exc.value)
    monkeypatch.delenv(cifar.ENV_DATA)
    monkeypatch.setattr(cifar, "candidates", lambda: [tmp_path / "a", tmp_path / "b"])
    with pytest.raises(cifar.DataNotFoundError, match="data/ of the repository"):
        cifar.load(cache=False)


def test_default_search_order_starts_with_the_mirror():
    c = cifar.candidates()
    assert c[0].name == "cifar10-jpeg.tar.gz" and c[0].parent.name == "data" and c[0].parent.parent.name == "shared"
    assert any(p.name == cifar.OFFICIAL_DIR and p.parent.name == "data" for p in c)


class _Evil:
    def __reduce__(self):
        return (os.getcwd, ())  # harmless, but a call all the same: must be refused


def test_malicious_pickle_is_refused(tmp_path):
    raw = pickle.dumps({b"data": _Evil(), b"labels": [0]}, protocol=2)
    with pytest.raises(cifar.UnsafePickleError, match="refusing to unpickle posix.getcwd|refusing to unpickle os.getcwd"):
        cifar.load_batch(raw)
    # inside a whole data set too
    path, *_ = write_official(tmp_path, archive=False)
    (path / "data_batch_3").write_bytes(raw)
    with pytest.raises(cifar.UnsafePickleError):
        cifar.load(path, cache=False)


def test_bad_batch_content_is_a_clear_error():
    with pytest.raises(ValueError, match="needs 'data' and 'labels'"):
        cifar.load_batch(pickle.dumps({b"x": 1}, protocol=2))
    with pytest.raises(ValueError, match="uint8"):
        cifar.load_batch(pickle.dumps({b"data": np.zeros((2, 5), np.uint8), b"labels": [0, 1]}, protocol=2))


@pytest.fixture
def http_dir(tmp_path):
    """Serve a folder on 127.0.0.1; yields (folder, base URL)."""
    root = tmp_path / "srv"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _md5(p):
    return hashlib.md5(Path(p).read_bytes()).hexdigest()


def test_download_good_checksum_loads(http_dir, tmp_path, monkeypatch):
    root, base = http_dir
    archive, x_tr, y_tr, *_ = write_official(root, archive=True)
    dest = tmp_path / "dl"
    monkeypatch.setattr(cifar, "candidates", lambda: [tmp_path / "none"])
    monkeypatch.delenv(cifar.ENV_DATA, raising=False)
    d = cifar.load(cache_folder=dest, download_if_missing=True, url=f"{base}/{archive.name}", md5=_md5(archive))
    assert d.layout == "official" and d.source == str(dest / cifar.OFFICIAL_DIR)
    np.testing.assert_array_equal(d.x_train, x_tr)
    np.testing.assert_array_equal(d.y_train, y_tr)
    assert not [p for p in dest.iterdir() if p.name.startswith(".cifar10-download")]  # temp work folder removed


def test_download_bad_checksum_leaves_nothing(http_dir, tmp_path):
    root, base = http_dir
    archive, *_ = write_official(root, archive=True)
    dest = tmp_path / "dl"
    with pytest.raises(cifar.ChecksumError, match="expected 0{32}"):
        cifar.download(dest, url=f"{base}/{archive.name}", md5="0" * 32)
    assert list(dest.iterdir()) == []


def test_download_path_traversal_is_blocked(http_dir, tmp_path):
    root, base = http_dir
    evil = root / "evil.tar.gz"
    with tarfile.open(evil, "w:gz") as tar:
        _add(tar, f"{cifar.OFFICIAL_DIR}/{cifar.TEST_BATCH}", b"x")
        _add(tar, "../../escaped.txt", b"owned")
    dest = tmp_path / "dl"
    with pytest.raises(tarfile.FilterError):
        cifar.download(dest, url=f"{base}/{evil.name}", md5=_md5(evil))
    assert list(dest.iterdir()) == []
    assert not list(tmp_path.rglob("escaped.txt"))


def test_download_unreachable_is_a_clear_error(tmp_path):
    with pytest.raises(cifar.DataNotFoundError, match="could not download"):
        cifar.download(tmp_path / "dl", url="http://127.0.0.1:9/cifar.tar.gz", timeout=5)
    assert list((tmp_path / "dl").iterdir()) == []


def test_first_per_class():
    y = np.array([3, 0, 3, 1, 0, 2, 4, 5, 6, 7, 8, 9, 1, 2, 4, 5, 6, 7, 8, 9])
    idx = cifar.first_per_class(y, 2)
    assert len(idx) == 20 and list(idx[:4]) == [1, 4, 3, 12]
    with pytest.raises(ValueError, match="fewer than 3"):
        cifar.first_per_class(y, 3)
