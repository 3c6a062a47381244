#!/usr/bin/env python3
"""Builds a single-layer OCI image-layout tarball that `ctr images import` accepts.

No registry and no docker needed: the layer is assembled from local files, optionally with a
busybox-static userland (/bin/busybox plus one symlink per applet, /etc/passwd, /etc/group, /tmp).
The output is deterministic: the same inputs give the same bytes and digests (fixed mtimes,
owners and order; gzip without a timestamp).

Example:
  scripts/oci-image.py --name localhost/mk8s-test/httpd:1 --busybox \
      --entrypoint /bin/httpd --cmd "-f -p 80 -h /www" \
      --file page.html:/www/index.html -o httpd.tar
"""

import argparse
import gzip
import hashlib
import io
import json
import os
import platform
import shlex
import stat
import subprocess
import sys
import tarfile

FIXED_MTIME = 946684800  # 2000-01-01T00:00:00Z: every entry gets it, so builds are reproducible
CREATED = "2000-01-01T00:00:00Z"
DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

MEDIA_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"

PASSWD = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
GROUP = "root:x:0:\nnogroup:x:65534:\n"


class Layer:
    """The root filesystem of the image: path (without leading '/') -> entry."""

    def __init__(self):
        self.entries = {}  # path -> (kind, mode, data_or_target)

    def add_dir(self, path, mode=0o755):
        path = path.strip("/")
        if not path:
            return
        self.add_parents(path)
        if path not in self.entries:
            self.entries[path] = ("dir", mode, None)

    def add_parents(self, path):
        parent = os.path.dirname(path.strip("/"))
        if parent:
            self.add_dir(parent)

    def add_file(self, path, data, mode=0o644):
        path = path.strip("/")
        if not path:
            raise ValueError("a file needs a destination path inside the image")
        self.add_parents(path)
        self.entries[path] = ("file", mode, data)

    def add_symlink(self, path, target):
        path = path.strip("/")
        self.add_parents(path)
        self.entries[path] = ("symlink", 0o777, target)

    def tar_bytes(self):
        out = io.BytesIO()
        with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for path in sorted(self.entries):
                kind, mode, payload = self.entries[path]
                info = tarfile.TarInfo(path)
                info.mtime = FIXED_MTIME
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                info.mode = mode
                if kind == "dir":
                    info.type = tarfile.DIRTYPE
                    tar.addfile(info)
                elif kind == "symlink":
                    info.type = tarfile.SYMTYPE
                    info.linkname = payload
                    tar.addfile(info)
                else:
                    info.size = len(payload)
                    tar.addfile(info, io.BytesIO(payload))
        return out.getvalue()


def add_busybox(layer, busybox_path):
    if not os.path.isfile(busybox_path):
        sys.exit(f"oci-image: {busybox_path} not found: install busybox-static "
                 f"(apt-get install busybox-static) or pass --busybox-binary")
    with open(busybox_path, "rb") as f:
        layer.add_file("bin/busybox", f.read(), 0o755)
    try:
        listing = subprocess.run([busybox_path, "--list"], check=True, capture_output=True,
                                 text=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        sys.exit(f"oci-image: cannot list the applets of {busybox_path}: {e}")
    for applet in sorted(set(listing.split())):
        if applet != "busybox" and "/" not in applet:
            layer.add_symlink("bin/" + applet, "busybox")
    layer.add_file("etc/passwd", PASSWD.encode())
    layer.add_file("etc/group", GROUP.encode())
    layer.add_dir("tmp", 0o1777)
    layer.add_dir("root", 0o700)


def parse_file_spec(spec):
    """SRC:DEST[:MODE] -> (src, dest, mode or None)."""
    parts = spec.split(":")
    if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
        sys.exit(f"oci-image: --file {spec!r}: expected SRC:DEST or SRC:DEST:MODE")
    mode = None
    if len(parts) == 3:
        try:
            mode = int(parts[2], 8)
        except ValueError:
            sys.exit(f"oci-image: --file {spec!r}: MODE must be octal, e.g. 0755")
    return parts[0], parts[1], mode


def oci_arch():
    machine = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le",
            "s390x": "s390x", "riscv64": "riscv64"}.get(machine, machine)


def split_name(name):
    """'localhost/a/b:1' -> tag '1'; a name without a tag gets 'latest'."""
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        return name, last.rsplit(":", 1)[1]
    return name + ":latest", "latest"


def canonical_json(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--name", required=True, help="image reference, e.g. localhost/mk8s/pause:1")
    p.add_argument("-o", "--output", required=True, help="the tarball to write")
    p.add_argument("--busybox", action="store_true", help="add a busybox-static userland")
    p.add_argument("--busybox-binary", default="/bin/busybox")
    p.add_argument("--file", action="append", default=[], metavar="SRC:DEST[:MODE]")
    p.add_argument("--entrypoint", default="", help="shell-quoted words")
    p.add_argument("--cmd", default="", help="shell-quoted words")
    p.add_argument("--env", action="append", default=[], metavar="K=V")
    p.add_argument("--workdir", default="")
    p.add_argument("--user", default="")
    p.add_argument("--arch", default=oci_arch())
    args = p.parse_args()

    name, tag = split_name(args.name)
    layer = Layer()
    if args.busybox:
        add_busybox(layer, args.busybox_binary)
    for spec in args.file:
        src, dest, mode = parse_file_spec(spec)
        try:
            with open(src, "rb") as f:
                data = f.read()
            src_mode = stat.S_IMODE(os.stat(src).st_mode)
        except OSError as e:
            sys.exit(f"oci-image: --file {spec!r}: {e.strerror}: {src}")
        if mode is None:
            mode = 0o755 if src_mode & 0o111 else 0o644
        layer.add_file(dest, data, mode)
    if args.workdir:
        layer.add_dir(args.workdir)
    env = [DEFAULT_PATH]
    for kv in args.env:
        if "=" not in kv:
            sys.exit(f"oci-image: --env {kv!r}: expected K=V")
        if kv.startswith("PATH="):
            env[0] = kv
        else:
            env.append(kv)

    layer_tar = layer.tar_bytes()
    diff_id = sha256(layer_tar)
    gz = io.BytesIO()
    with gzip.GzipFile(fileobj=gz, mode="wb", mtime=0, compresslevel=6) as g:
        g.write(layer_tar)
    layer_blob = gz.getvalue()

    image_config = {"Env": env}
    if args.entrypoint:
        image_config["Entrypoint"] = shlex.split(args.entrypoint)
    if args.cmd:
        image_config["Cmd"] = shlex.split(args.cmd)
    if args.workdir:
        image_config["WorkingDir"] = args.workdir
    if args.user:
        image_config["User"] = args.user
    config_blob = canonical_json({
        "created": CREATED,
        "architecture": args.arch,
        "os": "linux",
        "config": image_config,
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": CREATED, "created_by": "mk8s oci-image.py"}],
    })
    manifest_blob = canonical_json({
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": {"mediaType": MEDIA_CONFIG, "digest": sha256(config_blob),
                   "size": len(config_blob)},
        "layers": [{"mediaType": MEDIA_LAYER_GZIP, "digest": sha256(layer_blob),
                    "size": len(layer_blob)}],
    })
    index_blob = canonical_json({
        "schemaVersion": 2,
        "mediaType": MEDIA_INDEX,
        "manifests": [{
            "mediaType": MEDIA_MANIFEST,
            "digest": sha256(manifest_blob),
            "size": len(manifest_blob),
            "platform": {"architecture": args.arch, "os": "linux"},
            "annotations": {"io.containerd.image.name": name,
                            "org.opencontainers.image.ref.name": tag},
        }],
    })

    files = [("oci-layout", canonical_json({"imageLayoutVersion": "1.0.0"})),
             ("index.json", index_blob)]
    for blob in (layer_blob, config_blob, manifest_blob):
        files.append(("blobs/sha256/" + sha256(blob).split(":", 1)[1], blob))
    tmp = args.output + ".tmp"
    with tarfile.open(tmp, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for d in ("blobs", "blobs/sha256"):
            info = tarfile.TarInfo(d)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, FIXED_MTIME
            tar.addfile(info)
        for path, data in sorted(files):
            info = tarfile.TarInfo(path)
            info.size, info.mode, info.mtime = len(data), 0o644, FIXED_MTIME
            tar.addfile(info, io.BytesIO(data))
    os.replace(tmp, args.output)
    print(f"{name} {sha256(config_blob)} -> {args.output}")


if __name__ == "__main__":
    main()
