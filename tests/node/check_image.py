"""Check the built image with runc alone: it runs as uid 65532, `headroom --help` works
with a read-only root, and how big it is. No container engine, no registry.

Usage: python3 tests/node/check_image.py IMAGE.tar RUNC
(build-image.sh --check-image runs it after the build).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

WANT_UID = 65532


def _blob(tar: tarfile.TarFile, digest: str) -> Any:
    member = tar.extractfile("blobs/sha256/" + digest.split(":", 1)[1])
    assert member is not None
    return member


def unpack(image: Path, rootfs: Path) -> dict[str, Any]:
    """Apply the image's layers in order (whiteouts honoured); return its config."""
    with tarfile.open(image) as tar:
        index = json.load(_blob_or_file(tar, "index.json"))
        manifest = json.load(_blob(tar, index["manifests"][0]["digest"]))
        config: dict[str, Any] = json.load(_blob(tar, manifest["config"]["digest"]))
        for layer in manifest["layers"]:
            with tarfile.open(fileobj=_blob(tar, layer["digest"]), mode="r:*") as lt:
                for member in lt:
                    parent, _, name = member.name.rpartition("/")
                    if name.startswith(".wh."):
                        target = rootfs / parent / name[len(".wh.") :]
                        if name == ".wh..wh..opq":
                            for child in (rootfs / parent).iterdir():
                                _remove(child)
                        else:
                            _remove(target)
                        continue
                    lt.extract(
                        member, rootfs, set_attrs=True, numeric_owner=True, filter="fully_trusted"
                    )
        config["_layer_sizes"] = [layer["size"] for layer in manifest["layers"]]
    return config


def _blob_or_file(tar: tarfile.TarFile, name: str) -> Any:
    member = tar.extractfile(name)
    assert member is not None
    return member


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def run(
    runc: str, bundle: Path, config: dict[str, Any], args: list[str]
) -> subprocess.CompletedProcess[str]:
    (bundle / "config.json").unlink(missing_ok=True)
    subprocess.run([runc, "spec", "--bundle", str(bundle)], check=True)
    spec_path = bundle / "config.json"
    spec = json.loads(spec_path.read_text())
    user = config["config"].get("User", "0:0")
    uid, _, gid = user.partition(":")
    spec["process"]["terminal"] = False
    spec["process"]["user"] = {"uid": int(uid), "gid": int(gid or uid)}
    spec["process"]["args"] = args
    spec["process"]["env"] = config["config"].get("Env", [])
    spec["root"] = {"path": "rootfs", "readonly": True}
    spec_path.write_text(json.dumps(spec))
    name = f"headroom-image-check-{os.getpid()}"
    try:
        return subprocess.run(
            [runc, "run", "--bundle", str(bundle), name],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        subprocess.run([runc, "delete", "--force", name], capture_output=True, check=False)


def main() -> int:
    image, runc = Path(sys.argv[1]), sys.argv[2]
    with tempfile.TemporaryDirectory(prefix="headroom-image-check-") as tmp:
        bundle = Path(tmp)
        rootfs = bundle / "rootfs"
        rootfs.mkdir()
        config = unpack(image, rootfs)
        cfg = config["config"]
        print(
            f"image config: User={cfg.get('User')} Entrypoint={cfg.get('Entrypoint')} Cmd={cfg.get('Cmd')}"
        )
        sizes = config["_layer_sizes"]
        unpacked = sum(
            f.stat().st_size for f in rootfs.rglob("*") if f.is_file() and not f.is_symlink()
        )
        print(
            f"image size: {sum(sizes) / 1e6:.1f} MB compressed in {len(sizes)} layers, {unpacked / 1e6:.1f} MB unpacked"
        )
        entry = cfg.get("Entrypoint") or []
        ident = run(runc, bundle, config, ["id", "-u"])
        helped = run(runc, bundle, config, [*entry, "--help"])
    failures = []
    if cfg.get("User") != f"{WANT_UID}:{WANT_UID}" or ident.stdout.strip() != str(WANT_UID):
        failures.append(
            f"runs as {ident.stdout.strip()!r} ({ident.stderr.strip()}), not {WANT_UID}"
        )
    if helped.returncode != 0 or "agent" not in helped.stdout:
        failures.append(f"`headroom --help` exited {helped.returncode}: {helped.stderr[-2000:]}")
    print(f"uid in the container: {ident.stdout.strip()}")
    print("headroom --help: " + (helped.stdout.splitlines() or ["(nothing)"])[0])
    for failure in failures:
        print(f"FAILED: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
