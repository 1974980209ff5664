"""Where SIOCETHTOOL requests go: the kernel, or a recording of what a kernel answered.

Both transports take the request buffer and return it filled in; everything
after (the parsers in structs.py, the reader, the collectors) is the same code
either way, which is how the end-to-end test exercises the ENA path on a
machine without an ENA NIC.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import socket
import struct
from typing import TYPE_CHECKING, Protocol

from otel_netreceiver.ethtool.structs import (
    COMMAND_NAMES,
    ETHTOOL_GDRVINFO,
    ETHTOOL_GSSET_INFO,
    ETHTOOL_GSTATS,
    ETHTOOL_GSTRINGS,
    SIOCETHTOOL,
    command_of,
)

if TYPE_CHECKING:
    from otel_netreceiver.ethtool.recording import Recording

IFNAMSIZ = 16  # include/uapi/linux/if.h
_IFREQ_SIZE = 40  # struct ifreq on 64-bit: 16-byte name + 24-byte union (ifr_data at 16)


class EthtoolError(OSError):
    """An ioctl the kernel refused; names the interface and the command."""

    def __init__(self, ifname: str, command: int, err: int, detail: str = "") -> None:
        self.ifname, self.command = ifname, COMMAND_NAMES.get(command, hex(command))
        text = detail or (errno.errorcode.get(err, str(err)) if err else "failed")
        super().__init__(err, f"ethtool {self.command} on {ifname}: {text}")


class InterfaceGone(EthtoolError):
    """ENODEV/ENXIO: the interface vanished (callers drop it quietly)."""


class NotSupported(EthtoolError):
    """EOPNOTSUPP: the driver has no answer for this command (e.g. lo has no stats)."""


def error_for(ifname: str, command: int, err: int) -> EthtoolError:
    import os

    detail = os.strerror(err)
    if err in (errno.ENODEV, errno.ENXIO):
        return InterfaceGone(ifname, command, err, detail)
    if err == errno.EOPNOTSUPP:
        return NotSupported(ifname, command, err, detail)
    return EthtoolError(ifname, command, err, detail)


class EthtoolTransport(Protocol):
    def call(self, ifname: str, command: int, buf: bytearray) -> bytearray: ...

    def close(self) -> None: ...


class IoctlTransport:
    """The real ioctl on one reused AF_INET datagram socket (no CAP_NET_ADMIN needed).

    The device is looked up in the calling thread's network namespace.
    """

    def __init__(self) -> None:
        self._sock: socket.socket | None = None

    def call(self, ifname: str, command: int, buf: bytearray) -> bytearray:
        name = ifname.encode()
        if not name or len(name) >= IFNAMSIZ:
            raise ValueError(f"interface name {ifname!r} is not 1..{IFNAMSIZ - 1} bytes")
        if self._sock is None:
            self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        data = (ctypes.c_char * len(buf)).from_buffer(buf)  # the kernel writes into buf itself
        try:
            ifreq = bytearray(_IFREQ_SIZE)
            ifreq[:len(name)] = name
            struct.pack_into("P", ifreq, IFNAMSIZ, ctypes.addressof(data))
            fcntl.ioctl(self._sock.fileno(), SIOCETHTOOL, ifreq)
        except OSError as exc:
            raise error_for(ifname, command, exc.errno or 0) from None
        finally:
            del data  # release the export so buf can be resized/freed
        return buf

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


class ReplayTransport:
    """Answers each request with the recorded response bytes of that interface.

    Each GSTATS advances the interface to its next frame (the last one repeats,
    or with ``loop`` the frames cycle), so a recording of N reads replays N cycles.
    """

    def __init__(self, recording: Recording, loop: bool = False) -> None:
        self._recording = recording
        self._loop = loop
        self._position = dict.fromkeys(recording.interfaces, 0)

    @classmethod
    def from_stats(cls, interfaces: dict, loop: bool = False) -> ReplayTransport:
        """``{ifname: (DriverInfo, [ {stat: value}, ... ])}`` encoded as a kernel would."""
        from otel_netreceiver.ethtool.recording import recording_from_stats

        return cls(recording_from_stats(interfaces, "constructed in code"), loop)

    def interfaces(self) -> list[str]:
        return list(self._recording.interfaces)

    def call(self, ifname: str, command: int, buf: bytearray) -> bytearray:
        iface = self._recording.interfaces.get(ifname)
        if iface is None:
            raise InterfaceGone(ifname, command, errno.ENODEV, "No such device (not recorded)")
        if command_of(buf) != command:
            raise ValueError(f"request carries command {command_of(buf):#x}, not {command:#x}")
        position = self._position[ifname]
        frame = iface.frames[position]
        answer = {ETHTOOL_GDRVINFO: iface.drvinfo, ETHTOOL_GSSET_INFO: frame.sset_info,
                  ETHTOOL_GSTRINGS: frame.gstrings, ETHTOOL_GSTATS: frame.gstats}.get(command)
        if answer is None:
            raise NotSupported(ifname, command, errno.EOPNOTSUPP, "not in the recording")
        size = min(len(buf), len(answer))
        buf[:size] = answer[:size]
        if command == ETHTOOL_GSTATS:
            last = len(iface.frames) - 1
            self._position[ifname] = (position + 1) % len(iface.frames) if self._loop else min(
                position + 1, last)
        return buf

    def close(self) -> None:
        pass
