"""A file system whose reads stall until the test lets them go: what a hung network mount does.

It speaks the kernel's FUSE protocol over /dev/fuse directly (no libfuse), serving one directory
with one regular file. Opening and stat-ing the file answer at once; a READ of its contents is
held until `release()` is called, then answered with the real bytes. So a daemon that loads the
file goes through its real path (open, fstat says regular file, mmap, page fault) and blocks
exactly where a read from a stalled server blocks. Needs root and /dev/fuse; `StalledFS.start`
returns None where those are missing."""

import ctypes
import errno
import os
import stat
import struct
import threading

IN_HEADER = struct.Struct("<IIQQIIIHH")  # len, opcode, unique, nodeid, uid, gid, pid, extlen, pad
OUT_HEADER = struct.Struct("<IiQ")  # len, error, unique
ATTR = struct.Struct("<QQQQQQIIIIIIIIII")
LOOKUP, FORGET, GETATTR, OPEN, READ, RELEASE, FLUSH, INIT = 1, 2, 3, 14, 15, 18, 25, 26
OPENDIR, RELEASEDIR, INTERRUPT, DESTROY, BATCH_FORGET = 27, 29, 36, 38, 42
NO_REPLY = {FORGET, INTERRUPT, BATCH_FORGET}
ROOT, FILE = 1, 2


class StalledFS:
    def __init__(self, mountpoint, name, content):
        self.mountpoint = mountpoint
        self.name = name.encode()
        self.content = content
        self.lock = threading.Lock()
        self.released = False
        self.held = []  # READs waiting: (unique, offset, size)
        self.reads_seen = threading.Event()
        self.fd = -1

    @classmethod
    def start(cls, mountpoint, name, content):
        if os.geteuid() != 0 or not os.path.exists("/dev/fuse"):
            return None
        fs = cls(mountpoint, name, content)
        try:
            fs.fd = os.open("/dev/fuse", os.O_RDWR)
        except OSError:
            return None
        libc = ctypes.CDLL(None, use_errno=True)
        options = b"fd=%d,rootmode=40000,user_id=0,group_id=0" % fs.fd
        if libc.mount(b"stalledfs", mountpoint.encode(), b"fuse", 2 | 4, options) != 0:  # MS_NOSUID | MS_NODEV
            os.close(fs.fd)
            return None
        threading.Thread(target=fs._serve, daemon=True).start()
        return fs

    @property
    def path(self):
        return os.path.join(self.mountpoint, self.name.decode())

    def release(self):
        """Answers the held reads and every later one at once."""
        with self.lock:
            self.released = True
            held, self.held = self.held, []
        for unique, offset, size in held:
            self._reply(unique, self.content[offset:offset + size])

    def stop(self):
        self.release()
        libc = ctypes.CDLL(None, use_errno=True)
        libc.umount2(self.mountpoint.encode(), 2)  # MNT_DETACH
        try:
            os.close(self.fd)
        except OSError:
            pass

    def _attr(self, node):
        if node == ROOT:
            return ATTR.pack(ROOT, 0, 0, 0, 0, 0, 0, 0, 0, stat.S_IFDIR | 0o755, 2, 0, 0, 0, 4096, 0)
        size = len(self.content)
        return ATTR.pack(FILE, size, (size + 511) // 512, 0, 0, 0, 0, 0, 0, stat.S_IFREG | 0o644, 1, 0, 0, 0, 4096, 0)

    def _reply(self, unique, payload=b"", error=0):
        try:
            os.write(self.fd, OUT_HEADER.pack(OUT_HEADER.size + len(payload), -error, unique) + payload)
        except OSError:
            pass

    def _serve(self):
        while True:
            try:
                message = os.read(self.fd, 1 << 20)
            except OSError as e:
                if e.errno in (errno.EINTR, errno.ENOENT):
                    continue
                return  # unmounted
            if not message:
                return
            _, opcode, unique, node, *_ = IN_HEADER.unpack_from(message)
            body = message[IN_HEADER.size:]
            if opcode in NO_REPLY:
                continue
            if opcode == INIT:
                major, minor, readahead, _ = struct.unpack_from("<IIII", body)
                self._reply(unique, struct.pack("<IIIIHHIIHHI7I", 7, 31, readahead, 0, 16, 12, 65536, 1, 16, 0, 0,
                                                *[0] * 7))
            elif opcode == LOOKUP:
                if node == ROOT and body.rstrip(b"\0") == self.name:
                    self._reply(unique, struct.pack("<QQQQII", FILE, 0, 1, 1, 0, 0) + self._attr(FILE))
                else:
                    self._reply(unique, error=errno.ENOENT)
            elif opcode == GETATTR:
                self._reply(unique, struct.pack("<QII", 1, 0, 0) + self._attr(node))
            elif opcode in (OPEN, OPENDIR):
                self._reply(unique, struct.pack("<QII", 0, 0, 0))
            elif opcode == READ:
                _, offset, size, _ = struct.unpack_from("<QQII", body)
                self.reads_seen.set()
                with self.lock:
                    if not self.released:
                        self.held.append((unique, offset, size))
                        continue
                self._reply(unique, self.content[offset:offset + size])
            elif opcode in (RELEASE, RELEASEDIR, FLUSH):
                self._reply(unique)
            elif opcode == DESTROY:
                self._reply(unique)
                return
            else:
                self._reply(unique, error=errno.ENOSYS)
