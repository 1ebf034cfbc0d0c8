"""Lease owner ids (relay/store/leases.py): which owners are known to have stopped."""

from __future__ import annotations

import os
import socket

from relay.store.leases import new_owner, owner_gone
from tests.support import exited_pid


def test_an_owner_id_names_this_host_and_process() -> None:
    """A new owner id starts with the host name and the process id."""
    host, pid, rest = new_owner().rsplit(":", 2)
    assert (host, int(pid)) == (socket.gethostname(), os.getpid())
    assert len(rest) == 32


def test_two_owner_ids_differ() -> None:
    """Two dispatchers of one process still hold their leases apart."""
    assert new_owner() != new_owner()


def test_a_running_process_is_not_gone() -> None:
    """The leases of a process still running are left alone."""
    assert not owner_gone(new_owner())


def test_an_exited_process_is_gone() -> None:
    """A process of this host that has exited holds nothing any more."""
    assert owner_gone(f"{socket.gethostname()}:{exited_pid()}:abc")


def test_another_hosts_process_is_not_judged() -> None:
    """A process of another machine may run: only its lease's end frees it."""
    assert not owner_gone(f"not-{socket.gethostname()}:{exited_pid()}:abc")


def test_an_id_without_a_process_is_gone() -> None:
    """An owner id written by an older relay (no host or pid in it) counts as gone."""
    assert owner_gone("3f2a9c")
    assert owner_gone("host:notapid:abc")
