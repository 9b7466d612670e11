"""Downloads against a local http.server on 127.0.0.1: verification, caching, failures."""

import gzip
import hashlib
import os
import socket
import threading
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from tinyprune.datasets import download as dl
from tinyprune.datasets import loaders
from tinyprune.datasets.idx import write_idx

PROXY_VARS = ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY")


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """No real cache, env, system folder, proxy, or non-loopback connection."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("TINYPRUNE_DATA", raising=False)
    monkeypatch.setattr(loaders, "SYSTEM_DATA_DIRS", (str(tmp_path / "system"),))
    for var in PROXY_VARS:
        monkeypatch.delenv(var, raising=False)
    for name, info in list(loaders.DATASETS.items()):
        monkeypatch.setitem(loaders.DATASETS, name, replace(info, mirrors=()))
    real = socket.create_connection

    def loopback_only(address, *args, **kwargs):
        if address[0] not in ("127.0.0.1", "localhost"):
            raise AssertionError(f"test tried to contact {address}")
        return real(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", loopback_only)


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server API)
        srv = self.server
        srv.hits.append(self.path)
        mode, body = srv.routes.get(self.path, ("missing", b""))
        if mode == "missing":
            self.send_error(404)
            return
        if mode == "hang":
            srv.release.wait(10)
            return
        self.send_response(200)
        announced = len(body) * 2 if mode == "short" else len(body)
        self.send_header("Content-Length", str(announced))
        self.end_headers()
        self.wfile.write(body[: len(body) // 2] if mode == "short" else body)
        self.close_connection = True

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    httpd.routes, httpd.hits, httpd.release = {}, [], threading.Event()
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    yield httpd
    httpd.release.set()
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


@pytest.fixture
def closed_port_url():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now: connection refused
    return f"http://127.0.0.1:{port}/"


def _fake_dataset(tmp_path, name="mnist", n_train=30, n_test=20, seed=0):
    """Write a tiny MNIST-shaped dataset; return (bytes by file name, records)."""
    rng = np.random.default_rng(seed)
    arrays = [rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
              (np.arange(n_train) % 10).astype(np.uint8),
              rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
              (np.arange(n_test) % 10).astype(np.uint8)]
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    blobs, records = {}, []
    for rec, arr in zip(loaders.DATASETS[name].files, arrays, strict=True):
        write_idx(src / rec.filename, arr)
        raw = (src / rec.filename).read_bytes()
        decoded = gzip.decompress(raw)
        blobs[rec.filename] = raw
        records.append(dl.FileRecord(rec.filename, len(decoded),
                                     gzip_md5=hashlib.md5(raw).hexdigest(),
                                     decoded_sha256=hashlib.sha256(decoded).hexdigest()))
    return blobs, tuple(records)


def _serve(server, blobs, prefix="/good/", mode="ok"):
    for fname, raw in blobs.items():
        server.routes[prefix + fname] = (mode, raw)
    return server.url + prefix


def _register(monkeypatch, records, mirrors, name="mnist"):
    info = replace(loaders.DATASETS[name], files=records, mirrors=tuple(mirrors))
    monkeypatch.setitem(loaders.DATASETS, name, info)


def _visible_and_hidden(folder):
    return sorted(os.listdir(folder)) if os.path.isdir(folder) else []


def test_good_download_is_verified_and_cached(tmp_path, server, monkeypatch):
    blobs, records = _fake_dataset(tmp_path)
    _register(monkeypatch, records, [_serve(server, blobs)])
    ds = loaders.load_dataset("mnist", download=True)
    cache = tmp_path / "cache" / "tinyprune" / "mnist"
    assert ds.source == str(cache)
    assert ds.x_train.shape == (30, 1, 28, 28) and ds.y_test.shape == (20,)
    assert _visible_and_hidden(cache) == sorted(blobs)  # no temp files left
    for rec in records:
        assert dl.checksum_status(cache / rec.filename, rec) == "verified"
    assert len(server.hits) == 4
    again = loaders.load_dataset("mnist", download=True)  # served from the cache
    assert len(server.hits) == 4
    np.testing.assert_array_equal(again.x_train, ds.x_train)


def test_download_goes_to_root_or_tinyprune_data(tmp_path, server, monkeypatch):
    blobs, records = _fake_dataset(tmp_path)
    _register(monkeypatch, records, [_serve(server, blobs)])
    ds = loaders.load_mnist(tmp_path / "mine", download=True)
    assert ds.source == str(tmp_path / "mine")
    monkeypatch.setenv("TINYPRUNE_DATA", str(tmp_path / "shared"))
    folder = loaders.download_dataset("mnist")
    assert folder == tmp_path / "shared" / "mnist"
    assert _visible_and_hidden(folder) == sorted(blobs)


def test_wrong_checksum_is_rejected_and_not_cached(tmp_path, server, monkeypatch):
    blobs, records = _fake_dataset(tmp_path)
    tampered = dict(blobs)
    name = records[0].filename
    tampered[name] = gzip.compress(gzip.decompress(blobs[name])[:-1] + b"\x01", mtime=0)
    url = _serve(server, tampered)
    dest = tmp_path / "dest"
    with pytest.raises(dl.DownloadError, match="checksum mismatch") as e:
        dl.download_file(records[0], dest, [url])
    assert _visible_and_hidden(dest) == []
    assert url + name in e.value.attempts[0]
    _register(monkeypatch, records, [url])
    with pytest.raises(loaders.DatasetNotFoundError, match="checksum mismatch"):
        loaders.load_dataset("mnist", download=True)
    cache = tmp_path / "cache" / "tinyprune" / "mnist"
    assert name not in _visible_and_hidden(cache)
    assert not any(f.startswith(".") for f in _visible_and_hidden(cache))


def test_server_dying_mid_transfer_leaves_no_partial_file(tmp_path, server):
    blobs, records = _fake_dataset(tmp_path)
    url = _serve(server, blobs, prefix="/short/", mode="short")
    dest = tmp_path / "dest"
    with pytest.raises(dl.DownloadError, match="connection closed after"):
        dl.download_file(records[0], dest, [url])
    assert _visible_and_hidden(dest) == []
    good = _serve(server, blobs)
    path = dl.download_file(records[0], dest, [url, good])  # falls through to a good mirror
    assert _visible_and_hidden(dest) == [records[0].filename] and path.endswith(
        records[0].filename)


def test_unreachable_and_404_mirrors_fall_through(tmp_path, server, monkeypatch,
                                                  closed_port_url):
    blobs, records = _fake_dataset(tmp_path)
    good = _serve(server, blobs)
    _register(monkeypatch, records, [closed_port_url, server.url + "/nothing-here/", good])
    ds = loaders.load_dataset("mnist", download=True)
    assert ds.y_train.shape == (30,)
    assert sum(h.startswith("/nothing-here/") for h in server.hits) == 4
    assert sum(h.startswith("/good/") for h in server.hits) == 4


def test_mirrors_argument_overrides_registry(tmp_path, server, monkeypatch, closed_port_url):
    blobs, records = _fake_dataset(tmp_path)
    _register(monkeypatch, records, [closed_port_url])
    ds = loaders.load_mnist(download=True, mirrors=[_serve(server, blobs)])
    assert ds.x_test.shape == (20, 1, 28, 28)
    with pytest.raises(TypeError, match="mirrors: expected a sequence of URL strings"):
        loaders.load_mnist(download=True, mirrors="http://127.0.0.1/")


def test_timeout_moves_on(tmp_path, server):
    blobs, records = _fake_dataset(tmp_path)
    hang = _serve(server, blobs, prefix="/hang/", mode="hang")
    good = _serve(server, blobs)
    dl.download_file(records[1], tmp_path / "d", [hang, good], timeout=0.3)
    assert _visible_and_hidden(tmp_path / "d") == [records[1].filename]


def test_all_mirrors_failing_explains_and_leaves_nothing(tmp_path, monkeypatch, closed_port_url):
    _, records = _fake_dataset(tmp_path)
    _register(monkeypatch, records, [closed_port_url])
    with pytest.raises(loaders.DatasetNotFoundError) as e:
        loaders.load_dataset("mnist", download=True)
    msg = str(e.value)
    assert "The download failed" in msg and closed_port_url in msg
    assert "root=" in msg and "TINYPRUNE_DATA" in msg
    assert _visible_and_hidden(tmp_path / "cache" / "tinyprune" / "mnist") == []


@pytest.mark.parametrize("name", ["fashion-mnist", "mnist"])
def test_no_data_and_no_download_explains_the_options(tmp_path, name):
    with pytest.raises(loaders.DatasetNotFoundError) as e:
        loaders.load_dataset(name, root=tmp_path / "empty")
    assert isinstance(e.value, FileNotFoundError)
    msg = str(e.value)
    for rec in loaders.DATASETS[name].files:
        assert rec.filename in msg
    assert "root=" in msg and "TINYPRUNE_DATA" in msg and "download=True" in msg
    assert str(tmp_path / "empty") in msg and str(tmp_path / "system") in msg
    assert ("apt-get install dataset-fashion-mnist" in msg) == (name == "fashion-mnist")


def test_oversized_body_is_refused(tmp_path, server):
    rec = dl.FileRecord("big.gz", decoded_size=100, decoded_sha256="0" * 64)
    server.routes["/big/big.gz"] = ("ok", bytes(2 * 2**20))
    with pytest.raises(dl.DownloadError, match="expected at most"):
        dl.download_file(rec, tmp_path / "d", [server.url + "/big/"])
    assert _visible_and_hidden(tmp_path / "d") == []


def test_download_file_argument_checks(tmp_path):
    rec = dl.FileRecord("a.gz", 10, gzip_md5="0" * 32)
    with pytest.raises(TypeError, match="mirrors: expected a sequence"):
        dl.download_file(rec, tmp_path, "http://127.0.0.1/")
    with pytest.raises(ValueError, match="mirrors: expected at least one"):
        dl.download_file(rec, tmp_path, [])
    with pytest.raises(ValueError, match="timeout: expected a positive number"):
        dl.download_file(rec, tmp_path, ["http://127.0.0.1/"], timeout=0)
    with pytest.raises(dl.DownloadError, match="expected an http:// or https:// URL"):
        dl.download_file(rec, tmp_path / "d", ["file:///etc/"])
    assert _visible_and_hidden(tmp_path / "d") == []


def test_checksum_status_accepts_recompressed_and_plain_copies(tmp_path):
    payload = b"\x00\x00\x08\x01\x00\x00\x00\x05hello"
    upstream = gzip.compress(payload, compresslevel=9, mtime=0)
    rec = dl.FileRecord("f.gz", len(payload), gzip_md5=hashlib.md5(upstream).hexdigest(),
                        decoded_sha256=hashlib.sha256(payload).hexdigest())
    md5_only = replace(rec, decoded_sha256=None)
    (tmp_path / "up.gz").write_bytes(upstream)
    (tmp_path / "re.gz").write_bytes(gzip.compress(payload, compresslevel=1, mtime=12345))
    (tmp_path / "plain").write_bytes(payload)
    (tmp_path / "bad.gz").write_bytes(gzip.compress(payload[:-1] + b"!", mtime=0))
    assert upstream != (tmp_path / "re.gz").read_bytes()
    assert dl.checksum_status(tmp_path / "up.gz", rec) == "verified"
    assert dl.checksum_status(tmp_path / "re.gz", rec) == "verified"
    assert dl.checksum_status(tmp_path / "plain", rec) == "verified"
    assert dl.checksum_status(tmp_path / "bad.gz", rec) == "mismatch"
    assert dl.checksum_status(tmp_path / "nope", rec) == "missing"
    assert dl.checksum_status(tmp_path / "up.gz", md5_only) == "verified"
    assert dl.checksum_status(tmp_path / "re.gz", md5_only) == "mismatch"
    assert dl.checksum_status(tmp_path / "plain", md5_only) == "unverifiable"
    (tmp_path / "junk.gz").write_bytes(b"\x1f\x8bnot really gzip")
    assert dl.checksum_status(tmp_path / "junk.gz", rec) == "mismatch"


def test_no_mirrors_configured(tmp_path):
    with pytest.raises(loaders.DatasetNotFoundError, match="no mirror URLs configured"):
        loaders.load_mnist(download=True)  # the fixture emptied the registry's mirrors
