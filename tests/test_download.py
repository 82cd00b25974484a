"""Tests of asdkit.data.download against a local HTTP server on 127.0.0.1 (no other network)."""
from __future__ import annotations

import dataclasses
import http.server
import json
import os
import re
import shutil
import socket
import threading
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from asdkit.data import download as dl
from asdkit.data.dataset import find_machines
from asdkit.errors import ConfigError, DownloadError

# --------------------------------------------------------------------------- helpers and fixtures


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(autouse=True)
def _fast_retries(monkeypatch):
    """No pause between attempts."""
    monkeypatch.setattr(dl, "RETRY_BACKOFF_S", 0.0)


def _wav_bytes(rng, n=3000) -> bytes:
    return rng.integers(0, 256, size=n, dtype=np.uint8).tobytes()


def make_machine_zip(path: Path, machine: str, rng, *, splits=("train", "test"), n=3,
                     attributes: bool = True, anonymous_test: bool = False) -> dict[str, bytes]:
    """Write a zip in the organisers' layout; return member name -> content."""
    members: dict[str, bytes] = {}
    for split in splits:
        for i in range(n):
            if split == "test" and anonymous_test:
                name = f"section_00_{i + 1:04d}.wav"
            else:
                label = "normal" if split == "train" or i % 2 == 0 else "anomaly"
                name = f"section_00_source_{split}_{label}_{i:04d}_noAttribute.wav"
            members[f"{machine}/{split}/{name}"] = _wav_bytes(rng)
    if attributes:
        rows = ["file_name,d1p,d1v"] + [f"{m},noAttribute," for m in members if m.endswith(".wav")]
        members[f"{machine}/attributes_00.csv"] = ("\n".join(rows) + "\n").encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"{machine}/", b"")
        for name, data in members.items():
            zf.writestr(name, data)
    return members


def corrupt_zip(path: Path) -> None:
    """Flip bytes inside member data, keeping the central directory valid."""
    data = bytearray(path.read_bytes())
    for k in range(200, 260):
        data[k] ^= 0xFF
    path.write_bytes(bytes(data))


@dataclass
class Server:
    """A tiny file server with switches to misbehave."""

    folder: Path
    url: str = ""
    requests: list = field(default_factory=list)   # (path, Range header or None, status)
    cut_once: set = field(default_factory=set)     # file names whose first reply stops half-way
    cut_always: set = field(default_factory=set)   # file names whose every reply stops half-way
    stall_once: set = field(default_factory=set)   # file names whose first reply stalls half-way
    ignore_range: bool = False                     # answer 200 to range requests
    status: dict = field(default_factory=dict)     # file name -> forced HTTP status
    meta: dict = field(default_factory=dict)       # published sums: URL path -> body (bytes)
    meta_requests: list = field(default_factory=list)  # their requests, kept apart from the zips'
    httpd: http.server.ThreadingHTTPServer | None = None
    thread: threading.Thread | None = None

    def ranges(self, name: str) -> list:
        return [r for p, r, _ in self.requests if p == name]

    def stop(self) -> None:
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None


def _handler(srv: Server):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # keep the test output clean
            pass

        def do_GET(self):
            if self.path.endswith("/md5sums.txt") or "/api/" in self.path:
                body = srv.meta.get(self.path)
                srv.meta_requests.append((self.path, 200 if body is not None else 404))
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            name = self.path.rsplit("/", 1)[-1]
            rng_header = self.headers.get("Range")
            path = srv.folder / name
            if name in srv.status:
                code = srv.status[name]
                srv.requests.append((name, rng_header, code))
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if not path.is_file():
                srv.requests.append((name, rng_header, 404))
                self.send_error(404)
                return
            data = path.read_bytes()
            size = len(data)
            start = 0
            m = re.fullmatch(r"bytes=(\d+)-", rng_header or "")
            if m and not srv.ignore_range:
                start = int(m.group(1))
                if start >= size:
                    srv.requests.append((name, rng_header, 416))
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{size}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
                srv.requests.append((name, rng_header, 206))
            else:
                self.send_response(200)
                srv.requests.append((name, rng_header, 200))
            body = data[start:]
            self.send_header("Content-Type", "application/zip")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Accept-Ranges", "bytes")
            self.end_headers()
            first = len(srv.ranges(name)) == 1
            if name in srv.cut_always or (name in srv.cut_once and first):
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
                return
            if name in srv.stall_once and first:
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                time.sleep(1.0)
                self.close_connection = True
                return
            self.wfile.write(body)

    return Handler


@pytest.fixture
def server(tmp_path):
    srv = Server(folder=tmp_path / "srv")
    srv.folder.mkdir()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(srv))
    httpd.daemon_threads = True
    httpd.block_on_close = False
    srv.httpd = httpd
    srv.url = f"http://127.0.0.1:{httpd.server_address[1]}/files"
    srv.thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    srv.thread.start()
    yield srv
    srv.stop()


@pytest.fixture
def dev_zip(server, rng):
    """``dev_fan.zip`` in the organisers' layout, served by ``server``; returns (path, members)."""
    path = server.folder / "dev_fan.zip"
    members = make_machine_zip(path, "fan", rng)
    return path, members


def _assert_unpacked(machine_dir: Path, members: dict[str, bytes]) -> None:
    for name, data in members.items():
        rel = name.split("/", 1)[1]
        assert (machine_dir / rel).read_bytes() == data, name


# --------------------------------------------------------------------------- planning


def test_plan_dev_urls():
    items = dl.plan_downloads(parts=("dev",))
    assert [i.machine for i in items] == list(dl.DEV_MACHINES)
    for i in items:
        assert i.part == "dev"
        assert i.filename == f"dev_{i.machine}.zip"
        assert i.url == f"https://zenodo.org/record/10902294/files/dev_{i.machine}.zip"
        assert i.dest_subdir == "dev_data/raw"


def test_plan_eval_urls_and_r2():
    items = dl.plan_downloads(parts=("train", "test"))
    assert len(items) == 2 * len(dl.EVAL_MACHINES)
    by = {(i.machine, i.part): i for i in items}
    assert by["3DPrinter", "train"].url == \
        "https://zenodo.org/records/11259435/files/eval_data_3DPrinter_train_r2.zip"
    assert by["RoboticArm", "train"].filename == "eval_data_RoboticArm_train_r2.zip"
    assert by["Scanner", "train"].url == "https://zenodo.org/records/11259435/files/eval_data_Scanner_train.zip"
    assert by["3DPrinter", "test"].url == "https://zenodo.org/records/11363076/files/eval_data_3DPrinter_test.zip"
    assert by["RoboticArm", "test"].filename == "eval_data_RoboticArm_test.zip"
    assert {i.dest_subdir for i in items} == {"eval_data/raw"}


def test_plan_mixed_machines_case_and_mirror():
    items = dl.plan_downloads(parts=["dev", "test"], machines=["toycar", "HairDryer", "ToyCar"],
                              mirror="http://127.0.0.1:9/m/")
    assert [(i.machine, i.part) for i in items] == [("ToyCar", "dev"), ("HairDryer", "test")]
    assert items[0].url == "http://127.0.0.1:9/m/dev_ToyCar.zip"
    assert items[1].url == "http://127.0.0.1:9/m/eval_data_HairDryer_test.zip"
    with pytest.raises(dataclasses.FrozenInstanceError):
        items[0].url = "x"


@pytest.mark.parametrize("kwargs, words", [
    (dict(parts=("dev",), machines=["toaster"]), ["toaster", "fan", "3DPrinter"]),
    (dict(parts=("eval",)), ["eval", "dev", "train", "test"]),
    (dict(parts=("dev",), machines=["HairDryer"]), ["HairDryer", "fan"]),
    (dict(parts=("dev",), mirror="127.0.0.1/files"), ["mirror"]),
])
def test_plan_errors(kwargs, words):
    with pytest.raises(ConfigError) as err:
        dl.plan_downloads(**kwargs)
    for w in words:
        assert w in str(err.value)


# --------------------------------------------------------------------------- fetch


def test_fetch_resumes_after_cut(server, dev_zip, tmp_path):
    path, _ = dev_zip
    server.cut_once.add(path.name)
    out = dl.fetch(f"{server.url}/{path.name}", tmp_path / "got" / path.name, progress=False)
    assert out.read_bytes() == path.read_bytes()
    assert not out.with_name(out.name + ".part").exists()
    ranges = server.ranges(path.name)
    assert ranges[0] is None
    assert ranges[1] == f"bytes={path.stat().st_size // 2}-"
    assert [s for p, _, s in server.requests] == [200, 206]


def test_fetch_resumes_part_from_earlier_run(server, dev_zip, tmp_path):
    path, _ = dev_zip
    dest = tmp_path / "got" / path.name
    dest.parent.mkdir()
    dest.with_name(dest.name + ".part").write_bytes(path.read_bytes()[:1000])
    dl.fetch(f"{server.url}/{path.name}", dest, progress=False)
    assert dest.read_bytes() == path.read_bytes()
    assert server.ranges(path.name) == ["bytes=1000-"]


def test_fetch_part_already_complete(server, dev_zip, tmp_path):
    path, _ = dev_zip
    dest = tmp_path / path.name
    dest.with_name(dest.name + ".part").write_bytes(path.read_bytes())
    dl.fetch(f"{server.url}/{path.name}", dest, progress=False)
    assert dest.read_bytes() == path.read_bytes()
    assert [s for _, _, s in server.requests] == [416]


def test_fetch_server_ignoring_range_restarts_from_zero(server, dev_zip, tmp_path):
    path, _ = dev_zip
    server.ignore_range = True
    dest = tmp_path / path.name
    dest.with_name(dest.name + ".part").write_bytes(b"\x00" * 1500)  # wrong bytes: must be overwritten
    dl.fetch(f"{server.url}/{path.name}", dest, progress=False)
    assert dest.read_bytes() == path.read_bytes()
    assert server.ranges(path.name) == ["bytes=1500-"]
    assert [s for _, _, s in server.requests] == [200]


def test_fetch_timeout_resumes(server, dev_zip, tmp_path):
    path, _ = dev_zip
    server.stall_once.add(path.name)
    dest = dl.fetch(f"{server.url}/{path.name}", tmp_path / path.name, progress=False, timeout=0.3)
    assert dest.read_bytes() == path.read_bytes()
    assert server.ranges(path.name)[1] == f"bytes={path.stat().st_size // 2}-"


def test_fetch_with_progress_bar(server, dev_zip, tmp_path, monkeypatch):
    path, _ = dev_zip
    monkeypatch.delenv("CI", raising=False)
    server.cut_once.add(path.name)
    dest = dl.fetch(f"{server.url}/{path.name}", tmp_path / path.name, progress=True, chunk_size=512)
    assert dest.read_bytes() == path.read_bytes()


def test_fetch_retries_exhausted(server, dev_zip, tmp_path):
    path, _ = dev_zip
    server.cut_always.add(path.name)
    url = f"{server.url}/{path.name}"
    dest = tmp_path / path.name
    with pytest.raises(DownloadError) as err:
        dl.fetch(url, dest, retries=2, progress=False)
    msg = str(err.value)
    assert url in msg and "3 attempt" in msg and "kept" in msg and "resume" in msg
    assert len(server.requests) == 3
    part = dest.with_name(dest.name + ".part")
    assert part.is_file() and 0 < part.stat().st_size < path.stat().st_size
    assert not dest.exists()
    # the kept .part is resumed by a later run once the server behaves
    kept = part.stat().st_size
    server.cut_always.clear()
    dl.fetch(url, dest, progress=False)
    assert dest.read_bytes() == path.read_bytes()
    assert server.requests[-1][1:] == (f"bytes={kept}-", 206)


def test_fetch_server_errors(server, dev_zip, tmp_path):
    path, _ = dev_zip
    server.status[path.name] = 503
    with pytest.raises(DownloadError, match="after 2 attempt"):
        dl.fetch(f"{server.url}/{path.name}", tmp_path / "a.zip", retries=1, progress=False)
    assert len(server.requests) == 2
    server.requests.clear()
    with pytest.raises(DownloadError, match="404") as err:  # a client error is not retried
        dl.fetch(f"{server.url}/nothing.zip", tmp_path / "b.zip", retries=3, progress=False)
    assert "nothing.zip" in str(err.value)
    assert len(server.requests) == 1


def test_fetch_connection_refused(tmp_path):
    with socket.socket() as s:  # a port that nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DownloadError, match="Nothing was received"):
        dl.fetch(f"http://127.0.0.1:{port}/x.zip", tmp_path / "x.zip", retries=1, progress=False, timeout=2)


# --------------------------------------------------------------------------- unpack


def test_unpack_refuses_unsafe_members(tmp_path):
    for bad in ("../evil.txt", "/abs/evil.txt", "fan/../../evil.txt"):
        z = tmp_path / "bad.zip"
        with zipfile.ZipFile(z, "w") as zf:
            zf.writestr("fan/train/section_00_source_train_normal_0000_noAttribute.wav", b"ok")
            zf.writestr(bad, b"evil")
        dest = tmp_path / "out" / "raw"
        with pytest.raises(DownloadError, match="'..'") as err:
            dl.unpack(z, dest)
        assert "bad.zip" in str(err.value)
        assert not z.exists()
        assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "out" / "evil.txt").exists()
        assert not dest.exists() or not any(dest.iterdir())


def test_unpack_removes_stale_temp_folders(tmp_path, rng):
    dest = tmp_path / "raw"
    stale = dest / ".asdkit-unpack-999999999-abc" / "fan" / "train"
    stale.mkdir(parents=True)
    (stale / "section_00_source_train_normal_0000_noAttribute.wav").write_bytes(b"x")
    z = tmp_path / "dev_fan.zip"
    members = make_machine_zip(z, "fan", rng)
    assert dl.unpack(z, dest) == ["fan"]
    assert sorted(p.name for p in dest.iterdir()) == ["fan"]
    _assert_unpacked(dest / "fan", members)


# --------------------------------------------------------------------------- download


def test_download_clean(server, dev_zip, tmp_path):
    path, members = dev_zip
    root = tmp_path / "data"
    out = dl.download(root, parts=("dev",), machines=["fan"], mirror=server.url, progress=False)
    assert out == [root / "dev_data" / "raw" / "fan"]
    _assert_unpacked(out[0], members)
    assert sorted(p.name for p in out[0].iterdir()) == ["attributes_00.csv", "test", "train"]
    assert sorted(p.name for p in (root / "dev_data" / "raw").iterdir()) == ["fan"]  # no temp folder
    assert (root / ".downloads" / "dev_fan.zip.done").is_file()
    assert not (root / ".downloads" / "dev_fan.zip").exists()  # keep_zip=False
    assert list(find_machines(root)) == ["fan"]


def test_download_keep_zip_and_resume_after_cut(server, dev_zip, tmp_path):
    path, members = dev_zip
    server.cut_once.add(path.name)
    root = tmp_path / "data"
    out = dl.download(root, machines="fan", mirror=server.url, progress=False, keep_zip=True)
    _assert_unpacked(out[0], members)
    assert (root / ".downloads" / "dev_fan.zip").read_bytes() == path.read_bytes()
    assert server.ranges(path.name)[1] is not None


def test_download_idempotent_without_network(server, dev_zip, tmp_path):
    root = tmp_path / "data"
    first = dl.download(root, machines=["fan"], mirror=server.url, progress=False)
    n = len(server.requests)
    server.stop()
    second = dl.download(root, machines=["fan"], mirror=server.url, progress=False, retries=0, timeout=1)
    assert second == first
    assert len(server.requests) == n


def test_download_redoes_item_whose_folder_was_deleted(server, dev_zip, tmp_path):
    path, members = dev_zip
    root = tmp_path / "data"
    out = dl.download(root, machines=["fan"], mirror=server.url, progress=False)
    shutil.rmtree(out[0])
    dl.download(root, machines=["fan"], mirror=server.url, progress=False)
    _assert_unpacked(out[0], members)
    assert len(server.requests) == 2


@pytest.mark.parametrize("how", ["crc", "garbage"])
def test_download_corrupt_archive(server, dev_zip, tmp_path, how):
    path, members = dev_zip
    if how == "crc":
        corrupt_zip(path)
        assert zipfile.is_zipfile(path)
    else:
        path.write_bytes(os.urandom(5000))
    root = tmp_path / "data"
    with pytest.raises(DownloadError) as err:
        dl.download(root, machines=["fan"], mirror=server.url, progress=False)
    msg = str(err.value)
    assert "dev_fan.zip" in msg and "deleted" in msg and "re-run" in msg
    raw = root / "dev_data" / "raw"
    assert not (raw / "fan").exists()
    assert not raw.exists() or list(raw.iterdir()) == []  # no temp folder left
    assert not (root / ".downloads" / "dev_fan.zip").exists()
    assert not (root / ".downloads" / "dev_fan.zip.done").exists()
    # once the server has a good archive, a re-run downloads it again
    make_machine_zip(path, "fan", np.random.default_rng(1))
    out = dl.download(root, machines=["fan"], mirror=server.url, progress=False)
    assert out == [raw / "fan"]


def test_download_eval_train_and_test_merge(server, tmp_path, rng):
    train = make_machine_zip(server.folder / "eval_data_3DPrinter_train_r2.zip", "3DPrinter", rng,
                             splits=("train",))
    test = make_machine_zip(server.folder / "eval_data_3DPrinter_test.zip", "3DPrinter", rng,
                            splits=("test",), anonymous_test=True)
    root = tmp_path / "data"
    out = dl.download(root, parts=("train", "test"), machines=["3dprinter"], mirror=server.url, progress=False)
    mdir = root / "eval_data" / "raw" / "3DPrinter"
    assert out == [mdir]
    _assert_unpacked(mdir, {k: v for k, v in train.items() if k.endswith(".wav")})
    _assert_unpacked(mdir, {k: v for k, v in test.items() if k.endswith(".wav")})
    assert len(list((mdir / "train").iterdir())) == 3 and len(list((mdir / "test").iterdir())) == 3
    # attributes_00.csv of both zips: one header, the rows of both
    rows = (mdir / "attributes_00.csv").read_text().splitlines()
    assert rows.count("file_name,d1p,d1v") == 1
    assert sum("/train/" in r for r in rows) == 3 and sum("/test/" in r for r in rows) == 3
    assert [p.name for p in (root / "eval_data" / "raw").iterdir()] == ["3DPrinter"]
    assert [s for _, _, s in server.requests] == [200, 200]
    # test first, then train, gives the same folder
    root2 = tmp_path / "data2"
    dl.download(root2, parts=("test", "train"), machines=["3DPrinter"], mirror=server.url, progress=False)
    m2 = root2 / "eval_data" / "raw" / "3DPrinter"
    assert sorted(p.relative_to(m2) for p in m2.rglob("*")) == sorted(p.relative_to(mdir) for p in mdir.rglob("*"))


def test_download_unknown_machine_makes_nothing(tmp_path):
    with pytest.raises(ConfigError, match="toaster"):
        dl.download(tmp_path / "data", machines=["toaster"])
    assert not (tmp_path / "data").exists()


# --------------------------------------------------------------------------- other years


def test_plan_2025_and_2026_records_and_names():
    dev25 = dl.plan_downloads(parts="dev", year=2025)
    assert [i.machine for i in dev25] == ["ToyCar", "ToyTrain", "bearing", "fan", "gearbox", "slider", "valve"]
    assert dev25[0].url == "https://zenodo.org/records/15097779/files/dev_ToyCar.zip"
    ev25 = {(i.machine, i.part): i.url for i in dl.plan_downloads(parts=("train", "test"), year=2025)}
    assert ev25["CoffeeGrinder", "train"] == "https://zenodo.org/records/15392814/files/eval_data_CoffeeGrinder_train.zip"
    assert ev25["ToyRCCar", "test"] == "https://zenodo.org/records/15519362/files/eval_data_ToyRCCar_test.zip"
    assert len(ev25) == 2 * 8
    dev26 = {i.machine: i for i in dl.plan_downloads(parts="dev", year=2026)}
    assert dev26["ToyCar"].filename == "dev_ToyCar_r2.zip"      # re-released
    assert dev26["ToyCar"].url == "https://zenodo.org/records/19336329/files/dev_ToyCar_r2.zip"
    assert dev26["valveEmu"].filename == "dev_valveEmu.zip"
    tr26 = dl.plan_downloads(parts="train", machines=["sander"], year=2026)
    assert tr26[0].url == "https://zenodo.org/records/20151556/files/eval_data_Sander_train.zip"
    assert tr26[0].dest_subdir == "eval_data/raw"


@pytest.mark.parametrize("kwargs, words", [
    ({"year": 2019}, "2024, 2025, 2026"),
    ({"year": 2025, "machines": ["3DPrinter"]}, "DCASE 2025"),     # a 2024 machine asked of 2025
    ({"year": 2026, "machines": ["gearbox"]}, "gearboxEmu"),
])
def test_plan_errors_of_other_years(kwargs, words):
    with pytest.raises(ConfigError, match=words):
        dl.plan_downloads(**kwargs)


def test_download_2025_with_supplemental_then_refuse_another_year(server, tmp_path, rng):
    members = make_machine_zip(server.folder / "dev_fan.zip", "fan", rng)
    sup = {"fan/supplemental/section_00_machine_source_0000_noAttribute.wav": _wav_bytes(rng),
           "fan/supplemental/section_00_noise_source_0000_noAttribute.wav": _wav_bytes(rng)}
    with zipfile.ZipFile(server.folder / "dev_fan.zip", "a") as zf:
        for name, data in sup.items():
            zf.writestr(name, data)
    root = tmp_path / "d25"
    out = dl.download(root, parts="dev", machines="fan", mirror=server.url, progress=False, year=2025)
    _assert_unpacked(out[0], {**members, **sup})
    assert (root / ".downloads" / "year").read_text().strip() == "2025"
    # the zips of the years share names: a root of one year is never filled with another's
    with pytest.raises(ConfigError, match="holds DCASE 2025.*root of its own"):
        dl.download(root, parts="dev", machines="fan", mirror=server.url, progress=False, year=2024)
    # a second run of the same year: no network
    n = len(server.requests)
    dl.download(root, parts="dev", machines="fan", mirror=server.url, progress=False, year=2025)
    assert len(server.requests) == n


def test_cli_download_list_of_2026(capsys):
    from asdkit.cli import main

    assert main(["download", "unused", "--year", "2026", "--parts", "dev", "--machines", "ToyCar", "--list"]) == 0
    assert "dev_ToyCar_r2.zip" in capsys.readouterr().out


# --------------------------------------------------------------------------- published MD5 sums
def test_checksum_sources_and_parsers():
    from asdkit.data import checksums as ck

    assert ck.checksum_source("https://zenodo.org/record/10902294/files/dev_fan.zip") == \
        ("zenodo", "https://zenodo.org/api/records/10902294")
    assert ck.checksum_source("https://zenodo.org/records/11259435/files/eval_data_Scanner_train.zip") == \
        ("zenodo", "https://zenodo.org/api/records/11259435")
    assert ck.checksum_source("http://127.0.0.1:9/m/dev_fan.zip") == ("md5sums", "http://127.0.0.1:9/m/md5sums.txt")
    record = {"files": [{"key": "dev_fan.zip", "checksum": "md5:" + "A" * 32, "size": 3},
                        {"key": "odd.zip", "checksum": "sha256:" + "b" * 64}, {"key": "bad.zip", "checksum": "md5:x"}]}
    assert ck.parse_zenodo_record(record) == {"dev_fan.zip": "a" * 32}
    text = f"{'c' * 32}  dev_fan.zip\n{'d' * 32} *dev_valve.zip\nnot a line\n"
    assert ck.parse_md5sums(text) == {"dev_fan.zip": "c" * 32, "dev_valve.zip": "d" * 32}


def _md5(path: Path) -> str:
    import hashlib

    return hashlib.md5(path.read_bytes()).hexdigest()


def test_download_checks_the_published_md5(server, dev_zip, tmp_path):
    path, members = dev_zip
    sums = "/files/md5sums.txt"
    server.meta[sums] = f"{'0' * 32}  {path.name}\n".encode()            # a sum the zip does not have
    root = tmp_path / "data"
    with pytest.raises(DownloadError, match="MD5 sum.*deleted.*again"):
        dl.download(root, machines=["fan"], mirror=server.url, progress=False)
    assert not (root / ".downloads" / path.name).exists() and not (root / "dev_data").exists()
    server.meta[sums] = f"{_md5(path)}  {path.name}\n".encode()
    out = dl.download(root, machines=["fan"], mirror=server.url, progress=False)
    _assert_unpacked(out[0], members)
    marker = json.loads((root / ".downloads" / (path.name + ".done")).read_text())
    assert marker["md5"] == _md5(path)
    # verify=False never asks for the sums
    n = len(server.meta_requests)
    dl.download(tmp_path / "other", machines=["fan"], mirror=server.url, progress=False, verify=False)
    assert len(server.meta_requests) == n


def test_download_without_published_sums_warns_and_goes_on(server, dev_zip, tmp_path, caplog):
    path, members = dev_zip
    with caplog.at_level("WARNING", logger="asdkit.data.checksums"):
        out = dl.download(tmp_path / "data", machines=["fan"], mirror=server.url, progress=False)
    _assert_unpacked(out[0], members)
    assert "no MD5 sums published" in caplog.text
    assert server.meta_requests == [("/files/md5sums.txt", 404)]


def test_zenodo_record_metadata_gives_the_sums(server, dev_zip):
    from asdkit.data.checksums import read_checksums

    path, _ = dev_zip
    base = server.url.rsplit("/", 1)[0]
    server.meta["/api/records/42"] = json.dumps(
        {"files": [{"key": path.name, "checksum": f"md5:{_md5(path)}"}]}).encode()
    assert read_checksums(f"{base}/records/42/files/{path.name}") == {path.name: _md5(path)}
    server.meta["/api/records/43"] = b"{damaged"
    with pytest.raises(DownloadError, match="damaged"):
        read_checksums(f"{base}/record/43/files/{path.name}")
