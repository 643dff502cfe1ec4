"""Write a one-image OCI image layout from local layer tarballs, with no registry.

The node tier needs base images (a Debian root with Python for the Dockerfile's
``python:3.11-slim-bookworm``, an image holding ``/uv`` for ``ghcr.io/astral-sh/uv``,
the pause image) and cannot pull any. crane cannot set an entrypoint without pulling;
an image layout is only a few JSON documents beside content-addressed blobs, so this
writes them itself: uncompressed layers (their digest is their diff ID), an image
config, a manifest, and ``index.json`` naming the image for ``ctr images import``.

Usage::

    python3 oci_layout.py DIR --name headroom.local/python:3.11 --layer rootfs.tar \
        --env PATH=/usr/bin:/bin --entrypoint '["/pause"]'

prints the manifest digest (``sha256:...``) that ``buildctl --opt
context:IMAGE=oci-layout://NAME@DIGEST`` wants.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

_CHUNK = 1 << 20


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _put_blob(layout: Path, data: bytes) -> tuple[str, int]:
    hexdigest = hashlib.sha256(data).hexdigest()
    (layout / "blobs" / "sha256" / hexdigest).write_bytes(data)
    return f"sha256:{hexdigest}", len(data)


def write_layout(
    layout: Path,
    *,
    name: str,
    layers: list[Path],
    env: list[str],
    entrypoint: list[str] | None,
    cmd: list[str] | None,
    user: str = "",
    workdir: str = "",
    arch: str = "amd64",
) -> str:
    """Write the layout into ``layout`` (created empty); return the manifest digest."""
    blobs = layout / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    (layout / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    layer_descriptors: list[dict[str, Any]] = []
    diff_ids: list[str] = []
    for tar in layers:
        hexdigest = _sha256_file(tar)
        target = blobs / hexdigest
        # The tarball is ours (a temporary file): move it rather than copy 100 MB.
        shutil.move(str(tar), target)
        layer_descriptors.append(
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": f"sha256:{hexdigest}",
                "size": target.stat().st_size,
            }
        )
        diff_ids.append(f"sha256:{hexdigest}")
    config: dict[str, Any] = {"Env": env}
    if entrypoint is not None:
        config["Entrypoint"] = entrypoint
    if cmd is not None:
        config["Cmd"] = cmd
    if user:
        config["User"] = user
    if workdir:
        config["WorkingDir"] = workdir
    image_config = {
        "architecture": arch,
        "os": "linux",
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created_by": "tests/node/oci_layout.py", "comment": name}],
    }
    config_digest, config_size = _put_blob(layout, json.dumps(image_config).encode())
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": config_size,
        },
        "layers": layer_descriptors,
    }
    manifest_digest, manifest_size = _put_blob(layout, json.dumps(manifest).encode())
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": manifest_digest,
                "size": manifest_size,
                "platform": {"architecture": arch, "os": "linux"},
                "annotations": {
                    "io.containerd.image.name": name,
                    "org.opencontainers.image.ref.name": name,
                },
            }
        ],
    }
    (layout / "index.json").write_text(json.dumps(index))
    return manifest_digest


def _go_arch() -> str:
    machine = os.uname().machine
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("layout", type=Path, help="directory to create (must not exist)")
    parser.add_argument("--name", required=True, help="image reference, e.g. headroom.local/x:1")
    parser.add_argument("--layer", type=Path, action="append", default=[], help="layer tarball")
    parser.add_argument("--env", action="append", default=[], help="KEY=VALUE")
    parser.add_argument("--entrypoint", type=json.loads, default=None, help="JSON list")
    parser.add_argument("--cmd", type=json.loads, default=None, help="JSON list")
    parser.add_argument("--user", default="")
    parser.add_argument("--workdir", default="")
    args = parser.parse_args(argv)
    if args.layout.exists():
        print(f"oci_layout: {args.layout} exists", file=sys.stderr)
        return 1
    digest = write_layout(
        args.layout,
        name=args.name,
        layers=args.layer,
        env=args.env,
        entrypoint=args.entrypoint,
        cmd=args.cmd,
        user=args.user,
        workdir=args.workdir,
        arch=_go_arch(),
    )
    print(digest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
