"""Where SIOCETHTOOL requests go: the kernel, or a recording of what a kernel answered.

Both transports take a request buffer packed by structs.py and return it
filled in; everything after (the parsers, the reader, the collectors) is the
same code either way. That is how the ENA path is tested end to end on
machines without an ENA NIC.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import mmap
import os
import socket
import struct
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

from otel_netreceiver.ethtool import structs

if TYPE_CHECKING:
    # Imported lazily at run time: `python -m otel_netreceiver.ethtool.recording`
    # must not find that module already imported through the package.
    from otel_netreceiver.ethtool.recording import InterfaceRecording, Recording

IFNAMSIZ = 16  # include/uapi/linux/if.h


class _IfMap(ctypes.Structure):
    """struct ifmap (include/uapi/linux/if.h): the biggest member of ifreq's union."""

    _fields_ = [("mem_start", ctypes.c_ulong), ("mem_end", ctypes.c_ulong),
                ("base_addr", ctypes.c_ushort), ("irq", ctypes.c_ubyte),
                ("dma", ctypes.c_ubyte), ("port", ctypes.c_ubyte)]


class _IfrIfru(ctypes.Union):
    _fields_ = [("ifru_map", _IfMap), ("ifru_data", ctypes.c_void_p)]


class _IfReq(ctypes.Structure):
    """struct ifreq: char ifr_name[IFNAMSIZ], then the union holding ifr_data."""

    _fields_ = [("ifr_name", ctypes.c_char * IFNAMSIZ), ("ifr_ifru", _IfrIfru)]


# The C layouts above only give the size and offset; calls pack a plain
# bytearray (cheaper than filling a ctypes struct on the hot path). dev_ioctl()
# copies sizeof(struct ifreq) bytes from us: 40 on 64-bit.
_IFREQ_SIZE = ctypes.sizeof(_IfReq)
_IFREQ_HEAD = struct.Struct(f"{IFNAMSIZ}s{_IfReq.ifr_ifru.offset - IFNAMSIZ}xP")


# GSTRINGS and GSTATS write as many entries as the driver has *now*, not as
# many as we asked for, on kernels whose net/ethtool/ioctl.c
# ethtool_get_strings()/ethtool_get_stats() overwrite the user's count. If the
# set grew since GSSET_INFO, that would write past our buffer (heap corruption
# in this process). Those two go through a scratch mapping big enough for
# MAX_STATS entries; untouched pages of an anonymous mapping cost no memory.
# Smaller requests (GDRVINFO, GSSET_INFO) use the same mapping, for its fixed address.
_SCRATCH_SIZE = structs.GSTRINGS_HEADER_SIZE + structs.MAX_STATS * structs.ETH_GSTRING_LEN
_MAX_CACHED_IFREQS = 4096


class EthtoolError(OSError):
    """An ioctl the kernel refused; names the interface and the command.

    ``command`` is the command's name ("GSTATS"), ``errno`` the kernel's error.
    """

    def __init__(self, ifname: str, command: int, err: int, detail: str = "") -> None:
        reason = os.strerror(err) + (f" ({detail})" if detail else "")
        super().__init__(err, reason)
        self.ifname = ifname
        self.command = structs.command_name(command)
        self.message = f"ethtool {self.command} on {ifname}: {reason}"

    def __str__(self) -> str:
        return self.message


class InterfaceGone(EthtoolError):
    """ENODEV/ENXIO: the interface vanished; callers drop it quietly."""


class NotSupported(EthtoolError):
    """EOPNOTSUPP: the driver has no answer for this command (lo has no GSTATS)."""


def error_for(ifname: str, command: int, err: int, detail: str = "") -> EthtoolError:
    """The EthtoolError subclass callers dispatch on for this errno."""
    if err in (errno.ENODEV, errno.ENXIO):
        return InterfaceGone(ifname, command, err, detail)
    if err == errno.EOPNOTSUPP:
        return NotSupported(ifname, command, err, detail)
    return EthtoolError(ifname, command, err, detail)


class EthtoolTransport(Protocol):
    def call(self, ifname: str, command: int, buf: bytearray) -> bytearray:
        """Send the request in ``buf``; the answer is written into it, which is returned."""
        ...

    def close(self) -> None: ...


def _ifname(ifname: str) -> bytes:
    name = ifname.encode()
    if not name or len(name) >= IFNAMSIZ or b"\0" in name:
        # the kernel would silently cut the name at 15 bytes or at a NUL and
        # answer for another interface
        raise ValueError(f"interface name {ifname!r} is not 1..{IFNAMSIZ - 1} bytes without NUL")
    return name


class IoctlTransport:
    """The real ioctl, on one lazily opened AF_INET datagram socket reused for every call.

    No capability is needed for these read-only commands (dev_ethtool() only
    checks CAP_NET_ADMIN for commands that change something). The device is
    looked up in the network namespace of the socket, i.e. of the thread that
    made the first call: a caller that switches namespaces needs a transport
    per namespace. Calls through the one scratch buffer are serialised by a lock.
    """

    def __init__(self) -> None:
        self._sock: socket.socket | None = None
        self._scratch: mmap.mmap | None = None
        self._scratch_pin: ctypes.Array[ctypes.c_char] | None = None
        self._scratch_address = 0
        self._ifreqs: dict[str, bytearray] = {}
        self._lock = threading.Lock()

    def __enter__(self) -> IoctlTransport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def call(self, ifname: str, command: int, buf: bytearray) -> bytearray:
        found = structs.command_of(buf)
        if found != command:
            raise ValueError(f"request carries command {found:#x}, not {command:#x}")
        size = len(buf)
        if size <= _SCRATCH_SIZE:
            # Every request that fits goes through the one pinned scratch mapping:
            # its address never changes, so the ifreq naming it is built once per
            # interface (bench/bench_ethtool.py: this took a warm read from ~11 to
            # ~5 us of CPU, most of it the two syscalls).
            # One caller at a time: the scratch mapping is shared, and a second thread's
            # request written into it between this copy and the ioctl is what the kernel
            # reads (ethtool_get_strings echoes the header it copied in: seen in CI as a
            # GSTRINGS answer carrying GDRVINFO's command during test_host_surprises).
            with self._lock:
                scratch = self._scratch_buffer()
                scratch[:size] = buf
                self._ioctl(ifname, command, self._ifreq(ifname))
                buf[:] = scratch[:size]
            return buf
        # from_buffer() pins buf (it cannot be resized or freed) while `pinned`
        # lives, so the address the kernel writes to stays valid during the call
        pinned = (ctypes.c_char * size).from_buffer(buf)
        try:
            ifreq = bytearray(_IFREQ_SIZE)
            _IFREQ_HEAD.pack_into(ifreq, 0, _ifname(ifname), ctypes.addressof(pinned))
            self._ioctl(ifname, command, ifreq)
        finally:
            del pinned
        return buf

    def _ifreq(self, ifname: str) -> bytearray:
        """The ifreq naming ``ifname`` and pointing at the scratch mapping, made once."""
        ifreq = self._ifreqs.get(ifname)
        if ifreq is None:
            if len(self._ifreqs) >= _MAX_CACHED_IFREQS:  # interfaces come and go
                self._ifreqs.clear()
            ifreq = bytearray(_IFREQ_SIZE)
            _IFREQ_HEAD.pack_into(ifreq, 0, _ifname(ifname), self._scratch_address)
            self._ifreqs[ifname] = ifreq
        return ifreq

    def _ioctl(self, ifname: str, command: int, ifreq: bytearray) -> None:
        try:
            # mutate_flag=False: the kernel writes through ifr_data, not into the
            # ifreq itself, so fcntl need not copy the ifreq back
            fcntl.ioctl(self._socket().fileno(), structs.SIOCETHTOOL, ifreq, False)
        except OSError as exc:
            raise error_for(ifname, command, exc.errno or 0) from None

    def _socket(self) -> socket.socket:
        if self._sock is None:
            self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        return self._sock

    def _scratch_buffer(self) -> mmap.mmap:
        """The guard mapping, pinned once for the transport's life (its address is fixed)."""
        if self._scratch is None:
            self._scratch = mmap.mmap(-1, _SCRATCH_SIZE)
            self._scratch_pin = (ctypes.c_char * _SCRATCH_SIZE).from_buffer(self._scratch)
            self._scratch_address = ctypes.addressof(self._scratch_pin)
        return self._scratch

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self._scratch is not None:
            self._scratch_pin = None  # release the export, or mmap.close() refuses
            self._scratch.close()
            self._scratch = None
            self._ifreqs.clear()


class ReplayTransport:
    """Answers each request with the recorded response bytes of that interface.

    Each GSTATS moves the interface to its next frame (GDRVINFO, GSSET_INFO and
    GSTRINGS answer from the current one); once the frames are used up the last
    one repeats, or with ``loop`` they start over. An interface that is not in
    the recording raises InterfaceGone, as a vanished one would.
    """

    def __init__(self, recording: Recording, loop: bool = False) -> None:
        self._recording = recording
        self._loop = loop
        self._position = dict.fromkeys(recording.interfaces, 0)

    @classmethod
    def from_stats(
        cls,
        interfaces: Mapping[str, tuple[structs.DriverInfo, Sequence[Mapping[str, int]]]],
        loop: bool = False,
    ) -> ReplayTransport:
        """``{ifname: (DriverInfo, [{stat: value}, ...])}``, encoded as a kernel would."""
        from otel_netreceiver.ethtool.recording import recording_from_stats

        return cls(recording_from_stats(interfaces, "constructed in code"), loop)

    @property
    def recording(self) -> Recording:
        return self._recording

    def interfaces(self) -> list[str]:
        return list(self._recording.interfaces)

    def call(self, ifname: str, command: int, buf: bytearray) -> bytearray:
        iface = self._recording.interfaces.get(ifname)
        if iface is None:
            raise InterfaceGone(ifname, command, errno.ENODEV, "not in the recording")
        if structs.command_of(buf) != command:
            raise ValueError(f"request carries command {structs.command_of(buf):#x}, "
                             f"not {command:#x}")
        answer = self._answer(iface, ifname, command)
        if answer is None:
            raise NotSupported(ifname, command, errno.EOPNOTSUPP, "not in the recording")
        size = min(len(buf), len(answer))
        buf[:size] = answer[:size]
        if command == structs.ETHTOOL_GSTATS:
            self._advance(ifname, len(iface.frames))
        return buf

    def _answer(self, iface: InterfaceRecording, ifname: str, command: int) -> bytes | None:
        frame = iface.frames[self._position[ifname]]
        return {structs.ETHTOOL_GDRVINFO: iface.drvinfo,
                structs.ETHTOOL_GSSET_INFO: frame.sset_info,
                structs.ETHTOOL_GSTRINGS: frame.gstrings,
                structs.ETHTOOL_GSTATS: frame.gstats}.get(command)

    def _advance(self, ifname: str, frames: int) -> None:
        position = self._position[ifname] + 1
        self._position[ifname] = position % frames if self._loop else min(position, frames - 1)

    def close(self) -> None:
        """Nothing to release; present to satisfy EthtoolTransport."""
